#!/usr/bin/env python
"""Real-motion report: how the models trained on synthetic motion see captured motion (issue 17, item 3).

    python eval_real_motion.py --real-dir data/deepmimic --vq-ckpt experiments/vq_synthetic/net_last.pth \\
        --data-root data/synthetic_h3d --evaluator-dir experiments/evaluator_synthetic/t2m/text_mot_match \\
        [--m2t-ckpt experiments/morl_rlvr_m2t/motionllm_rlvr_epoch_0.pth] \\
        [--t2m-ckpt experiments/morl_rlvr_t2m/motionllm_rlvr_epoch_0.pth] [--llm-backbone experiments/tiny_backbone] \\
        --out experiments/real_motion_report

``--real-dir`` is a folder in the HumanML3D layout (``prepare/convert_deepmimic.py`` writes one from the
DeepMimic clips of the pybullet wheel); ``--data-root`` is the dataset the models were trained on (its
test split is the reference). Writes ``<out>/report.json`` and ``<out>/report.md`` (each atomically):

(a) **VQ-VAE reconstruction error** of the real clips next to the synthetic test split: MPJPE in mm as
    ``train_vq.py``'s validation defines it (each clip cropped to a multiple of the unit length, at most
    196 frames; normalised with the VQ-VAE's own ``meta/`` statistics, i.e. the training dataset's
    Mean/Std; joints from ``recover_from_ric``; the mean over joints, then over all frames of all clips).
    The root-aligned error (joints relative to the pelvis) is the headline, the global one (with the root
    trajectory integrated from the decoded velocities) is listed beside it. Per clip as well.
(b) **Physics reward** (``rewards/physics.py``) and each of its terms, reward and raw quantity, on the
    real clips, on the synthetic ground-truth test motion, on the VQ reconstruction of the real clips, and
    on the motion ``--t2m-ckpt`` generates (greedy) from the real clips' captions; with the share of
    motions below 0.8. The report states whether real motion is called plausible (every usable real
    clip >= 0.8) and, where not, which terms fail. The reward is used as it is: nothing is tuned here.
(c) **Captions**: the captions ``--m2t-ckpt`` writes for the real clips (greedy), next to their references,
    BLEU/ROUGE-L/CIDEr (``utils.m2t_metrics``, the eval_mllm.py convention); and the judge's motion-text
    matching within the real set: for each clip the judge's distance to its reference caption and that
    caption's rank among the distinct captions of the real clips (R-precision within the set, every caption
    line), the same for the generated caption (ranked against the other clips' references), and as a
    reference point the same ranking on random synthetic test subsets of the same size. Captions are
    tagged as eval_mllm.py's m2t matching tags them (``utils.text_process``); words missing from the
    judge's GloVe vocabulary are read as ``unk`` and are listed.

Clips outside the loaders' length filter (``HumanML3DReader``: fewer than 40 or 200+ feature frames for
HumanML3D) are skipped and listed with the reason.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from utils.paramUtil import get_spec  # noqa: E402

PHYS_THRESHOLD = 0.8  # the share of motions below this is eval_mllm.py's "phys < 0.8" column
MAX_FRAMES = 196      # the evaluation crop of the protocol (VQ validation, evaluator, m2t encoding)


class ReportError(SystemExit):
    """A clear, one-line stop (missing input file/folder, nothing left to evaluate)."""


# ============================================================================ inputs
def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-dir", required=True, help="real motion in the HumanML3D layout (new_joint_vecs/, texts/, "
                                                      "<split>.txt), e.g. the output of prepare/convert_deepmimic.py")
    ap.add_argument("--real-split", default="test", help="id list of --real-dir (<real-dir>/<split>.txt)")
    ap.add_argument("--vq-ckpt", required=True, help="VQ-VAE checkpoint (its run folder's meta/ holds the statistics)")
    ap.add_argument("--data-root", required=True,
                    help="the synthetic (training) dataset: its test split is the reference")
    ap.add_argument("--synthetic-split", default="test")
    ap.add_argument("--evaluator-dir", required=True, help="the judge (T2M evaluator: opt.txt or its folder)")
    ap.add_argument("--glove-dir", default=None, help="word vectors of the judge (default: <data-root>/glove)")
    ap.add_argument("--m2t-ckpt", default=None, help="MotionLLM checkpoint for motion -> text (section c)")
    ap.add_argument("--t2m-ckpt", default=None, help="MotionLLM checkpoint for text -> motion (generated row of b)")
    ap.add_argument("--llm-backbone", default=None, help="backbone folder (default: the one the checkpoint names)")
    ap.add_argument("--out", required=True, help="report folder (report.json, report.md)")
    ap.add_argument("--max-new-tokens", type=int, default=160, help="generated tokens per output (quickstart: 160)")
    ap.add_argument("--gen-batch-size", type=int, default=32, help="inputs per generate call")
    ap.add_argument("--bertscore", action="store_true", help="also BERTScore of the captions (packaged MiniLM)")
    ap.add_argument("--synthetic-subsets", type=int, default=20,
                    help="random synthetic test subsets (of the real set's size) for the within-set ranking reference")
    ap.add_argument("--dataname", default="t2m", choices=["t2m"], help="skeleton (HumanML3D, 22 joints)")
    ap.add_argument("--device", default="cpu", help="'cpu', 'cuda:0', 'auto'")
    ap.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"], help="LLM weights dtype")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: utils/threads.py)")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def _need(path, flag: str, kind: str = "file") -> Path:
    p = Path(path)
    ok = p.is_file() if kind == "file" else p.is_dir()
    if not ok:
        raise ReportError(f"{flag}: {kind} not found: {p}")
    return p


def check_inputs(args) -> dict:
    """Every input path, checked before anything loads; a missing one stops with its name."""
    real = _need(args.real_dir, "--real-dir", "folder")
    for sub in ("new_joint_vecs", "texts"):
        _need(real / sub, "--real-dir", "folder")
    _need(real / f"{args.real_split}.txt", "--real-dir (--real-split)")
    vq = _need(args.vq_ckpt, "--vq-ckpt")
    from models.vqvae import vq_meta_dir
    meta = vq_meta_dir(vq)
    for f in ("mean.npy", "std.npy"):
        _need(meta / f, "--vq-ckpt (normalisation statistics of the VQ-VAE run)")
    data = _need(args.data_root, "--data-root", "folder")
    for sub in ("new_joint_vecs", "texts"):
        _need(data / sub, "--data-root", "folder")
    _need(data / f"{args.synthetic_split}.txt", "--data-root (--synthetic-split)")
    ev = Path(args.evaluator_dir)
    if not ev.exists():
        raise ReportError(f"--evaluator-dir: not found: {ev}")
    glove = Path(args.glove_dir) if args.glove_dir else data / "glove"
    _need(glove, "--glove-dir" if args.glove_dir else "--data-root (glove/ word vectors; or pass --glove-dir)",
          "folder")
    for flag, value in (("--m2t-ckpt", args.m2t_ckpt), ("--t2m-ckpt", args.t2m_ckpt)):
        if value:
            _need(value, flag)
    if args.llm_backbone:
        _need(args.llm_backbone, "--llm-backbone", "folder")
    if args.max_new_tokens < 1:
        raise ReportError(f"--max-new-tokens {args.max_new_tokens}: must be at least 1")
    return {"real": real, "vq": vq, "meta": meta, "data": data, "glove": glove}


def load_clips(root, split: str, spec, progress: bool = False, max_len: int = 200):
    """The clips of ``<root>/<split>.txt`` the loaders would use, and the ones they would not.

    Returns ``(items, skipped)``: items as :class:`dataset.humanml3d.HumanML3DReader` builds them (whole-clip
    captions), skipped = ``[{"id", "frames", "reason"}]`` for clips outside the loaders' length filter
    (``spec.min_motion_len`` <= frames < ``max_len``). A missing or unreadable file stops with its name."""
    from dataset.humanml3d import DatasetError, HumanML3DReader, read_split
    root = Path(root)
    try:
        ids = read_split(root, split)
    except (FileNotFoundError, ValueError) as exc:
        raise ReportError(str(exc)) from None
    keep, skipped = [], []
    for cid in dict.fromkeys(ids):
        path = root / "new_joint_vecs" / f"{cid}.npy"
        if not path.is_file():
            raise ReportError(f"motion file not found: {path} (listed in {root / f'{split}.txt'})")
        try:
            T = int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
        except Exception as exc:  # noqa: BLE001 - re-raised with the file name
            raise ReportError(f"cannot read motion file {path}: {exc}") from None
        if T < spec.min_motion_len:
            skipped.append({"id": cid, "frames": T, "reason": f"too short: {T} feature frames, the loaders need at "
                                                              f"least {spec.min_motion_len}"})
        elif T >= max_len:
            skipped.append({"id": cid, "frames": T, "reason": f"too long: {T} feature frames, the loaders take "
                                                              f"fewer than {max_len}"})
        else:
            keep.append(cid)
    if not keep:
        raise ReportError(f"no clip of {root / f'{split}.txt'} passes the length filter "
                          f"({spec.min_motion_len} <= frames < {max_len}): " +
                          "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:5]))
    try:
        reader = HumanML3DReader(root, dataname=spec.name, ids=keep, max_len=max_len, progress=progress)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        raise ReportError(f"{root}: {exc}") from None
    return reader.items, skipped


# ============================================================================ (a) reconstruction
def mpjpe(joints_gt, joints_rec, root_aligned: bool = True):
    """Per-frame MPJPE (T,) of two joint sequences (..., T, J, 3): the mean over joints of the Euclidean
    error, after subtracting each frame's root joint from both when ``root_aligned`` (train_vq.Validator)."""
    a = torch.as_tensor(np.asarray(joints_gt), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(joints_rec), dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"joint sequences differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if root_aligned:
        a, b = a - a[..., :1, :], b - b[..., :1, :]
    return (a - b).norm(dim=-1).mean(-1).numpy()


def crop_for_vq(motion, unit: int, max_frames: int = MAX_FRAMES):
    """train_vq.Validator's crop: at most ``max_frames``, then down to a multiple of the unit length."""
    T = min(len(motion), max_frames)
    return motion[: T - T % unit]


@torch.no_grad()
def vq_reconstruct(model, mean, std, motions, batch_size: int = 32, device="cpu", progress: bool = False) -> list:
    """Raw features (already cropped to multiples of the unit length) -> VQ encode/decode -> raw features,
    batched like train_vq.Validator (padded, with lengths)."""
    unit = model.unit_length
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device)
    order = np.argsort([-len(m) for m in motions], kind="stable")
    out = [None] * len(motions)
    for s in tqdm(range(0, len(order), batch_size), desc="VQ reconstruction", disable=not progress, leave=False):
        idx = order[s:s + batch_size]
        lengths = torch.tensor([len(motions[i]) for i in idx], device=device)
        if int(lengths.min()) < unit or (lengths % unit).any():
            raise ValueError(f"clip lengths must be positive multiples of {unit}, got {lengths.tolist()}")
        x = torch.zeros(len(idx), int(lengths.max()), motions[idx[0]].shape[1], device=device)
        for r, i in enumerate(idx):
            x[r, :len(motions[i])] = torch.as_tensor(np.asarray(motions[i], dtype=np.float32), device=device)
        codes = model.encode((x - mean_t) / std_t, lengths)
        rec = model.decode(codes, lengths // unit) * std_t + mean_t
        for r, i in enumerate(idx):
            out[i] = rec[r, :len(motions[i])].cpu().numpy()
    return out


def reconstruction_errors(model, mean, std, motions, spec, ids=None, device="cpu", progress=False) -> dict:
    """Section (a) for one set of clips: per clip and over all frames (frame-weighted, as train_vq.Validator)."""
    from utils.motion_process import recover_from_ric
    unit = model.unit_length
    cropped = [crop_for_vq(m, unit) for m in motions]
    short = [i for i, m in enumerate(cropped) if len(m) < unit]
    if short:
        raise ValueError(f"clip {short[0]} has fewer than {unit} frames")
    recs = vq_reconstruct(model, mean, std, cropped, device=device, progress=progress)
    scale = 1000.0 if spec.unit == "m" else 1.0
    per_clip, glob_sum, rel_sum, frames = [], 0.0, 0.0, 0
    for i, (x, r) in enumerate(zip(cropped, recs)):
        jg = recover_from_ric(torch.from_numpy(np.asarray(x, np.float32)), spec.joints_num)
        jr = recover_from_ric(torch.from_numpy(np.asarray(r, np.float32)), spec.joints_num)
        e_glob, e_rel = mpjpe(jg, jr, root_aligned=False), mpjpe(jg, jr, root_aligned=True)
        glob_sum += float(e_glob.sum())
        rel_sum += float(e_rel.sum())
        frames += len(x)
        per_clip.append({"id": ids[i] if ids else i, "frames": len(x),
                         "mpjpe_root_aligned_mm": float(e_rel.mean()) * scale,
                         "mpjpe_mm": float(e_glob.mean()) * scale})
    return {"clips": len(cropped), "frames": frames, "mpjpe_root_aligned_mm": rel_sum / frames * scale,
            "mpjpe_mm": glob_sum / frames * scale, "per_clip": per_clip, "reconstructions": recs}


# ============================================================================ (b) physics
def physics_block(features, spec) -> dict:
    """The physics reward of raw feature sequences, with every term (reward and raw quantity), through the
    path eval_mllm.physics_scores takes (features -> recover_from_ric -> PhysicsReward.score_joints)."""
    from rewards.physics import TERMS, PhysicsReward
    from utils.motion_process import recover_from_ric
    joints = [np.asarray(recover_from_ric(np.asarray(m, np.float32), spec.joints_num)) if len(m) >= 2 else None
              for m in features]
    reward = PhysicsReward(spec)
    out = reward.score_joints(joints)
    cfg = reward.cfg
    tol = {t: getattr(cfg, f"{t}_tol") for t in TERMS}
    v = out.values
    return {"n": len(v), "values": v, "terms": {t: out.components[t] for t in TERMS},
            "quantities": {t: out.info[f"q_{t}"] for t in TERMS}, "tolerance": tol,
            "details": {k: out.info[k] for k in ("airborne_ratio", "floating_ratio", "peak_speed_mps", "contact_ratio")
                        if k in out.info}}


def physics_summary(block: dict) -> dict:
    from rewards.physics import TERMS
    v = block["values"]
    return {"n": int(block["n"]), "phys_mean": float(np.mean(v)), "phys_min": float(np.min(v)),
            f"share_below_{PHYS_THRESHOLD}": float(np.mean(v < PHYS_THRESHOLD)),
            "term_reward_mean": {t: float(np.nanmean(block["terms"][t])) for t in TERMS},
            "term_quantity_mean": {t: float(np.nanmean(block["quantities"][t])) for t in TERMS},
            f"term_below_{PHYS_THRESHOLD}": {t: int((block["terms"][t] < PHYS_THRESHOLD).sum()) for t in TERMS},
            "term_out_of_tolerance": {t: int((block["quantities"][t] > block["tolerance"][t]).sum()) for t in TERMS}}


def physics_verdict(block: dict, ids) -> dict:
    """Is real motion called plausible (every clip >= the threshold)? Which terms fail, on which clips."""
    from rewards.physics import TERMS
    v = block["values"]
    bad = [i for i in range(len(v)) if v[i] < PHYS_THRESHOLD]
    failing = {}
    for t in TERMS:
        clips = [ids[i] for i in range(len(v)) if block["terms"][t][i] < PHYS_THRESHOLD]
        if clips:
            failing[t] = clips
    worst = {ids[i]: min(TERMS, key=lambda t: block["terms"][t][i]) for i in bad}
    plausible = not bad
    if plausible:
        text = (f"Real motion IS called plausible: all {len(v)} usable real clips score >= {PHYS_THRESHOLD} "
                f"(mean {np.mean(v):.3f}).")
    else:
        terms = ", ".join(f"{t} ({len(c)} clip{'s' if len(c) > 1 else ''} below {PHYS_THRESHOLD})"
                          for t, c in sorted(failing.items(), key=lambda kv: -len(kv[1])))
        text = (f"Real motion is NOT called plausible: {len(bad)} of {len(v)} real clips score below "
                f"{PHYS_THRESHOLD} (mean {np.mean(v):.3f}). Failing terms: "
                f"{terms or 'none alone (several terms each lose a little)'}.")
    return {"plausible": plausible, "clips_below": [ids[i] for i in bad], "lowest_term_of_clips_below": worst,
            "failing_terms": failing, "text": text}


# ============================================================================ (c) captions and the judge
def within_set_ranks(dist, keys, target=None) -> tuple:
    """Rank of each row's own caption among the distinct captions of the set.

    ``dist[i, j]``: the judge's distance of motion i to caption j, caption i being motion i's reference;
    ``keys[j]``: caption j's text (identical captions, e.g. of a clip and its mirror, are one candidate).
    ``target[i]`` replaces the distance of the own caption (a generated caption ranked against the other
    clips' references). Rank = 1 + the number of distinct *other* captions strictly closer. Returns
    ``(ranks (N,), number of candidates)``."""
    dist = np.asarray(dist, dtype=np.float64)
    keys = list(keys)
    first = {}
    for j, k in enumerate(keys):
        first.setdefault(k, j)
    cols = np.array(sorted(first.values()))
    own = np.diag(dist) if target is None else np.asarray(target, dtype=np.float64)
    ranks = np.array([1 + int((dist[i, [j for j in cols if keys[j] != keys[i]]] < own[i]).sum())
                      for i in range(len(own))], dtype=np.int64)
    return ranks, len(cols)


def rank_summary(ranks, n_candidates) -> dict:
    r = np.asarray(ranks)
    return {"R_precision_top1": float(np.mean(r <= 1)), "R_precision_top3": float(np.mean(r <= 3)),
            "mean_rank": float(r.mean()), "candidates": int(n_candidates), "chance_top1": 1.0 / n_candidates,
            "chance_top3": min(3, n_candidates) / n_candidates}


def caption_lines(items) -> list:
    """Caption line r of every item, for each r that every item has."""
    n = min(len(it["captions"]) for it in items)
    return [[it["captions"][r]["caption"] for it in items] for r in range(n)]


def set_ranking(motion_emb, text_emb_of, lines) -> dict:
    """Within-set R-precision over every caption line (mean over lines), per-clip ranks of line 1."""
    from utils.metrics import euclidean_distance_matrix
    per_line = []
    for caps in lines:
        t = text_emb_of(caps)
        D = euclidean_distance_matrix(motion_emb, t)
        ranks, n = within_set_ranks(D, caps)
        per_line.append((ranks, n, np.diag(D)))
    out = {k: float(np.mean([rank_summary(r, n)[k] for r, n, _ in per_line]))
           for k in ("R_precision_top1", "R_precision_top3", "mean_rank", "chance_top1", "chance_top3")}
    out["candidates_per_line"] = [int(n) for _, n, _ in per_line]
    out["caption_lines"] = len(per_line)
    out["MM_Dist"] = float(np.mean([d.mean() for _, _, d in per_line]))
    return out, per_line


class CaptionEmbedder:
    """Captions -> judge text embeddings, tagged as eval_mllm.py's m2t matching tags them (utils.text_process),
    remembering every word the judge's vocabulary lacks (read as unk)."""

    def __init__(self, wrapper, wv):
        self.wrapper, self.wv = wrapper, wv
        self.unk: dict = {}   # source -> {word: count}
        self._cache: dict = {}

    def tokens(self, captions) -> list:
        from utils.text_process import process_texts
        todo = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if todo:
            for c, t in zip(todo, process_texts(todo, allow_empty=True)):
                self._cache[c] = t
        return [self._cache[c] for c in captions]

    def note_unk(self, source: str, token_lists):
        from utils.word_vectorizer import as_token_list, split_token
        seen = self.unk.setdefault(source, {})
        for toks in token_lists:
            for tok in as_token_list(toks):
                w = split_token(tok)[0]
                if w not in self.wv:
                    seen[w] = seen.get(w, 0) + 1

    def __call__(self, captions, source: str | None = None) -> np.ndarray:
        toks = self.tokens(captions)
        if source:
            self.note_unk(source, toks)
        return self.wrapper.embed_token_lists(toks, self.wv).cpu().numpy()


# ============================================================================ the models
def load_mllm(ckpt, args, device, vq_model):
    from models.mllm import MotionLLM
    try:
        m = MotionLLM.from_checkpoint(ckpt, device=device, llm_backbone=args.llm_backbone, dtype=args.dtype)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise ReportError(f"{ckpt}: cannot load the MotionLLM checkpoint ({exc}); pass --llm-backbone if the "
                          f"backbone moved") from None
    m.use_format_mask = True
    if vq_model.nb_code != m.cfg.nb_code:
        raise ReportError(f"--vq-ckpt has {vq_model.nb_code} codes but {ckpt} uses {m.cfg.nb_code}")
    return m


def make_generator(mllm, args):
    """eval_mllm.Generator in greedy mode (timing and failure counts by kind)."""
    from types import SimpleNamespace

    from eval_mllm import Generator
    a = SimpleNamespace(gen_batch_size=args.gen_batch_size, use_com=False, do_sample=False, temperature=1.0,
                        top_p=1.0, top_k=0, num_beams=1, max_new_tokens=args.max_new_tokens)
    return Generator(mllm, a)


def generate_in_chunks(gen, task, inputs, progress: bool, desc: str) -> list:
    out = []
    step = max(1, gen.args.gen_batch_size)
    for s in tqdm(range(0, len(inputs), step), desc=desc, disable=not progress, leave=False):
        out += gen(task, inputs[s:s + step])
    return out


# ============================================================================ the report
def fmt(x, d=3):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{d}f}"


def one_line(text: str, n: int = 90) -> str:
    t = " ".join(str(text).split()).replace("|", "/")
    return t if len(t) <= n else t[: n - 1] + "…"


def markdown(rep: dict) -> str:
    from rewards.physics import TERMS
    from utils.tables import markdown_table
    meta, a, b, c = rep["meta"], rep["reconstruction"], rep["physics"], rep.get("captions")
    L = ["# Real-motion report", "", f"`{meta['command']}`", "",
         f"real clips: `{meta['real_dir']}` ({rep['clips']['used_count']} used, {len(rep['clips']['skipped'])} "
         f"skipped); synthetic reference: `{meta['data_root']}` split `{meta['synthetic_split']}`; "
         f"wall time {meta['wall_seconds']:.1f} s on {meta['device']}", ""]
    L += ["Headline:", ""] + [f"- {h}" for h in headline(rep)] + [""]
    if rep["clips"]["skipped"]:
        L += ["Skipped clips:", ""] + [f"- `{s['id']}`: {s['reason']}" for s in rep["clips"]["skipped"]] + [""]
    # (a)
    L += ["## (a) VQ-VAE reconstruction error", "", a["definition"], ""]
    rows = [[name, str(a[k]["clips"]), str(a[k]["frames"]), fmt(a[k]["mpjpe_root_aligned_mm"], 1),
             fmt(a[k]["mpjpe_mm"], 1)]
            for name, k in ((f"real ({meta['real_name']})", "real"),
                            (f"synthetic {meta['synthetic_split']}", "synthetic"))]
    L += [markdown_table(["motion", "clips", "frames", "MPJPE root-aligned (mm)", "MPJPE global (mm)"], rows), ""]
    checks = [f"{name} {a[k]['train_vq_validator']['val/mpjpe_root_aligned_mm']:.1f} mm root-aligned, "
              f"{a[k]['train_vq_validator']['val/mpjpe_mm']:.1f} mm global (code perplexity "
              f"{a[k]['train_vq_validator']['val/perplexity']:.1f}, codebook usage "
              f"{a[k]['train_vq_validator']['val/code_usage']:.3f})"
              for name, k in (("real", "real"), ("synthetic", "synthetic")) if a[k].get("train_vq_validator")]
    if checks:
        L += ["Check, the same clips through train_vq.py's own validation (train_vq.Validator): " + "; ".join(checks)
              + ".", ""]
    L += ["Per real clip:", "", markdown_table(
        ["clip", "frames", "root-aligned (mm)", "global (mm)"],
        [[p["id"], str(p["frames"]), fmt(p["mpjpe_root_aligned_mm"], 1), fmt(p["mpjpe_mm"], 1)]
         for p in a["real"]["per_clip"]]), ""]
    # (b)
    L += ["## (b) Physics reward (rewards/physics.py)", "", f"**{b['verdict']['text']}**", ""]
    head = ["motion", "n", "phys (mean)", f"< {PHYS_THRESHOLD}"] + list(TERMS)
    rows = []
    for name, s in b["rows"].items():
        rows.append([name, str(s["n"]), fmt(s["phys_mean"]), fmt(s[f"share_below_{PHYS_THRESHOLD}"])]
                    + [fmt(s["term_reward_mean"][t]) for t in TERMS])
    L += ["Mean reward and mean term rewards (each in (0, 1]; the reward is their mean):", "",
          markdown_table(head, rows), ""]
    tol = b["tolerance"]
    rows = [[name] + [f"{fmt(s['term_quantity_mean'][t])} ({s['term_out_of_tolerance'][t]})" for t in TERMS]
            for name, s in b["rows"].items()]
    L += ["Mean raw quantity of each term (in brackets: clips beyond the tolerance); tolerances: "
          + ", ".join(f"{t} {tol[t]:g}" for t in TERMS)
          + " (m/s, m, m, m/s over 12 m/s, m/s³, relative):", "", markdown_table(["motion"] + list(TERMS), rows), ""]
    if b.get("generated_failures") is not None:
        L += [f"Generated motion: {b['generated_failures']}", ""]
    L += ["Per real clip (term rewards):", "", markdown_table(
        ["clip", "phys"] + list(TERMS) + ["airborne", "floating frames"],
        [[p["id"], fmt(p["phys"])] + [fmt(p["terms"][t]) for t in TERMS]
         + [fmt(p.get("airborne_ratio"), 2), fmt(p.get("floating_ratio"), 2)] for p in b["per_clip_real"]]), ""]
    # (c)
    if c:
        L += ["## (c) Captions and the judge's motion–text matching", ""]
        rs = c["judge"]["real_references"]
        rows = [["real clips, reference captions", fmt(rs["R_precision_top1"]), fmt(rs["R_precision_top3"]),
                 fmt(rs["mean_rank"], 2), fmt(rs["MM_Dist"]), f"{rs['candidates_per_line']}",
                 f"{fmt(rs['chance_top1'])} / {fmt(rs['chance_top3'])}"]]
        sy = c["judge"].get("synthetic_subsets")
        if sy:
            rows.append([f"synthetic {meta['synthetic_split']} subsets of {sy['subset_size']} ({sy['subsets']} draws)",
                         fmt(sy["R_precision_top1"]), fmt(sy["R_precision_top3"]), fmt(sy["mean_rank"], 2),
                         fmt(sy["MM_Dist"]), f"~{sy['candidates_mean']:.1f}", f"{fmt(sy['chance_top1'])} / "
                         f"{fmt(sy['chance_top3'])}"])
        g = c["judge"].get("generated_captions")
        if g:
            rows.append(["real clips, generated caption (vs the other clips' references)", fmt(g["R_precision_top1"]),
                         fmt(g["R_precision_top3"]), fmt(g["mean_rank"], 2), fmt(g["MM_Dist"]),
                         str(g["candidates"]), f"{fmt(g['chance_top1'])} / {fmt(g['chance_top3'])}"])
        L += ["Within-set R-precision (each motion ranks the distinct captions of its set; identical captions, e.g. "
              "of a clip and its mirror, count once; mean over caption lines):", "",
              markdown_table(["", "R@1", "R@3", "mean rank", "MM-Dist", "candidates", "chance R@1 / R@3"], rows), ""]
        tg = c["judge"].get("t2m_generated_motion")
        if tg:
            L += [f"Motion generated (t2m, greedy) from the {tg['n']} real captions: the judge's distance to the "
                  f"prompting caption is {tg['MM_Dist_generated']:.3f} on average, the real clip's distance to the "
                  f"same captions {tg['MM_Dist_real_same_captions']:.3f}.", ""]
        if c.get("nlg"):
            n = c["nlg"]
            L += [f"m2t captions vs the references ({n.get('convention')} convention): "
                  + ", ".join(f"{k} {100 * n[k]:.1f}" for k in ("bleu_1", "bleu_4", "rouge_l", "cider", "bertscore_f1")
                              if n.get(k) is not None)
                  + f"; failed generations {c['m2t_failures']}", ""]
        rows = []
        for p in c["per_clip"]:
            rows.append([p["id"], one_line(p["reference"], 60), one_line(p.get("generated", "–"), 60),
                         fmt(p["ref_dist"], 2), f"{p['ref_rank']}/{p['candidates']}",
                         fmt(p.get("gen_dist"), 2), f"{p['gen_rank']}/{p['candidates']}" if "gen_rank" in p else "–"])
        L += ["Per clip (reference = caption line 1; rank among the distinct line-1 captions of the real set):", "",
              markdown_table(["clip", "reference", "generated (m2t, greedy)", "d(ref)", "rank(ref)", "d(gen)",
                              "rank(gen)"], rows), ""]
        unk = c["unk_words"]
        L += ["Words the judge's GloVe vocabulary lacks (read as `unk`):", ""]
        for src, words in unk.items():
            if src == "vocabulary_size":
                continue
            L.append(f"- {src}: " + (", ".join(f"{w} ({n})" for w, n in words.items()) if words else "none"))
        L += [f"(vocabulary: {unk['vocabulary_size']} words)", ""]
    L += [f"judge: `{meta['evaluator']['opt']}` sha256 {meta['evaluator']['sha256'][:12]} "
          f"(weights {meta['evaluator']['weights_sha256'][:12]})"]
    return "\n".join(L) + "\n"


def headline(rep: dict) -> list:
    """One line per section with the numbers that matter."""
    a, b, c = rep["reconstruction"], rep["physics"], rep.get("captions") or {}
    rows = list(b["rows"].items())
    out = [f"(a) VQ-VAE MPJPE, root-aligned: real {a['real']['mpjpe_root_aligned_mm']:.1f} mm vs synthetic "
           f"{rep['meta']['synthetic_split']} {a['synthetic']['mpjpe_root_aligned_mm']:.1f} mm (global: "
           f"{a['real']['mpjpe_mm']:.1f} vs {a['synthetic']['mpjpe_mm']:.1f} mm)",
           "(b) physics reward mean / share < 0.8: " + "; ".join(
               f"{name} {s['phys_mean']:.3f} / {s[f'share_below_{PHYS_THRESHOLD}']:.3f}" for name, s in rows),
           "(b) " + b["verdict"]["text"]]
    j = c.get("judge", {})
    if j:
        r = j["real_references"]
        line = (f"(c) judge, within-set R@1 / R@3 of the reference captions: real {r['R_precision_top1']:.3f} / "
                f"{r['R_precision_top3']:.3f} (chance {r['chance_top1']:.3f} / {r['chance_top3']:.3f}, MM-Dist "
                f"{r['MM_Dist']:.2f})")
        if j.get("synthetic_subsets"):
            sy = j["synthetic_subsets"]
            line += (f", synthetic subsets of the same size {sy['R_precision_top1']:.3f} / "
                     f"{sy['R_precision_top3']:.3f} (MM-Dist {sy['MM_Dist']:.2f})")
        if j.get("generated_captions"):
            g = j["generated_captions"]
            line += (f"; m2t captions {g['R_precision_top1']:.3f} / {g['R_precision_top3']:.3f} "
                     f"(MM-Dist {g['MM_Dist']:.2f})")
        out.append(line)
    if c.get("nlg"):
        n = c["nlg"]
        out.append("(c) m2t captions vs references: " + ", ".join(
            f"{k} {100 * n[k]:.1f}" for k in ("bleu_1", "bleu_4", "rouge_l", "cider") if n.get(k) is not None))
    unk = [w for src, words in c.get("unk_words", {}).items() if src != "vocabulary_size" for w in words]
    if unk:
        out.append(f"(c) words of the captions outside the judge's vocabulary (read as unk): "
                   f"{', '.join(sorted(set(unk)))}")
    return out


def run(args) -> dict:
    from dataset.humanml3d import HumanML3DReader
    from models.evaluator_wrapper import EvaluatorWrapper
    from models.vqvae import load_vq_with_stats
    from utils.device import resolve_device, seed_everything
    from utils.io import atomic_write_json, atomic_write_text, check_writable
    from utils.word_vectorizer import WordVectorizer

    t0 = time.time()
    paths = check_inputs(args)
    out_dir = check_writable(Path(args.out), "--out")
    utils.threads.apply_threads(args.threads)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    spec = get_spec(args.dataname)
    progress = not args.no_progress
    steps = 4 + bool(args.t2m_ckpt) + bool(args.m2t_ckpt)
    bar = tqdm(total=steps, desc="real-motion report", disable=not progress)

    # inputs: the judge first (a broken evaluator stops the run before the slow parts), then the VQ-VAE
    try:
        wrapper = EvaluatorWrapper(args.evaluator_dir, device)
        wv = WordVectorizer(paths["glove"])
        vq_model, vq_mean, vq_std = load_vq_with_stats(paths["vq"], device)
    except (FileNotFoundError, ValueError) as exc:
        raise ReportError(str(exc)) from None
    real, skipped = load_clips(paths["real"], args.real_split, spec, progress)
    ids = [it["name"] for it in real]
    try:  # whole clips (as train_vq.Validator reads them) for (a) and (b); captioned whole clips for (c)
        syn_reader = HumanML3DReader(paths["data"], args.synthetic_split, spec.name, with_text=False,
                                     progress=progress)
        syn = [it for it in HumanML3DReader(paths["data"], args.synthetic_split, spec.name, progress=False).items
               if it["segment"] is None]
    except (FileNotFoundError, ValueError) as exc:
        raise ReportError(f"--data-root: {exc}") from None
    real_motions = [it["motion"] for it in real]
    syn_motions = [it["motion"] for it in syn_reader.items]
    syn_text_motions = [it["motion"] for it in syn]
    bar.update(1)

    # (a) reconstruction
    rec_real = reconstruction_errors(vq_model, vq_mean, vq_std, real_motions, spec, ids, device, progress)
    rec_syn = reconstruction_errors(vq_model, vq_mean, vq_std, syn_motions, spec, syn_reader.names, device, progress)
    import train_vq  # the same clips through the training script's own validation: the definitions agree
    val = train_vq.Validator(syn_reader, vq_mean, vq_std, spec, vq_model.unit_length, 32, device=device)(vq_model)
    val_real = train_vq.Validator(HumanML3DReader(paths["real"], dataname=spec.name, ids=ids, with_text=False,
                                                  progress=False), vq_mean, vq_std, spec, vq_model.unit_length, 32,
                                  device=device)(vq_model)
    norm_note = _normalisation_note(paths, vq_mean, vq_std)
    recon = {"definition": ("MPJPE as train_vq.py's validation (train_vq.Validator): each clip cropped to at most "
                            f"{MAX_FRAMES} frames and to a multiple of {vq_model.unit_length}, normalised with the "
                            f"VQ-VAE's statistics ({norm_note}), encoded and decoded, de-normalised; joints by "
                            "recover_from_ric; per frame the mean joint error; the mean over all frames of all clips. "
                            "Root-aligned: each frame's root joint subtracted first (the headline); global: the "
                            "root trajectory integrated from the decoded velocities, so drift accumulates."),
             "normalisation": norm_note,
             "real": {**{k: v for k, v in rec_real.items() if k != "reconstructions"},
                      "train_vq_validator": {k: float(v) for k, v in val_real.items()}},
             "synthetic": {**{k: v for k, v in rec_syn.items() if k not in ("reconstructions", "per_clip")},
                           "train_vq_validator": {k: float(v) for k, v in val.items()}}}
    bar.update(1)

    # (b) physics
    blocks = {f"real ({_real_name(paths['real'])})": physics_block(real_motions, spec),
              "real, VQ-VAE reconstruction": physics_block(rec_real["reconstructions"], spec),
              f"synthetic {args.synthetic_split} (ground truth)": physics_block(syn_motions, spec)}
    real_block = blocks[f"real ({_real_name(paths['real'])})"]
    phys = {"threshold": PHYS_THRESHOLD, "tolerance": real_block["tolerance"], "rows": {},
            "verdict": physics_verdict(real_block, ids)}
    bar.update(1)

    # generated motion from the real captions (greedy)
    gen_caps = None
    if args.t2m_ckpt:
        from eval_mllm import decode_motions
        mllm = load_mllm(args.t2m_ckpt, args, device, vq_model)
        gen = make_generator(mllm, args)
        pairs = [(i, c["caption"]) for i, it in enumerate(real) for c in it["captions"]]
        outs = generate_in_chunks(gen, "t2m", [c for _, c in pairs], progress, "t2m (greedy)")
        motions = decode_motions((vq_model, vq_mean, vq_std), outs, MAX_FRAMES)
        gblock = physics_block(motions, spec)
        ok = np.array([o.get("status", "ok") == "ok" for o in outs])
        blocks[f"generated from the real captions ({len(pairs)}, greedy)"] = gblock
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(gen.failure_kinds.items())) or "-"
        phys["generated_failures"] = (f"{gen.failures} of {gen.samples} generations failed ({kinds}); "
                                      "they are scored as eval_mllm.py scores them (their codes decoded, a 4-frame "
                                      "rest motion when there are none); "
                                      + (f"the {int(ok.sum())} well-formed ones alone: phys mean "
                                         f"{gblock['values'][ok].mean():.3f}, share < {PHYS_THRESHOLD} "
                                         f"{(gblock['values'][ok] < PHYS_THRESHOLD).mean():.3f}" if ok.any() else
                                         "none is well formed"))
        gen_caps = {"captions": [c for _, c in pairs], "clip": [i for i, _ in pairs], "motions": motions,
                    "status": [o.get("status", "ok") for o in outs], "frames": [len(m) for m in motions],
                    "failures": gen.failures, "failure_kinds": dict(gen.failure_kinds),
                    "seconds_per_sample": gen.seconds / max(gen.samples, 1)}
        del mllm, gen
        bar.update(1)
    for name, blk in blocks.items():
        phys["rows"][name] = physics_summary(blk)
    phys["per_clip_real"] = [
        {"id": ids[i], "phys": float(real_block["values"][i]),
         "terms": {t: float(real_block["terms"][t][i]) for t in real_block["terms"]},
         "quantities": {t: float(real_block["quantities"][t][i]) for t in real_block["quantities"]},
         **{k: float(v[i]) for k, v in real_block["details"].items()}} for i in range(len(ids))]

    # (c) captions and the judge
    emb = CaptionEmbedder(wrapper, wv)
    real_mot_emb = wrapper.embed_raw_motions(real_motions).cpu().numpy()
    syn_mot_emb = wrapper.embed_raw_motions(syn_text_motions).cpu().numpy()
    emb.note_unk("real captions as stored (texts/*.txt tokens)", [c["tokens"] for it in real for c in it["captions"]])
    real_lines = caption_lines(real)
    real_rank, per_line = set_ranking(real_mot_emb, lambda caps: emb(caps, "real captions as the judge reads them "
                                                                       "(utils.text_process)"), real_lines)
    judge = {"real_references": real_rank}
    # the same ranking on random synthetic subsets of the real set's size
    rng = np.random.default_rng(args.seed)
    n = len(real)
    if args.synthetic_subsets > 0 and len(syn) >= n:
        draws = []
        syn_lines_all = caption_lines(syn)
        for _ in range(args.synthetic_subsets):
            idx = np.sort(rng.choice(len(syn), n, replace=False))
            r, _ = set_ranking(syn_mot_emb[idx], emb, [[line[i] for i in idx] for line in syn_lines_all])
            draws.append(r)
        judge["synthetic_subsets"] = {
            **{k: float(np.mean([d[k] for d in draws])) for k in ("R_precision_top1", "R_precision_top3", "mean_rank",
                                                                   "MM_Dist", "chance_top1", "chance_top3")},
            "candidates_mean": float(np.mean([np.mean(d["candidates_per_line"]) for d in draws])),
            "subset_size": n, "subsets": args.synthetic_subsets, "R_precision_top1_sd": float(np.std(
                [d["R_precision_top1"] for d in draws]))}
    ranks0, n0, d0 = per_line[0]
    per_clip = [{"id": ids[i], "reference": real_lines[0][i], "references": [c["caption"] for c in real[i]["captions"]],
                 "ref_dist": float(d0[i]), "ref_rank": int(ranks0[i]), "candidates": int(n0)} for i in range(n)]
    captions = {"judge": judge, "per_clip": per_clip}
    if gen_caps is not None:  # the judge on the generated motions: its distance to the prompting caption
        gm = wrapper.embed_raw_motions(gen_caps["motions"]).cpu().numpy()
        tc = emb(gen_caps["captions"])
        d_gen = np.linalg.norm(gm - tc, axis=1)
        d_real = np.linalg.norm(real_mot_emb[gen_caps["clip"]] - tc, axis=1)
        judge["t2m_generated_motion"] = {"MM_Dist_generated": float(d_gen.mean()), "MM_Dist_real_same_captions":
                                         float(d_real.mean()), "n": len(d_gen)}
    if args.m2t_ckpt:
        from models.vqvae import encode_motions
        from utils.m2t_metrics import compute_m2t_metrics
        mllm = load_mllm(args.m2t_ckpt, args, device, vq_model)
        gen = make_generator(mllm, args)
        codes = encode_motions(vq_model, [m[:MAX_FRAMES] for m in real_motions], vq_mean, vq_std, device=device)
        outs = generate_in_chunks(gen, "m2t", codes, progress, "m2t (greedy)")
        cands = [o["answer"] for o in outs]
        refs_tok = [[c["tokens"] for c in it["captions"]] for it in real]
        nlg = compute_m2t_metrics(cands, refs_tok, convention="tm2t", compute_bertscore=args.bertscore,
                                  device=str(device))
        ge = emb(cands, "generated captions (m2t)")
        gd = np.linalg.norm(real_mot_emb - ge, axis=1)
        from utils.metrics import euclidean_distance_matrix
        D = euclidean_distance_matrix(real_mot_emb, emb(real_lines[0]))
        granks, gn = within_set_ranks(D, real_lines[0], target=gd)
        judge["generated_captions"] = {**rank_summary(granks, gn), "MM_Dist": float(gd.mean())}
        for i, p in enumerate(per_clip):
            p.update(generated=cands[i], status=outs[i].get("status", "ok"), gen_dist=float(gd[i]),
                     gen_rank=int(granks[i]))
        captions.update(nlg={k: v for k, v in nlg.items() if not isinstance(v, (list, dict)) or k == "convention"},
                        m2t_failures=f"{gen.failures} of {gen.samples}" + (
                            f" ({', '.join(f'{k}: {v}' for k, v in sorted(gen.failure_kinds.items()))})"
                            if gen.failure_kinds else ""),
                        m2t_seconds_per_sample=gen.seconds / max(gen.samples, 1))
        del mllm, gen
        bar.update(1)
    unk = {src: dict(sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))) for src, words in emb.unk.items()}
    unk["vocabulary_size"] = len(wv)
    captions["unk_words"] = unk
    bar.update(1)
    bar.close()

    ev = wrapper.fingerprint
    command = "python eval_real_motion.py " + " ".join(shlex.quote(a) for a in getattr(args, "argv", []))
    rep = {"meta": {"command": command, "real_dir": str(paths["real"]), "real_name": _real_name(paths["real"]),
                    "real_split": args.real_split,
                    "data_root": str(paths["data"]), "synthetic_split": args.synthetic_split,
                    "vq_ckpt": str(paths["vq"]), "m2t_ckpt": args.m2t_ckpt, "t2m_ckpt": args.t2m_ckpt,
                    "evaluator": {"given": str(args.evaluator_dir), **ev}, "glove": str(paths["glove"]),
                    "device": str(device), "max_new_tokens": args.max_new_tokens, "decoding": "greedy",
                    "seed": args.seed, "wall_seconds": round(time.time() - t0, 1)},
           "clips": {"used": ids, "used_count": len(ids), "skipped": skipped, "min_frames": spec.min_motion_len,
                     "max_frames_exclusive": 200, "synthetic_clips": len(syn_motions),
                     "synthetic_captioned_clips": len(syn)},
           "reconstruction": recon, "physics": phys, "captions": captions}
    if gen_caps is not None:
        rep["generated"] = {k: v for k, v in gen_caps.items() if k != "motions"}
    atomic_write_json(out_dir / "report.json", rep)
    atomic_write_text(out_dir / "report.md", markdown(rep))
    return rep


def _real_name(path) -> str:
    return Path(path).resolve().name


def _normalisation_note(paths, mean, std) -> str:
    """Whether the VQ-VAE's statistics are the training dataset's Mean/Std (std up to train_vq's --feat-bias)."""
    try:
        from dataset.humanml3d import load_mean_std
        dm, ds = load_mean_std(paths["data"], dim=len(mean))
    except (FileNotFoundError, ValueError):
        return f"{paths['meta']}/mean.npy, std.npy"
    same_mean = bool(np.allclose(dm, mean, atol=1e-6))
    same_std = bool(np.allclose(ds, std, atol=1e-6))
    where = f"{paths['meta']}/mean.npy, std.npy"
    if same_mean and same_std:
        return f"{where} = --data-root Mean.npy/Std.npy"
    if same_mean:
        import json
        try:
            fb = float(json.loads((Path(paths["meta"]).parent / "config.json").read_text())["args"]["feat_bias"])
        except (OSError, ValueError, KeyError, TypeError):
            fb = None
        from utils.motion_process import apply_feat_bias
        if fb is not None and np.allclose(apply_feat_bias(ds, fb), std, atol=1e-6):
            return (f"{where} = --data-root Mean.npy, and Std.npy with train_vq.py's --feat-bias {fb:g} (root and "
                    f"foot-contact dimensions divided by {fb:g})")
        return f"{where} = --data-root Mean.npy; the std differs from --data-root Std.npy"
    return f"{where} (not --data-root's Mean.npy)"


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv
    rep = run(args)
    for line in headline(rep):
        print(line)
    print(f"report: {Path(args.out) / 'report.md'} ({rep['meta']['wall_seconds']:.1f} s)")
    return rep


if __name__ == "__main__":
    main()
