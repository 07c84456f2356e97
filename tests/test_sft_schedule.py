"""SFT learning-rate schedule (--lr-schedule, --min-lr-ratio, --warmup-steps) and its resume."""
import json
import math

import pytest

from rl.sft import lr_factor
from test_refine_records import assets  # noqa: F401  (module fixture: tiny dataset, backbone, VQ, CoT files)


def test_lr_factor_shapes():
    f = lr_factor("cosine", warmup=4, total=24, min_ratio=0.1)
    assert [round(f(s), 6) for s in range(4)] == [0.2, 0.4, 0.6, 0.8]  # linear warm-up
    assert f(4) == pytest.approx(1.0) and f(24) == pytest.approx(0.1) and f(99) == pytest.approx(0.1)
    assert f(14) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay: cos(pi/2)
    vals = [f(s) for s in range(4, 25)]
    assert all(a > b for a, b in zip(vals, vals[1:]))  # strictly decreasing after the warm-up
    lin = lr_factor("linear", warmup=0, total=10)
    assert [lin(s) for s in (0, 5, 10)] == pytest.approx([1.0, 0.5, 0.0])
    const = lr_factor("constant", warmup=2, total=10)
    assert [const(s) for s in (0, 1, 2, 9)] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    with pytest.raises(ValueError, match="--min-lr-ratio"):
        lr_factor("cosine", 0, 10, min_ratio=1.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor("step", 0, 10)


def _lrs(path):
    return {r["step"]: r["lr"] for r in map(json.loads, path.read_text().splitlines()) if "lr" in r}


def test_cosine_sft_decays_and_resume_continues_the_schedule(assets, tmp_path):  # noqa: F811
    import train_mllm
    argv = ["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl",
            str(assets["cot"] / "t2m_train.jsonl"), "--use-reasoning", "--out-dir", str(tmp_path),
            "--llm-backbone", str(assets["backbone"]), "--vq-ckpt", str(assets["vq"]), "--lora-r-t2m", "4",
            "--lora-alpha-t2m", "8", "--batch-size", "4", "--max-train-records", "16", "--no-progress",
            "--device", "cpu", "--dtype", "fp32", "--print-iter", "1", "--learning-rate", "1e-3",
            "--lr-schedule", "cosine", "--min-lr-ratio", "0.1", "--warmup-steps", "1"]
    train_mllm.main(argv + ["--exp-name", "full", "--epochs", "3"])
    full = _lrs(tmp_path / "full" / "metrics.jsonl")
    steps = sorted(full)
    total = steps[-1]  # 4 steps an epoch x 3 epochs
    assert total == 12
    # the logged lr is the one of the step just taken: warm-up at step 1, then the cosine from 1e-3 to 1e-4
    expected = {s: 1e-3 * lr_factor("cosine", 1, total, 0.1)(s - 1) for s in steps}
    assert full == pytest.approx(expected)
    assert full[total] < full[total // 2] < full[2] and math.isclose(full[2], 1e-3)

    # the same run interrupted after 2 epochs and resumed: the schedule carries on where it stopped
    train_mllm.main(argv + ["--exp-name", "cut", "--epochs", "2"])
    train_mllm.main(argv + ["--exp-name", "cut", "--epochs", "3", "--resume"])
    cut = _lrs(tmp_path / "cut" / "metrics.jsonl")
    assert {s: cut[s] for s in steps if s > 8} == pytest.approx({s: full[s] for s in steps if s > 8})
