"""GRPO: advantages, clipped surrogate, k3 KL, reference adapter, batched rollouts, a toy RL run."""
import json

import numpy as np
import pytest
import torch

from rl.grpo import GRPOConfig, GRPOTrainer, combine_advantages, group_advantages, k3_kl, policy_loss


def test_group_advantages_zero_mean_per_group():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 13.0])
    a = group_advantages(r, 4).view(2, 4)
    torch.testing.assert_close(a.mean(1), torch.zeros(2), atol=1e-6, rtol=0)
    assert a[0].std(unbiased=False) == pytest.approx(1.0, rel=1e-3)
    assert (group_advantages(torch.ones(8), 4) == 0).all()  # equal rewards: no advantage


def test_group_advantages_std_floor_damps_near_ties_only():
    """--rl-adv-std-floor: a group whose rewards differ by less than the floor keeps small advantages
    (near-ties are not blown up to ±1); a group with a spread above the floor is unchanged."""
    tiny = torch.tensor([0.810, 0.812, 0.809, 0.811])   # physics-like near-ties, std ~0.001
    wide = torch.tensor([0.2, 0.9, 0.5, 0.7])           # std ~0.26
    r = torch.cat([tiny, wide])
    plain, floored = group_advantages(r, 4), group_advantages(r, 4, std_floor=0.05)
    assert float(plain[:4].abs().max()) > 1.0            # without the floor: noise becomes ±1
    assert float(floored[:4].abs().max()) < 0.05         # with it: 0.002 / 0.05
    assert torch.argsort(floored[:4]).tolist() == torch.argsort(tiny).tolist()  # the order is kept
    torch.testing.assert_close(floored[4:], plain[4:])
    _, adv = combine_advantages({"phys": tiny, "align": wide}, {"phys": 1.0, "align": 1.0}, 4, True, std_floor=0.05)
    torch.testing.assert_close(adv, floored[:4] + plain[4:])
    assert GRPOConfig().adv_std_floor == 0.0


def test_combine_advantages_per_group_and_constant_groups():
    """The advantages the trainer uses: each group of G consecutive samples normalised on its own; a
    group whose rewards are all equal gets 0 (no signal, no update)."""
    rng = np.random.default_rng(0)
    v = torch.as_tensor(rng.normal(size=12) * 3 + 7, dtype=torch.float32)
    v[8:] = 2.0  # a constant group
    total, adv = combine_advantages({"a": v}, {"a": 1.0}, 4, component_norm=False)
    torch.testing.assert_close(total, v)
    for g in range(2):
        a = adv[g * 4:(g + 1) * 4]
        assert abs(float(a.mean())) < 1e-5 and float(a.std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
        assert torch.argsort(a).tolist() == torch.argsort(v[g * 4:(g + 1) * 4]).tolist()
    assert (adv[8:] == 0).all()
    with pytest.raises(RuntimeError):
        combine_advantages({"a": v}, {"a": 1.0}, 5, component_norm=False)  # 12 samples are not groups of 5


def test_component_norm_vs_total_norm():
    comps = {"a": torch.tensor([0.0, 1.0, 0.0, 1.0]), "b": torch.tensor([0.0, 0.0, 100.0, 100.0])}
    w = {"a": 1.0, "b": 1.0}
    total, adv_comp = combine_advantages(comps, w, 4, component_norm=True)
    _, adv_tot = combine_advantages(comps, w, 4, component_norm=False)
    torch.testing.assert_close(total, torch.tensor([0.0, 1.0, 100.0, 101.0]))
    # per-component normalisation keeps the small component's signal; total normalisation drowns it
    assert adv_comp[1] - adv_comp[0] > 1.5 and adv_tot[1] - adv_tot[0] < 0.05


def test_equal_rewards_leave_only_the_kl_gradient():
    torch.manual_seed(0)
    logp = torch.randn(3, 5, requires_grad=True)
    old = logp.detach().clone()
    ref = logp.detach() + 0.3 * torch.randn(3, 5)
    mask = torch.ones(3, 5)
    adv = torch.zeros(3)
    loss, _ = policy_loss(logp, old, ref, adv, mask, 0.2, kl_coef=0.0)
    loss.backward()
    assert torch.count_nonzero(logp.grad) == 0
    logp.grad = None
    loss, st = policy_loss(logp, old, ref, adv, mask, 0.2, kl_coef=0.1)
    loss.backward()
    assert logp.grad.abs().sum() > 0 and st["kl"] > 0


def test_kl_zero_at_reference_and_differentiable():
    x = torch.randn(10, requires_grad=True)
    k = k3_kl(x, x.detach())
    assert torch.allclose(k, torch.zeros(10))
    y = torch.randn(10)
    k = k3_kl(x, y)
    assert (k >= 0).all()
    k.sum().backward()
    assert x.grad.abs().sum() > 0


def test_clipping_engages_outside_the_trust_region():
    old = torch.zeros(2, 4)
    ref = torch.zeros(2, 4)
    mask = torch.ones(2, 4)
    adv = torch.tensor([1.0, -1.0])
    for factor, expect_grad in ((1.1, True), (1.5, False)):
        logp = torch.full((2, 4), float(np.log(factor)), requires_grad=True)
        loss, st = policy_loss(logp, old, ref, adv, mask, clip_eps=0.2, kl_coef=0.0)
        loss.backward()
        g = logp.grad
        # positive advantage beyond 1+eps: clipped, no gradient; negative advantage: min picks the unclipped term
        assert (g[0].abs().sum() > 0) == expect_grad
        assert g[1].abs().sum() > 0
        assert st["clip_frac"] == (1.0 if factor == 1.5 else 0.0)


# ----------------------------------------------------------------------------- on the tiny backbone
NB = 16


@pytest.fixture(scope="module")
def sft_model(tmp_path_factory):
    import train_mllm
    from conftest import build_tiny_lm_assets
    root = tmp_path_factory.mktemp("grpo")
    build_tiny_lm_assets(root)
    rng = np.random.default_rng(0)
    recs = []
    for i in range(24):
        codes = [int(c) for c in rng.integers(0, NB, size=int(rng.integers(2, 9)))]
        recs.append({"task": "t2m", "caption": f"a person moves {i}.", "motion_tokens": codes, "reasoning": "move."})
    (root / "cot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    train_mllm.main(["--cot-train-jsonl", str(root / "cot.jsonl"), "--use-reasoning", "--out-dir", str(root),
                     "--exp-name", "sft", "--llm-backbone", str(root / "bb"), "--nb-code", str(NB), "--epochs", "30",
                     "--learning-rate", "3e-3", "--lora-r-t2m", "16", "--lora-alpha-t2m", "32", "--lora-dropout", "0",
                     "--batch-size", "8", "--no-progress", "--device", "cpu", "--dtype", "fp32"])
    return root / "sft" / "motionllm_t2m_best.pth", root / "bb"


def _target_code_reward(task, prompts, outputs):
    """Verifiable toy reward: the share of motion tokens equal to code 3 (-0.5 without motion)."""
    return {"target": [float(np.mean([c == 3 for c in o["motion_codes"]])) if o["motion_codes"] else -0.5
                       for o in outputs]}


def test_reference_adapter_is_a_frozen_copy(sft_model):
    from models.mllm import MotionLLM
    m = MotionLLM.from_checkpoint(sft_model[0], dtype="fp32")
    ref = m.add_reference("t2m")
    assert ref == "ref_t2m"
    assert not any(p.requires_grad for n, p in m.model.named_parameters() if ".ref_t2m" in n)
    n_params = sum(p.numel() for p in m.model.parameters())
    base = sum(p.numel() for n, p in m.model.named_parameters() if "lora_" not in n and "trainable_tokens" not in n)
    assert n_params < 2 * base  # a copy of the adapter, not of the backbone
    batch = m.collate([m.encode("t2m", "a person moves 1.", [1, 2, 3])])
    m.model.eval()
    a = m.forward_logits(batch["input_ids"], batch["attention_mask"])
    with m.using_adapter(ref):
        b = m.forward_logits(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(a, b)  # policy == reference right after the copy
    assert m.active == "t2m" and any(p.requires_grad for n, p in m.model.named_parameters() if ".t2m." in n)


def test_toy_rl_raises_reward_with_one_generate_call_per_step(sft_model, monkeypatch):
    import models.mllm
    from models.mllm import MotionLLM
    torch.manual_seed(0)
    m = MotionLLM.from_checkpoint(sft_model[0], dtype="fp32")
    m.add_reference("t2m")
    calls = {"n": 0}
    orig = models.mllm.decode

    def counting(*a, **k):
        calls["n"] += 1
        return orig(*a, **k)
    monkeypatch.setattr(models.mllm, "decode", counting)
    cfg = GRPOConfig(group_size=6, clip_eps=0.2, kl_coef=0.01, max_new_tokens=32, inner_epochs=2, temperature=0.8,
                     lr=3e-3)
    trainer = GRPOTrainer(m, _target_code_reward, cfg)
    prompts = [f"a person moves {i}." for i in range(4)]
    hist = []
    for _ in range(15):
        st = trainer.step("t2m", prompts)
        hist.append(st["reward/total_mean"])
    assert calls["n"] == 15  # one batched decode per GRPO step (4 prompts x 6 samples)
    assert np.mean(hist[-3:]) > np.mean(hist[:3]) + 0.2
    assert st["kl"] >= 0 and 0 <= st["clip_frac"] <= 1 and st["response_len"] > 0


def test_chain_of_motion_rollouts(sft_model):
    """com_rounds=2: two batched generate calls per step, round 2 re-prompts with the best plan, the
    group holds 2G samples, and the CoM scorer only sees the model inputs."""
    from models.mllm import MotionLLM
    torch.manual_seed(0)
    m = MotionLLM.from_checkpoint(sft_model[0], dtype="fp32")
    m.add_reference("t2m")
    plans_seen, calls = [], {"n": 0}
    orig_generate = m.generate

    def spy(task, captions=None, motion_codes=None, plans=None, **kw):
        calls["n"] += 1
        plans_seen.append(plans)
        return orig_generate(task, captions=captions, motion_codes=motion_codes, plans=plans, **kw)
    m.generate = spy

    def scorer(task, inputs, outputs):
        assert all(isinstance(x, str) for x in inputs)  # captions only: no record, no reference answer
        return [len(o["motion_codes"]) for o in outputs]
    records = [{"caption": f"a person moves {i}.", "answer": "SECRET", "motion_tokens": [1, 2]} for i in range(3)]
    cfg = GRPOConfig(group_size=4, max_new_tokens=24, com_rounds=2, temperature=0.8, lr=1e-3)
    trainer = GRPOTrainer(m, _target_code_reward, cfg, com_scorer=scorer)
    st = trainer.step("t2m", records)
    assert calls["n"] == 2 and plans_seen[0] is None and len(plans_seen[1]) == 3
    assert st["group_size_effective"] == 8 and np.isfinite(st["loss"])
    with pytest.raises(ValueError, match="com_scorer"):
        GRPOTrainer(m, _target_code_reward, cfg)
    # m2t: the records carry the reference caption; the production scorer must rank without it
    from test_com import _ReferenceSpy

    from rewards.callbacks import ComScorer
    from rewards.composite import CompositeReward
    spy = _ReferenceSpy("SECRET")
    m2t = GRPOTrainer(m, _target_code_reward, cfg, com_scorer=ComScorer(CompositeReward({"spy": (spy, 1.0)})))
    recs = [{"caption": "SECRET", "answer": "SECRET", "motion_tokens": [1, 2, 3]} for _ in range(2)]
    segments = m2t.com_rollouts("m2t", recs)
    assert len(segments) == 2 and spy.batches == 1


def test_first_update_starts_at_ratio_one_and_zero_kl(sft_model):
    """With LoRA dropout in the adapter, the step still compares like with like: before the first update
    the ratio to the sampling policy is 1 (no clipping) and the KL to the reference 0."""
    from models.mllm import MotionLLM
    torch.manual_seed(0)
    m = MotionLLM.from_checkpoint(sft_model[0], dtype="fp32")
    n_drop = 0
    for mod in m.model.modules():  # LoRA dropout p=0.3 (the fixture trained with 0, where peft uses Identity)
        if isinstance(getattr(mod, "lora_dropout", None), torch.nn.ModuleDict):
            for k in list(mod.lora_dropout.keys()):
                mod.lora_dropout[k] = torch.nn.Dropout(0.3)
                n_drop += 1
    assert n_drop > 0
    m.add_reference("t2m")
    m.model.train()
    # two inner epochs: pi_old comes from its own forward pass (with one, it is the detached current log-prob
    # and the ratio is 1 by construction); lr 0 keeps the policy where it sampled, so any ratio != 1 or KL > 0
    # could only come from dropout being active during the step
    cfg = GRPOConfig(group_size=4, max_new_tokens=24, inner_epochs=2, temperature=0.8, lr=0.0)
    st = GRPOTrainer(m, _target_code_reward, cfg).step("t2m", ["a person moves 1.", "a person moves 2."])
    assert st["kl"] < 1e-6 and st["clip_frac"] == 0.0 and abs(st["ratio_mean"] - 1) < 1e-5
    assert m.model.training  # the caller's mode is restored
