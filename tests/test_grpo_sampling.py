"""GRPO off the defaults (issue 15, item 2): log-probs under the distribution that sampled the tokens
(temperature, top-k, top-p; never the backbone's generation_config), gradient checkpointing active during
the step, and --rl-loss-norm token as one mean over the step's tokens whatever the micro-batching."""
import numpy as np
import pytest
import torch

from rl.grpo import GRPOConfig, GRPOTrainer
from test_grpo import NB, _target_code_reward, sft_model  # noqa: F401  (module fixture)


def _policy(ckpt, **kw):
    from models.mllm import MotionLLM
    torch.manual_seed(0)
    m = MotionLLM.from_checkpoint(ckpt, dtype="fp32", **kw)
    m.add_reference("t2m")
    return m


PROMPTS = ["a person moves 1.", "a person moves 2."]


def _scored_rollout(tr, seed):
    """A t2m rollout of PROMPTS with π_old scored; checks π_old equals the log-prob each token was drawn with."""
    torch.manual_seed(seed)
    ro = tr.rollout("t2m", PROMPTS)
    with torch.no_grad():
        tr.score_logprobs(ro)
    mask = ro.completion_mask.bool()
    torch.testing.assert_close(ro.old_logp[mask], ro.sample_logp[mask], atol=1e-4, rtol=1e-4)
    return ro, mask


def test_log_probs_are_those_of_the_sampling_distribution(sft_model):  # noqa: F811
    """Tokens sampled at T = 0.7 with top-k 5 and top-p 0.9: π_old (its own forward, two inner epochs) equals
    the log-probability the decode loop drew each token with, i.e. log_softmax of the filtered logits / 0.7,
    not of the raw logits; and the backbone's generation_config (repetition penalty, top-k 1) plays no part."""
    m = _policy(sft_model[0])
    gc = m.model.generation_config
    gc.repetition_penalty, gc.top_k, gc.temperature, gc.do_sample = 5.0, 1, 0.05, True
    cfg = GRPOConfig(group_size=4, max_new_tokens=16, inner_epochs=2, temperature=0.7, top_k=5, top_p=0.9)
    tr = GRPOTrainer(m, _target_code_reward, cfg)
    m.set_task("t2m")
    ro, mask = _scored_rollout(tr, 3)
    # the plain softmax would give different numbers (the temperature and the filter matter)
    from rl.grpo import token_logprobs
    with torch.no_grad():
        plain = token_logprobs(m, ro.input_ids, ro.attention_mask, ro.prompt_len, 16, 4, None)
    assert (plain[mask] - ro.sample_logp[mask]).abs().max() > 1e-2
    # generation_config's top-k 1 would make every sample of a prompt identical and its token log-prob 0
    comp = ro.input_ids[:, ro.prompt_len:]
    assert len({tuple(r.tolist()) for r in comp}) > 2 and (ro.sample_logp[mask] < -1e-3).any()


def test_gradient_checkpointing_is_active_during_the_step(sft_model):  # noqa: F811
    m = _policy(sft_model[0], gradient_checkpointing=True)
    calls = {"n": 0}
    layers = [mod for mod in m.model.modules() if getattr(mod, "_gradient_checkpointing_func", None) is not None]
    assert layers
    for mod in layers:
        real = mod._gradient_checkpointing_func

        def counting(*a, _real=real, **k):
            calls["n"] += 1
            return _real(*a, **k)
        mod._gradient_checkpointing_func = counting
    m.model.eval()  # whatever mode the caller left: the step trains with checkpointing, dropout off
    cfg = GRPOConfig(group_size=4, max_new_tokens=16, inner_epochs=2, temperature=0.8, lr=0.0)
    st = GRPOTrainer(m, _target_code_reward, cfg).step("t2m", PROMPTS)
    assert calls["n"] > 0  # the decoder layers were checkpointed in the gradient forwards
    assert np.isfinite(st["loss"]) and st["kl"] < 1e-6 and abs(st["ratio_mean"] - 1) < 1e-5  # dropout was off
    assert not m.model.training  # the caller's mode is restored


@pytest.mark.parametrize("norm", ["token", "grpo"])
def test_loss_norms_do_not_depend_on_the_micro_batching(sft_model, norm):  # noqa: F811
    """The same rollout split into micro-batches of 8 or 2 rows gives the same gradient: for 'token' the
    mean runs over all tokens of the step (it used to be a mean per micro-batch)."""
    grads = []
    for mb in (8, 2):
        m = _policy(sft_model[0])
        cfg = GRPOConfig(group_size=4, max_new_tokens=20, temperature=1.2, loss_norm=norm, micro_batch_size=mb,
                         lr=0.0, kl_coef=0.05)
        tr = GRPOTrainer(m, _target_code_reward, cfg)
        torch.manual_seed(7)
        st = tr.step("t2m", PROMPTS)
        grads.append([p.grad.clone() for p in m.trainable_parameters() if p.grad is not None])
        lens = st["response_len"]
    assert lens > 1
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_log_probs_follow_the_format_mask_of_the_rollout(sft_model):  # noqa: F811
    """Rollouts at T = 0.7 without a filter: the format mask keeps codes inside <Motion> blocks, and π_old (the
    analytic masked log-prob, no masked copy of the logits) equals what the decode loop drew; with the mask off
    in both, they agree too, and the masked and unmasked values differ."""
    from rl.grpo import token_logprobs
    m = _policy(sft_model[0])
    cfg = GRPOConfig(group_size=4, max_new_tokens=16, inner_epochs=2, temperature=0.7)
    tr = GRPOTrainer(m, _target_code_reward, cfg)
    m.set_task("t2m")
    fmt = m.active_format_mask()
    ro, mask = _scored_rollout(tr, 5)
    with torch.no_grad():
        unmasked = token_logprobs(m, ro.input_ids, ro.attention_mask, ro.prompt_len, 16, 4, tr.sampling, fmt=None)
    comp = ro.input_ids[:, ro.prompt_len:]
    assert not (((comp >= fmt.code_lo) & (comp < fmt.code_hi)) & ~fmt.inside_before(comp)).any()
    assert (ro.old_logp[mask] - unmasked[mask]).abs().max() > 1e-4
    m.use_format_mask = False
    _scored_rollout(tr, 5)  # without the mask in both, they agree too
