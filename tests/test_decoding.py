"""The decode loop (models/decoding.py): same greedy tokens as Hugging Face generate, a prompt's cache shared
by its samples, sampled tokens drawn from exactly logits / T with top-k / top-p, and their log-probs."""
import pytest
import torch

from models.decoding import SamplingParams, decode, process_logits, sample_tokens


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from conftest import build_tiny_lm_assets
    from models.mllm import MLLMConfig, MotionLLM
    _, bb = build_tiny_lm_assets(tmp_path_factory.mktemp("dec"), num_motions=8, pretrain_steps=30)
    torch.manual_seed(0)
    m = MotionLLM(MLLMConfig(llm_backbone=str(bb), nb_code=16, lora_r={"t2m": 4, "m2t": 4},
                             lora_alpha={"t2m": 8, "m2t": 8}, lora_dropout=0.0), device="cpu", dtype="fp32")
    m.set_task("t2m")
    m.model.eval()
    return m


def _prompts(m, caps):
    from models.prompts import encode_prompt
    ps = [encode_prompt(m.tokenizer, "t2m", c) for c in caps]
    L = max(map(len, ps))
    ids = torch.full((len(ps), L), m.tokenizer.pad_token_id)
    att = torch.zeros((len(ps), L), dtype=torch.long)
    for i, p in enumerate(ps):
        ids[i, L - len(p):] = torch.tensor(p)
        att[i, L - len(p):] = 1
    return ids, att


CAPS = ["a person walks forward.", "a man jumps twice and then sits down on the floor."]


def test_greedy_matches_hf_generate_and_shares_the_prompt_cache(lm):
    ids, att = _prompts(lm, CAPS)
    eos, pad = lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id
    hf = lm.model.generate(input_ids=ids, attention_mask=att, do_sample=False, max_new_tokens=20,
                           eos_token_id=eos, pad_token_id=pad)[:, ids.shape[1]:]
    mine = decode(lm.model, ids, att, 20, eos, pad, SamplingParams(False))
    C = mine["tokens"].shape[1]
    assert torch.equal(hf[:, :C], mine["tokens"])
    # three samples per prompt from one prefill: greedy rows are copies of their prompt's row
    rep = decode(lm.model, ids, att, 20, eos, pad, SamplingParams(False), num_return_sequences=3)
    assert torch.equal(rep["tokens"], mine["tokens"].repeat_interleave(3, 0))


def test_sampled_log_probs_are_those_of_the_sampling_distribution(lm):
    """Tokens sampled at T = 0.7 with top-k / top-p: their log-probs equal log_softmax(filtered logits / 0.7)
    of a teacher-forced forward of the same model, and no token outside the top-k is ever drawn."""
    ids, att = _prompts(lm, CAPS)
    eos, pad = lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id
    params = SamplingParams(True, 0.7, top_k=20, top_p=0.9)
    torch.manual_seed(1)
    out = decode(lm.model, ids, att, 12, eos, pad, params, num_return_sequences=4)
    toks, lps = out["tokens"], out["logprobs"]
    full = torch.cat([ids.repeat_interleave(4, 0), toks], 1)
    fatt = torch.cat([att.repeat_interleave(4, 0), torch.ones_like(toks)], 1)  # causal: later tokens do not matter
    # teacher forcing with the same positions as decoding (left padding)
    pos = (fatt.cumsum(1) - 1).clamp_min(0)
    with torch.no_grad():
        logits = lm.model(input_ids=full, attention_mask=fatt, position_ids=pos).logits[:, ids.shape[1] - 1:-1]
    for t in range(toks.shape[1]):
        live = ~(toks[:, :t] == eos).any(1)  # rows still decoding at step t
        if not live.any():
            break
        z = process_logits(logits[live, t], params)
        want = torch.log_softmax(z, -1).gather(-1, toks[live, t, None]).squeeze(-1)
        torch.testing.assert_close(lps[live, t], want, atol=2e-4, rtol=1e-4)
        top = torch.topk(logits[live, t], 20, -1).indices
        assert (top == toks[live, t, None]).any(1).all()


def test_sampling_draws_each_token_with_its_probability():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05, 0.0]])).repeat(20000, 1)  # the last: filtered
    tok, lp = sample_tokens(logits, SamplingParams(True, 1.0))
    freq = torch.bincount(tok, minlength=5).float() / len(tok)
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0]), atol=0.015, rtol=0)
    assert (tok != 4).all()
    torch.testing.assert_close(lp.exp(), torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])[tok])
    # top-p keeps the smallest set holding p of the mass (0.5 + 0.3 >= 0.8): the last two never drawn
    z = process_logits(logits[:1, :4], SamplingParams(True, 1.0, top_p=0.8))
    assert torch.isinf(z[0, 2:]).all() and torch.isfinite(z[0, :2]).all()
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(True, 0.0)


def test_grpo_log_probs_run_each_prompt_once_per_group_with_the_same_values_and_gradients(lm, monkeypatch):
    """token_logprobs with group_size G (prompt forward once, its KV cache repeated for the G rows) equals the
    full forward of every row, for the log-probs and for the gradients of the trainable weights."""
    import rl.grpo
    from rl.grpo import token_logprobs
    shared_calls = []
    real_shared = rl.grpo._shared_prompt_logprobs
    monkeypatch.setattr(rl.grpo, "_shared_prompt_logprobs",
                        lambda *a, **k: shared_calls.append(1) or real_shared(*a, **k))
    torch.manual_seed(2)
    g = lm.generate("t2m", captions=CAPS, num_return_sequences=3, do_sample=True, max_new_tokens=10,
                    return_full=True)
    seq, P = g["sequences"], g["prompt_len"]
    comp = seq[:, P:]
    att = torch.cat([g["prompt_mask"].repeat_interleave(3, 0), torch.ones_like(comp)], 1)
    params = [p for p in lm.trainable_parameters()]

    def run(group):
        for p in params:
            p.grad = None
        lp = token_logprobs(lm, seq, att, P, micro_batch_size=6, group_size=group)
        lp.sum().backward()
        return lp.detach(), [p.grad.clone() for p in params if p.grad is not None]
    full, g_full = run(1)
    assert not shared_calls
    shared, g_shared = run(3)
    assert shared_calls == [1]  # one micro-batch of two whole groups, each prompt run once
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=1e-5)
    assert len(g_full) == len(g_shared) > 0
    for a, b in zip(g_full, g_shared):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
    # rows of a micro-batch that do not hold whole groups fall back to the full forward (same values)
    with torch.no_grad():
        odd = token_logprobs(lm, seq, att, P, micro_batch_size=4, group_size=3)
    torch.testing.assert_close(odd, full, atol=1e-5, rtol=1e-5)
    # the sampling log-probs the decode loop returns (T = 1, no filtering) are the policy's log-probs
    # (up to the folded-adapter rounding)
    live = torch.ones_like(comp, dtype=torch.bool)
    eos = lm.tokenizer.eos_token_id
    live[:, 1:] = ~((comp == eos).cumsum(1)[:, :-1] > 0)
    torch.testing.assert_close(g["sample_logprobs"][live], full[live], atol=1e-4, rtol=1e-4)


def _fmt(lm):
    return lm.active_format_mask()


def test_format_mask_keeps_codes_inside_motion_blocks(lm):
    """With the codes made the most likely tokens everywhere, the masked decode still writes none outside a
    <Motion> ... </Motion> block, and inside one it may; without the mask the first token is a code."""
    from models.decoding import FormatMask
    fmt = _fmt(lm)
    assert isinstance(fmt, FormatMask) and fmt.code_hi - fmt.code_lo == 16
    ids, att = _prompts(lm, CAPS)
    eos, pad = lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id
    head = lm.model.get_output_embeddings()
    bias = torch.zeros(head.weight.shape[0])
    bias[fmt.code_lo:fmt.code_hi] = 50.0   # codes dominate every position
    bias[fmt.open_id] = 40.0              # then <Motion>
    h = head.register_forward_hook(lambda mod, inp, out: out + bias)
    try:
        plain = decode(lm.model, ids, att, 6, eos, pad, SamplingParams())["tokens"]
        masked = decode(lm.model, ids, att, 6, eos, pad, SamplingParams(), fmt=fmt)["tokens"]
    finally:
        h.remove()
    is_code = lambda t: (t >= fmt.code_lo) & (t < fmt.code_hi)  # noqa: E731
    assert is_code(plain[:, 0]).all()
    assert (masked[:, 0] == fmt.open_id).all() and is_code(masked[:, 1:]).all()  # opened, then codes inside
    assert not (is_code(masked) & ~fmt.inside_before(masked)).any()


def test_format_mask_log_probs_equal_the_masked_softmax(lm):
    """FormatMask.correct (no masked copy of the logits) equals log_softmax of the explicitly masked logits,
    including after a block closes; the transformers processor masks exactly like the decode loop."""
    from models.decoding import FormatMaskProcessor
    fmt = _fmt(lm)
    V = lm.model.get_output_embeddings().weight.shape[0]
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, V, generator=g) * 3
    text = [5, 6, 7, 8]
    rows = [[5, fmt.open_id, fmt.code_lo + 1, fmt.code_lo + 2, fmt.close_id, 6, 7],
            [fmt.open_id, fmt.code_lo, fmt.close_id, 5, 6, 7, 8],
            text + [9, 10, 11]]
    target = torch.tensor(rows)
    logp = torch.log_softmax(logits, -1).gather(-1, target[..., None]).squeeze(-1)
    got = fmt.correct(logp, logits, target)
    want = torch.log_softmax(fmt.mask(logits, fmt.inside_before(target)), -1).gather(-1, target[..., None]).squeeze(-1)
    torch.testing.assert_close(got, want)
    assert (got[2] > logp[2]).all()  # outside a block the codes' mass goes back to the text tokens
    inside = fmt.inside_before(target)
    assert inside[0].tolist() == [False, False, True, True, True, False, False]
    proc = FormatMaskProcessor(fmt, prompt_len=2)
    prompt = torch.tensor([[1, 2]] * 3)
    for t in range(7):
        scores = logits[:, t].clone()
        want_t = fmt.mask_(logits[:, t].clone(), inside[:, t])
        torch.testing.assert_close(proc(torch.cat([prompt, target[:, :t]], 1), scores), want_t)


def test_finished_rows_leave_the_batch_without_changing_the_output(lm, monkeypatch):
    """Rows that produced EOS are dropped from the batch and the KV cache (models.decoding.COMPACT_FRACTION):
    greedy tokens and log-probs are those of the loop that keeps every row to the end, and later steps run
    on fewer rows."""
    import models.decoding as dec
    g = torch.Generator().manual_seed(0)  # random prompts of random lengths: rows that differ
    lens = torch.randint(3, 12, (8,), generator=g)
    ids = torch.full((8, int(lens.max())), lm.tokenizer.pad_token_id)
    att = torch.zeros_like(ids)
    for i, n in enumerate(lens.tolist()):
        ids[i, -n:] = torch.randint(10, 400, (n,), generator=g)
        att[i, -n:] = 1
    pad = lm.tokenizer.pad_token_id
    monkeypatch.setattr(dec, "COMPACT_FRACTION", 0)  # never compact
    probe = decode(lm.model, ids, att, 24, -1, pad, SamplingParams(False), num_return_sequences=2)["tokens"]
    # an "EOS" that rows reach at different steps (and some rows never)
    def stops(tok):
        hit = probe == tok
        return torch.where(hit.any(1), hit.float().argmax(1), torch.full((len(probe),), 99))
    eos = max(probe.unique().tolist(), key=lambda k: len(set(stops(k).tolist())))
    assert len(set(stops(eos).tolist())) >= 3  # rows finish at (at least) three different steps
    full = decode(lm.model, ids, att, 24, eos, pad, SamplingParams(False), num_return_sequences=2)

    sizes = []

    class Spy(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, **kw):
            sizes.append(kw["input_ids"].shape[0])
            return self.m(**kw)

    monkeypatch.setattr(dec, "COMPACT_FRACTION", 4)
    comp = decode(Spy(lm.model), ids, att, 24, eos, pad, SamplingParams(False), num_return_sequences=2)
    assert torch.equal(comp["tokens"], full["tokens"])
    torch.testing.assert_close(comp["logprobs"], full["logprobs"])
    assert sizes[0] == 8 and sizes[1] == 16 and min(sizes) < 16
    assert sizes[1:] == sorted(sizes[1:], reverse=True)  # after the prefill, the batch only shrinks
