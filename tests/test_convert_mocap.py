"""Tests for prepare/convert_mocap.py (BVH -> HumanML3D features / joints / texts)."""
import json
from pathlib import Path

import numpy as np
import pytest

from prepare.convert_mocap import (MappingError, caption_line, convert_bvh, main, resample, swap_left_right,
                                   to_y_up)
from utils.bvh import write_bvh
from utils.motion_process import extract_features, recover_from_ric
from utils.paramUtil import T2M

DATA = Path(__file__).resolve().parent / "data"
BVH = DATA / "test_mocapbank.bvh"
MAPPING = Path(__file__).resolve().parents[1] / "prepare" / "mappings" / "mocapbank.json"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("mocap")
    res = convert_bvh(BVH, MAPPING, out, caption="A person crouches down and picks something up with the left hand.",
                      also_mirror=True, log=None)
    return out, res


def test_feature_file(converted):
    out, res = converted
    feats = np.load(out / "new_joint_vecs" / "test_mocapbank.npy")
    assert res["features"] == str(out / "new_joint_vecs" / "test_mocapbank.npy")
    assert res["source_frames"] == 455 and res["source_fps"] == pytest.approx(30.0, abs=0.01)
    n = res["target_frames"]
    assert abs(n - 455 * 20 / 30) <= 2
    assert feats.shape == (n - 1, 263) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert res["scale"] == pytest.approx(0.01) and res["unit"] == "cm"
    contacts = feats[:, 259:]
    assert set(np.unique(contacts)) <= {0.0, 1.0}


def test_joints_plausible_and_consistent(converted):
    out, _ = converted
    feats = np.load(out / "new_joint_vecs" / "test_mocapbank.npy")
    joints = np.load(out / "new_joints" / "test_mocapbank.npy")
    assert joints.shape == (len(feats), 22, 3)
    np.testing.assert_array_equal(joints, recover_from_ric(feats))
    head = joints[0, 15, 1]
    assert 1.3 <= head <= 2.0
    feet = joints[:, [7, 8, 10, 11], 1]
    assert abs(feet.min()) < 0.01 and feet.min(axis=1).mean() < 0.1
    assert joints[0, 0, 1] > 0.7  # standing pelvis height
    # starts at the origin facing +Z with the person's left on +X
    np.testing.assert_allclose(joints[0, 0, [0, 2]], 0, atol=1e-6)
    assert joints[0, 1, 0] > joints[0, 2, 0] and joints[0, 16, 0] > joints[0, 17, 0]
    assert (joints[0, 10, 2] - joints[0, 7, 2]) > 0.05  # toes point forward
    # bone lengths are the HumanML3D target skeleton's
    for c in range(1, 22):
        d = np.linalg.norm(joints[:, c] - joints[:, T2M.parents[c]], axis=-1)
        np.testing.assert_allclose(d, T2M.tgt_bone_lengths[c], atol=2e-4)
    # re-extracting features from the recovered joints is consistent (the tail differs a little
    # because the sigma=20 facing smoothing sees one frame less, see docs §0.3)
    again = extract_features(joints, "t2m")
    assert again.shape == (len(feats) - 1, 263)
    k = len(again) - 60
    np.testing.assert_allclose(again[:k, :67], feats[:k, :67], atol=1e-4)
    np.testing.assert_allclose(again[:k, 193:259], feats[:k, 193:259], atol=1e-4)
    assert np.abs(again[:, :259] - feats[:-1, :259]).max() < 0.02
    np.testing.assert_allclose(recover_from_ric(again), joints[:-1], atol=1e-4)


def test_mirror_and_texts(converted):
    out, res = converted
    line = (out / "texts" / "test_mocapbank.txt").read_text().strip()
    cap, tokens, start, end = line.split("#")
    assert cap.startswith("A person crouches") and (start, end) == ("0.0", "0.0")
    toks = tokens.split()
    assert toks[0].split("/")[0] == "a" and all("/" in t and t.split("/")[0].isalpha() for t in toks)
    assert "left/" in tokens
    mline = (out / "texts" / "Mtest_mocapbank.txt").read_text().strip()
    assert "right hand" in mline and "left" not in mline
    mj = np.load(out / "new_joints" / "Mtest_mocapbank.npy")
    j = np.load(out / "new_joints" / "test_mocapbank.npy")
    assert mj.shape == j.shape and res["mirror"]["name"] == "Mtest_mocapbank"
    # mirrored motion: about the same heights with left and right swapped (not exactly: the
    # HumanML3D target skeleton is slightly asymmetric, so retargeting changes them a little)
    assert np.isfinite(mj).all() and np.abs(mj - j).max() > 0.05
    np.testing.assert_allclose(mj[:, 7, 1], j[:, 8, 1], atol=0.03)
    np.testing.assert_allclose(mj[:, 20, 1], j[:, 21, 1], atol=0.03)
    np.testing.assert_allclose(mj[:, 15, 1], j[:, 15, 1], atol=0.03)


def _write_mapping(tmp_path, **changes):
    m = json.loads(MAPPING.read_text())
    m.update(changes)
    p = tmp_path / "mapping.json"
    p.write_text(json.dumps(m))
    return p


def test_unknown_bvh_joint_in_mapping(tmp_path):
    p = _write_mapping(tmp_path, spine2="Chest3")
    with pytest.raises(MappingError) as exc:
        convert_bvh(BVH, p, tmp_path / "out", log=None)
    msg = str(exc.value)
    assert str(p) in msg and "'spine2'" in msg and "'Chest3'" in msg
    assert not (tmp_path / "out" / "new_joint_vecs").exists()


def test_unknown_key_and_missing_key(tmp_path):
    p = _write_mapping(tmp_path, left_toe="LeftAnkle_end")
    with pytest.raises(MappingError, match=r"mapping\.json.*'left_toe'"):
        convert_bvh(BVH, p, tmp_path / "out", log=None)
    m = json.loads(MAPPING.read_text())
    del m["head"]
    with pytest.raises(MappingError, match="missing t2m joints: head"):
        convert_bvh(BVH, m, tmp_path / "out", log=None)
    bad = _write_mapping(tmp_path, spine3={"lerp": ["Chest2", "Nek"], "t": 0.3})
    with pytest.raises(MappingError, match=r"'spine3'.*'Nek'"):
        convert_bvh(BVH, bad, tmp_path / "out", log=None)


def test_resample_and_axes():
    x = np.arange(31, dtype=float)[:, None, None] * np.ones((1, 2, 3))  # 1 s at 30 fps
    y = resample(x, 30.0, 20.0)
    assert y.shape[0] == 21
    np.testing.assert_allclose(y[:, 0, 0], np.arange(21) * 1.5)
    m = to_y_up(np.eye(3), "z")
    assert np.linalg.det(m) == pytest.approx(1.0)
    np.testing.assert_allclose(to_y_up(np.array([0.0, 0.0, 1.0]), "z"), [0, 1, 0])
    assert swap_left_right("Left hand, right foot; leftover") == "Right hand, left foot; leftover"
    assert caption_line("a man walks. # fast").startswith("a man walks. fast#a/OTHER man/OTHER walks/OTHER")


def test_z_up_cm_bvh_round_trip(tmp_path, converted):
    """Joints -> Z-up centimetre BVH (write_bvh) -> convert --up z -> the same features."""
    out, _ = converted
    joints = np.load(out / "new_joints" / "test_mocapbank.npy").astype(np.float64)[:80]
    zup = to_y_up(joints, "z")  # the map is its own inverse
    write_bvh(tmp_path / "zup.bvh", zup, "t2m", fps=20, scale=100.0)
    identity = {n: n for n in T2M.joint_names}
    res = convert_bvh(tmp_path / "zup.bvh", identity, tmp_path / "o", up="z", log=None)
    assert res["unit"] == "cm" and res["target_frames"] == 80
    feats = np.load(res["features"])
    ref = extract_features(joints, "t2m")
    # positions/velocities match closely; the 6D rotations of short bones amplify the ~4e-5 m
    # writer error that comes from the non-rigid collar lerp of the mocapbank mapping
    np.testing.assert_allclose(feats[:, :67], ref[:, :67], atol=2e-4)
    np.testing.assert_allclose(feats[:, 193:], ref[:, 193:], atol=2e-4)
    np.testing.assert_allclose(feats, ref, atol=2e-3)


def test_cli_batch_keeps_going(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.bvh").write_text(BVH.read_text())
    (src / "bad.bvh").write_text(BVH.read_text().replace("CHANNELS 3", "CHANNELS three", 1))
    rc = main([str(src), "--mapping", str(MAPPING), "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 1
    captured = capsys.readouterr()
    assert "converted 1 file(s), 1 failed" in captured.out
    assert "bad.bvh:9:" in captured.err
    assert (tmp_path / "out" / "new_joint_vecs" / "good.npy").is_file()
    assert not (tmp_path / "out" / "new_joint_vecs" / "bad.npy").exists()
    rc = main([str(src / "good.bvh"), "--mapping", str(MAPPING), "--out", str(tmp_path / "out2"), "--name", "clip01",
               "--caption", "a person squats", "--quiet"])
    assert rc == 0 and (tmp_path / "out2" / "texts" / "clip01.txt").is_file()
