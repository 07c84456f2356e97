"""Reader for the HumanML3D / KIT-ML folder layout (docs/data-format.md §2, §6).

Layout::

    <root>/new_joint_vecs/<id>.npy   float32 (T, 263) [t2m] or (T, 251) [kit]
    <root>/texts/<id>.txt            caption#word/POS word/POS ...#start#end   (one per line)
    <root>/{train,val,test,train_val,all}.txt   id lists (mirrored ids 'M<id>' are ordinary ids)
    <root>/Mean.npy, <root>/Std.npy

Items (one per whole clip with at least one whole-clip caption, plus one per sub-segment
caption)::

    dict(name, clip_id, motion (T, D) float32, length, captions=[dict(caption, tokens)],
         segment=(first_frame, end_frame) or None)

Error policy: nothing is skipped silently. ``on_error='raise'`` (default) raises on the first bad
clip with a message naming the file (and the line for text files); ``on_error='skip'`` skips the
clip, counts it in ``reader.stats`` and logs a one-line summary. Length filtering
(``too_short``/``too_long`` and the ``segment_*`` counterparts) is normal filtering, not an error:
it is counted in both modes.
"""
from __future__ import annotations

import io
import logging
import math
import os
import string
from collections import Counter
from typing import Iterable, Optional, Sequence, Union

import numpy as np
from tqdm import tqdm

from utils.paramUtil import get_spec

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# Reasons that are errors (raised in 'raise' mode, counted and skipped in 'skip' mode).
ERROR_REASONS = ("missing_motion", "bad_motion", "bad_width", "nan", "missing_text", "bad_text",
                 "no_caption")
# Reasons that are ordinary filtering (counted in both modes).
FILTER_REASONS = ("too_short", "too_long", "segment_too_short", "segment_too_long", "no_whole_caption",
                  "duplicate_id")

SEGMENT_PREFIXES = string.ascii_uppercase


class DatasetError(ValueError):
    """A bad input file in a HumanML3D-style folder; ``reason`` is a key of ``reader.stats``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# ----------------------------------------------------------------------------- small helpers
def mirror_id(name: str) -> str:
    """HumanML3D mirror id: ``'000123' <-> 'M000123'``."""
    if not name:
        raise ValueError("empty clip id")
    return name[1:] if name.startswith("M") else "M" + name


def is_mirrored(name: str) -> bool:
    return name.startswith("M")


def read_split(root: PathLike, split: str) -> list[str]:
    """Ids of ``<root>/<split>.txt`` (blank lines ignored, order kept)."""
    path = os.path.join(os.fspath(root), f"{split}.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split file not found: {path}")
    with open(path, "r", encoding="utf-8") as f:
        ids = [line.strip() for line in f]
    ids = [i for i in ids if i]
    if not ids:
        raise ValueError(f"split file {path} is empty")
    return ids


def load_mean_std(path_or_dir, dim: Optional[int] = None):
    """Load ``(mean, std)`` as float32 arrays.

    ``path_or_dir`` is a folder holding ``Mean.npy``/``Std.npy`` (dataset statistics) or
    ``mean.npy``/``std.npy`` (checkpoint ``meta/``, evaluator statistics), or a pair
    ``(mean_path, std_path)``. Checks: files exist, 1-D, equal length (``dim`` if given), finite,
    std > 0.
    """
    if isinstance(path_or_dir, (tuple, list)):
        if len(path_or_dir) != 2:
            raise ValueError("load_mean_std expects a folder or a (mean_path, std_path) pair")
        mean_path, std_path = (os.fspath(p) for p in path_or_dir)
    else:
        folder = os.fspath(path_or_dir)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"mean/std folder not found: {folder}")
        for mname, sname in (("Mean.npy", "Std.npy"), ("mean.npy", "std.npy")):
            mean_path, std_path = os.path.join(folder, mname), os.path.join(folder, sname)
            if os.path.isfile(mean_path) and os.path.isfile(std_path):
                break
        else:
            raise FileNotFoundError(f"no Mean.npy/Std.npy (or mean.npy/std.npy) in {folder}")
    arrays = []
    for path in (mean_path, std_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"statistics file not found: {path}")
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file name
            raise ValueError(f"cannot read statistics file {path}: {exc}") from exc
        if arr.ndim != 1:
            raise ValueError(f"{path}: expected a 1-D vector, got shape {arr.shape}")
        if dim is not None and arr.shape[0] != dim:
            raise ValueError(f"{path}: expected {dim} values, got {arr.shape[0]}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: contains NaN or Inf")
        arrays.append(arr.astype(np.float32))
    mean, std = arrays
    if mean.shape != std.shape:
        raise ValueError(f"{mean_path} and {std_path} differ in length ({mean.shape[0]} vs {std.shape[0]})")
    if (std <= 0).any():
        raise ValueError(f"{std_path}: std must be > 0 (found {int((std <= 0).sum())} non-positive values)")
    return mean, std


def captioned_reader(source, split: str = "test", dataname: str = "t2m", **reader_kwargs) -> "HumanML3DReader":
    """``source`` if it is a reader, else a :class:`HumanML3DReader` of that folder; every item must have
    captions (the evaluation datasets pair motion with text)."""
    reader = source if isinstance(source, HumanML3DReader) else HumanML3DReader(
        source, split=split, dataname=dataname, **reader_kwargs)
    if not all(it["captions"] for it in reader.items):
        raise ValueError("the reader must be built with with_text=True")
    return reader


def check_mean_std(mean, std, dim: int):
    """Validate in-memory mean/std against a feature width and return float32 copies."""
    if mean is None or std is None:
        raise ValueError("mean and std are required (use load_mean_std on the right meta folder; "
                         "the evaluator needs its own meta statistics, see docs/data-format.md §7.3)")
    mean = np.asarray(mean, dtype=np.float32).reshape(-1)
    std = np.asarray(std, dtype=np.float32).reshape(-1)
    if mean.shape[0] != dim or std.shape[0] != dim:
        raise ValueError(f"mean/std have {mean.shape[0]}/{std.shape[0]} values, features have {dim}")
    if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
        raise ValueError("mean/std must be finite and std > 0")
    return mean, std


# Latest start/end time accepted in a texts line (seconds, ~11.6 days): later ones are corrupt lines, and
# huge ones (1e308) overflow the frame index (time * fps).
MAX_TEXT_TIME_S = 1e6


def _parse_tag(value: str) -> float:
    t = float(value)  # raises ValueError on junk
    if math.isnan(t):
        return 0.0
    if math.isinf(t) or t < 0:
        raise ValueError(f"time {value!r} is not a finite non-negative number")
    if t > MAX_TEXT_TIME_S:
        raise ValueError(f"time {value!r} is out of range (more than {MAX_TEXT_TIME_S:,.0f} s)")
    return t


def parse_text_line(line: str, path: str = "<text>", lineno: int = 0):
    """``caption#tokens#start#end`` -> ``(caption, tokens, start_s, end_s)``; NaN times count as 0."""
    fields = line.rstrip("\r\n").split("#")
    if len(fields) != 4:
        raise DatasetError("bad_text", f"{path}, line {lineno}: expected 4 '#'-separated fields "
                                       f"(caption#tokens#start#end), got {len(fields)}: {line.strip()!r}")
    caption, tok_field, start, end = fields
    try:
        start_s, end_s = _parse_tag(start.strip()), _parse_tag(end.strip())
    except ValueError as exc:
        raise DatasetError("bad_text", f"{path}, line {lineno}: bad start/end time "
                                       f"({start.strip()!r}, {end.strip()!r}): {exc}") from None
    if not caption.strip():
        raise DatasetError("bad_text", f"{path}, line {lineno}: empty caption (expected caption#tokens#start#end): "
                                       f"{line.strip()!r}")
    tokens = [t for t in tok_field.strip().split(" ") if t]
    return caption.strip(), tokens, start_s, end_s


def read_text_file(path: str):
    """All caption lines of one texts file (blank lines ignored)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DatasetError("bad_text", f"cannot read texts file {path}: {exc}") from None
    try:
        lines = io.StringIO(data.decode("utf-8"), newline=None).readlines()  # as text-mode open() splits
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError("bad_text", f"{path}, line {lineno}: not valid UTF-8 "
                                       f"(byte 0x{data[exc.start]:02x})") from None
    out = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        out.append(parse_text_line(line, path, lineno))
    if not out:
        raise DatasetError("no_caption", f"{path}: no caption lines")
    return out


# ----------------------------------------------------------------------------- reader
class HumanML3DReader:
    """Load one split of a HumanML3D/KIT-ML folder into memory (items described in the module doc).

    Args:
        root: dataset folder.
        split: id list name (``<root>/<split>.txt``); ignored when ``ids`` is given.
        dataname: ``'t2m'`` (263-d) or ``'kit'`` (251-d).
        min_len: minimum frames (inclusive); default from the spec (40 t2m, 24 kit).
        max_len: maximum frames (exclusive), 200 by default; ``None`` = no upper bound.
        fps: seconds -> frames factor for sub-segment times (20 for both datasets in the original).
        ids: explicit id list instead of the split file.
        with_text: ``False`` reads motions only (one item per clip, no captions, no segments),
            as the VQ-VAE training set does.
        on_error: ``'raise'`` or ``'skip'``.
        seed: seed of the random letters of sub-segment names.
        progress: show a tqdm bar.
    """

    def __init__(self, root: PathLike, split: str = "train", dataname: str = "t2m",
                 min_len: Optional[int] = None, max_len: Optional[int] = 200, fps: float = 20.0,
                 ids: Optional[Sequence[str]] = None, with_text: bool = True, on_error: str = "raise",
                 seed: int = 0, progress: bool = True):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"dataset folder not found: {self.root}")
        self.spec = get_spec(dataname)
        self.dataname = self.spec.name
        self.dim = self.spec.feature_dim
        self.split = split if ids is None else None
        self.min_len = self.spec.min_motion_len if min_len is None else int(min_len)
        self.max_len = None if max_len is None else int(max_len)
        self.fps = float(fps)
        self.with_text = with_text
        self.on_error = on_error
        self.motion_dir = os.path.join(self.root, "new_joint_vecs")
        self.text_dir = os.path.join(self.root, "texts")
        self.stats: Counter = Counter()
        self.items: list[dict] = []
        self._rng = np.random.default_rng(seed)

        if ids is None:
            ids = read_split(self.root, split)
            source = os.path.join(self.root, f"{split}.txt")
        else:
            ids = [str(i).strip() for i in ids if str(i).strip()]
            if not ids:
                raise ValueError("empty id list")
            source = "ids argument"
        self.ids = ids
        self._load(ids, progress)
        self._log_summary()
        if not self.items:
            raise ValueError(f"no items left from {source} in {self.root} after filtering "
                             f"({self.summary()})")

    # -- public
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict:
        return self.items[idx]

    def __iter__(self):
        return iter(self.items)

    @property
    def names(self) -> list[str]:
        return [it["name"] for it in self.items]

    def summary(self) -> str:
        parts = [f"{len(self.items)} items from {len(self.ids)} ids"]
        parts += [f"{k}={v}" for k, v in sorted(self.stats.items()) if v]
        return ", ".join(parts)

    # -- loading
    def _load(self, ids: Iterable[str], progress: bool):
        seen: set = set()
        taken: set = set()
        desc = f"{self.dataname}/{self.split or 'ids'}"
        for name in tqdm(ids, desc=desc, disable=not progress, leave=False):
            if name in seen:
                self.stats["duplicate_id"] += 1
                continue
            seen.add(name)
            try:
                items = self._load_clip(name, taken)
            except DatasetError as err:
                if self.on_error == "raise":
                    raise
                self.stats[err.reason] += 1
                logger.debug("skipped %s: %s", name, err)
                continue
            for it in items:
                taken.add(it["name"])
            self.items.extend(items)

    def _load_clip(self, name: str, taken: set) -> list[dict]:
        motion_path = os.path.join(self.motion_dir, f"{name}.npy")
        if not os.path.isfile(motion_path):
            raise DatasetError("missing_motion", f"motion file not found: {motion_path}")
        try:
            motion = np.load(motion_path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file name
            raise DatasetError("bad_motion", f"cannot read motion file {motion_path}: {exc}") from None
        if motion.ndim != 2 or motion.shape[1] != self.dim:
            raise DatasetError("bad_width", f"{motion_path}: expected shape (T, {self.dim}) for "
                                            f"{self.dataname}, got {motion.shape}")
        T = motion.shape[0]
        # Length filtering comes before the NaN and text checks, as in the original loader.
        if T < self.min_len:
            self.stats["too_short"] += 1
            return []
        if self.max_len is not None and T >= self.max_len:
            self.stats["too_long"] += 1
            return []
        if not np.isfinite(motion).all():
            raise DatasetError("nan", f"{motion_path}: contains NaN or Inf values")
        motion = motion.astype(np.float32, copy=False)
        if not self.with_text:
            return [dict(name=name, clip_id=name, motion=motion, length=T, captions=[], segment=None)]

        text_path = os.path.join(self.text_dir, f"{name}.txt")
        if not os.path.isfile(text_path):
            raise DatasetError("missing_text", f"texts file not found: {text_path}")
        lines = read_text_file(text_path)

        whole, segments = [], []
        for caption, tokens, start_s, end_s in lines:
            cap = dict(caption=caption, tokens=tokens)
            if start_s == 0.0 and end_s == 0.0:
                whole.append(cap)
                continue
            a, b = int(start_s * self.fps), int(end_s * self.fps)
            seg = motion[a:b]
            n = seg.shape[0]
            if n < self.min_len:
                self.stats["segment_too_short"] += 1
                continue
            if self.max_len is not None and n >= self.max_len:
                self.stats["segment_too_long"] += 1
                continue
            segments.append(dict(name=self._segment_name(name, taken), clip_id=name, motion=seg,
                                 length=n, captions=[cap], segment=(a, a + n)))
            taken.add(segments[-1]["name"])
        items = []
        if whole:
            items.append(dict(name=name, clip_id=name, motion=motion, length=T, captions=whole,
                              segment=None))
        else:
            self.stats["no_whole_caption"] += 1
        return items + segments

    def _segment_name(self, name: str, taken: set) -> str:
        """Random capital letter + '_' + id, unique among the loaded items."""
        for _ in range(4 * len(SEGMENT_PREFIXES)):
            cand = f"{SEGMENT_PREFIXES[self._rng.integers(len(SEGMENT_PREFIXES))]}_{name}"
            if cand not in taken:
                return cand
        k = 2
        while True:  # more than 26 segments of one clip: widen the prefix
            cand = f"{''.join(self._rng.choice(list(SEGMENT_PREFIXES), k))}_{name}"
            if cand not in taken:
                return cand
            k += 1

    def _log_summary(self):
        errors = sum(self.stats[r] for r in ERROR_REASONS)
        level = logging.WARNING if errors else logging.INFO
        logger.log(level, "HumanML3DReader %s (%s): %s", self.root, self.split or "ids", self.summary())
