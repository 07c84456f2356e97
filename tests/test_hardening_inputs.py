"""Hostile or broken inputs give one clear error naming the file (and line), never a bare traceback
(issue #14 item 7): absurd BVH frame times, invalid UTF-8 in CoT JSONL, bad HumanML3D text lines,
binary --text-file and unwritable --save-dir in demo.py, full disks and orphaned temporaries in
utils.io."""
from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
MOCAP_BVH = DATA / "test_mocapbank.bvh"
MAPPING = ROOT / "prepare" / "mappings" / "mocapbank.json"

TINY_BVH = """HIERARCHY
ROOT A
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT B
  {
    OFFSET 1 2 3
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
0 0 0 0 0 0 0 0 0
0 0 0 0 0 0 0 0 0
"""  # 'Frame Time' is line 18


# ============================================================================ 1. BVH frame time / length
@pytest.mark.parametrize("value, what", [("100", "more than 1 s"), ("1.5", "more than 1 s"),
                                         ("0.00001", "less than 0.0001 s")])
def test_bvh_absurd_frame_time_names_file_and_line(value, what):
    from utils.bvh import BvhError, parse_bvh
    text = TINY_BVH.replace("Frame Time: 0.05", f"Frame Time: {value}")
    with pytest.raises(BvhError) as exc:
        parse_bvh(text, "clip.bvh")
    msg = str(exc.value)
    assert msg.startswith("clip.bvh:18: "), msg
    assert "Frame Time" in msg and what in msg
    # the usual rates still parse (120 fps, 1 fps)
    for ok in ("0.00833333", "1.0"):
        assert parse_bvh(TINY_BVH.replace("0.05", ok), "clip.bvh").num_frames == 2


def test_bvh_huge_declared_frame_count_is_not_allocated():
    from utils.bvh import BvhError, parse_bvh
    text = TINY_BVH.replace("Frames: 2", "Frames: 1000000000000")
    with pytest.raises(BvhError, match=r"^clip\.bvh:\d+: file ends after 2 frames, 'Frames:' declares 1000000000000"):
        parse_bvh(text, "clip.bvh")


def test_convert_refuses_an_hour_long_resample(tmp_path, monkeypatch):
    """1 s per frame is a legal frame time, but 3700 such frames would become ~74,000 frames at 20 fps."""
    import prepare.convert_mocap as cm
    from utils.bvh import BvhError, write_bvh
    from utils.paramUtil import T2M

    rng = np.random.default_rng(0)
    base = np.array(T2M.raw_offsets, dtype=np.float64).cumsum(axis=0) * 0.2 + [0, 1.0, 0]
    joints = base[None] + 0.01 * rng.normal(size=(3700, 22, 3))
    path = tmp_path / "slow.bvh"
    write_bvh(path, joints, "t2m", fps=1.0)
    ft_line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith("Frame Time"))

    def never(*a, **k):
        raise AssertionError("the clip must be refused before any feature is computed")

    monkeypatch.setattr(cm, "_save_clip", never)
    identity = {n: n for n in T2M.joint_names}
    with pytest.raises(BvhError) as exc:
        cm.convert_bvh(path, identity, tmp_path / "out", scale="m", log=None)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{ft_line}: "), msg
    assert "72000" in msg and "Frame Time" in msg


def test_batch_conversion_skips_the_absurd_file_and_goes_on(tmp_path, monkeypatch, capsys):
    import prepare.convert_mocap as cm

    real_resample = cm.resample

    def guarded(positions, src_fps, tgt_fps):  # what happened before: a 7 GB array, MemoryError
        if (positions.shape[0] - 1) / src_fps * tgt_fps > 1_000_000:
            raise MemoryError("Unable to allocate 7.3 GiB (simulated)")
        return real_resample(positions, src_fps, tgt_fps)

    monkeypatch.setattr(cm, "resample", guarded)
    src = tmp_path / "in"
    src.mkdir()
    text = MOCAP_BVH.read_text()
    lines = text.splitlines()
    ft_line = next(i for i, ln in enumerate(lines, 1) if ln.strip().lower().startswith("frame time"))
    (src / "a_absurd.bvh").write_text(text.replace(lines[ft_line - 1], "Frame Time: 100"))
    (src / "b_good.bvh").write_text(text)
    rc = cm.main([str(src), "--mapping", str(MAPPING), "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 1
    captured = capsys.readouterr()
    assert "converted 1 file(s), 1 failed" in captured.out
    assert f"a_absurd.bvh:{ft_line}:" in captured.err and "Frame Time" in captured.err
    assert (tmp_path / "out" / "new_joint_vecs" / "b_good.npy").is_file()
    assert not (tmp_path / "out" / "new_joint_vecs" / "a_absurd.npy").exists()


def test_batch_conversion_survives_a_memory_error(tmp_path, monkeypatch):
    """Whatever exhausts memory on one clip fails that clip only."""
    import prepare.convert_mocap as cm

    def fake(path, mapping, out_dir, name=None, **kw):
        if "huge" in name:
            raise MemoryError("Unable to allocate 7.3 GiB")
        return {"name": name, "source": str(path)}

    monkeypatch.setattr(cm, "convert_bvh", fake)
    for n in ("a_huge.bvh", "b_ok.bvh"):
        (tmp_path / n).write_text("HIERARCHY\n")
    results, failures = cm.convert_many([tmp_path], MAPPING, tmp_path / "out", progress=False, verbose=False)
    assert [r["name"] for r in results] == ["b_ok"]
    assert len(failures) == 1 and failures[0][0].endswith("a_huge.bvh")
    assert "a_huge.bvh" in failures[0][1] and "out of memory" in failures[0][1]


# ============================================================================ 2. CoT JSONL with invalid UTF-8
GOOD_REC = json.dumps({"task": "t2m", "caption": "a man walks.", "motion_tokens": [1, 2, 3]})


def _bad_utf8_jsonl(path: Path) -> Path:
    bad = b'{"task": "t2m", "caption": "caf\xe9 \x80\xff", "motion_tokens": [1]}'
    path.write_bytes(GOOD_REC.encode() + b"\n" + bad + b"\n" + GOOD_REC.encode() + b"\n")
    return path


def test_cot_invalid_utf8_names_file_and_line(tmp_path):
    from dataset.dataset_cot import CoTRecordError, load_cot_records
    p = _bad_utf8_jsonl(tmp_path / "cot.jsonl")
    with pytest.raises(CoTRecordError) as exc:
        load_cot_records(p, 32)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:2: ") and "not valid UTF-8" in msg and "0xe9" in msg, msg
    assert exc.value.reason == "bad_encoding" and exc.value.lineno == 2


def test_cot_invalid_utf8_is_skipped_with_skip_bad_records(tmp_path):
    from dataset.dataset_cot import CoTDataset
    p = _bad_utf8_jsonl(tmp_path / "cot.jsonl")
    with pytest.warns(UserWarning, match=rf"{p}.*skipped 1 bad line.*{p}:2: .*not valid UTF-8"):
        ds = CoTDataset(p, 32, skip_bad_records=True)
    assert len(ds) == 2 and ds.stats["skipped"] == 1 and ds.stats["bad_encoding"] == 1


def test_cot_tokens_jsonl_and_resume_with_invalid_utf8(tmp_path, caplog):
    from prepare.cot.records import existing_keys, read_tokens_jsonl
    p = tmp_path / "tokens.jsonl"
    good = json.dumps({"id": "000001", "captions": ["a man walks."], "motion_tokens": [1]})
    p.write_bytes(good.encode() + b"\n" + b'{"id": "x\xff", "captions": ["a"], "motion_tokens": [1]}\n')
    with pytest.raises(ValueError, match=rf"^{p}:2: not valid UTF-8"):
        read_tokens_jsonl(p)
    out = tmp_path / "t2m_train.jsonl"
    rec = json.dumps({"task": "t2m", "id": "000001", "caption_index": 0})
    out.write_bytes(rec.encode() + b"\n" + b"\x80garbage\n")
    assert existing_keys(out) == {("t2m", "000001", 0)}
    assert any(f"{out}:2" in r.getMessage() and "UTF-8" in r.getMessage() for r in caplog.records)


# ============================================================================ 3. HumanML3D text lines
L_OK = "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0"


def _hml3d(root: Path, text_lines: list) -> Path:
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for name in ("000001", "000002"):
        np.save(root / "new_joint_vecs" / f"{name}.npy", np.zeros((80, 263), np.float32))
        lines = text_lines if name == "000002" else [L_OK]
        (root / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (root / "train.txt").write_text("000001\n000002\n")
    return root


@pytest.mark.parametrize("bad_line, what", [
    ("#a/DET person/NOUN#0.0#0.0", "empty caption"),
    ("   #a/DET#0.0#0.0", "empty caption"),
    ("a person walks#a/DET#0.0#1e308", "out of range"),
    ("a person walks#a/DET#1e300#2e300", "out of range"),
])
def test_humanml3d_bad_text_line_names_file_and_line(tmp_path, bad_line, what):
    from dataset.humanml3d import HumanML3DReader
    root = _hml3d(tmp_path / "H", [L_OK, bad_line])
    with pytest.raises(ValueError) as exc:
        HumanML3DReader(root, progress=False)
    msg = str(exc.value)
    assert "000002.txt" in msg and "line 2" in msg and what in msg, msg
    # like every malformed line: skip mode skips the clip and counts it
    r = HumanML3DReader(root, progress=False, on_error="skip")
    assert r.names == ["000001"] and r.stats["bad_text"] == 1


# ============================================================================ 4./5. demo.py inputs checked first
def _demo_exit2(argv, capsys) -> str:
    import demo
    with pytest.raises(SystemExit) as exc:
        demo.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("content, what", [(b"\x80\xff\x00", "not valid UTF-8"),
                                           (b"a person walks\n\x00\x00\n", "NUL")])
def test_demo_binary_text_file(tmp_path, capsys, content, what):
    bad = tmp_path / "prompts.bin"
    bad.write_bytes(content)
    err = _demo_exit2(["--model-ckpt", str(tmp_path / "never_loaded.pth"), "--vq-ckpt", str(tmp_path / "vq.pth"),
                       "--text-file", str(bad), "--save-dir", str(tmp_path / "o"), "--device", "cpu"], capsys)
    assert str(bad) in err and what in err, err


def _no_model(monkeypatch):
    import demo

    def fake_vq(args):
        return SimpleNamespace(input_dim=263, nb_code=16, unit_length=4), np.zeros(263), np.ones(263)

    def fail(*a, **k):
        raise AssertionError("the model was loaded before --save-dir was checked")

    monkeypatch.setattr(demo, "load_vq_assets", fake_vq)
    monkeypatch.setattr(demo, "load_model", fail)


def test_demo_unwritable_save_dir_before_model_load(tmp_path, monkeypatch, capsys):
    _no_model(monkeypatch)
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"never loaded")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    err = _demo_exit2(["--model-ckpt", str(ckpt), "--vq-ckpt", str(ckpt), "--text", "a person walks.",
                       "--save-dir", str(blocker / "out"), "--device", "cpu"], capsys)
    assert "--save-dir" in err and "cannot write" in err and str(blocker / "out") in err, err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_demo_read_only_save_dir(tmp_path, monkeypatch, capsys):
    _no_model(monkeypatch)
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"never loaded")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        err = _demo_exit2(["--model-ckpt", str(ckpt), "--vq-ckpt", str(ckpt), "--text", "a person walks.",
                           "--save-dir", str(ro), "--device", "cpu"], capsys)
    finally:
        ro.chmod(0o755)
    assert "--save-dir" in err and "cannot write" in err


# ============================================================================ 6a. full disk during an atomic write
def _tmp_files(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("failure", [
    RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 4288 vs 4176"),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_atomic_torch_save_full_disk(tmp_path, monkeypatch, failure):
    import torch

    from utils.io import atomic_torch_save
    target = tmp_path / "net_last.pth"
    target.write_bytes(b"the previous checkpoint")

    def full_disk(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise failure

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as exc:
        atomic_torch_save({"w": torch.zeros(3)}, target)
    assert exc.value.errno == errno.ENOSPC
    assert f"no space left on {tmp_path} while writing {target}" in str(exc.value)
    assert target.read_bytes() == b"the previous checkpoint"
    assert _tmp_files(tmp_path) == []


def test_atomic_write_text_full_disk_and_other_errors_unchanged(tmp_path, monkeypatch):
    import torch

    from utils.io import atomic_torch_save, atomic_write_text
    target = tmp_path / "config.json"
    target.write_text("{}")

    def full_disk(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(Path, "write_text", full_disk)
        with pytest.raises(OSError, match=f"no space left on {tmp_path} while writing {target}"):
            atomic_write_text(target, '{"a": 1}')
    assert target.read_text() == "{}" and _tmp_files(tmp_path) == []

    def other(obj, f, *a, **k):
        raise RuntimeError("some unrelated serialisation error")

    monkeypatch.setattr(torch, "save", other)
    with pytest.raises(RuntimeError, match="unrelated"):
        atomic_torch_save({}, tmp_path / "x.pth")
    assert _tmp_files(tmp_path) == []


# ============================================================================ 6b. orphaned temporaries
def test_clean_stale_tmp_removes_only_old_orphans_of_this_module(tmp_path):
    from utils.io import _tmp_path, clean_stale_tmp
    old = time.time() - 2 * 3600
    orphan = _tmp_path(tmp_path / "net_last.pth")  # exactly what an interrupted atomic write leaves
    (tmp_path / "sub").mkdir()
    orphan2 = _tmp_path(tmp_path / "sub" / "metrics.json")
    fresh = _tmp_path(tmp_path / "net_best.pth")  # a write that may still be running
    others = [tmp_path / "notes.tmp", tmp_path / ".hidden.tmp", tmp_path / ".x.pth.short.tmp",
              tmp_path / "net_last.pth"]
    for p in others:
        p.write_text("keep")
    for p in [orphan, orphan2, *others]:
        os.utime(p, (old, old))
    removed = clean_stale_tmp(tmp_path, max_age_s=3600)
    assert sorted(removed) == sorted([orphan, orphan2])
    assert not orphan.exists() and not orphan2.exists() and fresh.exists()
    assert all(p.exists() for p in others)
    assert clean_stale_tmp(tmp_path / "missing") == []


def test_resumed_run_cleans_orphans(tmp_path):
    from utils.io import _tmp_path, prepare_run_dir
    run = tmp_path / "run"
    run.mkdir()
    (run / "net_last.pth").write_bytes(b"checkpoint")
    orphan = _tmp_path(run / "net_last.pth")
    old = time.time() - 2 * 3600
    os.utime(orphan, (old, old))
    prepare_run_dir(run, resume=True, overwrite=False)
    assert not orphan.exists() and (run / "net_last.pth").read_bytes() == b"checkpoint"
