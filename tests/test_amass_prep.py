"""prepare/amass_to_humanml3d.py end to end on a fabricated SMPL+H model and AMASS files (offline).

The body model is a few hundred vertices in exactly the pickle layout ``smplx.create(dir,
model_type='smplh')`` loads (``<dir>/smplh/SMPLH_MALE.pkl``); its joints sit on the t2m target
skeleton (utils.paramUtil), so the decoded features can be compared with the body-model joints.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from utils.motion_process import recover_from_ric
from utils.paramUtil import T2M

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "prepare" / "amass_to_humanml3d.py"

smplx = pytest.importorskip("smplx")
import torch  # noqa: E402

from prepare.amass_to_humanml3d import (  # noqa: E402
    BodyModelError, ModelCache, amass_joints, load_body_model, main, read_amass,
)

N_JOINTS = 52  # SMPL+H: 22 body + 2 x 15 hand joints
# explicit left/right body pairs (HumanML3D raw_pose_processing), written out independently of paramUtil
LR_PAIRS = [(1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)]


def _smplh_parents():
    parents = list(T2M.parents)  # the SMPL body tree is the t2m tree
    for wrist, base in ((20, 22), (21, 37)):
        for finger in range(5):
            b = base + 3 * finger
            parents += [wrist, b, b + 1]
    return parents


def _rest_joints(parents):
    """Body joints on the t2m target skeleton (pelvis 0.95 m up), fingers 3 cm segments below the wrists."""
    J = np.zeros((N_JOINTS, 3))
    J[0] = [0.0, 0.95, 0.0]
    offsets = T2M.tgt_offsets()
    for j in range(1, 22):
        J[j] = J[parents[j]] + offsets[j]
    for j in range(22, N_JOINTS):
        finger = ((j - 22) % 15) // 3
        step = np.array([0.01 * (finger - 2), -0.03, 0.0])
        J[j] = J[parents[j]] + step
    return J


def write_smplh_model(folder: Path, gender="MALE", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    parents = _smplh_parents()
    J = _rest_joints(parents)
    per = 6
    cube = 0.02 * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    v_template = (J[:, None, :] + cube[None]).reshape(-1, 3)                  # (312, 3)
    V = v_template.shape[0]
    owner = np.repeat(np.arange(N_JOINTS), per)
    J_regressor = np.zeros((N_JOINTS, V))
    J_regressor[owner, np.arange(V)] = 1.0 / per                               # joint = centre of its 6 vertices
    weights = np.zeros((V, N_JOINTS))
    weights[np.arange(V), owner] = 1.0
    shapedirs = np.zeros((V, 3, 10))
    shapedirs[:, :, 0] = 0.05 * v_template                                     # beta 0: uniform scale
    posedirs = 1e-3 * rng.standard_normal((V, 3, 9 * (N_JOINTS - 1)))
    faces = np.stack([np.arange(0, V - 2), np.arange(1, V - 1), np.arange(2, V)], axis=1).astype(np.uint32)
    kintree = np.stack([np.array([4294967295] + parents[1:], dtype=np.int64), np.arange(N_JOINTS)])
    model = {
        "v_template": v_template, "shapedirs": shapedirs, "posedirs": posedirs, "J_regressor": J_regressor,
        "weights": weights, "kintree_table": kintree, "f": faces,
        "hands_componentsl": np.eye(45), "hands_componentsr": np.eye(45),
        "hands_meanl": np.zeros(45), "hands_meanr": np.zeros(45),
    }
    path = folder / "smplh" / f"SMPLH_{gender}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(model, f, protocol=2)
    return path


def walk_poses(fps, seconds, seed=0):
    """A walk with a slow left turn: (poses (T, 156), trans (T, 3)) in AMASS's Z-up world."""
    rng = np.random.default_rng(seed)
    T = int(fps * seconds)
    t = np.arange(T) / fps
    w = 2 * np.pi * 1.0  # one stride cycle per second
    poses = np.zeros((T, 3 * N_JOINTS))
    yaw = 0.25 * t
    body_to_world = Rotation.from_euler("x", 90, degrees=True)  # SMPL Y-up body -> Z-up world
    sway = Rotation.from_euler("y", 0.05 * np.sin(w * t)[:, None])
    root = Rotation.from_euler("z", yaw[:, None]) * body_to_world * sway
    poses[:, 0:3] = root.as_rotvec()

    def put(j, axis_angle):
        poses[:, 3 * j:3 * j + 3] = axis_angle

    s = np.sin(w * t)
    x = np.array([1.0, 0.0, 0.0])
    put(1, -0.5 * s[:, None] * x)                               # left hip
    put(2, 0.5 * s[:, None] * x)                                # right hip
    put(4, 0.8 * np.maximum(0, s)[:, None] * x)                 # left knee
    put(5, 0.8 * np.maximum(0, -s)[:, None] * x)                # right knee
    put(16, 0.4 * s[:, None] * x + [0, 0, -0.2])                # left shoulder
    put(17, -0.4 * s[:, None] * x + [0, 0, 0.2])                # right shoulder
    put(18, np.tile([0.0, -0.3, 0.0], (T, 1)))                  # left elbow
    put(19, np.tile([0.0, 0.3, 0.0], (T, 1)))
    poses[:, 66:] = 0.3 * rng.standard_normal((T, 90))          # hands: must not move the body joints
    # forward in the world: body +Z -> world -Y, turned by the yaw
    fwd = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros(T)], axis=1)
    step = 1.2 / fps
    trans = np.cumsum(fwd * step, axis=0) + np.array([0.3, -0.2, 0.0])
    trans[:, 2] += 0.02 * np.sin(2 * w * t)
    return poses, trans


def write_amass(path: Path, fps, seconds, gender="male", fps_key="mocap_framerate", drop=None, seed=0):
    poses, trans = walk_poses(fps, seconds, seed)
    betas = np.zeros(16)
    betas[0] = 0.6
    data = {"poses": poses, "trans": trans, "betas": betas, "gender": np.array(gender), fps_key: np.array(float(fps)),
            "dmpls": np.zeros((len(poses), 8))}
    if drop:
        data.pop(drop)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return poses, trans


def expected_joints(body_dir, npz_path, trim, start, end):
    """Independent expectation: smplx's full forward pass, every k-th frame, Y-up, trim, crop, -X."""
    d = np.load(npz_path)
    k = int(float(d["mocap_framerate"]) / 20)
    model = smplx.create(str(body_dir), model_type="smplh", gender="male", use_pca=False, flat_hand_mean=True,
                         num_betas=10, batch_size=1, vertex_ids={n: 0 for n in _VERTEX_NAMES})
    p = torch.tensor(d["poses"][::k], dtype=torch.float32)
    n = p.shape[0]
    with torch.no_grad():
        out = model(betas=torch.tensor(d["betas"][None, :10], dtype=torch.float32).expand(n, -1),
                    global_orient=p[:, :3], body_pose=p[:, 3:66], left_hand_pose=p[:, 66:111],
                    right_hand_pose=p[:, 111:156], transl=torch.tensor(d["trans"][::k], dtype=torch.float32))
    j = out.joints[:, :22].double().numpy()
    j = j @ np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)
    j = j[trim:][start:end]
    j[..., 0] *= -1
    return j


_VERTEX_NAMES = ["nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe",
                 "RHeel"] + [s + t for s in "lr" for t in ("thumb", "index", "middle", "ring", "pinky")]


def similarity_fit(a, b):
    """Least-squares s, R, t with b ~ s R a + t over all points (Umeyama); returns (residual max, det R, s)."""
    A, B = a.reshape(-1, 3), b.reshape(-1, 3)
    ma, mb = A.mean(0), B.mean(0)
    A0, B0 = A - ma, B - mb
    U, S, Vt = np.linalg.svd(B0.T @ A0)
    D = np.diag([1, 1, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / (A0 ** 2).sum()
    res = np.abs(s * A0 @ R.T - B0).max()
    return res, np.linalg.det(R), s


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("amass")
    body = tmp / "body_models"
    write_smplh_model(body, "MALE")
    amass = tmp / "amass"
    write_amass(amass / "CMU" / "01" / "01_01_poses.npz", fps=60, seconds=4.0)
    write_amass(amass / "MPI_HDM05" / "bk" / "walk_poses.npz", fps=120, seconds=6.0, seed=1)
    write_amass(amass / "CMU" / "02" / "02_01_poses.npz", fps=60, seconds=3.0, drop="trans")
    write_amass(amass / "CMU" / "03" / "03_01_poses.npz", fps=60, seconds=3.0, gender="female")
    index = tmp / "index.csv"
    index.write_text(
        "source_path,start_frame,end_frame,new_name\n"
        "./pose_data/CMU/01/01_01_poses.npy,10,70,000001.npy\n"          # 80 frames @20 fps -> 60
        "./pose_data/MPI_HDM05/bk/walk_poses.npy,5,55,000002.npy\n"      # 120 @20 fps, 3 s trimmed -> 50
        "./pose_data/CMU/09/missing_poses.npy,0,50,000003.npy\n"         # no such file
        "./pose_data/CMU/02/02_01_poses.npy,0,50,000004.npy\n"           # npz without 'trans'
        "./pose_data/CMU/03/03_01_poses.npy,0,50,000005.npy\n"           # female: no female model
    )
    texts = tmp / "texts"
    texts.mkdir()
    (texts / "000001.txt").write_text(
        "a person walks forward and turns left#a/DET person/NOUN walk/VERB forward/ADV and/CCONJ turn/VERB "
        "left/ADV#0.0#0.0\n"
        "someone raises the right hand while walking#someone/PRON raise/VERB the/DET right/ADJ hand/NOUN "
        "while/SCONJ walk/VERB#0.5#2.0\n")
    (texts / "000002.txt").write_text(
        "a man walks to the left#a/DET man/NOUN walk/VERB to/ADP the/DET left/NOUN#0.0#0.0\n")
    (texts / "M000002.txt").write_text("given mirror text#give/VERB mirror/NOUN text/NOUN#0.0#0.0\n")
    splits = tmp / "splits"
    splits.mkdir()
    (splits / "train.txt").write_text("000001\nM000001\n000003\nM000003\n")
    (splits / "test.txt").write_text("000002\nM000002\n")
    out = tmp / "HumanML3D"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--amass-dir", str(amass), "--body-model-dir", str(body),
         "--index-csv", str(index), "--texts-dir", str(texts), "--split-dir", str(splits), "--out", str(out),
         "--save-joints"],
        cwd=str(tmp), capture_output=True, text=True, timeout=300)
    return {"tmp": tmp, "body": body, "amass": amass, "out": out, "proc": proc, "index": index}


def test_end_to_end_outputs(built):
    proc, out = built["proc"], built["out"]
    assert proc.returncode == 1, proc.stdout + proc.stderr  # three rows failed
    for name, n_joint_frames in (("000001", 60), ("000002", 50)):
        for n in (name, "M" + name):
            vec = np.load(out / "new_joint_vecs" / f"{n}.npy")
            assert vec.dtype == np.float32 and vec.shape == (n_joint_frames - 1, 263)
            assert np.isfinite(vec).all()
            nj = np.load(out / "new_joints" / f"{n}.npy")
            assert nj.shape == (n_joint_frames - 1, 22, 3)
            assert np.allclose(recover_from_ric(vec), nj, atol=1e-5)
            assert np.load(out / "joints" / f"{n}.npy").shape == (n_joint_frames, 22, 3)
    assert not (out / "new_joint_vecs" / "000003.npy").exists()
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == (263,) and std.shape == (263,)
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()


def test_joints_match_smplx_forward_and_conventions(built):
    """The written input joints equal smplx's full forward pass at 20 fps, Y-up, trimmed, cropped, X negated."""
    out, amass, body = built["out"], built["amass"], built["body"]
    exp1 = expected_joints(body, amass / "CMU" / "01" / "01_01_poses.npz", trim=0, start=10, end=70)
    exp2 = expected_joints(body, amass / "MPI_HDM05" / "bk" / "walk_poses.npz", trim=60, start=5, end=55)
    got1 = np.load(out / "joints" / "000001.npy")
    got2 = np.load(out / "joints" / "000002.npy")
    assert np.abs(got1 - exp1).max() < 2e-5
    assert np.abs(got2 - exp2).max() < 2e-5
    # Y-up: the head is above the pelvis and the feet below
    assert (got1[:, 15, 1] > got1[:, 0, 1] + 0.3).all() and (got1[:, 10, 1] < got1[:, 0, 1] - 0.5).all()


def test_mirror_is_x_negated_and_left_right_swapped(built):
    out = built["out"]
    j = np.load(out / "joints" / "000001.npy")
    m = np.load(out / "joints" / "M000001.npy")
    expect = j.copy()
    expect[..., 0] *= -1
    for a, b in LR_PAIRS:
        expect[:, [a, b]] = expect[:, [b, a]]
    assert np.array_equal(m, expect)
    # after processing the mirror stays a mirror up to the (slightly asymmetric) target skeleton
    nj = np.load(out / "new_joints" / "000001.npy")
    nm = np.load(out / "new_joints" / "M000001.npy")
    flipped = nj.copy()
    flipped[..., 0] *= -1
    for a, b in LR_PAIRS:
        flipped[:, [a, b]] = flipped[:, [b, a]]
    assert np.abs(flipped - nm).max() < 0.05


def test_features_decode_to_body_model_joints(built):
    """Decoded new_joints = the body-model joints up to yaw, uniform scale (retargeting) and translation."""
    out = built["out"]
    # The model's bones are the target skeleton's, so retargeting is a pure rescale for the clips;
    # a mirror has its left bones on the right, which the (slightly asymmetric) target undoes: ~2 cm.
    for name, tol in (("000001", 1e-4), ("000002", 1e-4), ("M000001", 3e-2)):
        src = np.load(out / "joints" / f"{name}.npy").astype(np.float64)[:-1]
        dec = recover_from_ric(np.load(out / "new_joint_vecs" / f"{name}.npy").astype(np.float64))
        res, det, s = similarity_fit(src, dec)
        assert det > 0.999, "decoding must be a proper rotation (no reflection)"
        assert 0.9 < s < 1.0  # betas[0] = 0.6 enlarged the body by 3 %; retargeting shrinks it back
        assert res < tol, f"{name}: decoded joints differ from the body-model joints by {res:.4f} m"


def test_texts_copied_and_mirrored(built):
    out, tmp = built["out"], built["tmp"]
    assert (out / "texts" / "000001.txt").read_text() == (tmp / "texts" / "000001.txt").read_text()
    lines = (out / "texts" / "M000001.txt").read_text().splitlines()
    assert lines[0] == ("a person walks forward and turns right#a/DET person/NOUN walk/VERB forward/ADV and/CCONJ "
                        "turn/VERB right/ADV#0.0#0.0")
    assert lines[1].startswith("someone raises the left hand while walking#") and "left/ADJ" in lines[1]
    assert lines[1].endswith("#0.5#2.0")
    assert (out / "texts" / "M000002.txt").read_text() == "given mirror text#give/VERB mirror/NOUN text/NOUN#0.0#0.0\n"


def test_failures_reported_and_splits_copied(built):
    proc, out, index = built["proc"], built["out"], built["index"]
    report = json.loads((out / "amass_to_humanml3d_report.json").read_text())
    assert report["converted"] == 2 and report["failed"] == 3
    by_line = {f["line"]: f["error"] for f in report["failures"]}
    assert "source file not found" in by_line[4] and "missing_poses.npz" in by_line[4]
    assert "02_01_poses.npz" in by_line[5] and "trans" in by_line[5]
    assert "SMPLH_FEMALE.pkl" in by_line[6] and "mano.is.tue.mpg.de" in by_line[6]
    assert "line 4" in proc.stderr and "line 6" in proc.stderr
    assert (out / "train.txt").read_text() == "000001\nM000001\n000003\nM000003\n"
    assert report["splits"]["train"] == {"ids": 4, "missing": 2, "written": 4}
    assert (out / "test.txt").is_file()


def test_body_joints_equal_smplx_forward(built):
    body = built["body"]
    bj = load_body_model(body, "smplh", "male")
    model = smplx.create(str(body), model_type="smplh", gender="male", use_pca=False, flat_hand_mean=True,
                         num_betas=10, vertex_ids={n: 0 for n in _VERTEX_NAMES})
    rng = np.random.default_rng(3)
    poses = 0.4 * rng.standard_normal((7, 156))
    betas = rng.standard_normal(16)
    trans = rng.standard_normal((7, 3))
    got = bj.joints(poses, betas, trans, chunk=3)
    p = torch.tensor(poses, dtype=torch.float32)
    with torch.no_grad():
        ref = model(betas=torch.tensor(betas[None, :10], dtype=torch.float32).expand(7, -1), global_orient=p[:, :3],
                    body_pose=p[:, 3:66], left_hand_pose=p[:, 66:111], right_hand_pose=p[:, 111:],
                    transl=torch.tensor(trans, dtype=torch.float32)).joints[:, :22].numpy()
    assert np.abs(got - ref).max() < 1e-5


def test_missing_body_model_and_bad_npz_errors(built, tmp_path):
    with pytest.raises(BodyModelError) as err:
        load_body_model(tmp_path, "smplx", "neutral")
    msg = str(err.value)
    assert str(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz") in msg and "smpl-x.is.tue.mpg.de" in msg
    bad = built["amass"] / "CMU" / "02" / "02_01_poses.npz"
    with pytest.raises(Exception, match="02_01_poses.npz.*trans"):
        read_amass(bad)
    # SMPL-X files name the rate mocap_frame_rate
    p = tmp_path / "x_stageii.npz"
    write_amass(p, fps=120, seconds=0.5, fps_key="mocap_frame_rate")
    seq = read_amass(p)
    assert seq["fps"] == 120 and seq["model_type"] == "smplh"
    j = amass_joints(seq, ModelCache(built["body"]))
    assert j.shape == (10, 22, 3)


def test_kit_and_module_invocation(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "prepare.amass_to_humanml3d", "--dataname", "kit"],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert "already processed" in proc.stderr and "check_dataset.py" in proc.stderr
    assert main(["--dataname", "kit"]) == 2


def test_amass_extended_model_npz_layout(built, tmp_path):
    """AMASS's 'Extended SMPL+H' download (smplh/<gender>/model.npz, possibly without the MANO PCA fields)."""
    with open(built["body"] / "smplh" / "SMPLH_MALE.pkl", "rb") as f:
        model = pickle.load(f)
    for k in ("hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr"):
        model.pop(k)
    (tmp_path / "smplh" / "male").mkdir(parents=True)
    np.savez(tmp_path / "smplh" / "male" / "model.npz", **model)
    a = load_body_model(tmp_path, "smplh", "male")
    b = load_body_model(built["body"], "smplh", "male")
    assert a.source.endswith("model.npz")
    poses = 0.3 * np.random.default_rng(0).standard_normal((4, 156))
    assert np.allclose(a.joints(poses, np.ones(16)), b.joints(poses, np.ones(16)), atol=1e-6)


def test_skip_existing_resume(built, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(built["out"], out)
    args = ["--amass-dir", str(built["amass"]), "--body-model-dir", str(built["body"]), "--index-csv",
            str(built["index"]), "--out", str(out), "--skip-existing", "--no-stats", "--no-progress"]
    assert main(args) == 1  # the three bad rows still fail
    report = json.loads((out / "amass_to_humanml3d_report.json").read_text())
    assert report["skipped_existing"] == 2 and report["converted"] == 0 and report["failed"] == 3


def test_humanact12_rows_taken_whole_and_neutral_smplh_is_female(built, tmp_path):
    """HumanAct12 joints are used as shipped (no head trim, no crop, no X negation); only the mirror
    negates X. SMPL+H has no neutral model: HumanML3D uses the female one for every non-male file."""
    body = np.load(built["out"] / "joints" / "000001.npy").astype(np.float64)[:40]  # a real walk, Y-up
    clip = np.concatenate([body, body[:, 20:22] + 0.05], axis=1)  # + 2 hand joints, as HumanAct12's 24
    h = tmp_path / "humanact12"
    (h / "humanact12").mkdir(parents=True)
    np.save(h / "humanact12" / "P01G01R01F0001T0064A0101.npy", clip)
    index = tmp_path / "index.csv"
    index.write_text("source_path,start_frame,end_frame,new_name\n"
                     "./pose_data/humanact12/humanact12/P01G01R01F0001T0064A0101.npy,5,15,009999.npy\n")
    out = tmp_path / "out"
    args = ["--amass-dir", str(built["amass"]), "--body-model-dir", str(built["body"]), "--index-csv", str(index),
            "--out", str(out), "--humanact12-dir", str(h), "--save-joints", "--no-stats", "--no-progress"]
    assert main(args) == 0
    got = np.load(out / "joints" / "009999.npy")
    assert got.shape == (40, 22, 3) and np.allclose(got, clip[:, :22], atol=1e-6)
    mirrored = np.load(out / "joints" / "M009999.npy")
    expect = clip[:, :22].copy()
    expect[..., 0] *= -1
    for a, b in LR_PAIRS:
        expect[:, [a, b]] = expect[:, [b, a]]
    assert np.allclose(mirrored, expect, atol=1e-6)
    with pytest.raises(BodyModelError, match="SMPLH_FEMALE"):
        ModelCache(tmp_path).get("smplh", "neutral")
