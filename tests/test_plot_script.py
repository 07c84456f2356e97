"""Tests for utils/plot_script.py (stick-figure rendering)."""
import shutil

import numpy as np
import pytest
from PIL import Image, ImageSequence

from utils.motion_process import extract_features
from utils.paramUtil import KIT, T2M
from utils.plot_script import (FfmpegMissingError, main, plot_3d_motion, plot_3d_pose, render_features,
                               render_joints, wrap_title)
from utils.quaternion import axis_angle_to_quaternion
from utils.skeleton import Skeleton

SMALL = dict(figsize=(3, 3), dpi=40)


def moving_joints(spec, n_frames=8):
    """A walking-ish motion on the target skeleton of ``spec``: legs swing, root advances."""
    skel = Skeleton.from_spec(spec)
    t = np.arange(n_frames) / spec.fps
    quats = np.zeros((n_frames, spec.joints_num, 4))
    quats[..., 0] = 1.0
    swing = 0.5 * np.sin(2 * np.pi * t)
    # spine chain (root -> ... ) untouched; swing the two leg chains' first bones about X
    r_leg, l_leg = spec.kinematic_chain[0][1], spec.kinematic_chain[1][1]
    quats[:, r_leg] = axis_angle_to_quaternion([1.0, 0.0, 0.0], swing)
    quats[:, l_leg] = axis_angle_to_quaternion([1.0, 0.0, 0.0], -swing)
    unit = 1000.0 if spec.unit == "mm" else 1.0
    root = np.stack([0.05 * unit * np.arange(n_frames), np.full(n_frames, 0.95 * unit), 0.3 * unit * t], -1)
    return skel.forward_kinematics(quats, root)


def gif_frames(path):
    with Image.open(path) as im:
        frames = [f.info.get("duration") for f in ImageSequence.Iterator(im)]
        return len(frames), sum(frames), im.size


def test_wrap_title():
    assert wrap_title("a b c") == "a b c"
    words = " ".join(f"w{i}" for i in range(25))
    lines = wrap_title(words).split("\n")
    assert [len(l.split()) for l in lines] == [10, 10, 5]
    lines = wrap_title(" ".join(f"w{i}" for i in range(45))).split("\n")
    assert len(lines) == 3 and lines[-1].endswith("...")


def test_gif_t2m_frame_count(tmp_path):
    joints = moving_joints(T2M, 6)
    out = plot_3d_motion(tmp_path / "m.gif", T2M.kinematic_chain, joints, "a person walks " * 8, **SMALL)
    assert (tmp_path / "m.gif").stat().st_size > 0 and out.endswith("m.gif")
    n, total_ms, size = gif_frames(out)
    assert n == 6
    assert total_ms == 6 * 50  # 20 fps
    assert size == (120, 120)


def test_gif_stride_max_frames(tmp_path):
    joints = moving_joints(T2M, 12)
    out = plot_3d_motion(tmp_path / "s.gif", T2M.kinematic_chain, joints, "stride", dataset="t2m",
                         stride=2, max_frames=4, **SMALL)
    n, total_ms, _ = gif_frames(out)
    assert n == 4 and total_ms == 4 * 100  # every 2nd frame at 10 fps keeps the speed


def test_gif_kit(tmp_path):
    joints = moving_joints(KIT, 5)
    assert joints.shape == (5, 21, 3) and joints[..., 1].max() > 500  # millimetres
    out = render_joints(tmp_path / "kit.gif", joints, "kit motion", "kit", **SMALL)
    n, total_ms, _ = gif_frames(out)
    assert n == 5 and total_ms == 5 * 80  # 12.5 fps


def test_mp4_or_clear_error(tmp_path):
    joints = moving_joints(T2M, 4)
    path = tmp_path / "m.mp4"
    if shutil.which("ffmpeg"):
        plot_3d_motion(path, T2M.kinematic_chain, joints, "mp4", **SMALL)
        assert path.stat().st_size > 0
    else:
        with pytest.raises(FfmpegMissingError, match=r"ffmpeg.*\.gif"):
            plot_3d_motion(path, T2M.kinematic_chain, joints, "mp4", **SMALL)
        assert not path.exists()


def test_bad_extension(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        plot_3d_motion(tmp_path / "m.avi", T2M.kinematic_chain, moving_joints(T2M, 3), "x", **SMALL)


def test_png_frame_colours(tmp_path):
    joints = moving_joints(T2M, 3)
    out = plot_3d_pose(tmp_path / "f.png", T2M.kinematic_chain, joints, 1, "frame", figsize=(4, 4), dpi=60)
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    red = (r > 200) & (g < 60) & (b < 60)
    blue = (b > 200) & (r < 60) & (g < 60)
    black = (r < 40) & (g < 40) & (b < 40)
    assert red.sum() > 20 and blue.sum() > 20 and black.sum() > 20
    # upright and the right side (red) on the viewer's left when the person faces the camera
    assert np.argwhere(red)[:, 1].mean() < np.argwhere(blue)[:, 1].mean()


def test_render_features_and_cli(tmp_path):
    joints = moving_joints(T2M, 7)
    feats = extract_features(joints, "t2m")
    out = render_features(tmp_path / "f.gif", feats, "features", **SMALL)
    assert gif_frames(out)[0] == 6
    np.save(tmp_path / "feats.npy", feats)
    np.save(tmp_path / "joints.npy", joints.astype(np.float32))
    assert main([str(tmp_path / "feats.npy"), str(tmp_path / "c1.gif"), "--title", "cli", "--max-frames", "3",
                 "--dpi", "30", "--figsize", "3", "3"]) == 0
    assert gif_frames(tmp_path / "c1.gif")[0] == 3
    assert main([str(tmp_path / "joints.npy"), str(tmp_path / "c2.gif"), "--dataset", "t2m", "--stride", "3",
                 "--dpi", "30", "--figsize", "3", "3"]) == 0
    assert gif_frames(tmp_path / "c2.gif")[0] == 3
    np.save(tmp_path / "bad.npy", np.zeros((5, 7)))
    assert main([str(tmp_path / "bad.npy"), str(tmp_path / "c3.gif")]) == 2


def test_reference_clip_renders(tmp_path, reference_dir):
    feats = np.load(reference_dir / "humanml3d_sample" / "new_joint_vecs" / "012314.npy")
    out = render_features(tmp_path / "ref.gif", feats[:4], "reference clip", "t2m", **SMALL)
    assert gif_frames(out)[0] == 4
