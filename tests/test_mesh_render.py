"""utils/mesh_render.py: the skinned mannequin (mannequin-x), the retargeting IK, the numpy rasteriser, the
outputs, and the SMPL-family path through ``smplx`` on fabricated model files (offline)."""
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mannequin")

from utils import mesh_render as mr  # noqa: E402

N = mr.N_JOINTS


@pytest.fixture(scope="module")
def rig():
    return mr.MannequinRig()


@pytest.fixture(scope="module")
def clip(reference_dir):
    """The real HumanML3D clip 012314 (170 frames): its root travels ~2.5 m."""
    return np.load(reference_dir / "humanml3d_sample" / "new_joints" / "012314.npy").astype(np.float64)


def _identity(T):
    return np.broadcast_to(np.eye(3), (T, N, 3, 3)).copy()


# ---------------------------------------------------------------------------- skinning
def test_rest_pose_reproduces_rest_vertices(rig):
    assert rig.vertices.shape == (24256, 3) and rig.faces.shape == (48396, 3)
    assert np.allclose(rig.weights.sum(1), 1.0) and (rig.weights >= 0).all()
    v = rig.pose(_identity(1), rig.rest_joints[None])
    assert np.abs(v[0] - rig.vertices).max() < 1e-5
    # a rigid motion of the whole body moves every vertex rigidly
    R = mr.axis_angle_matrix(np.array([0.0, 1.0, 0.0]), np.array(0.7))
    G = np.broadcast_to(R, (1, N, 3, 3))
    pos = (rig.rest_joints @ R.T + [1.0, 0.2, -0.5])[None]
    v = rig.pose(G, pos)
    assert np.abs(v[0] - (rig.vertices @ R.T + [1.0, 0.2, -0.5])).max() < 1e-5


def test_skinning_equals_the_package(rig):
    """Our (V, 22) linear blend skinning reproduces mannequin-x's own posed mesh (flat hands: the hand
    joints folded into the wrists are then exactly rigid)."""
    from mannequin import Mannequin
    flat = mr.MannequinRig(flat_hands=True)
    m = Mannequin("wooden", flat_hand_mean=True)
    rng = np.random.default_rng(0)
    pose = m.rest_pose(batch_dims=(3,), dtype=np.float64)
    pose["body_pose"] = 0.5 * rng.standard_normal((3, 21, 3))
    pose["global_rotation"] = 0.5 * rng.standard_normal((3, 3))
    pose["global_translation"] = rng.standard_normal((3, 3))
    X = m.joint_transforms(pose)
    assert list(m.joint_names[:N]) == ["Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2",
                                       "L_Ankle", "R_Ankle", "Spine3", "L_Foot", "R_Foot", "Neck", "L_Collar",
                                       "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow",
                                       "L_Wrist", "R_Wrist"]  # SMPL's body joints, in SMPL (= t2m) order
    got = flat.pose(X[:, :N, :3, :3], X[:, :N, :3, 3])
    assert np.abs(got - m.vertices(pose)).max() < 1e-4


def test_rotating_one_joint_moves_only_its_weighted_vertices(rig):
    elbow = 18  # left elbow; its only descendant among the 22 joints is the left wrist (20)
    L = _identity(1)
    L[0, elbow] = mr.axis_angle_matrix(np.array([0.0, 1.0, 0.0]), np.array(-1.2))
    G = L.copy()
    for j in range(1, N):
        G[:, j] = G[:, mr.SMPL_PARENTS[j]] @ L[:, j]
    pos = np.zeros((1, N, 3))
    pos[0, 0] = rig.rest_joints[0]
    for j in range(1, N):
        p = mr.SMPL_PARENTS[j]
        pos[0, j] = pos[0, p] + G[0, p] @ (rig.rest_joints[j] - rig.rest_joints[p])
    moved = np.linalg.norm(rig.pose(G, pos)[0] - rig.vertices, axis=1) > 1e-5
    influence = rig.weights[:, [elbow, 20]].sum(1)
    assert moved.any()
    assert not moved[influence == 0].any()                 # nothing else moves
    assert moved[influence > 0.05].mean() > 0.99           # what it drives does


# ---------------------------------------------------------------------------- IK
def test_retarget_recovers_rotations_of_the_same_skeleton(rig):
    from mannequin import Mannequin
    m = Mannequin("wooden")
    rng = np.random.default_rng(1)
    pose = m.rest_pose(batch_dims=(5,), dtype=np.float64)
    pose["body_pose"] = 0.4 * rng.standard_normal((5, 21, 3))
    pose["global_rotation"] = rng.standard_normal((5, 3))
    pose["global_translation"] = rng.standard_normal((5, 3))
    P = m.joint_transforms(pose)[:, :N, :3, 3]
    G, fk = mr.retarget(P, rig.rest_joints)
    assert np.abs(fk - P).max() < 1e-9                      # same bone lengths: joints reproduced exactly
    assert np.allclose(G @ np.swapaxes(G, -1, -2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(G), 1.0)


def _angle_deg(A, B):
    c = (np.trace(np.swapaxes(A, -1, -2) @ B, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def test_retarget_recovers_hinge_limbs_exactly(rig):
    """Random hips / shoulders / root, knees and elbows bent about their hinge only: the IK gives back every
    limb rotation (the world-space swing of utils.skeleton's IK would be off by up to ~100 degrees of twist)."""
    from mannequin import Mannequin
    m = Mannequin("wooden")
    rng = np.random.default_rng(3)
    pose = m.rest_pose(batch_dims=(6,), dtype=np.float64)
    bp = np.zeros((6, 21, 3))
    for j in (1, 2, 16, 17):                                  # body_pose row = joint - 1
        bp[:, j - 1] = 0.6 * rng.standard_normal((6, 3))
    bp[:, 3], bp[:, 4] = [1.2, 0, 0], [0.9, 0, 0]               # knees flex about +x
    bp[:, 17], bp[:, 18] = [0, -1.3, 0], [0, 1.0, 0]            # left elbow about -y, right about +y
    pose["body_pose"] = bp
    pose["global_rotation"] = rng.standard_normal((6, 3))
    X = m.joint_transforms(pose)
    G, _ = mr.retarget(X[:, :N, :3, 3], rig.rest_joints)
    for j in (1, 2, 4, 5, 16, 17, 18, 19):
        assert _angle_deg(G[:, j], X[:, j, :3, :3]).max() < 0.01, j
    G0, _ = mr.retarget(X[:, :N, :3, 3], rig.rest_joints, hinge_twist=False)
    assert _angle_deg(G0[:, 1], X[:, 1, :3, :3]).max() > 20


def test_retarget_real_clip_bone_directions(rig, clip):
    G, fk = mr.retarget(clip, rig.rest_joints)
    for j, c in mr._CHILD.items():                            # every single-child bone points at its target
        d = np.einsum("tij,j->ti", G[:, j], rig.rest_joints[c] - rig.rest_joints[j])
        t = clip[:, c] - clip[:, j]
        cos = (d * t).sum(-1) / np.linalg.norm(d, axis=-1) / np.linalg.norm(t, axis=-1)
        assert cos.min() > 1 - 1e-9, j
    assert np.abs(fk[:, 0] - clip[:, 0]).max() < 1e-12
    # other proportions than the t2m target skeleton: joints stay within ~10 cm of the data
    assert np.linalg.norm(fk - clip, axis=-1).max() < 0.15


# ---------------------------------------------------------------------------- real clip
def test_feet_touch_the_floor_on_a_real_clip(clip):
    v, _ = mr.pose_body(clip)
    lowest = v[..., 1].min(1)                                 # lowest vertex per frame
    print(f"\nlowest vertex per frame: median {np.median(lowest):+.3f} m, min {lowest.min():+.3f}, "
          f"max {lowest.max():+.3f}, on the floor (< 3 cm) in {100 * (lowest < 0.03).mean():.0f}% of the frames")
    assert abs(np.median(lowest)) < 0.02
    assert lowest.min() > -0.03                               # no visible sinking
    assert (lowest < 0.03).mean() > 0.8                       # a foot on the floor almost all the time


def test_silhouette_moves_with_the_root(clip):
    idx = np.arange(0, len(clip), 6)
    joints = clip[idx]
    cam = mr.Camera(160, 160, distance=8.0)
    frames, masks = mr.render_frames(joints, size=(160, 160), camera=cam, follow=False, return_masks=True)
    assert frames.shape == (len(idx), 160, 160, 3) and frames.dtype == np.uint8
    area = masks.sum((1, 2))
    assert (area > 50).all()
    cx = (masks * np.arange(160)[None, None, :]).sum((1, 2)) / area
    # where the (fixed) camera sees the root
    offset, R = cam.basis()
    eye = np.array([clip[:, 0, 0].mean(), 0.85, clip[:, 0, 2].mean()]) + offset
    rx, _, _ = mr._project(joints[:, 0], eye, R, cam)
    span = rx.max() - rx.min()
    assert span > 30                                          # the clip travels across the picture
    assert np.corrcoef(cx, rx)[0, 1] > 0.95
    assert np.abs(cx - rx).mean() < 0.15 * span + 3
    # with the following camera the body stays in the middle of the picture
    _, fm = mr.render_frames(joints, size=(160, 160), camera=mr.Camera(distance=8.0), return_masks=True, fps=20 / 6)
    fcx = (fm * np.arange(160)[None, None, :]).sum((1, 2)) / fm.sum((1, 2))
    assert np.abs(fcx - 80).max() < 25 and fcx.std() < 0.5 * cx.std()


def test_outputs_written_and_readable(clip, tmp_path, capsys):
    from PIL import Image
    joints = clip[:12]
    gif = mr.render_mesh(tmp_path / "a.gif", joints, size=(96, 80), title="a person walks")
    with Image.open(gif) as im:
        assert im.size == (96, 80) and im.n_frames == 12
        assert abs(im.info["duration"] - 50) <= 1
    png = mr.render_mesh(tmp_path / "a.png", joints, size=(96, 96))
    with Image.open(png) as im:
        assert im.size == (96, 96)
    npy = mr.render_mesh(tmp_path / "a.npy", joints, size=(64, 64), stride=2)
    assert np.load(npy).shape == (6, 64, 64, 3)
    out = mr.render_mesh(tmp_path / "a.mp4", joints, size=(64, 64))
    assert out.is_file() and not list(tmp_path.glob(".*tmp*"))   # atomic: no temporary left behind
    if mr.find_ffmpeg() is None:
        assert out.suffix == ".gif" and "instead of a.mp4" in capsys.readouterr().err
    else:
        assert out.suffix == ".mp4" and out.read_bytes()[4:8] == b"ftyp"
    with pytest.raises(ValueError, match="unsupported output extension"):
        mr.render_mesh(tmp_path / "a.avi", joints, size=(64, 64))
    with pytest.raises(ValueError, match="22, 3"):
        mr.render_frames(np.zeros((4, 21, 3)))


@pytest.mark.skipif(mr.find_ffmpeg() is None, reason="no ffmpeg executable (PATH / imageio-ffmpeg)")
def test_mp4_decodes_to_every_frame(clip, tmp_path):
    out = mr.render_mesh(tmp_path / "b.mp4", clip[:20], size=(64, 64))
    raw = subprocess.run([mr.find_ffmpeg(), "-loglevel", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], capture_output=True, check=True).stdout
    assert len(raw) == 20 * 64 * 64 * 3


def test_cli_features_and_joints(reference_dir, tmp_path, capsys):
    feats = reference_dir / "humanml3d_sample" / "new_joint_vecs" / "012314.npy"
    assert mr.main([str(feats), str(tmp_path / "f.gif"), "--size", "64", "--max-frames", "8"]) == 0
    assert "features, 8 frames" in capsys.readouterr().out
    j = reference_dir / "humanml3d_sample" / "new_joints" / "012314.npy"
    assert mr.main([str(j), str(tmp_path / "j.gif"), "--joints", "--size", "64", "48", "--stride", "40"]) == 0
    assert (tmp_path / "j.gif").is_file()
    assert mr.main([str(feats), str(tmp_path / "x.gif"), "--joints"]) == 2
    assert mr.main([str(j), str(tmp_path / "x.gif"), "--body-model", "smplx"]) == 2
    assert "--body-model-dir" in capsys.readouterr().err


def test_render_time_of_a_10_second_clip(clip, tmp_path):
    """Measured and printed, never asserted (2 CPU cores shared with other jobs): 200 frames at 480 px."""
    joints = np.concatenate([clip, clip[::-1]])[:200]
    t = {}
    t0 = time.time()
    mr.render_mesh(tmp_path / "mesh.gif", joints, size=(480, 480), timings=t)
    mesh_s = time.time() - t0
    print(f"\nmesh 200 frames 480x480: {mesh_s:.1f} s (IK {t['ik_s']:.2f}, skinning {t['skin_s']:.2f}, "
          f"rasterising+shading {t['raster_s']:.1f}, GIF {t['encode_s']:.1f})")
    from utils.plot_script import render_joints
    t0 = time.time()
    render_joints(tmp_path / "skel.gif", joints, figsize=(4.8, 4.8))
    print(f"skeleton 200 frames 480x480 (matplotlib): {time.time() - t0:.1f} s")


# ---------------------------------------------------------------------------- SMPL family (smplx)
def _parents(model_type):
    parents = list(mr.SMPL_PARENTS)
    if model_type == "smpl":
        return parents + [20, 21]                             # the two hand joints
    parents += [15, 15, 15]                                   # SMPL-X: jaw, left eye, right eye
    for wrist, base in ((20, 25), (21, 40)):
        for finger in range(5):
            b = base + 3 * finger
            parents += [wrist, b, b + 1]
    return parents


def write_body_model(folder: Path, model_type="smplx", gender="NEUTRAL", per=182, seed=0) -> Path:
    """A SMPL-X (or SMPL) model file in exactly the layout ``smplx.create(dir, model_type=...)`` reads: its
    joints on the t2m target skeleton, ``per`` vertices around each (SMPL-X: >= 9,930 vertices in all, as
    smplx selects fixed vertex ids for its extra keypoints), each vertex bound to its joint, zero pose
    correctives."""
    from utils.paramUtil import T2M
    rng = np.random.default_rng(seed)
    parents = _parents(model_type)
    nj = len(parents)
    J = np.zeros((nj, 3))
    J[0] = [0.0, 0.95, 0.0]
    off = T2M.tgt_offsets()
    for j in range(1, nj):
        J[j] = J[parents[j]] + (off[j] if j < N else np.array([0.01 * ((j % 5) - 2), -0.03, 0.02]))
    pts = rng.standard_normal((nj, per, 3))
    pts = 0.03 * pts / np.linalg.norm(pts, axis=-1, keepdims=True)
    pts -= pts.mean(1, keepdims=True)                         # each joint is the centre of its vertices
    v = (J[:, None] + pts).reshape(-1, 3)
    V = len(v)
    owner = np.repeat(np.arange(nj), per)
    jreg = np.zeros((nj, V))
    jreg[owner, np.arange(V)] = 1.0 / per
    w = np.zeros((V, nj))
    w[np.arange(V), owner] = 1.0
    local = np.stack([np.arange(per - 2), np.arange(1, per - 1), np.arange(2, per)], 1)
    faces = (np.arange(nj)[:, None, None] * per + local[None]).reshape(-1, 3)
    shapedirs = np.zeros((V, 3, 20 if model_type == "smplx" else 10), np.float32)
    shapedirs[:, :, 0] = 0.05 * v
    model = dict(v_template=v.astype(np.float32), f=faces.astype(np.int32), J_regressor=jreg.astype(np.float32),
                 weights=w.astype(np.float32), kintree_table=np.stack([np.array([-1] + parents[1:]), np.arange(nj)]),
                 shapedirs=shapedirs, posedirs=np.zeros((V, 3, (nj - 1) * 9), np.float32))
    if model_type == "smpl":
        import pickle
        path = folder / "smpl" / f"SMPL_{gender}.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(model, fh, protocol=2)
        return path
    model.update(hands_componentsl=np.eye(45), hands_componentsr=np.eye(45), hands_meanl=np.zeros(45),
                 hands_meanr=np.zeros(45), lmk_faces_idx=np.arange(51), lmk_bary_coords=np.full((51, 3), 1 / 3))
    path = folder / "smplx" / f"SMPLX_{gender}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **model)
    return path


def _check_body(body, clip, tmp_path, name):
    assert body.rest_joints.shape == (N, 3) and body.faces.max() < len(body.vertices)
    joints = clip[::10]
    G, fk = mr.retarget(joints, body.rest_joints)
    verts, posed_joints = body._forward(G, fk[:, 0] - body.rest_joints[0])
    # smplx's own forward pass puts its joints where our FK says: rotations and root handed over correctly
    assert np.abs(posed_joints - fk).max() < 1e-4
    v, fk2 = mr.pose_body(joints, body)
    assert abs(np.median(v[..., 1].min(1))) < 0.03          # soles on the floor here too
    frames, masks = mr.render_frames(joints, body, size=(96, 96), return_masks=True, fps=2.0)
    assert masks.sum((1, 2)).min() > 5                     # something drawn in every frame
    out = mr.render_mesh(tmp_path / f"{name}.gif", joints, body=body, size=(64, 64))
    assert out.is_file()


def test_smplx_body_model_fabricated(clip, tmp_path):
    pytest.importorskip("smplx")
    write_body_model(tmp_path / "models", "smplx")
    body = mr.load_body("smplx", tmp_path / "models")
    assert body.model_type == "smplx" and len(body.vertices) == 55 * 182
    _check_body(body, clip, tmp_path, "smplx")
    # the CLI path
    np.save(tmp_path / "j.npy", clip[:6])
    assert mr.main([str(tmp_path / "j.npy"), str(tmp_path / "cli.gif"), "--body-model", "smplx",
                    "--body-model-dir", str(tmp_path / "models"), "--size", "48"]) == 0


def test_smplh_body_model_from_the_amass_helper(clip, tmp_path):
    pytest.importorskip("smplx")
    from test_amass_prep import write_smplh_model     # the SMPL+H file tests/test_amass_prep.py fabricates
    write_smplh_model(tmp_path / "models", gender="MALE")
    body = mr.load_body("smplh", tmp_path / "models", gender="male")
    _check_body(body, clip, tmp_path, "smplh")


def test_smpl_body_model_fabricated(clip, tmp_path):
    pytest.importorskip("smplx")
    write_body_model(tmp_path / "models", "smpl", per=12)
    body = mr.load_body("smpl", tmp_path / "models")
    assert body.model_type == "smpl" and len(body.vertices) == 24 * 12
    _check_body(body, clip, tmp_path, "smpl")


def test_missing_body_model_says_where(tmp_path):
    with pytest.raises(mr.MeshRenderError, match=r"SMPLX_NEUTRAL\.npz.*--body-model mannequin"):
        mr.load_body("smplx", tmp_path)
