"""Tests for prepare/convert_deepmimic.py (DeepMimic clips -> HumanML3D) and prepare/mix_real_motion.py."""
import json
from pathlib import Path

import numpy as np
import pytest

from prepare.convert_deepmimic import (FRAME_WIDTH, DeepMimicError, captions_for, clip_joints, convert_clip,
                                       load_clip, loop_cycles, main, sample_poses)
from prepare.mix_real_motion import MixError, mix
from prepare.synthetic.captions import mirror_text
from utils.motion_process import mirror_joints, process_file, recover_from_ric
from utils.paramUtil import T2M


def _frame(duration=0.05, x=0.0, knee=0.0):
    """A standing DeepMimic frame: root 0.85 m up, identity rotations, given knee angles."""
    ident = [1.0, 0.0, 0.0, 0.0]
    return ([duration, x, 0.85, 0.0] + ident + ident + ident + ident + [knee] + ident + ident + [0.0]
            + ident + [knee] + ident + ident + [0.0])


def _write_clip(path, frames, loop="wrap"):
    rows = ",\n".join("[" + ", ".join(repr(float(v)) for v in fr) + "]" for fr in frames)
    path.write_text('{\n"Loop": "%s",\n"Frames":\n[\n%s\n]\n}\n' % (loop, rows))
    return path


# ---------------------------------------------------------------------------- input validation (no wheel needed)
def test_frame_layout_width():
    assert FRAME_WIDTH == 44 and len(_frame()) == 44


def test_truncated_json_names_file_and_line(tmp_path):
    good = _write_clip(tmp_path / "humanoid3d_ok.txt", [_frame(), _frame(), _frame()])
    bad = tmp_path / "humanoid3d_trunc.txt"
    bad.write_text(good.read_text()[:200])
    with pytest.raises(DeepMimicError) as err:
        load_clip(bad)
    msg = str(err.value)
    assert str(bad) in msg and "invalid JSON" in msg and "truncated" in msg
    assert f"{bad}:{bad.read_text().count(chr(10)) + 1}:" in msg  # file:line:col at the end of the text


def test_wrong_frame_width_names_frame_and_line(tmp_path):
    frames = [_frame(), _frame(), _frame()[:-1], _frame()]
    path = _write_clip(tmp_path / "humanoid3d_short_row.txt", frames)
    with pytest.raises(DeepMimicError) as err:
        load_clip(path)
    msg = str(err.value)
    # header lines: '{', '"Loop"', '"Frames":', '[' then one frame per line -> frame 2 is on line 7
    assert str(path) in msg and "frame 2 (line 7)" in msg and "has 43 values, expected 44" in msg


def test_other_invalid_values(tmp_path):
    f = _frame()
    f[9] = float("nan")
    path = _write_clip(tmp_path / "nan.txt", [_frame(), f])
    path.write_text(path.read_text().replace("nan", "NaN"))
    with pytest.raises(DeepMimicError, match=r"frame 1 \(line 6\): value 9 is nan"):
        load_clip(path)
    path = _write_clip(tmp_path / "dur.txt", [_frame(), _frame(duration=0.0), _frame()])
    with pytest.raises(DeepMimicError, match=r"dur.txt: frame 1 \(line 6\): duration 0.0 s"):
        load_clip(path)
    f = _frame()
    f[8:12] = [0.0, 0.0, 0.0, 0.0]
    path = _write_clip(tmp_path / "zeroq.txt", [_frame(), f])
    with pytest.raises(DeepMimicError, match=r"frame 1 \(line 6\): chest quaternion"):
        load_clip(path)
    path = tmp_path / "loop.txt"
    path.write_text(json.dumps({"Loop": "forever", "Frames": [_frame(), _frame()]}))
    with pytest.raises(DeepMimicError, match="Loop"):
        load_clip(path)


def test_times_loop_and_seam_blend(tmp_path):
    # 3 keyframes, 0.5 s per cycle, root advances 0.3 m; the last frame's knees differ from the first (a seam)
    frames = [_frame(0.25, 0.0, -0.4), _frame(0.25, 0.15, -0.2), _frame(0.0, 0.3, 0.0)]
    clip = load_clip(_write_clip(tmp_path / "humanoid3d_toy.txt", frames))
    assert clip.loop and clip.duration == pytest.approx(0.5) and clip.action == "toy"
    assert loop_cycles(clip, 41) == 4                       # 4 x 0.5 s = 2.0 s -> 41 frames at 20 fps
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    raw = sample_poses(clip, t, cycles=4, blend_s=0.0)
    np.testing.assert_allclose(raw["root_pos"][:, 0], [0.0, 0.3, 0.6, 0.9, 1.2], atol=1e-12)
    eps = 1e-6
    around = np.array([0.5 - eps, 0.5 + eps])
    jump = np.ptp(sample_poses(clip, around, cycles=4, blend_s=0.0)["right_knee"])
    smooth = np.ptp(sample_poses(clip, around, cycles=4, blend_s=0.1)["right_knee"])
    assert jump == pytest.approx(0.4, abs=1e-4) and smooth < 1e-4
    # away from the seams the blend changes nothing
    mid = np.array([0.25, 0.75])
    np.testing.assert_allclose(sample_poses(clip, mid, 4, 0.1)["right_knee"], [-0.2, -0.2], atol=1e-12)
    once = load_clip(_write_clip(tmp_path / "humanoid3d_none.txt", frames, loop="none"))
    assert loop_cycles(once, 41) == 1


def test_captions_format_and_mirror():
    from dataset.humanml3d import parse_text_line

    for action, n in (("walk", 1), ("backflip", 2), ("kick", 1), ("spin", 1), ("unknown_thing", 3)):
        for text, tokens in captions_for(action, n):
            line = f"{text}#{' '.join(tokens)}#0.0#0.0"
            cap, toks, start, end = parse_text_line(line, "mem", 1)
            assert cap == text and start == 0.0 and end == 0.0 and toks
            assert all(t.split("/")[0].isalpha() and t.split("/")[1].isupper() for t in toks)
    assert captions_for("walk", 2) == captions_for("walk", 1)          # an activity: looping changes nothing
    assert captions_for("backflip", 2)[0][0] == "a person does two backflips."
    assert "twice" in captions_for("jump", 2)[0][0]
    kick = captions_for("kick")[0][0]
    assert "right leg" in kick and "left leg" in mirror_text(kick)


# ---------------------------------------------------------------------------- the shipped clips (pybullet wheel)
@pytest.fixture(scope="module")
def shipped():
    pytest.importorskip("pybullet_data")
    from prepare.convert_deepmimic import default_inputs, load_humanoid
    files = {load_clip(p).action: p for p in default_inputs()}
    return load_humanoid(), files


def test_shipped_clips_and_humanoid(shipped):
    model, files = shipped
    assert len(files) == 15 and {"walk", "run", "cartwheel", "backflip", "getup_faceup"} <= set(files)
    assert 1.55 <= model.rest_height <= 1.8     # soles to the top of the head at globalScaling 0.25: 1.62 m
    for p in files.values():
        clip = load_clip(p)
        assert clip.num_frames >= 2 and np.isfinite(clip.root_pos).all()


def test_fk_bones_rigid_height_and_floor(shipped):
    model, files = shipped
    for action in ("walk", "cartwheel"):
        joints, _ = clip_joints(load_clip(files[action]), model)
        for c in range(1, 22):   # every t2m bone lies on one rigid humanoid body: constant length
            d = np.linalg.norm(joints[:, c] - joints[:, T2M.parents[c]], axis=-1)
            assert np.ptp(d) < 1e-9 and d.min() > 0.02, (action, T2M.joint_names[c])
        assert abs(joints[..., 1].min()) < 1e-12
    joints, lift = clip_joints(load_clip(files["walk"]), model)
    assert abs(lift) < 0.05                     # DeepMimic's floor is y = 0 already
    head = joints[0, 15, 1]
    assert 1.3 <= head <= 1.6                   # head joint (inside the 1.62 m tall head) in the first frame
    feet = joints[:, [7, 8, 10, 11], 1].min(axis=1)
    assert np.median(feet) < 0.02 and feet.max() < 0.08   # one foot on the floor throughout the walk
    # facing +x, right side +z: the humanoid's right hip is at +z of its left hip
    assert joints[0, 2, 2] > joints[0, 1, 2] + 0.1


def test_loop_seams_are_smooth(shipped):
    model, files = shipped
    for action in ("walk", "spinkick"):       # seam mismatch up to ~60 degrees at a shoulder in spinkick
        clip = load_clip(files[action])
        joints, _ = clip_joints(clip, model, cycles=2)
        local = joints - joints[:, :1]
        step = np.linalg.norm(np.diff(local, axis=0), axis=-1).max(axis=1)
        seam = int(round(clip.duration * 20))
        assert step[seam - 1:seam + 1].max() <= np.percentile(step, 75), action


def test_bad_urdf_names_file_and_line(tmp_path, shipped):
    from prepare.convert_deepmimic import load_humanoid
    model, _ = shipped
    text = Path(model.path).read_bytes().rstrip(b"\x00").decode()
    bad = tmp_path / "humanoid.urdf"
    bad.write_text(text.replace("</joint>", "</joinx>", 1))
    with pytest.raises(DeepMimicError, match=rf"{bad}:\d+:\d+: invalid URDF XML"):
        load_humanoid(bad)


@pytest.fixture(scope="module")
def converted(shipped, tmp_path_factory):
    model, files = shipped
    out = tmp_path_factory.mktemp("deepmimic")
    res = {a: convert_clip(files[a], out, model, log=None) for a in ("walk", "kick")}
    return out, res


def test_walk_forward_and_roundtrip(converted, shipped):
    out, res = converted
    r = res["walk"]
    assert r["cycles"] == 2 and r["in_length_filter"] and r["frames"] == 51 and r["feature_frames"] == 50
    feats = np.load(out / "new_joint_vecs" / "deepmimic_walk.npy")
    joints = np.load(out / "new_joints" / "deepmimic_walk.npy")
    assert feats.shape == (50, 263) and feats.dtype == np.float32 and np.isfinite(feats).all()
    np.testing.assert_array_equal(joints, recover_from_ric(feats))
    root = joints[:, 0]
    assert root[-1, 2] > 2.0 and abs(root[-1, 0]) < 0.3          # ~2.4 m forward (+Z after canonicalisation)
    assert (np.diff(root[:, 2]) > 0).mean() > 0.95
    # features -> joints recovers the processed joints (float32 rounding only)
    model, files = shipped
    src, _ = clip_joints(load_clip(files["walk"]), model, cycles=2)
    data, global_positions, *_ = process_file(src, T2M, fix_yaw_flip=True)
    np.testing.assert_allclose(data.astype(np.float32), feats)
    assert np.abs(recover_from_ric(feats) - global_positions[:-1]).max() < 1e-4
    # HumanML3D skeleton after retargeting: standing height, toes ahead of the ankles
    assert 1.3 <= joints[0, 15, 1] <= 1.8 and (joints[0, [10, 11], 2] - joints[0, [7, 8], 2]).min() > 0.05


def test_mirror_is_a_mirror(converted):
    out, res = converted
    for name in ("walk", "kick"):
        a = np.load(out / "new_joints" / f"deepmimic_{name}.npy")
        m = np.load(out / "new_joints" / f"Mdeepmimic_{name}.npy")
        assert m.shape == a.shape and res[name]["mirror"] == f"Mdeepmimic_{name}"
        # equal up to the t2m target skeleton's own left/right bone-length asymmetry (~1 cm)
        assert np.abs(mirror_joints(a) - m).max() < 0.03
        assert np.abs(a - m).max() > 0.2
    a = np.load(out / "new_joints" / "deepmimic_kick.npy")
    m = np.load(out / "new_joints" / "Mdeepmimic_kick.npy")
    assert a[:, 11, 1].max() > 1.0 > a[:, 10, 1].max()       # the right foot kicks ...
    assert m[:, 10, 1].max() > 1.0 > m[:, 11, 1].max()       # ... the left one in the mirror
    text = (out / "texts" / "Mdeepmimic_kick.txt").read_text()
    assert "left leg" in text and "right leg" not in text


def test_short_clip_policy(converted, shipped, tmp_path):
    out, res = converted
    assert res["kick"]["cycles"] == 1 and res["kick"]["feature_frames"] == 30 and not res["kick"]["in_length_filter"]
    model, files = shipped
    held = convert_clip(files["kick"], tmp_path, model, mirror=False, hold_short=True, log=None)
    assert held["feature_frames"] == 40 and held["held_frames"] == 10 and held["in_length_filter"]


def test_cli_outputs_and_failure(shipped, tmp_path, capsys):
    model, files = shipped
    bad = _write_clip(tmp_path / "humanoid3d_bad.txt", [_frame(), _frame()[:40]])
    out = tmp_path / "out"
    rc = main([str(files["walk"]), str(files["roll"]), str(bad), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 1 and f"{bad}: frame 1 (line 6): has 40 values" in captured.err
    ids = ["deepmimic_walk", "Mdeepmimic_walk", "deepmimic_roll", "Mdeepmimic_roll"]
    assert (out / "all.txt").read_text().split() == ids == (out / "test.txt").read_text().split()
    assert np.load(out / "Mean.npy").shape == (263,) and (np.load(out / "Std.npy") > 0).all()
    report = json.loads((out / "deepmimic_report.json").read_text())
    assert report["failed"] == 1 and [c["name"] for c in report["clips"]] == ids[::2]
    lines = (out / "texts" / "deepmimic_roll.txt").read_text().splitlines()
    assert lines[0] == "a person does a forward roll.#a/DET person/NOUN do/VERB a/DET forward/ADJ roll/NOUN#0.0#0.0"


# ---------------------------------------------------------------------------- mixing into the synthetic dataset
def test_mix_into_synthetic_train_split(converted, tmp_path):
    from prepare.make_synthetic_dataset import build_dataset

    real, _ = converted
    data = tmp_path / "syn"
    build_dataset(data, num_motions=4, seed=0, progress=False)
    before = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    res = mix(data, real)
    assert sorted(res["add"]) == ["Mdeepmimic_walk", "deepmimic_walk"]
    assert sorted(c for c, _ in res["skipped"]) == ["Mdeepmimic_kick", "deepmimic_kick"]   # 30 frames < 40
    old_train = before[Path("train.txt")].decode()
    new_train = (data / "train.txt").read_text()
    assert new_train.startswith(old_train) and sorted(new_train[len(old_train):].split()) == res["add"]
    for name in ("train_val.txt", "all.txt"):
        assert (data / name).read_text().startswith(before[Path(name)].decode())
        assert "deepmimic_walk" in (data / name).read_text().split()
    changed = {"train.txt", "train_val.txt", "all.txt", "Mean.npy", "Std.npy"}
    for rel, content in before.items():    # every other file is untouched
        if str(rel) not in changed:
            assert (data / rel).read_bytes() == content, rel
    assert (data / "Mean.npy").read_bytes() != before[Path("Mean.npy")]
    from prepare.compute_mean_std import compute
    mean = np.load(data / "Mean.npy")
    compute(data, split="all", progress=False, out=tmp_path / "stats")
    np.testing.assert_array_equal(mean, np.load(tmp_path / "stats" / "Mean.npy"))
    assert np.array_equal(np.load(data / "new_joint_vecs" / "deepmimic_walk.npy"),
                          np.load(real / "new_joint_vecs" / "deepmimic_walk.npy"))
    # a rerun adds nothing; a clashing id with other content stops before writing anything
    snapshot = (data / "train.txt").read_text()
    again = mix(data, real)
    assert again["add"] == [] and sorted(again["already_present"]) == ["Mdeepmimic_walk", "deepmimic_walk"]
    assert (data / "train.txt").read_text() == snapshot
    np.save(data / "new_joint_vecs" / "deepmimic_walk.npy", np.zeros((50, 263), np.float32))
    with pytest.raises(MixError, match="deepmimic_walk already exists"):
        mix(data, real)
    assert (data / "train.txt").read_text() == snapshot
