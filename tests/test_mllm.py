"""MotionLLM: vocabulary, prompts, loss masking, trainable parameters, checkpoints, SFT, generation."""
import json

import numpy as np
import pytest
import torch

from models.mllm import MLLMConfig, MotionLLM
from models.prompts import (REGION_PROMPT, encode_example, encode_prompt, motion_string, parse_output,
                            prompt_text)

NB = 16


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    from conftest import build_tiny_lm_assets
    return build_tiny_lm_assets(tmp_path_factory.mktemp("mllm"))[1]


def _model(backbone, **kw):
    cfg = MLLMConfig(llm_backbone=str(backbone), nb_code=NB, lora_r={"t2m": 4, "m2t": 4},
                     lora_alpha={"t2m": 8, "m2t": 8}, lora_dropout=0.0, **kw)
    torch.manual_seed(0)
    return MotionLLM(cfg, device="cpu", dtype="fp32")


def test_tokens_added_once_and_ids_stable(backbone, tmp_path):
    m = _model(backbone)
    tok = m.tokenizer
    ids = tok.convert_tokens_to_ids(["<Motion_0>", f"<Motion_{NB - 1}>", "<think>", "</answer>"])
    assert ids[0] == m.cfg.motion_token_offset and ids[1] == ids[0] + NB - 1
    assert tok("<Motion><Motion_3><Motion_12></Motion>", add_special_tokens=False)["input_ids"] == \
        tok.convert_tokens_to_ids(["<Motion>", "<Motion_3>", "<Motion_12>", "</Motion>"])
    m.save(tmp_path / "ck.pth")
    ck = torch.load(tmp_path / "ck.pth", weights_only=True)
    assert set(ck) >= {"adapters", "config_json"}
    m2 = MotionLLM.from_checkpoint(tmp_path / "ck.pth", dtype="fp32")
    assert m2.cfg.new_token_ids == m.cfg.new_token_ids
    assert m2.tokenizer.convert_tokens_to_ids(["<Motion_0>", "<think>"]) == [ids[0], ids[2]]
    out = m.export_peft(tmp_path / "peft")
    with pytest.raises(ValueError, match="already contains"):
        _model(out)  # an exported (already extended) tokenizer is not a base backbone


def test_prompt_at_training_equals_generation_prefix(backbone):
    m = _model(backbone)
    for task, cap, codes in (("t2m", "a person walks forward.", [1, 2, 3]), ("m2t", "a man jumps.", [4, 5, 6, 7])):
        e = encode_example(m.tokenizer, task, cap, codes, reasoning="first plan the steps.")
        prefix = encode_prompt(m.tokenizer, task, cap if task == "t2m" else None, codes if task == "m2t" else None)
        assert e.input_ids[: e.prompt_len] == prefix
        assert e.input_ids[-1] == m.tokenizer.eos_token_id
        text = m.tokenizer.decode(e.input_ids[e.prompt_len:], skip_special_tokens=False)
        parsed = parse_output(text, NB)
        assert parsed.well_formed and parsed.reasoning == "first plan the steps."
        if task == "t2m":
            assert parsed.motion_codes == codes
        else:
            assert parsed.answer == cap
    assert prompt_text("t2m", "x").endswith("<think>")
    assert "Refine the motion plan" in prompt_text("t2m", "x", plan="walk then stop")


def test_truncation_keeps_the_answer(backbone):
    m = _model(backbone)
    long_reasoning = " ".join(["the person moves the left arm slowly"] * 40)
    full = encode_example(m.tokenizer, "t2m", "a person waves.", list(range(10)), reasoning=long_reasoning)
    bare = encode_example(m.tokenizer, "t2m", "a person waves.", list(range(10)))
    limit = len(bare.input_ids) + 10
    short = encode_example(m.tokenizer, "t2m", "a person waves.", list(range(10)), reasoning=long_reasoning,
                           max_len=limit)
    assert len(full.input_ids) > limit and len(short.input_ids) == limit
    text = m.tokenizer.decode(short.input_ids[short.prompt_len:], skip_special_tokens=False)
    assert parse_output(text, NB).motion_codes == list(range(10))  # the answer survives whole
    assert encode_example(m.tokenizer, "t2m", "a person waves.", list(range(10)), max_len=10) is None


def test_loss_masks_prompt_tokens(backbone):
    m = _model(backbone)
    e = m.encode("t2m", "a person walks.", [3, 4, 5], reasoning="plan a walk.")
    batch = m.collate([e])
    out = m.sft_loss(batch)
    logits = m.forward_logits(batch["input_ids"], batch["attention_mask"])[0, :-1].float()
    target = batch["input_ids"][0, 1:]
    region = batch["regions"][0, 1:]
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    expected = ce[region > REGION_PROMPT].mean()
    torch.testing.assert_close(out["loss"], expected, rtol=1e-5, atol=1e-6)
    assert out["tokens"] == int((region > REGION_PROMPT).sum())
    # region weights: zero answer weight leaves the reasoning tokens only
    only_reason = m.sft_loss(batch, reasoning_weight=1.0, motion_weight=0.0)["loss"]
    torch.testing.assert_close(only_reason, ce[region == 1].mean(), rtol=1e-5, atol=1e-6)


def test_sft_loss_runs_the_shared_prompt_prefix_once(backbone, monkeypatch):
    """A batch whose rows share the instruction: the prefix runs once for one row (KV cache repeated), logits
    only where the loss needs them; loss, statistics and every trainable gradient equal those of one plain
    forward over the whole batch (weighted, with sample weights and right padding)."""
    import models.mllm as mm
    m = _model(backbone)
    m.set_task("t2m")
    m.model.train()
    exs = [m.encode("t2m", c, codes, reasoning=r) for c, codes, r in [
        ("a person walks.", [3, 4, 5], "plan a walk."), ("someone jumps twice then sits down.", [1, 2], "jump, sit."),
        ("a man waves with the left hand slowly.", [7, 7, 8, 9, 10], "a wave."), ("a turn.", [0], "turn left.")]]
    batch = m.collate(exs, torch.tensor([1.0, 0.5, 2.0, 1.0]))
    params = [p for p in m.trainable_parameters() if p.requires_grad]

    def run(min_prefix):
        monkeypatch.setattr(mm, "SHARED_PREFIX_MIN", min_prefix)
        for p in params:
            p.grad = None
        out = m.sft_loss(batch, reasoning_weight=0.7, motion_weight=1.3)
        out["loss"].backward()
        return out, [p.grad.clone() for p in params]

    calls = []
    orig = m.model.forward

    def spy(*a, **kw):
        calls.append(tuple(kw["input_ids"].shape))
        return orig(*a, **kw)
    monkeypatch.setattr(m.model, "forward", spy)
    shared, g_shared = run(8)
    assert len(calls) == 2 and calls[0][0] == 1 and calls[0][1] >= 8 and calls[1][0] == 4  # prefix once, then the rest
    calls.clear()
    plain, g_plain = run(10 ** 6)  # never shared: one forward of the whole batch
    assert calls == [tuple(batch["input_ids"].shape)]
    torch.testing.assert_close(shared["loss"], plain["loss"], rtol=1e-5, atol=1e-6)
    assert {k: v for k, v in shared.items() if k != "loss"} == {k: v for k, v in plain.items() if k != "loss"}
    for a, b in zip(g_shared, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # and the plain path equals the full-vocabulary loss over all positions
    with torch.no_grad():
        logits = m.forward_logits(batch["input_ids"], batch["attention_mask"])[:, :-1].float()
    region = batch["regions"][:, 1:]
    w = (region == 1) * 0.7 + (region == 2) * 1.3
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["input_ids"][:, 1:], reduction="none")
    expected = (ce * w * batch["sample_weights"][:, None]).sum() / w.sum()
    torch.testing.assert_close(plain["loss"].detach(), expected, rtol=1e-5, atol=1e-6)


def test_only_lora_and_new_rows_change(backbone):
    m = _model(backbone)
    before = {k: v.detach().clone() for k, v in m.model.named_parameters()}
    emb_before = m.model.get_input_embeddings().token_adapter.get_merged_weights(["t2m"]).detach().clone()
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-2)
    batch = m.collate([m.encode("t2m", "a person kicks.", [1, 2, 3, 9], reasoning="kick.")])
    for _ in range(2):
        m.sft_loss(batch)["loss"].backward()
        opt.step()
        opt.zero_grad()
    changed = {k for k, v in m.model.named_parameters() if not torch.equal(v, before[k])}
    assert changed and all(("lora_" in k or "trainable_tokens_delta" in k) and ".t2m" in k for k in changed)
    assert any("trainable_tokens_delta" in k for k in changed) and any("lora_B" in k for k in changed)
    emb_after = m.model.get_input_embeddings().token_adapter.get_merged_weights(["t2m"]).detach()
    base = m.cfg.base_vocab_size
    assert torch.equal(emb_after[:base], emb_before[:base])  # original vocabulary untouched
    assert not torch.equal(emb_after[base:base + len(m.cfg.new_token_ids)], emb_before[base:base + len(m.cfg.new_token_ids)])
    # the other task's adapter did not move either
    assert not any(".m2t" in k for k in changed)


def test_save_load_same_logits(backbone, tmp_path):
    m = _model(backbone)
    with torch.no_grad():  # make the adapters non-trivial
        for n, p in m.model.named_parameters():
            if "lora_B" in n or "trainable_tokens_delta" in n:
                p.add_(torch.randn_like(p) * 0.05)
    batch = m.collate([m.encode("t2m", "a man runs.", [0, 1, 2]), m.encode("t2m", "someone waves.", [5])])
    m.model.eval()
    ref = m.forward_logits(batch["input_ids"], batch["attention_mask"])
    m.save(tmp_path / "ck.pth")
    m2 = MotionLLM.from_checkpoint(tmp_path / "ck.pth", dtype="fp32")
    m2.model.eval()
    torch.testing.assert_close(m2.forward_logits(batch["input_ids"], batch["attention_mask"]), ref)
    m2.set_task("m2t")
    m.set_task("m2t")
    torch.testing.assert_close(m2.forward_logits(batch["input_ids"], batch["attention_mask"]),
                               m.forward_logits(batch["input_ids"], batch["attention_mask"]))


def test_generation_never_raises_on_garbage(backbone):
    m = _model(backbone)
    prompts = ["", "<Motion_3> </answer> <think>", "x" * 300, "a person walks forward.", "ääää ### Input:"]
    out = m.generate("t2m", captions=prompts, max_new_tokens=12, do_sample=True, temperature=1.5,
                     num_return_sequences=2)
    assert len(out) == 10 and all(isinstance(o["motion_codes"], list) for o in out)
    assert all(0 <= c < NB for o in out for c in o["motion_codes"])
    out = m.generate("m2t", motion_codes=[[1, 2, 3], [], [15] * 30], max_new_tokens=8)
    assert len(out) == 3 and all(isinstance(o["answer"], str) for o in out)
    for text in ["", "</think>", "<answer><Motion><Motion_99></Motion>", "<Motion_2><Motion_x>", "\x00\xff"]:
        p = parse_output(text, NB)
        assert isinstance(p.motion_codes, list) and all(0 <= c < NB for c in p.motion_codes)


def _cot_file(path, n=12, seed=0):
    rng = np.random.default_rng(seed)
    verbs = ["walks", "runs", "jumps", "kicks", "waves", "squats"]
    recs = []
    table = {v: [int(c) for c in rng.integers(0, NB, size=int(rng.integers(3, 7)))] for v in verbs}
    for i in range(n):
        v = verbs[i % len(verbs)]
        codes = table[v]  # a learnable caption -> motion mapping
        recs.append({"task": "t2m", "id": f"{i:03d}", "caption": f"a person {v}.", "motion_tokens": codes,
                     "reasoning": f"the person {v}."})
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return recs


def test_tiny_sft_run_learns_and_resumes(backbone, tmp_path):
    import train_mllm
    data = tmp_path / "cot.jsonl"
    recs = _cot_file(data)
    argv = ["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl", str(data), "--use-reasoning",
            "--exp-name", "sft", "--out-dir", str(tmp_path), "--llm-backbone", str(backbone), "--nb-code", str(NB),
            "--lora-r-t2m", "32", "--lora-alpha-t2m", "64", "--lora-dropout", "0", "--learning-rate", "3e-3",
            "--batch-size", "4", "--print-iter", "1", "--no-progress", "--device", "cpu", "--dtype", "fp32"]
    res = train_mllm.main(argv + ["--epochs", "80"])
    logs = [json.loads(ln) for ln in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/epoch_loss"] for r in logs if "train/epoch_loss" in r]
    assert losses[-1] < 0.3 * losses[0]
    accs = [r["train/acc"] for r in logs if "train/acc" in r]
    assert np.mean(accs[-3:]) > 0.9
    for f in ("motionllm_t2m_latest.pth", "motionllm_t2m_best.pth", "peft_t2m/t2m/adapter_config.json", "config.json"):
        assert (tmp_path / "sft" / f).exists(), f
    assert res["records"] == 12
    # the trained model reproduces a training answer with greedy decoding
    m = MotionLLM.from_checkpoint(tmp_path / "sft" / "motionllm_t2m_best.pth", dtype="fp32")
    batch = m.collate([m.encode("t2m", r["caption"], r["motion_tokens"], r["reasoning"]) for r in recs[:6]])
    m.model.eval()
    assert m.sft_loss(batch)["answer_acc"] == 1.0  # every motion token of the training answers
    gen = m.generate("t2m", captions=["a person walks."], max_new_tokens=40)[0]
    assert gen["well_formed"] and gen["motion_codes"] and "walks" in gen["reasoning"]
    # resume continues after the last epoch
    train_mllm.main(argv + ["--epochs", "82", "--resume"])
    last = torch.load(tmp_path / "sft" / "motionllm_t2m_latest.pth", weights_only=True)
    assert last["epoch"] == 81


def test_malformed_cot_line_is_reported(backbone, tmp_path):
    import train_mllm
    data = tmp_path / "bad.jsonl"
    _cot_file(data, n=3)
    with open(data, "a") as f:
        f.write('{"caption": "a person walks.", "motion_tokens": [1, 99]}\n')
    argv = ["--cot-train-jsonl", str(data), "--out-dir", str(tmp_path), "--exp-name", "bad", "--llm-backbone",
            str(backbone), "--nb-code", str(NB), "--epochs", "1", "--no-progress", "--device", "cpu"]
    with pytest.raises(ValueError, match=r"bad.jsonl.*4"):
        train_mllm.main(argv)
    res = train_mllm.main(argv + ["--skip-bad-records"])
    assert res["records"] == 3


def test_motion_string_roundtrip():
    assert motion_string([1, 2]) == "<Motion><Motion_1><Motion_2></Motion>"
    p = parse_output("plan</think><answer><Motion><Motion_1><Motion_2></Motion></answer>", 4)
    assert p.well_formed and p.motion_codes == [1, 2] and p.reasoning == "plan"


def test_folded_adapter_matches_unmerged_and_restores_weights(backbone):
    """No-grad forwards (decoding, reference log-probs) fold the active adapter into the weights: the
    log-probs equal peft's unmerged forward, the folding is really in effect, and every weight is bit-identical
    afterwards (also for the reference copy switched in with using_adapter)."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    from rl.grpo import token_logprobs
    m = _model(backbone)
    m.add_reference("t2m")
    with torch.no_grad():
        for n, p in m.model.named_parameters():
            if "lora_B" in n or "trainable_tokens_delta" in n:  # adapters that differ from the base
                p.add_(torch.randn_like(p) * 0.05)
    m.model.eval()
    before = {n: p.detach().clone() for n, p in m.model.named_parameters()}
    batch = m.collate([m.encode("t2m", "a person walks.", [1, 2, 3, 4], "go."),
                       m.encode("t2m", "a person jumps twice.", [5, 6], "up.")])
    ids, att, P = batch["input_ids"], batch["attention_mask"], 4
    for adapter in ("t2m", "ref_t2m"):
        with m.using_adapter(adapter):
            with torch.no_grad():
                folded = token_logprobs(m, ids, att, P)
            with torch.enable_grad():
                unmerged = token_logprobs(m, ids, att, P).detach()
        torch.testing.assert_close(folded, unmerged, atol=1e-5, rtol=0)
    with m.inference_weights():
        assert all(mod.merged for mod in m.model.modules() if isinstance(mod, LoraLinear))
    assert not any(mod.merged for mod in m.model.modules() if isinstance(mod, LoraLinear))
    assert all(torch.equal(before[n], p) for n, p in m.model.named_parameters())
    m.merge_lora_for_inference = False
    with m.inference_weights():
        assert not any(mod.merged for mod in m.model.modules() if isinstance(mod, LoraLinear))


def test_beam_search_ignores_the_backbones_generation_defaults(backbone):
    """A backbone whose generation_config sets a repetition penalty and no_repeat_ngram_size must not change
    beam-search captions (transformers fills unset fields from it); its config is restored afterwards."""
    m = _model(backbone)
    motions = [[1, 2, 3, 4], [5, 6, 7]]
    kw = dict(num_beams=3, do_sample=False, max_new_tokens=24)
    clean = m.generate("m2t", motion_codes=motions, **kw)
    gc = m.model.get_base_model().generation_config
    gc.repetition_penalty, gc.no_repeat_ngram_size = 5.0, 1
    try:
        assert m.generate("m2t", motion_codes=motions, **kw) == clean
        assert m.model.get_base_model().generation_config is gc and gc.repetition_penalty == 5.0
    finally:
        gc.repetition_penalty, gc.no_repeat_ngram_size = None, None
