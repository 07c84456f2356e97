"""Refine records (CoM's rounds >= 2 trained in SFT): build_cot writes them, SFT encodes them with the
prompt that Chain-of-Motion generates from, --refine-ratio mixes them in, RLVR leaves them out; and
--use-sample-weight reaches reward / advantage when a record has no sample_weight."""
import argparse
import json

import numpy as np
import pytest
import torch

from dataset.dataset_cot import load_cot_records
from models.prompts import REFINE, REGION_PROMPT
from prepare import build_cot
from prepare.cot.refine import PLAN_KINDS
from rl.sft import load_sft_data, mix_indices, read_sft_records, refine_count, sample_weight, transform_weights

NB = 32


def _read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny synthetic dataset + backbone, a VQ-VAE (untrained: only its codes matter) and the CoT files."""
    from conftest import build_tiny_lm_assets
    from models.vqvae import HumanVQVAE, VQConfig
    from utils.io import atomic_torch_save
    root = tmp_path_factory.mktemp("refine")
    data, backbone = build_tiny_lm_assets(root, num_motions=10, seed=5, pretrain_steps=20)
    torch.manual_seed(0)
    cfg = VQConfig(nb_code=NB, code_dim=16, output_emb_width=16, width=16, depth=1)
    (root / "vq" / "meta").mkdir(parents=True)
    vq = atomic_torch_save({"net": HumanVQVAE(cfg).state_dict(), "config": cfg.to_dict()}, root / "vq" / "net.pth")
    np.save(root / "vq" / "meta" / "mean.npy", np.load(data / "Mean.npy"))
    np.save(root / "vq" / "meta" / "std.npy", np.load(data / "Std.npy"))
    argv = ["--vq-ckpt", str(vq), "--data-root", str(data), "--out-dir", str(root / "cot"), "--no-progress"]
    assert build_cot.main(argv) == 0
    return {"root": root, "data": data, "backbone": backbone, "vq": vq, "cot": root / "cot", "argv": argv}


@pytest.fixture(scope="module")
def model(assets):
    from models.mllm import MLLMConfig, MotionLLM
    cfg = MLLMConfig(llm_backbone=str(assets["backbone"]), nb_code=NB, lora_r={"t2m": 4, "m2t": 4},
                     lora_alpha={"t2m": 8, "m2t": 8}, lora_dropout=0.0)
    torch.manual_seed(0)
    return MotionLLM(cfg, device="cpu", dtype="fp32")


def _sft_args(cot_files, *extra):
    from options.option_train import get_args
    return get_args(["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl", *map(str, cot_files),
                     "--use-reasoning", "--seed", "3", *extra])


# ----------------------------------------------------------------------------- build_cot
def test_build_cot_writes_refine_records(assets, tmp_path):
    cot = assets["cot"]
    s = json.loads((cot / "summary.json").read_text())
    assert s["refine_per_record"] == 1
    for task in ("t2m", "m2t"):
        recs = _read(cot / f"{task}_train.jsonl")
        plain = [r for r in recs if "plan" not in r]
        refine = [r for r in recs if "plan" in r]
        assert recs == plain + refine and len(refine) == len(plain) > 0  # after the plain records, one each
        assert s["splits"]["train"]["refine_records"][task] == len(refine)
        gold = {(r["id"], r["caption_index"]): r for r in plain}
        sources = set()
        for r in refine:
            g = gold[(r["id"], r["caption_index"])]
            # the target is the gold record (answer, reasoning, motion); only the plan (and its source) is new
            assert {k: v for k, v in r.items() if k not in ("plan", "plan_source")} == g
            assert r["plan"].strip() and r["plan"] != g["reasoning"] and "<" not in r["plan"]
            kind = r["plan_source"].split(":")[0]
            assert kind in PLAN_KINDS
            sources.add(kind)
            if kind == "caption":  # the reasoning of another caption of the same item
                k = int(r["plan_source"].split(":")[1])
                assert k != r["caption_index"] and r["plan"] == gold[(r["id"], k)]["reasoning"]
        assert sources == set(PLAN_KINDS)
        # the loader sees the plan; an m2t target is the gold caption
        loaded = load_cot_records(cot / f"{task}_train.jsonl", NB)
        assert sum(r["plan"] is not None for r in loaded) == len(refine)
        if task == "m2t":
            assert all(r["answer"] == r["caption"] for r in loaded)
    # deterministic for a seed, another seed gives other plans, --refine-per-record 2 gives distinct plans
    out2, out3, out4 = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    argv = [a for a in assets["argv"] if a != str(cot)]
    argv = argv[:argv.index("--out-dir") + 1]
    rest = ["--no-progress"]
    assert build_cot.main(argv + [str(out2)] + rest) == 0
    assert (out2 / "t2m_train.jsonl").read_text() == (cot / "t2m_train.jsonl").read_text()
    assert build_cot.main(argv + [str(out3)] + rest + ["--seed", "1"]) == 0
    p0 = [r["plan"] for r in _read(cot / "m2t_train.jsonl") if "plan" in r]
    p1 = [r["plan"] for r in _read(out3 / "m2t_train.jsonl") if "plan" in r]
    assert len(p0) == len(p1) and p0 != p1
    assert build_cot.main(argv + [str(out4)] + rest + ["--refine-per-record", "2", "--tasks", "t2m"]) == 0
    recs = _read(out4 / "t2m_train.jsonl")
    refine = [r for r in recs if "plan" in r]
    assert len(refine) == 2 * (len(recs) - len(refine))
    by_key = {}
    for r in refine:
        by_key.setdefault((r["id"], r["caption_index"]), []).append(r["plan"])
    assert all(len(set(v)) == 2 and r_reason not in v for v, r_reason in
               ((by_key[(r["id"], r["caption_index"])], r["reasoning"]) for r in recs if "plan" not in r))


# ----------------------------------------------------------------------------- SFT encoding = CoM prompt
def test_refine_encoding_is_the_com_generation_prefix(assets, model):
    from rl.sft import encode_records
    args = _sft_args([assets["cot"] / "t2m_train.jsonl"])
    for task in ("t2m", "m2t"):
        rec = next(r for r in load_cot_records(assets["cot"] / f"{task}_train.jsonl", NB) if r["plan"])
        (e,), _, _ = encode_records(model, [rec], task, args)
        # what Chain-of-Motion's round >= 2 feeds the model: MotionLLM.generate(..., plans=[reasoning])
        full = model.generate(task, captions=[rec["caption"]] if task == "t2m" else None,
                              motion_codes=[rec["motion_tokens"]] if task == "m2t" else None,
                              plans=[rec["plan"]], max_new_tokens=1, return_full=True)
        prefix = full["sequences"][0, :full["prompt_len"]].tolist()
        assert e.input_ids[:e.prompt_len] == prefix and e.regions.count(REGION_PROMPT) == len(prefix)
        text = model.tokenizer.decode(prefix, skip_special_tokens=False)
        assert REFINE + rec["plan"] in text
        # the target after the prompt is the gold reasoning + answer, the same as the plain record's
        plain = dict(rec, plan=None)
        (p,), _, _ = encode_records(model, [plain], task, args)
        assert e.input_ids[e.prompt_len:] == p.input_ids[p.prompt_len:] and p.prompt_len < e.prompt_len


# ----------------------------------------------------------------------------- --refine-ratio
def test_mix_indices_ratio_and_determinism():
    def rng(s=0):
        return np.random.default_rng([s, 7])

    assert refine_count(10, 10, 0.0) == 0 and refine_count(10, 0, 0.5) == 0
    assert mix_indices(10, 10, 0.0, rng()).tolist() == list(range(10))
    a = mix_indices(10, 10, 0.5, rng())
    assert len(a) == 10 and (a >= 10).sum() == 5 and len(set(a.tolist())) == 10
    assert a.tolist() == mix_indices(10, 10, 0.5, rng()).tolist()  # deterministic
    assert a.tolist() != mix_indices(10, 10, 0.5, rng(1)).tolist()  # another epoch, other examples
    up = mix_indices(10, 3, 0.8, rng())  # 8 refine slots from 3 refine records: upsampled, balanced
    assert (up >= 10).sum() == 8 and sorted(np.bincount(up[up >= 10] - 10).tolist()) == [2, 3, 3]
    assert (mix_indices(6, 6, 1.0, rng()) >= 6).all()
    assert mix_indices(0, 4, 0.25, rng()).tolist() == [0, 1, 2, 3]  # refine records only: all of them


def test_refine_ratio_in_sft_data(assets, model, tmp_path):
    f = assets["cot"] / "t2m_train.jsonl"
    n_plain = sum("plan" not in r for r in _read(f))
    for ratio, want in ((0.0, 0), (0.5, round(0.5 * n_plain)), (0.25, round(0.25 * n_plain))):
        args = _sft_args([f], "--refine-ratio", str(ratio))
        data = load_sft_data(model, args, "t2m", NB, read_sft_records(args, "t2m", NB))
        ref = data.info["refine"]
        assert data.epoch_size == n_plain and ref["examples_per_epoch"] == want
        assert data.info["refine_examples"] == want and ref["records_read"] == n_plain
        for epoch in (0, 1):
            ex = data.epoch_indices(epoch)
            assert len(ex) == n_plain and int((ex >= data.n_plain).sum()) == want
            assert ex.tolist() == data.epoch_indices(epoch).tolist()
            prompts = [model.tokenizer.decode(data.encoded[i].input_ids[:data.encoded[i].prompt_len]) for i in ex]
            assert sum(REFINE.strip() in p for p in prompts) == want
    # without --use-reasoning a model writes no plan for CoM to pass on: refine records are not used
    args = _sft_args([f], "--refine-ratio", "0.5")
    args.use_reasoning = False
    data = load_sft_data(model, args, "t2m", NB, read_sft_records(args, "t2m", NB))
    assert data.info["refine_examples"] == 0 and "use-reasoning" in data.info["refine"]["note"]
    with pytest.raises(ValueError, match="--refine-ratio"):
        read_sft_records(_sft_args([f], "--refine-ratio", "1.5"), "t2m", NB)


def test_tiny_sft_reports_refine_examples_and_rlvr_skips_them(assets, tmp_path):
    import train_mllm
    f = assets["cot"] / "t2m_train.jsonl"
    argv = ["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl", str(f), "--use-reasoning",
            "--out-dir", str(tmp_path), "--llm-backbone", str(assets["backbone"]), "--vq-ckpt", str(assets["vq"]),
            "--lora-r-t2m", "4", "--lora-alpha-t2m", "8", "--batch-size", "8", "--epochs", "1", "--max-train-records",
            "16", "--no-progress", "--device", "cpu", "--dtype", "fp32", "--use-sample-weight"]
    res = train_mllm.main(argv + ["--exp-name", "sft", "--refine-ratio", "0.5"])
    cfg = json.loads((tmp_path / "sft" / "config.json").read_text())
    assert cfg["data"]["refine"]["examples_per_epoch"] == 8 == res["refine_examples"]
    assert cfg["data"]["records"] == 16 and cfg["args"]["refine_ratio"] == 0.5
    # RLVR's prompts are the plain records only
    from rl.rlvr import prompt_records
    recs = load_cot_records(f, NB)
    prompts, left_out = prompt_records(recs)
    assert left_out == len(recs) // 2 and len(prompts) == len(recs) - left_out
    assert prompts == [r for r in recs if r["plan"] is None]


# ----------------------------------------------------------------------------- --use-sample-weight
def test_sample_weight_falls_back_on_reward_and_advantage(model, tmp_path):
    p = tmp_path / "w.jsonl"
    rows = [{"caption": "a person walks.", "motion_tokens": [1, 2, 3], "reasoning": "walk.", "reward": 0.3},
            {"caption": "a person runs.", "motion_tokens": [4, 5], "reasoning": "run.", "advantage": -0.2},
            {"caption": "a person jumps.", "motion_tokens": [6, 7, 8, 9], "reasoning": "jump."},
            {"caption": "a person kicks.", "motion_tokens": [3], "reasoning": "kick.", "sample_weight": 0.5,
             "reward": 0.1}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recs = load_cot_records(p, NB, default_task="t2m")
    assert [sample_weight(r) for r in recs] == pytest.approx([0.3, -0.2, 1.0, 0.5])
    ns = argparse.Namespace(reward_clip=5.0, normalize_reward=False, min_sample_weight=0.05)
    w = transform_weights(torch.tensor([sample_weight(r) for r in recs]), ns)
    assert w.tolist() == pytest.approx([0.3, 0.05, 1.0, 0.5])  # the negative advantage floored
    assert transform_weights(torch.tensor([9.0, -9.0]), argparse.Namespace(
        reward_clip=5.0, normalize_reward=False, min_sample_weight=-10.0)).tolist() == [5.0, -5.0]
    # the weights SFT reads from the file reach the loss: sum_i w_i * S_i / D
    args = _sft_args([p], "--refine-ratio", "0")
    data = load_sft_data(model, args, "t2m", NB, read_sft_records(args, "t2m", NB))
    assert data.weights == pytest.approx([0.3, -0.2, 1.0, 0.5])
    w = transform_weights(torch.tensor(data.weights), ns)
    model.model.eval()
    with torch.no_grad():
        loss = model.sft_loss(model.collate(data.encoded, w))["loss"].item()
        parts, denom = 0.0, 0
        for e, wi in zip(data.encoded, w.tolist()):
            d = sum(r > REGION_PROMPT for r in e.regions[1:])
            parts += wi * model.sft_loss(model.collate([e]))["loss"].item() * d
            denom += d
    assert loss == pytest.approx(parts / denom, rel=1e-4)
    model.model.train()
