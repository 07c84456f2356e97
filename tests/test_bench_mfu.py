"""bench/mfu.py: FLOPs-per-token formula on a hand-computed toy config, MFU arithmetic, measured peak."""
import math

import pytest
import torch

from bench.mfu import measure_matmul_peak, mfu, transformer_flops_per_token  # repo root on sys.path (conftest)

# d=8, f=16, L=2, H=4 query heads, K=2 kv heads, head_dim=2 (= d/H), V=10
TOY = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
       "num_key_value_heads": 2, "vocab_size": 10}


def test_flops_toy_config_by_hand():
    r = transformer_flops_per_token(TOY, seq_len=5)
    # per layer: q 8*8=64, k 8*4=32, v 8*4=32, o 8*8=64, gate 8*16=128, up 128, down 128 -> 576
    # 2 layers -> 1152, LM head 10*8=80 -> 1232
    assert r["params_matmul"] == 1232
    # attention: 2 layers * 5 tokens * 8 (heads*head_dim) * 2 FLOPs * 2 products = 320
    assert r["attention_flops_per_token"] == 320
    assert r["forward_flops_per_token"] == 2 * 1232 + 320 == 2784
    assert r["train_flops_per_token"] == 3 * 2784 == 8352
    # frozen base (LoRA): forward 2464 + input-grad backward 2464 + attention 3*320
    lora = transformer_flops_per_token(TOY, seq_len=5, trainable_only_backward=True)
    assert lora["train_flops_per_token"] == 2464 + 2464 + 960 == 5888
    assert lora["forward_flops_per_token"] == 2784


def test_flops_explicit_head_dim_and_hf_config():
    from transformers import Qwen2Config
    cfg = Qwen2Config(hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=10)
    assert transformer_flops_per_token(cfg, 5) == transformer_flops_per_token(TOY, 5)
    # head_dim 4 (q width 16 != d): q 8*16=128, k 8*8=64, v 64, o 16*8=128, mlp 384 -> 768/layer
    r = transformer_flops_per_token({**TOY, "head_dim": 4}, seq_len=3)
    assert r["params_matmul"] == 2 * 768 + 80 == 1616
    assert r["attention_flops_per_token"] == 2 * 2 * 3 * 16 * 2 == 384


def test_mfu_arithmetic():
    assert mfu(1000.0, 2e6, 4e9) == pytest.approx(0.5)
    assert mfu(0.0, 2e6, 4e9) == 0.0
    with pytest.raises(ValueError):
        mfu(1.0, 1.0, 0.0)


def test_measure_matmul_peak_counts_flops_over_time(monkeypatch):
    """With a clock that advances 0.5 ms per reading, the calibration product 'takes' 0.5 ms, so each timed
    repeat runs ceil(20 ms / 0.5 ms) = 40 products in 0.5 ms: the peak is 40 * 2 n^3 / 0.5 ms, the best repeat."""
    import bench.mfu as mfu_mod
    clock = {"t": 0.0}

    def fake_clock():
        clock["t"] += 0.0005
        return clock["t"]
    calls = {"n": 0}
    real = torch.matmul

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)
    monkeypatch.setattr(mfu_mod.time, "perf_counter", fake_clock)
    monkeypatch.setattr(mfu_mod.torch, "matmul", counting)
    n = 16
    peak = measure_matmul_peak("cpu", torch.float32, n=n, repeats=3)
    assert calls["n"] == 1 + 1 + 3 * 40  # warm-up, calibration, 3 timed repeats of 40
    assert peak == pytest.approx(40 * 2 * n ** 3 / 0.0005)
    assert math.isfinite(measure_matmul_peak("cpu", torch.float32, n=8, repeats=1))
