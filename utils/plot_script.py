"""Stick-figure animations of HumanML3D / KIT-ML motions (docs/data-format.md §9.1).

``plot_3d_motion`` draws one polyline per kinematic chain on a root-centred view with a
translucent floor and the past root trajectory, and writes a ``.gif`` (Pillow, always
available) or ``.mp4`` (needs the ``ffmpeg`` executable). The figure is built once and the
artists are updated per frame, so rendering costs about one Agg draw per frame.

CLI::

    python -m utils.plot_script FEATURES_OR_JOINTS.npy OUT.gif --title "a person walks" [--dataset t2m]

The input may be features (T, 263) / (T, 251) (recovered with ``recover_from_ric``) or joints
(T, J, 3). ``OUT.png`` writes a single frame (``--frame``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.animation import FFMpegWriter, PillowWriter  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

__all__ = ["plot_3d_motion", "plot_3d_pose", "render_features", "render_joints", "wrap_title",
           "CHAIN_COLORS", "main"]

CHAIN_COLORS = ["red", "blue", "black", "red", "blue",
                "darkblue", "darkblue", "darkblue", "darkblue", "darkblue",
                "darkred", "darkred", "darkred", "darkred", "darkred"]

_DATASET_DEFAULTS = {"t2m": (4.0, 20.0), "kit": (240.0 * 8, 12.5)}


class FfmpegMissingError(RuntimeError):
    """Raised when an .mp4 is requested and no ffmpeg executable is on PATH."""


def wrap_title(title: str, words_per_line: int = 10, max_lines: int = 3) -> str:
    """Split a title into lines of ``words_per_line`` words, at most ``max_lines`` lines."""
    words = str(title).split()
    lines = [" ".join(words[i:i + words_per_line]) for i in range(0, len(words), words_per_line)]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " ..."
    return "\n".join(lines)


def _resolve(dataset, radius, fps, n_joints):
    if dataset is None:
        dataset = "kit" if n_joints == 21 else "t2m"
    key = {"humanml3d": "t2m", "humanml": "t2m", "kit-ml": "kit", "kitml": "kit"}.get(str(dataset).lower(), str(dataset).lower())
    if key not in _DATASET_DEFAULTS:
        raise ValueError(f"unknown dataset {dataset!r}: expected 't2m' or 'kit'")
    r0, f0 = _DATASET_DEFAULTS[key]
    return key, float(r0 if radius is None else radius), float(f0 if fps is None else fps)


class _MotionFigure:
    """A figure with one Line3D per chain, a floor quad and a trajectory line, updated per frame."""

    def __init__(self, kinematic_tree, joints, title, figsize=(10, 10), radius=4.0, zoom=None):
        data = np.array(joints, dtype=np.float64, copy=True)
        if data.ndim != 3 or data.shape[-1] != 3:
            raise ValueError(f"joints must have shape (frames, joints, 3), got {data.shape}")
        if data.shape[0] == 0:
            raise ValueError("empty motion (0 frames)")
        if not np.isfinite(data).all():
            raise ValueError("joints contain NaN or Inf")
        n_j = data.shape[1]
        for chain in kinematic_tree:
            if max(chain) >= n_j:
                raise ValueError(f"kinematic chain {chain} refers to joint {max(chain)} but joints have {n_j}")
        self.tree = [list(c) for c in kinematic_tree]
        # floor at the global minimum height
        data[..., 1] -= data[..., 1].min()
        self.mins = data.min(axis=(0, 1))
        self.maxs = data.max(axis=(0, 1))
        self.traj = data[:, 0, [0, 2]].copy()
        # root-centred in XZ
        data[..., 0] -= self.traj[:, None, 0]
        data[..., 2] -= self.traj[:, None, 1]
        self.data = data
        self.n_frames = data.shape[0]

        self.fig = plt.figure(figsize=figsize)
        self.ax = self.fig.add_subplot(111, projection="3d")
        ax = self.ax
        ax.set_xlim3d([-radius / 2, radius / 2])
        ax.set_ylim3d([0, radius])
        ax.set_zlim3d([0, radius])
        ax.grid(False)
        ax.set_axis_off()
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
        ax.view_init(elev=120, azim=-90)
        # the reference sets ax.dist = 7.5 (default 10); newer matplotlib expresses it as zoom
        try:
            ax.set_box_aspect(None, zoom=10.0 / 7.5 if zoom is None else zoom)
        except TypeError:  # pragma: no cover - very old matplotlib
            ax.dist = 7.5
        self.fig.suptitle(wrap_title(title), fontsize=20 * min(figsize) / 10.0)
        self.floor = Poly3DCollection([self._floor_verts(0)], facecolors=(0.5, 0.5, 0.5, 0.5),
                                      edgecolors="none")
        ax.add_collection3d(self.floor)
        (self.traj_line,) = ax.plot([], [], [], linewidth=1.0, color="blue")
        self.lines = []
        for i, chain in enumerate(self.tree):
            lw = 4.0 if i < 5 else 2.0
            color = CHAIN_COLORS[i % len(CHAIN_COLORS)]
            (ln,) = ax.plot([], [], [], linewidth=lw, color=color)
            self.lines.append(ln)

    def _floor_verts(self, index):
        dx, dz = self.traj[index]
        x0, x1 = self.mins[0] - dx, self.maxs[0] - dx
        z0, z1 = self.mins[2] - dz, self.maxs[2] - dz
        return [(x0, 0.0, z0), (x0, 0.0, z1), (x1, 0.0, z1), (x1, 0.0, z0)]

    def update(self, index):
        self.floor.set_verts([self._floor_verts(index)])
        if index > 0:
            past = self.traj[: index + 1] - self.traj[index]
            self.traj_line.set_data_3d(past[:, 0], np.zeros(len(past)), past[:, 1])
        else:
            self.traj_line.set_data_3d([], [], [])
        frame = self.data[index]
        for ln, chain in zip(self.lines, self.tree):
            ln.set_data_3d(frame[chain, 0], frame[chain, 1], frame[chain, 2])
        return self.lines

    def close(self):
        plt.close(self.fig)


def _select_frames(n, stride=1, max_frames=None):
    stride = max(1, int(stride))
    idx = np.arange(0, n, stride)
    if max_frames is not None:
        idx = idx[: max(1, int(max_frames))]
    return idx


def plot_3d_motion(save_path, kinematic_tree, joints, title="", dataset=None, figsize=(10, 10),
                   fps=None, radius=None, dpi=None, stride=1, max_frames=None, progress=False):
    """Render a stick-figure animation of ``joints`` (T, J, 3) to ``save_path`` (.gif or .mp4).

    ``dataset`` ('t2m' or 'kit', guessed from J when None) provides the defaults radius 4 /
    fps 20 (t2m, metres) or radius 1920 / fps 12.5 (kit, millimetres); explicit ``radius`` /
    ``fps`` win. ``stride`` keeps every n-th frame (the written fps is divided accordingly so
    the playback speed is unchanged); ``max_frames`` caps the number of written frames.
    Returns the path. An .mp4 without ffmpeg raises :class:`FfmpegMissingError`.
    """
    save_path = str(save_path)
    ext = Path(save_path).suffix.lower()
    joints = np.asarray(joints)
    _, radius, fps = _resolve(dataset, radius, fps, joints.shape[1] if joints.ndim == 3 else 0)
    if ext == ".gif":
        make_writer = lambda f: PillowWriter(fps=f)  # noqa: E731
    elif ext == ".mp4":
        if shutil.which("ffmpeg") is None:
            raise FfmpegMissingError(
                f"cannot write {save_path}: .mp4 output needs the 'ffmpeg' executable on PATH, which was "
                "not found. Install ffmpeg (e.g. 'apt-get install ffmpeg' or 'conda install ffmpeg') or "
                "save as .gif instead.")
        make_writer = lambda f: FFMpegWriter(fps=f)  # noqa: E731
    elif ext == ".png":
        return plot_3d_pose(save_path, kinematic_tree, joints, 0, title, dataset, figsize, radius, dpi)
    else:
        raise ValueError(f"unsupported output extension {ext!r} for {save_path}: use .gif or .mp4 (or .png for one frame)")
    idx = _select_frames(len(joints), stride, max_frames)
    out_fps = fps / max(1, int(stride))
    fig = _MotionFigure(kinematic_tree, joints[idx], title, figsize, radius)
    Path(save_path).parent.mkdir(parents=True, exist_ok=True)
    writer = make_writer(out_fps)
    it = range(fig.n_frames)
    if progress:
        try:
            from tqdm import tqdm
            it = tqdm(it, desc=f"render {Path(save_path).name}", unit="frame")
        except ImportError:  # pragma: no cover
            pass
    try:
        with writer.saving(fig.fig, save_path, dpi=dpi if dpi is not None else fig.fig.dpi):
            for i in it:
                fig.update(i)
                writer.grab_frame()
    finally:
        fig.close()
    return save_path


def plot_3d_pose(save_path, kinematic_tree, joints, index=0, title="", dataset=None, figsize=(10, 10),
                 radius=None, dpi=None):
    """Save frame ``index`` of the animation as a still image (any format savefig knows)."""
    joints = np.asarray(joints)
    _, radius, _ = _resolve(dataset, radius, None, joints.shape[1] if joints.ndim == 3 else 0)
    fig = _MotionFigure(kinematic_tree, joints, title, figsize, radius)
    try:
        if not -fig.n_frames <= index < fig.n_frames:
            raise IndexError(f"frame {index} out of range for {fig.n_frames} frames")
        fig.update(index % fig.n_frames)
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        fig.fig.savefig(save_path, dpi=dpi if dpi is not None else fig.fig.dpi)
    finally:
        fig.close()
    return str(save_path)


def render_joints(path, joints, title="", dataname=None, **kwargs):
    """Plot joints (T, J, 3) with the chains / radius / fps of ``dataname`` (guessed from J)."""
    from .paramUtil import get_spec

    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[-1] != 3:
        raise ValueError(f"joints must have shape (frames, joints, 3), got {joints.shape}")
    if dataname is None:
        dataname = {22: "t2m", 21: "kit"}.get(joints.shape[1])
        if dataname is None:
            raise ValueError(f"cannot guess the dataset for {joints.shape[1]} joints; pass dataname")
    spec = get_spec(dataname)
    if joints.shape[1] != spec.joints_num:
        raise ValueError(f"{spec.name} expects {spec.joints_num} joints, got {joints.shape[1]}")
    if Path(str(path)).suffix.lower() == ".png":
        kw = {k: v for k, v in kwargs.items() if k in ("figsize", "radius", "dpi")}
        return plot_3d_pose(path, spec.kinematic_chain, joints, kwargs.get("index", 0), title, spec.name, **kw)
    kwargs.pop("index", None)
    return plot_3d_motion(path, spec.kinematic_chain, joints, title, dataset=spec.name, **kwargs)


def render_features(path, features, title="", dataname=None, **kwargs):
    """Recover joints from features (T, 263) / (T, 251) with ``recover_from_ric`` and plot them."""
    from .motion_process import recover_from_ric
    from .paramUtil import get_spec, spec_for_feature_dim

    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must have shape (frames, dim), got {features.shape}")
    spec = get_spec(dataname) if dataname is not None else spec_for_feature_dim(features.shape[-1])
    joints = recover_from_ric(features, spec.joints_num)
    return render_joints(path, joints, title, spec.name, **kwargs)


# ============================================================================ CLI
def _load_any(path, dataset):
    arr = np.load(path)
    if hasattr(arr, "files"):  # npz: take the first array
        arr = arr[arr.files[0]]
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[-1] != 3:
        arr = arr[0]
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2 and arr.shape[1] in (263, 251):
        return "features", arr
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return "joints", arr
    if arr.ndim == 2 and arr.shape[1] % 3 == 0 and arr.shape[1] // 3 in (21, 22):
        return "joints", arr.reshape(len(arr), -1, 3)
    raise ValueError(f"{path}: array of shape {arr.shape} is neither features (T, 263/251) nor joints (T, J, 3)")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m utils.plot_script", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help=".npy with features (T, 263|251) or joints (T, J, 3)")
    ap.add_argument("output", help="output .gif, .mp4 (needs ffmpeg) or .png (single frame)")
    ap.add_argument("--title", default="", help="caption shown above the figure")
    ap.add_argument("--dataset", default=None, choices=["t2m", "kit"], help="skeleton (default: guessed from the shape)")
    ap.add_argument("--fps", type=float, default=None, help="playback fps (default 20 for t2m, 12.5 for kit)")
    ap.add_argument("--radius", type=float, default=None, help="axis extent (default 4 for t2m, 1920 for kit)")
    ap.add_argument("--stride", type=int, default=1, help="keep every n-th frame (fps scaled to keep speed)")
    ap.add_argument("--max-frames", type=int, default=None, help="write at most this many frames")
    ap.add_argument("--dpi", type=float, default=None, help="output resolution (figure is 10x10 inches; default 100)")
    ap.add_argument("--figsize", type=float, nargs=2, default=(10.0, 10.0), metavar=("W", "H"))
    ap.add_argument("--frame", type=int, default=0, help="frame index for .png output")
    args = ap.parse_args(argv)
    try:
        kind, arr = _load_any(args.input, args.dataset)
        kw = dict(figsize=tuple(args.figsize), radius=args.radius, dpi=args.dpi)
        if Path(args.output).suffix.lower() == ".png":
            kw["index"] = args.frame
        else:
            kw.update(fps=args.fps, stride=args.stride, max_frames=args.max_frames, progress=True)
        if kind == "features":
            out = render_features(args.output, arr, args.title, args.dataset, **kw)
        else:
            out = render_joints(args.output, arr, args.title, args.dataset, **kw)
    except (ValueError, FfmpegMissingError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({kind}, {len(arr)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
