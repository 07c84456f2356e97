"""Load a T2M evaluator from an ``opt.txt`` and compute text/motion embeddings.

``opt.txt`` is the official ``key: value`` format (docs/original-options.md §6) with the
boolean pitfall fixed ("False" is False). The weights are
``<checkpoints_dir>/<dataset_name>/text_mot_match/model/finest.tar`` (weights-only load), the
normalisation statistics ``<checkpoints_dir>/<dataset_name>/<name>/meta/{mean,std}.npy``.
The weights are always taken from the folder layout around the opt file the user named
(``<root>/<dataset_name>/<name>/opt.txt`` → ``<root>``): ``checkpoints_dir`` is never resolved against
the working directory or elsewhere, so a copied evaluator folder loads its own weights from anywhere,
and a broken copy stops the run instead of silently loading another evaluator. ``fingerprint``
records the files actually loaded and their sha256 (reports name it).

Optional ``dim_*`` fields (written by train_evaluator.py for small evaluators) override the
official dimensions; without them the official sizes are used.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from models.evaluator import TextMotionEvaluator
from utils.io import load_checkpoint

_FLOAT = re.compile(r"^[-+]?\d+\.\d*([eE][-+]?\d+)?$|^[-+]?\d+[eE][-+]?\d+$")
_INT = re.compile(r"^[-+]?\d+$")
REQUIRED = ("dataset_name", "checkpoints_dir", "name")
DATASET_DEFAULTS = {"t2m": {"dim_pose": 263, "joints_num": 22}, "kit": {"dim_pose": 251, "joints_num": 21}}
DIM_DEFAULTS = {"dim_word": 300, "dim_pos_ohot": 15, "dim_movement_enc_hidden": 512, "dim_movement_latent": 512,
                "dim_text_hidden": 512, "dim_motion_hidden": 1024, "dim_coemb_hidden": 512, "unit_length": 4,
                "max_text_len": 20, "max_motion_length": 196}


def parse_value(v: str):
    if v in ("True", "False"):
        return v == "True"
    if _INT.match(v):
        return int(v)
    if _FLOAT.match(v):
        return float(v)
    return v


def parse_opt_file(path) -> dict:
    """Parse an official-format opt.txt into a dict (errors name the file and line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluator options file not found: {path}")
    opt = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("----"):
            continue
        key, sep, value = s.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{n}: expected 'key: value', got {line!r}")
        opt[key.strip()] = parse_value(value.strip())
    missing = [k for k in REQUIRED if k not in opt]
    if missing:
        raise ValueError(f"{path}: missing required field(s) {missing}")
    if opt["dataset_name"] not in DATASET_DEFAULTS:
        raise ValueError(f"{path}: dataset_name must be 't2m' or 'kit', got {opt['dataset_name']!r}")
    for k, v in {**DATASET_DEFAULTS[opt["dataset_name"]], **DIM_DEFAULTS}.items():
        opt.setdefault(k, v)
    for k in DIM_DEFAULTS:
        if not isinstance(opt[k], int) or opt[k] <= 0:
            raise ValueError(f"{path}: field {k} must be a positive integer, got {opt[k]!r}")
    opt["opt_path"] = str(path)
    return opt


def write_opt_file(path, opt: dict):
    from utils.io import atomic_write_text
    lines = ["------------ Options -------------"] + [f"{k}: {v}" for k, v in opt.items()] + \
            ["-------------- End ----------------"]
    atomic_write_text(path, "\n".join(lines) + "\n")


def resolve_layout(opt: dict) -> dict:
    """Locate finest.tar and meta/ around the parsed opt file (see module doc)."""
    opt_path = Path(opt["opt_path"]).resolve()
    ds, name = opt["dataset_name"], opt["name"]
    root = opt_path.parent.parent.parent  # <root>/<ds>/<name>/opt.txt
    model = root / ds / "text_mot_match" / "model" / "finest.tar"
    meta = root / ds / name / "meta"
    if opt_path.parent.name != name or opt_path.parent.parent.name != ds:
        raise FileNotFoundError(
            f"{opt_path}: an evaluator's opt.txt must sit at <checkpoints>/{ds}/{name}/opt.txt (its dataset_name "
            f"and name fields), with the weights at <checkpoints>/{ds}/text_mot_match/model/finest.tar; "
            f"this one is in {opt_path.parent}")
    missing = [str(x) for x, ok in ((model, model.is_file()), (meta / "mean.npy", (meta / "mean.npy").is_file()),
                                    (meta / "std.npy", (meta / "std.npy").is_file())) if not ok]
    if missing:
        raise FileNotFoundError(
            f"evaluator {opt_path}: missing {', '.join(missing)} (the weights and meta/ are read from the folder you "
            f"named, never from opt.txt's checkpoints_dir {opt['checkpoints_dir']!r} elsewhere)")
    return {"model": model, "meta": meta, "root": root}


def sha256_file(path, chunk: int = 1 << 20) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(layout: dict, opt_path) -> dict:
    """The files an evaluator was loaded from and their sha256 (one combined ``sha256`` to compare)."""
    import hashlib
    files = {"opt": Path(opt_path).resolve(), "weights": Path(layout["model"]).resolve(),
             "mean": Path(layout["meta"]).resolve() / "mean.npy", "std": Path(layout["meta"]).resolve() / "std.npy"}
    sums = {k: sha256_file(v) for k, v in files.items() if k != "opt"}
    combined = hashlib.sha256("".join(sums[k] for k in ("weights", "mean", "std")).encode()).hexdigest()
    return {"opt": str(files["opt"]), "weights": str(files["weights"]), "weights_sha256": sums["weights"],
            "meta": str(Path(layout["meta"]).resolve()), "sha256": combined}


def find_opt(path) -> Path:
    """Accept an opt.txt path or a folder that contains one (searched recursively)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        found = sorted(p.rglob("opt.txt"))
        if found:
            return found[0]
    raise FileNotFoundError(f"no evaluator opt.txt at {p}")


class EvaluatorWrapper:
    """Embeddings for texts and motions in the evaluator's space, always in input order."""

    def __init__(self, opt_path, device="cpu"):
        self.opt = parse_opt_file(find_opt(opt_path))
        layout = resolve_layout(self.opt)
        self.device = torch.device(device)
        o = self.opt
        self.model = TextMotionEvaluator(
            dim_pose=o["dim_pose"], dim_word=o["dim_word"], dim_pos_ohot=o["dim_pos_ohot"],
            dim_movement_enc_hidden=o["dim_movement_enc_hidden"], dim_movement_latent=o["dim_movement_latent"],
            dim_text_hidden=o["dim_text_hidden"], dim_motion_hidden=o["dim_motion_hidden"],
            dim_coemb_hidden=o["dim_coemb_hidden"], unit_length=o["unit_length"])
        self.fingerprint = fingerprint(layout, self.opt["opt_path"])
        self.model.load_finest(load_checkpoint(layout["model"]), source=str(layout["model"]))
        self.model.to(self.device).eval()
        self.mean = np.load(layout["meta"] / "mean.npy").astype(np.float32)
        self.std = np.load(layout["meta"] / "std.npy").astype(np.float32)
        if self.mean.shape != (o["dim_pose"],) or self.std.shape != (o["dim_pose"],):
            raise ValueError(f"{layout['meta']}: mean/std shape {self.mean.shape} does not match dim_pose {o['dim_pose']}")
        self.paths = layout
        self.unit_length = o["unit_length"]
        self.max_motion_length = o["max_motion_length"]
        self.max_text_len = o["max_text_len"]
        self._mean_t = torch.from_numpy(self.mean).to(self.device)
        self._std_t = torch.from_numpy(self.std).to(self.device)

    @property
    def dim_pose(self) -> int:
        return self.opt["dim_pose"]

    # ------------------------------------------------------------------ normalisation
    def normalize(self, raw):
        """Raw features -> evaluator normalisation (meta statistics)."""
        if isinstance(raw, torch.Tensor):
            return (raw - self._mean_t.to(raw.device)) / self._std_t.to(raw.device)
        return (raw - self.mean) / self.std

    def prepare_motions(self, motions, normalized: bool = False):
        """List of (T_i, D) features -> padded (B, max_motion_length, D) tensor and lengths cropped
        to multiples of the unit length (the T2M-GPT handling of generated motion, docs/evaluation.md §2.7)."""
        B = len(motions)
        out = torch.zeros(B, self.max_motion_length, self.dim_pose, device=self.device)
        lens = torch.zeros(B, dtype=torch.long)
        for i, m in enumerate(motions):
            m = torch.as_tensor(np.asarray(m) if not isinstance(m, torch.Tensor) else m, dtype=torch.float32)
            if m.dim() != 2 or m.shape[1] != self.dim_pose:
                raise ValueError(f"motion {i} has shape {tuple(m.shape)}, expected (T, {self.dim_pose})")
            T = min(len(m), self.max_motion_length)
            T -= T % self.unit_length
            if T < self.unit_length:
                raise ValueError(f"motion {i} has {len(m)} frames, fewer than the unit length {self.unit_length}")
            m = m[:T].to(self.device)
            out[i, :T] = m if normalized else self.normalize(m)
            lens[i] = T
        return out, lens

    # ------------------------------------------------------------------ embeddings
    @torch.no_grad()
    def get_motion_embeddings(self, motions: torch.Tensor, m_lens) -> torch.Tensor:
        """Normalised padded motions (B, T, D) + frame lengths -> (B, E), input order."""
        return self.model.encode_motion(motions.to(self.device).float(), m_lens)

    @torch.no_grad()
    def get_text_embeddings(self, word_embs, pos_ohot, cap_lens) -> torch.Tensor:
        return self.model.encode_text(word_embs.to(self.device).float(), pos_ohot.to(self.device).float(), cap_lens)

    @torch.no_grad()
    def get_co_embeddings(self, word_embs, pos_ohot, cap_lens, motions, m_lens):
        """(text embeddings, motion embeddings), row i of each a matched pair, input order."""
        return self.get_text_embeddings(word_embs, pos_ohot, cap_lens), self.get_motion_embeddings(motions, m_lens)

    @torch.no_grad()
    def embed_raw_motions(self, motions, batch_size: int = 64) -> torch.Tensor:
        """Raw (un-normalised) feature sequences of any lengths -> (N, E) embeddings."""
        outs = []
        for s in range(0, len(motions), batch_size):
            x, lens = self.prepare_motions(motions[s:s + batch_size])
            outs.append(self.get_motion_embeddings(x, lens))
        return torch.cat(outs) if outs else torch.zeros(0, self.opt["dim_coemb_hidden"])

    @torch.no_grad()
    def embed_token_lists(self, token_lists, w_vectorizer, batch_size: int = 256) -> torch.Tensor:
        """Lists of 'word/POS' tokens -> (N, E) text embeddings."""
        outs = []
        for s in range(0, len(token_lists), batch_size):
            seqs = [w_vectorizer.tokens_to_sequence(t, self.max_text_len) for t in token_lists[s:s + batch_size]]
            we = torch.from_numpy(np.stack([q[0] for q in seqs]))
            po = torch.from_numpy(np.stack([q[1] for q in seqs]))
            ln = torch.tensor([q[2] for q in seqs])
            outs.append(self.get_text_embeddings(we, po, ln))
        return torch.cat(outs) if outs else torch.zeros(0, self.opt["dim_coemb_hidden"])
