"""prepare/check_dataset.py on a small clean synthetic folder and on corrupted copies of it."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prepare.check_dataset import check_dataset, main
from prepare.make_synthetic_dataset import build_dataset

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "prepare" / "check_dataset.py"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("check") / "syn"
    build_dataset(root, num_motions=5, seed=0, progress=False)
    return root


@pytest.fixture
def copy(clean, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(clean, dst)
    return dst


def ids_of(root, split):
    return [ln.strip() for ln in (root / f"{split}.txt").read_text().splitlines() if ln.strip()]


def found(checker, rel, line=None, kind=None, severity="error"):
    """Problems reported for ``<root>/<rel>`` (at ``line`` and of ``kind`` when given)."""
    path = str(checker.root / rel)
    return [p for p in checker.problems if p.path == path and p.severity == severity
            and (line is None or p.line == line) and (kind is None or p.kind == kind)]


def test_clean_folder_passes(clean, capsys):
    checker = check_dataset(clean)
    assert checker.problems == [], [str(p) for p in checker.problems]
    assert main([str(clean), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 errors" in out and "OK" in out and "10 clips" in out


def test_wrong_width(copy):
    cid = ids_of(copy, "train")[0]
    T = np.load(copy / "new_joint_vecs" / f"{cid}.npy").shape[0]
    np.save(copy / "new_joint_vecs" / f"{cid}.npy", np.zeros((T, 251), np.float32))
    hits = found(check_dataset(copy), f"new_joint_vecs/{cid}.npy", kind="bad_width")
    assert len(hits) == 1 and "(T, 263)" in hits[0].message and "--dataname kit" in hits[0].message


def test_nan(copy):
    cid = ids_of(copy, "val")[0]
    arr = np.load(copy / "new_joint_vecs" / f"{cid}.npy")
    arr[3, 10] = np.nan
    arr[5, 0] = np.inf
    np.save(copy / "new_joint_vecs" / f"{cid}.npy", arr)
    hits = found(check_dataset(copy), f"new_joint_vecs/{cid}.npy", kind="nan")
    assert len(hits) == 1 and "1 NaN and 1 Inf" in hits[0].message and "frame 3, dim 10" in hits[0].message


def test_missing_file_listed_in_split(copy):
    cid = ids_of(copy, "test")[1]  # line 2 of test.txt
    (copy / "new_joint_vecs" / f"{cid}.npy").unlink()
    checker = check_dataset(copy)
    hits = found(checker, "test.txt", line=2, kind="missing_motion")
    assert len(hits) == 1 and cid in hits[0].message
    assert found(checker, "all.txt", kind="missing_motion")  # every split that lists it
    # its leftover joints and texts are flagged as orphans (warnings)
    assert found(checker, f"new_joints/{cid}.npy", kind="orphan_joints", severity="warning")


def test_malformed_text_lines(copy):
    cid = ids_of(copy, "train")[1]
    path = copy / "texts" / f"{cid}.txt"
    path.write_text(
        "a person walks#a/DET person/NOUN walk/VERB#0.0#0.0\n"
        "a person jogs#a/DET person/NOUN jog/VERB#0.0#0.0\n"
        "a person runs#a/DET person/NOUN run/VERB#0.0\n"            # line 3: three fields
        "a person hops#a/DET person hop/VERB#0.0#0.0\n"              # line 4: token without POS
        "a person turns#a/DET person/NOUN turn/VERB#2.0#1.0\n"       # line 5: end < start
        "a person sits#a/DET person/NOUN sit/VERB#zero#1.0\n"        # line 6: start not a number
        "a person stands#a/DET person/NOUN stand/VERB#nan#nan\n")    # line 7: nan = 0 (valid, as the loader)
    checker = check_dataset(copy)
    rel = f"texts/{cid}.txt"
    assert found(checker, rel, line=3, kind="bad_text") and "got 3" in found(checker, rel, line=3)[0].message
    assert "'person'" in found(checker, rel, line=4, kind="bad_tokens")[0].message
    assert found(checker, rel, line=5, kind="bad_time")
    assert found(checker, rel, line=6, kind="bad_time")
    assert not found(checker, rel, line=7) and not found(checker, rel, line=1) and not found(checker, rel, line=2)
    assert len(checker.errors) == 4


def test_std_zero_and_missing_mean(copy):
    std = np.load(copy / "Std.npy")
    std[5] = 0.0
    np.save(copy / "Std.npy", std)
    (copy / "Mean.npy").unlink()
    checker = check_dataset(copy)
    hits = found(checker, "Std.npy", kind="std_zero")
    assert len(hits) == 1 and "dims 5" in hits[0].message
    assert found(checker, "Mean.npy", kind="missing_stats")


def test_stats_shape_duplicates_empty_text_and_joints_length(copy):
    np.save(copy / "Mean.npy", np.zeros(251, np.float32))
    train = ids_of(copy, "train")
    (copy / "train.txt").write_text("\n".join(train + [train[0]]) + "\n")
    (copy / "texts" / f"{train[2]}.txt").write_text("\n\n")
    nj = np.load(copy / "new_joints" / f"{train[3]}.npy")
    np.save(copy / "new_joints" / f"{train[3]}.npy", np.concatenate([nj, nj[-1:]]))
    checker = check_dataset(copy)
    assert "(263,)" in found(checker, "Mean.npy", kind="bad_stats_shape")[0].message
    dup = found(checker, "train.txt", line=len(train) + 1, kind="duplicate_id")
    assert len(dup) == 1 and "first on line 1" in dup[0].message
    assert found(checker, f"texts/{train[2]}.txt", kind="empty_text")
    assert found(checker, f"new_joints/{train[3]}.npy", kind="joints_length")


def test_overlap_missing_split_and_text(copy):
    val = ids_of(copy, "val")
    (copy / "test.txt").write_text("\n".join(ids_of(copy, "test") + [val[0]]) + "\n")
    (copy / "val.txt").unlink()
    (copy / "texts" / f"{val[1]}.txt").unlink()
    checker = check_dataset(copy)
    assert found(checker, "val.txt", kind="missing_split")
    assert found(checker, f"texts/{val[1]}.txt", kind="missing_text")
    # val.txt is gone, so the overlap check covers train/test; make one
    train = ids_of(copy, "train")
    (copy / "test.txt").write_text("\n".join(ids_of(copy, "test") + [train[0]]) + "\n")
    checker = check_dataset(copy)
    n = len(ids_of(copy, "test"))
    hit = found(checker, "test.txt", line=n, kind="split_overlap")
    assert hit and "train.txt (line 1)" in hit[0].message


def test_lengths_and_unlisted_are_warnings(copy, capsys):
    cid = ids_of(copy, "train")[0]
    arr = np.load(copy / "new_joint_vecs" / f"{cid}.npy")
    short = np.concatenate([arr] * 4)[:30]
    np.save(copy / "new_joint_vecs" / f"{cid}.npy", short)
    np.save(copy / "new_joints" / f"{cid}.npy", np.zeros((30, 22, 3), np.float32))
    long = np.concatenate([arr] * 5)[:205]
    np.save(copy / "new_joint_vecs" / "X000.npy", long)
    np.save(copy / "new_joints" / "X000.npy", np.zeros((205, 22, 3), np.float32))
    (copy / "texts" / "X000.txt").write_text("a person walks#a/DET person/NOUN walk/VERB#0.0#0.0\n")
    checker = check_dataset(copy)
    assert checker.errors == [], [str(p) for p in checker.errors]
    assert found(checker, f"new_joint_vecs/{cid}.npy", kind="too_short", severity="warning")
    assert found(checker, "new_joint_vecs/X000.npy", kind="too_long", severity="warning")
    assert found(checker, "new_joint_vecs/X000.npy", kind="unlisted_motion", severity="warning")
    assert main([str(copy), "--no-progress"]) == 0
    assert main([str(copy), "--no-progress", "--strict"]) == 1


def test_every_problem_reported_cli(copy):
    """All corruptions at once: each is reported (no stop at the first), exit 1, --max-report caps the list."""
    train, test = ids_of(copy, "train"), ids_of(copy, "test")
    np.save(copy / "new_joint_vecs" / f"{train[0]}.npy", np.zeros((50, 251), np.float32))
    (copy / "new_joint_vecs" / f"{test[0]}.npy").unlink()
    lines = (copy / "texts" / f"{train[1]}.txt").read_text().splitlines()
    lines[2:2] = ["broken line without fields"]
    (copy / "texts" / f"{train[1]}.txt").write_text("\n".join(lines) + "\n")
    (copy / "Mean.npy").unlink()
    proc = subprocess.run([sys.executable, str(SCRIPT), str(copy), "--no-progress", "--max-report", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    out = proc.stdout
    assert f"ERROR {copy / 'new_joint_vecs' / (train[0] + '.npy')}: shape (50, 251)" in out
    assert f"ERROR {copy / 'test.txt'}:1: id {test[0]}" in out
    assert f"ERROR {copy / 'texts' / (train[1] + '.txt')}:3: expected 4" in out
    assert f"ERROR {copy / 'Mean.npy'}: missing" in out
    assert "PROBLEMS FOUND" in out
    capped = subprocess.run([sys.executable, str(SCRIPT), str(copy), "--no-progress", "--max-report", "2"],
                            capture_output=True, text=True, timeout=120)
    assert capped.returncode == 1 and sum(ln.startswith("ERROR") for ln in capped.stdout.splitlines()) == 2
    assert "more not shown" in capped.stdout


def test_kit_folder(tmp_path):
    root = tmp_path / "kit"
    build_dataset(root, num_motions=3, seed=1, fmt="kit", progress=False)
    checker = check_dataset(root, "kit")
    assert checker.errors == [], [str(p) for p in checker.errors]
    assert main([str(root), "--dataname", "kit", "--no-progress"]) == 0
    as_t2m = check_dataset(root, "t2m")
    widths = [p for p in as_t2m.errors if p.kind == "bad_width"]
    assert widths and "--dataname kit" in widths[0].message
    assert any(p.kind == "bad_stats_shape" for p in as_t2m.errors)
