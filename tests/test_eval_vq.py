"""eval_vq.py end to end on a tiny synthetic dataset, a tiny judge and a tiny VQ-VAE (trained for two steps
by train_vq.py): the report's schema (finite mean/CI per metric, checksums), the identity check (no VQ-VAE:
FID ≈ 0 and the matching metrics of the real-motion row), reproducibility, clear errors, and the report
feeding experiments/make_tables.py."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

TINY_EVALUATOR = ["--dim-movement-enc-hidden", "16", "--dim-movement-latent", "16", "--dim-text-hidden", "16",
                  "--dim-motion-hidden", "16", "--dim-coemb-hidden", "16"]
METRICS = ("R_precision_top1", "R_precision_top2", "R_precision_top3", "FID", "MM_Dist", "Diversity")
REPS = 2


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    import train_evaluator
    from conftest import train_tiny_vq
    from prepare.make_synthetic_dataset import build_dataset
    root = tmp_path_factory.mktemp("eval_vq")
    data = root / "syn"
    build_dataset(data, num_motions=30, seed=4, progress=False)
    train_evaluator.main(["--data-root", str(data), "--glove-dir", str(data / "glove"), "--checkpoints-dir",
                          str(root / "ev"), "--movement-iters", "5", "--max-epoch", "1", "--no-progress",
                          "--eval-split", "train", *TINY_EVALUATOR])
    judge = root / "ev" / "t2m" / "text_mot_match"
    train_tiny_vq(data, root, 2, 16, 8, "--val-split", "train", "--evaluator-dir", str(judge))
    return {"root": root, "data": data, "judge": judge, "vq": root / "vq" / "net_best_fid.pth"}


def base_args(a, exp: str | None, *extra) -> list:
    """Report to <root>/<exp>/ (exp None: no --out-dir/--exp-name, the checkpoint's folder)."""
    # the tiny test split has 16 items: batches of 4 (the protocol's 32 needs a real split)
    out = ["--out-dir", str(a["root"]), "--exp-name", exp] if exp else []
    return ["--data-root", str(a["data"]), "--evaluator-dir", str(a["judge"]), "--glove-dir", str(a["data"] / "glove"),
            "--replications", str(REPS), "--batch-size", "4", *out, "--device", "cpu", "--no-progress", *extra]


@pytest.fixture(scope="module")
def report(assets):
    import eval_vq
    returned = eval_vq.main(base_args(assets, "evq", "--vq-ckpt", str(assets["vq"])))
    path = assets["root"] / "evq" / "eval_vq.json"
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(returned))  # what was returned is what was written
    return path, data


def test_report_schema_numbers_and_checksums(assets, report):
    from models.evaluator_wrapper import sha256_file
    path, d = report
    meta, res = d["meta"], d["results"]
    for block in ("reconstruction", "real_motion"):
        for k in METRICS:
            v = res[block][k]
            assert set(v) == {"mean", "ci", "values"}, (block, k)
            assert len(v["values"]) == REPS and all(math.isfinite(x) for x in v["values"]), (block, k)
            assert math.isfinite(v["mean"]) and math.isfinite(v["ci"]) and v["ci"] >= 0, (block, k)
            assert v["mean"] == pytest.approx(np.mean(v["values"]))
            assert v["ci"] == pytest.approx(1.96 * np.std(v["values"]) / math.sqrt(REPS))
    rec = res["reconstruction"]
    for k in ("MPJPE_mm", "MPJPE_root_aligned_mm", "code_perplexity", "code_usage"):
        assert all(math.isfinite(x) for x in rec[k]["values"]), k
    assert rec["MPJPE_mm"]["mean"] > 0 and 0 < rec["code_usage"]["mean"] <= 1
    assert 1 <= rec["code_perplexity"]["mean"] <= 16
    for k in ("R_precision_top1", "R_precision_top2", "R_precision_top3"):
        assert 0 <= rec[k]["mean"] <= 1
    assert rec["R_precision_top1"]["mean"] <= rec["R_precision_top3"]["mean"]
    # items x replications, the judge and the checkpoint named with their checksums
    assert res["items"] == 16 and res["evaluated_per_replication"] == 16
    assert meta["replications"] == REPS and meta["batch_size"] == 4 and meta["split"] == "test"
    assert meta["identity"] is False
    assert meta["checkpoint"]["sha256"] == sha256_file(assets["vq"])
    assert meta["checkpoint"]["vq_config"]["nb_code"] == 16
    assert meta["checkpoint"]["stats"] == str((assets["vq"].parent / "meta").resolve())
    ev = meta["evaluator"]
    assert ev["weights_sha256"] == sha256_file(assets["judge"] / "model" / "finest.tar")
    assert re.fullmatch(r"[0-9a-f]{64}", ev["sha256"]) and ev["given"] == str(assets["judge"])
    md = (path.parent / "eval_vq.md").read_text()
    assert "Real motion" in md and "VQ-VAE reconstruction" in md and ev["sha256"][:12] in md
    assert not list(path.parent.glob(".*.tmp"))  # written atomically: no temporary file left


def test_identity_gives_zero_fid_and_the_real_rows_matching(assets, report):
    import eval_vq
    _, vq = report
    d = eval_vq.main(base_args(assets, "identity", "--identity"))  # no --vq-ckpt needed
    rec, real = d["results"]["reconstruction"], d["results"]["real_motion"]
    assert d["meta"]["identity"] is True and d["meta"]["checkpoint"] is None
    assert all(abs(x) < 1e-6 for x in rec["FID"]["values"])
    for k in ("MPJPE_mm", "MPJPE_root_aligned_mm"):
        assert rec[k]["values"] == pytest.approx([0.0] * REPS, abs=1e-6), k
    assert "code_perplexity" not in rec  # no codes without a tokenizer
    # the same crops, captions and batches as the real-motion row's first pass, the same Diversity pairs
    for k in ("R_precision_top1", "R_precision_top2", "R_precision_top3"):
        assert rec[k]["values"] == real[k]["values"], k
    for k in ("MM_Dist", "Diversity"):
        assert rec[k]["values"] == pytest.approx(real[k]["values"], rel=1e-5), k
    # the real-motion row does not depend on the tokenizer; the reconstruction is worse than the identity
    for k in METRICS:
        assert vq["results"]["real_motion"][k]["values"] == pytest.approx(real[k]["values"], rel=1e-9), k
    assert vq["results"]["reconstruction"]["FID"]["mean"] > 1e-3


def test_rerun_is_identical_and_report_folders(assets, report, tmp_path):
    import eval_vq
    _, first = report
    again = eval_vq.main(base_args(assets, None, "--vq-ckpt", str(assets["vq"]), "--out-dir", str(tmp_path / "o")))
    assert again["results"] == first["results"]
    assert (tmp_path / "o" / "eval_vq.json").is_file()  # --out-dir alone: that folder
    # neither --out-dir nor --exp-name: beside the checkpoint (as eval_mllm.py does)
    eval_vq.main(base_args(assets, None, "--vq-ckpt", str(assets["vq"]), "--replications", "1"))
    assert json.loads((assets["vq"].parent / "eval_vq.json").read_text())["meta"]["replications"] == 1
    with pytest.raises(SystemExit, match="--exp-name"):
        eval_vq.main(base_args(assets, None, "--identity", "--out-dir", str(tmp_path), "--exp-name", "../up"))


def test_errors_name_the_missing_file(assets, tmp_path):
    import eval_vq
    a = dict(assets)
    missing = tmp_path / "nope.pth"
    with pytest.raises(SystemExit, match=re.escape(str(missing))):
        eval_vq.main(base_args(a, "e1", "--vq-ckpt", str(missing)))
    with pytest.raises(SystemExit):  # neither --vq-ckpt nor --identity
        eval_vq.parse_args(base_args(a, "e2"))
    with pytest.raises(FileNotFoundError, match="opt.txt"):
        eval_vq.main(base_args({**a, "judge": tmp_path / "no_judge"}, "e3", "--vq-ckpt", str(a["vq"])))
    args = base_args(a, "e4", "--vq-ckpt", str(a["vq"]))
    args[args.index("--glove-dir") + 1] = str(tmp_path / "no_glove")
    with pytest.raises(FileNotFoundError, match="no_glove"):
        eval_vq.main(args)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "no_meta"))):
        eval_vq.main(base_args(a, "e5", "--vq-ckpt", str(a["vq"]), "--meta-dir", str(tmp_path / "no_meta")))
    with pytest.raises(SystemExit, match="split file not found"):
        eval_vq.main(base_args(a, "e6", "--vq-ckpt", str(a["vq"]), "--split", "nosuch"))
    for exp in ("e1", "e3", "e4", "e5", "e6"):
        assert not (a["root"] / exp).exists(), exp  # a failed input check leaves no report folder behind
    with pytest.raises(SystemExit, match="fewer than --batch-size"):
        eval_vq.main(base_args(a, "e7", "--vq-ckpt", str(a["vq"])) + ["--batch-size", "32"])


def test_report_feeds_the_vq_table(report):
    from experiments import make_tables as mt
    path, d = report
    (t,) = mt.build_tables(mt.parse_args(["--vq", f"VQ-VAE (ours)={path.parent}", "--dataset", "humanml3d"]))
    rows = {r[0]: r for r in t.ours}
    assert list(rows) == ["Real motion (this judge)", "VQ-VAE (ours)"]
    fid = d["results"]["reconstruction"]["FID"]
    col = 1 + [c[0] for c in mt.VQ_COLS].index("FID")
    assert rows["VQ-VAE (ours)"][col] == mt.format_mean_ci(fid["mean"], fid["ci"])
    assert d["meta"]["checkpoint"]["sha256"][:12] in rows["VQ-VAE (ours)"][-1]
