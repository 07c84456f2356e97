#!/usr/bin/env python
"""Validate a HumanML3D / KIT-ML dataset folder and report every problem with its file and line.

    python prepare/check_dataset.py data/HumanML3D                 # t2m: 263-d features, 22 joints
    python prepare/check_dataset.py data/KIT-ML --dataname kit     # kit: 251-d features, 21 joints
    python prepare/check_dataset.py DIR --max-report 0 --strict    # list everything; warnings fail too

Checks (the layout dataset/humanml3d.py reads)::

    train/val/test.txt     present; every id has new_joint_vecs/<id>.npy; no id twice in a file;
    (train_val/all.txt)    no id in two of train/val/test; files in new_joint_vecs listed nowhere (warning)
    new_joint_vecs/*.npy   readable, 2-D float, width 263 (t2m) / 251 (kit), no NaN/Inf, at least 2 frames;
                           T < 40 (24 for kit) frames: the loaders drop it (warning);
                           T >= 200: the loaders drop it as too long (warning);
                           196 < T < 200: kept, evaluation crops it to 196 frames (counted in the summary)
    new_joints/*.npy       one per feature file, shape (T, 22|21, 3) with the same T as the features
                           (they are recover_from_ric of them), finite; a missing folder is a warning
    Mean.npy / Std.npy     present, shape (263,) / (251,), finite, Std > 0
    texts/<id>.txt         present for every clip, UTF-8, not empty; every line caption#tokens#start#end
                           with tokens word/POS, start/end numbers (nan counts as 0, as in the loader),
                           end >= start unless both are 0; a segment past the clip's end and a clip
                           without a whole-clip (0#0) caption are warnings

Problems are printed as ``ERROR <file>:<line>: message`` (the line where it applies). Exit status 0
when no error was found (warnings alone do not fail unless --strict), 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402
from dataset.humanml3d import MAX_TEXT_TIME_S  # noqa: E402
from utils.paramUtil import SPECS, get_spec  # noqa: E402

REQUIRED_SPLITS = ("train", "val", "test")
OPTIONAL_SPLITS = ("train_val", "all")
LOADER_MAX_LEN = 200       # HumanML3DReader drops clips with T >= 200 (max_len is exclusive)
EVAL_MAX_LEN = 196         # the evaluation datasets crop to at most 196 frames
TEXT_FPS = 20.0            # seconds -> frames of the text tags (20 for both datasets in the loaders)
_POS_RE = re.compile(r"^[A-Za-z_]+$")


@dataclass
class Problem:
    path: str
    line: Optional[int]
    message: str
    kind: str
    severity: str = "error"  # or "warning"

    def __str__(self):
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{self.severity.upper()} {where}: {self.message}"


class Checker:
    def __init__(self, root, dataname: str = "t2m", progress: bool = False):
        self.root = Path(root)
        self.spec = get_spec(dataname)
        self.dim = self.spec.feature_dim
        self.progress = progress
        self.problems: list[Problem] = []
        self.stats: Counter = Counter()
        self.lengths: dict[str, int] = {}

    # -------------------------------------------------------------- helpers
    def add(self, path, line, message, kind, severity="error"):
        self.problems.append(Problem(str(path), line, message, kind, severity))

    def warn(self, path, line, message, kind):
        self.add(path, line, message, kind, "warning")

    @property
    def errors(self):
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self):
        return [p for p in self.problems if p.severity == "warning"]

    def _read_lines(self, path: Path):
        """Lines of a text file (with 1-based numbers); a decoding error is reported at its line."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.add(path, None, f"cannot read: {exc.strerror or exc}", "unreadable")
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            lineno = data.count(b"\n", 0, exc.start) + 1
            self.add(path, lineno, f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", "encoding")
            text = data.decode("utf-8", errors="replace")
        return list(enumerate(text.splitlines(), start=1))

    # -------------------------------------------------------------- run
    def run(self):
        if not self.root.is_dir():
            self.add(self.root, None, "dataset folder not found", "missing_folder")
            return self
        vec_dir, txt_dir = self.root / "new_joint_vecs", self.root / "texts"
        vec_ids = self._ids_in(vec_dir, "new_joint_vecs")
        self.check_splits(vec_ids)
        self.check_vectors(vec_dir, vec_ids)
        self.check_joints(vec_ids)
        self.check_mean_std()
        self.check_texts(txt_dir, vec_ids)  # a listed id without motion is reported once, above
        return self

    def _ids_in(self, folder: Path, label: str) -> list:
        if not folder.is_dir():
            self.add(folder, None, f"{label}/ folder not found", "missing_folder")
            return []
        ids = sorted(p.stem for p in folder.glob("*.npy"))
        if not ids:
            self.add(folder, None, "no .npy files", "empty_folder")
        return ids

    # -------------------------------------------------------------- splits
    def check_splits(self, vec_ids):
        present = set(vec_ids)
        where: dict[str, dict[str, int]] = {}
        for split in REQUIRED_SPLITS + OPTIONAL_SPLITS:
            path = self.root / f"{split}.txt"
            if not path.is_file():
                if split in REQUIRED_SPLITS:
                    self.add(path, None, "split file missing", "missing_split")
                continue
            lines = self._read_lines(path)
            if lines is None:
                continue
            first: dict[str, int] = {}
            for lineno, raw in lines:
                cid = raw.strip()
                if not cid:
                    continue
                if any(c.isspace() for c in cid):
                    self.add(path, lineno, f"id {cid!r} contains whitespace", "bad_id")
                    continue
                if cid in first:
                    self.add(path, lineno, f"duplicate id {cid} (first on line {first[cid]})", "duplicate_id")
                    continue
                first[cid] = lineno
                if cid not in present:
                    self.add(path, lineno, f"id {cid}: new_joint_vecs/{cid}.npy is missing", "missing_motion")
            if not first:
                self.add(path, None, "split file lists no ids", "empty_split")
            where[split] = first
            self.stats[f"split_{split}"] = len(first)
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            if a in where and b in where:
                for cid, lineno in where[b].items():
                    if cid in where[a]:
                        self.add(self.root / f"{b}.txt", lineno,
                                 f"id {cid} is also in {a}.txt (line {where[a][cid]})", "split_overlap")
        listed = set().union(*where.values()) if where else set()
        for cid in vec_ids:
            if cid not in listed and where:
                self.warn(self.root / "new_joint_vecs" / f"{cid}.npy", None,
                          "not listed in any split file (unused)", "unlisted_motion")

    # -------------------------------------------------------------- features
    def check_vectors(self, vec_dir: Path, vec_ids):
        other = {s.feature_dim: s.name for s in SPECS.values() if s.name != self.spec.name}
        for cid in tqdm(vec_ids, desc="new_joint_vecs", disable=not self.progress, leave=False):
            path = vec_dir / f"{cid}.npy"
            try:
                arr = np.load(path, allow_pickle=False)
            except Exception as exc:  # noqa: BLE001 - reported with the file name
                self.add(path, None, f"cannot read: {type(exc).__name__}: {exc}", "unreadable")
                continue
            if arr.ndim != 2 or arr.shape[1] != self.dim:
                hint = ""
                if arr.ndim == 2 and arr.shape[1] in other:
                    hint = f" (that is the {other[arr.shape[1]]} width: pass --dataname {other[arr.shape[1]]}?)"
                self.add(path, None, f"shape {arr.shape}, expected (T, {self.dim}) for {self.spec.name}{hint}",
                         "bad_width")
                continue
            if not np.issubdtype(arr.dtype, np.floating):
                self.add(path, None, f"dtype {arr.dtype}, expected a float array", "bad_dtype")
                continue
            T = arr.shape[0]
            self.lengths[cid] = T
            self.stats["clips"] += 1
            self.stats["frames"] += T
            bad = ~np.isfinite(arr)
            if bad.any():
                f, d = np.argwhere(bad)[0]
                self.add(path, None, f"{int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} Inf value(s) "
                                     f"(first at frame {f}, dim {d})", "nan")
            if T < 2:
                self.add(path, None, f"{T} frame(s): not a motion", "empty_motion")
            elif T < self.spec.min_motion_len:
                self.warn(path, None, f"{T} frames < {self.spec.min_motion_len}: the loaders drop it (too short)",
                          "too_short")
            elif T >= LOADER_MAX_LEN:
                self.warn(path, None, f"{T} frames >= {LOADER_MAX_LEN}: the loaders drop it (too long)", "too_long")
            elif T > EVAL_MAX_LEN:
                self.stats["cropped_to_196"] += 1

    def check_joints(self, vec_ids):
        jdir = self.root / "new_joints"
        if not jdir.is_dir():
            self.warn(jdir, None, "new_joints/ folder not found (only plotting and rendering read it)", "no_joints")
            return
        J = self.spec.joints_num
        for cid in tqdm(vec_ids, desc="new_joints", disable=not self.progress, leave=False):
            path = jdir / f"{cid}.npy"
            if not path.is_file():
                self.add(path, None, f"missing (new_joint_vecs/{cid}.npy exists)", "missing_joints")
                continue
            try:
                arr = np.load(path, allow_pickle=False)
            except Exception as exc:  # noqa: BLE001
                self.add(path, None, f"cannot read: {type(exc).__name__}: {exc}", "unreadable")
                continue
            T = self.lengths.get(cid)
            if arr.ndim != 3 or arr.shape[1:] != (J, 3):
                self.add(path, None, f"shape {arr.shape}, expected (T, {J}, 3)", "bad_joints_shape")
            elif T is not None and arr.shape[0] != T:
                self.add(path, None, f"{arr.shape[0]} frames but new_joint_vecs/{cid}.npy has {T} "
                                     "(new_joints is recover_from_ric of the features: same T)", "joints_length")
            elif np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                self.add(path, None, "contains NaN/Inf", "nan")
        known = set(vec_ids)
        for p in sorted(jdir.glob("*.npy")):
            if p.stem not in known:
                self.warn(p, None, f"no new_joint_vecs/{p.stem}.npy for it", "orphan_joints")

    # -------------------------------------------------------------- statistics
    def check_mean_std(self):
        for name in ("Mean.npy", "Std.npy"):
            path = self.root / name
            if not path.is_file():
                hint = " (prepare/compute_mean_std.py --data-root DIR writes it)"
                self.add(path, None, "missing" + hint, "missing_stats")
                continue
            try:
                arr = np.load(path, allow_pickle=False)
            except Exception as exc:  # noqa: BLE001
                self.add(path, None, f"cannot read: {type(exc).__name__}: {exc}", "unreadable")
                continue
            if arr.shape != (self.dim,):
                self.add(path, None, f"shape {arr.shape}, expected ({self.dim},)", "bad_stats_shape")
                continue
            if not np.isfinite(arr).all():
                self.add(path, None, f"{int((~np.isfinite(arr)).sum())} NaN/Inf value(s) at dims "
                                     f"{_dims(np.flatnonzero(~np.isfinite(arr)))}", "nan")
            if name == "Std.npy":
                bad = np.flatnonzero(np.isfinite(arr) & (arr <= 0))
                if bad.size:
                    self.add(path, None, f"{bad.size} zero or negative value(s) at dims {_dims(bad)} "
                                         "(the features are divided by Std)", "std_zero")

    # -------------------------------------------------------------- texts
    def check_texts(self, txt_dir: Path, ids):
        if not txt_dir.is_dir():
            self.add(txt_dir, None, "texts/ folder not found", "missing_folder")
            return
        for cid in tqdm(ids, desc="texts", disable=not self.progress, leave=False):
            path = txt_dir / f"{cid}.txt"
            if not path.is_file():
                self.add(path, None, "texts file missing", "missing_text")
                continue
            lines = self._read_lines(path)
            if lines is None:
                continue
            content = [(n, ln) for n, ln in lines if ln.strip()]
            if not content:
                self.add(path, None, "empty texts file (no caption lines)", "empty_text")
                continue
            whole = False
            for lineno, line in content:
                ok, is_whole = self._check_line(path, lineno, line, self.lengths.get(cid))
                whole |= ok and is_whole
                self.stats["captions"] += ok
            if not whole:
                self.warn(path, None, "no whole-clip caption (start = end = 0): the loaders keep only its "
                                      "segments", "no_whole_caption")
        known = set(ids)
        for p in sorted(txt_dir.glob("*.txt")):
            if p.stem not in known:
                self.warn(p, None, f"no new_joint_vecs/{p.stem}.npy for it", "orphan_text")

    def _check_line(self, path, lineno, line, T):
        """One texts line; returns (valid, whole-clip caption)."""
        fields = line.split("#")
        if len(fields) != 4:
            self.add(path, lineno, f"expected 4 '#'-separated fields caption#tokens#start#end, got {len(fields)}: "
                                   f"{_clip(line)!r}", "bad_text")
            return False, False
        caption, tokens, start, end = fields
        ok = True
        if not caption.strip():
            self.add(path, lineno, "empty caption", "bad_text")
            ok = False
        toks = tokens.split()
        if not toks:
            self.add(path, lineno, "no word/POS tokens", "bad_tokens")
            ok = False
        for tok in toks:
            word, sep, pos = tok.rpartition("/")
            if not sep or not word or not _POS_RE.match(pos):
                self.add(path, lineno, f"token {tok!r} is not word/POS", "bad_tokens")
                ok = False
                break
        times = []
        for label, value in (("start", start), ("end", end)):
            try:
                t = float(value.strip())
            except ValueError:
                self.add(path, lineno, f"{label} time {value.strip()!r} is not a number", "bad_time")
                return False, False
            if math.isnan(t):
                t = 0.0  # as the loaders do
            if math.isinf(t) or t < 0 or t > MAX_TEXT_TIME_S:
                self.add(path, lineno, f"{label} time {value.strip()!r} is not a finite non-negative number "
                                       f"(at most {MAX_TEXT_TIME_S:g} s)", "bad_time")
                return False, False
            times.append(t)
        s, e = times
        if s == 0.0 and e == 0.0:
            return ok, True
        if e < s:
            self.add(path, lineno, f"end {e:g} s < start {s:g} s", "bad_time")
            return False, False
        if e == s:
            self.warn(path, lineno, f"empty segment ({s:g} s to {e:g} s): the loaders drop it", "empty_segment")
        elif T is not None and int(e * TEXT_FPS) > T + 1:
            self.warn(path, lineno, f"segment ends at {e:g} s = frame {int(e * TEXT_FPS)}, past the clip's {T} "
                                    "frames", "segment_past_end")
        return ok, False

    # -------------------------------------------------------------- report
    def report(self, max_report: int = 50, out=None):
        out = out or sys.stdout
        shown = self.errors + self.warnings
        limit = len(shown) if max_report is None or max_report <= 0 else max_report
        for p in shown[:limit]:
            print(p, file=out)
        if len(shown) > limit:
            print(f"... {len(shown) - limit} more not shown (--max-report 0 lists all)", file=out)
        st = self.stats
        lengths = list(self.lengths.values())
        splits = ", ".join(f"{s} {st[f'split_{s}']}" for s in REQUIRED_SPLITS + OPTIONAL_SPLITS if f"split_{s}" in st)
        print(f"\n{self.root} ({self.spec.name}, {self.dim}-d): {st['clips']} clips, {st['frames']} frames"
              + (f" ({st['frames'] / self.spec.fps / 3600:.2f} h at {self.spec.fps:g} fps)" if st["frames"] else "")
              + (f", lengths {min(lengths)}..{max(lengths)}" if lengths else "")
              + f", {st['captions']} caption lines; splits: {splits or 'none'}", file=out)
        if st["cropped_to_196"]:
            print(f"  {st['cropped_to_196']} clip(s) of 197..199 frames: kept, evaluation crops them to "
                  f"{EVAL_MAX_LEN}", file=out)
        for label, items in (("errors", self.errors), ("warnings", self.warnings)):
            kinds = Counter(p.kind for p in items)
            detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            print(f"  {len(items)} {label}" + (f" ({detail})" if detail else ""), file=out)
        print("OK" if not self.errors else "PROBLEMS FOUND", file=out)


def _dims(idx, n=8):
    idx = [int(i) for i in idx]
    return ", ".join(map(str, idx[:n])) + (", ..." if len(idx) > n else "")


def _clip(s, n=80):
    return s if len(s) <= n else s[:n] + "..."


def check_dataset(root, dataname: str = "t2m", progress: bool = False) -> Checker:
    """Run every check; the :class:`Checker` holds ``problems`` (``errors`` / ``warnings``) and ``stats``."""
    return Checker(root, dataname, progress).run()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python prepare/check_dataset.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="dataset folder (new_joint_vecs/, texts/, split files, Mean/Std)")
    ap.add_argument("--dataname", default="t2m", choices=["t2m", "kit"],
                    help="t2m (HumanML3D, 263-d) or kit (KIT-ML, 251-d)")
    ap.add_argument("--max-report", type=int, default=50, help="problems printed (0: all; the summary counts all)")
    ap.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    checker = check_dataset(args.root, args.dataname, progress=not args.no_progress)
    checker.report(args.max_report)
    return 1 if checker.errors or (args.strict and checker.warnings) else 0


if __name__ == "__main__":
    sys.exit(main())
