"""Atomic writes and safe checkpoint loading shared by every script."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def _tmp_path(path: Path) -> Path:
    """A temporary file beside ``path`` with the permissions a plain ``open`` would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _MODE)
    return Path(tmp)


@contextlib.contextmanager
def _atomic(path):
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_torch_save(obj, path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    with _atomic(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    with _atomic(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path, obj, indent: int = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def atomic_save_npy(path, arr) -> Path:
    import numpy as np
    with _atomic(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    return Path(path)


def _json_default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def load_checkpoint(path, map_location="cpu") -> dict:
    """``torch.load(weights_only=True)`` with an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot load checkpoint {path} (weights-only): {exc}") from exc


def run_dir(out_dir, exp_name: str, flag: str = "--exp-name") -> Path:
    """``<out_dir>/<exp_name>``, refusing names that would leave ``out_dir`` (absolute paths, ``..``), before
    anything is created."""
    name = str(exp_name)
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise SystemExit(f"{flag} {name!r}: give a folder name inside --out-dir (no absolute path, no '..')")
    root = Path(out_dir).resolve()
    path = (root / name).resolve()
    if path != root and root not in path.parents:
        raise SystemExit(f"{flag} {name!r}: resolves to {path}, outside --out-dir {root}")
    return Path(out_dir) / name


def check_writable(folder, what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be written there (then remove it); a clear error
    naming ``what`` otherwise. For checks before a long computation."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"{what}: cannot write to {folder} ({exc.strerror or exc})") from None
    return folder


def prepare_run_dir(path, resume: bool, overwrite: bool, dist=None) -> Path:
    """The run folder of a training script: a folder that already holds files is refused unless the run
    continues it (``resume``) or replaces it (``overwrite``: its contents are deleted first), so a second run
    with the same name never silently replaces checkpoints or appends to the old metrics. With several
    processes (``dist``, :class:`utils.distributed.Dist`) every rank looks before rank 0 changes anything,
    and all take the same decision."""
    import shutil
    path = Path(path)
    existing = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if existing and not (resume or overwrite):
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise SystemExit(f"{path} already holds a run ({shown}); pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --exp-name")
    if dist is not None:
        dist.barrier()
    if dist is None or dist.is_main:
        if existing and overwrite and not resume:
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
    if dist is not None:
        dist.barrier()
    return path
