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
