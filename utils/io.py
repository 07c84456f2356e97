"""Atomic writes and safe checkpoint loading shared by every script."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def _tmp_path(path: Path) -> Path:
    """A temporary file beside ``path`` with the permissions a plain ``open`` would give: ``.<name>.<8 random
    characters>.tmp`` (the pattern :func:`clean_stale_tmp` recognises)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _MODE)
    return Path(tmp)


# what _tmp_path creates: '.' + target name + '.' + tempfile's 8 random characters + '.tmp'
_TMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# Free space under which any write error is taken for a full disk.
_LOW_SPACE_BYTES = 1 << 20
# Messages of a full disk: torch.save's "[enforce fail at inline_container.cc:...] . unexpected pos N vs M",
# the OS's "No space left on device" / "Disk quota exceeded" (other wordings, e.g. torch's "file write
# failed", are caught by the free-space check)
_NO_SPACE_MESSAGES = ("no space left", "unexpected pos", "disk quota exceeded")


def _out_of_space(exc: BaseException, folder: Path) -> bool:
    """Whether a write error in ``folder`` comes from a full filesystem."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    if any(m in str(exc).lower() for m in _NO_SPACE_MESSAGES):
        return True
    try:
        return shutil.disk_usage(folder).free < _LOW_SPACE_BYTES
    except OSError:
        return False


def _no_space_error(path: Path, exc: BaseException) -> OSError:
    err = OSError(errno.ENOSPC, f"no space left on {path.parent} while writing {path}")
    err.__cause__ = exc
    return err


@contextlib.contextmanager
def _atomic(path):
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds. The temporary
    file is removed on any failure (``path`` keeps its old content); a full disk is reported as
    ``OSError(ENOSPC, "no space left on <folder> while writing <path>")`` whatever the writer raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = _tmp_path(path)
    except OSError as exc:
        if _out_of_space(exc, path.parent):
            raise _no_space_error(path, exc) from exc
        raise
    try:
        try:
            yield tmp
            os.replace(tmp, path)
        except (OSError, RuntimeError) as exc:
            if _out_of_space(exc, path.parent):
                raise _no_space_error(path, exc) from exc
            raise
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                tmp.unlink()


def clean_stale_tmp(folder, max_age_s: float = 3600.0, recursive: bool = True) -> list:
    """Remove the temporary files that interrupted atomic writes of this module left in ``folder`` (a process
    killed between creating ``.<name>.XXXXXXXX.tmp`` and renaming it): only names of exactly that pattern,
    only plain files, only those not modified for ``max_age_s`` seconds (a write still running keeps its file
    fresh). Returns the removed paths; a missing folder or a file that cannot be removed is skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = time.time() - max_age_s
    removed = []
    candidates = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    for p in sorted(candidates):
        if not _TMP_RE.match(p.name):
            continue
        try:
            st = p.lstat()
            if not p.is_file() or p.is_symlink() or st.st_mtime > cutoff:
                continue
            p.unlink()
        except OSError:
            continue
        removed.append(p)
    return removed


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


def refuse_existing_run(path, resume: bool, overwrite: bool) -> list:
    """The names in an existing run folder; stops with a clear message when it holds files and neither
    ``resume`` nor ``overwrite`` is given (changes nothing: also a check before the inputs are read)."""
    path = Path(path)
    existing = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if existing and not (resume or overwrite):
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise SystemExit(f"{path} already holds a run ({shown}); pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --exp-name")
    return existing


def prepare_run_dir(path, resume: bool, overwrite: bool, dist=None) -> Path:
    """The run folder of a training script: a folder that already holds files is refused unless the run
    continues it (``resume``) or replaces it (``overwrite``: its contents are deleted first), so a second run
    with the same name never silently replaces checkpoints or appends to the old metrics. With several
    processes (``dist``, :class:`utils.distributed.Dist`) every rank looks before rank 0 changes anything,
    and all take the same decision. A resumed folder loses the orphaned temporaries of interrupted atomic
    writes (:func:`clean_stale_tmp`)."""
    path = Path(path)
    existing = refuse_existing_run(path, resume, overwrite)
    if dist is not None:
        dist.barrier()
    if dist is None or dist.is_main:
        if existing and overwrite and not resume:
            shutil.rmtree(path)
        elif existing:  # a resumed run: drop what interrupted atomic writes left behind
            stale = clean_stale_tmp(path)
            if stale:
                print(f"[run] {path}: removed {len(stale)} stale temporary file(s) of interrupted writes "
                      f"({', '.join(p.name for p in stale[:3])}{', ...' if len(stale) > 3 else ''})")
        path.mkdir(parents=True, exist_ok=True)
    if dist is not None:
        dist.barrier()
    return path
