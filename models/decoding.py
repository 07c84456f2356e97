"""The decode loop of MotionLLM: prefill, KV cache, and sampling from exactly the distribution asked for.

Hugging Face ``generate`` runs the backbone's ``generation_config`` processors too (a pretrained
instruct model ships a repetition penalty, top-k, its own temperature): the tokens it samples then
come from a distribution that GRPO's log-probs do not model. This loop applies only what the caller
gives — ``logits / temperature``, then top-k, then top-p (nucleus) — and returns, per sampled token,
its log-probability under that distribution. It also does less per step on small models: the prompt
is pre-filled once per prompt and its KV cache repeated for the ``num_return_sequences`` samples (the
group of a GRPO prompt shares it), sampling inverts the CDF with one uniform number per row
(equivalent to ``multinomial``, 15× cheaper on a CPU), and the loop stops when every sequence has
produced EOS; finished rows leave the batch (and the KV cache) once they are a quarter of it, so a
batch costs the sum of its rows' lengths rather than its longest row times its size.

Multi-process sharded runs (FSDP) keep calling forward until every rank is done (``sync``: an
all-reduce of the "unfinished" flag per step), as ``generate(synced_gpus=True)`` does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SamplingParams:
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0          # 0: off
    top_p: float = 1.0      # 1: off

    def __post_init__(self):
        if self.do_sample and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")


@dataclass
class FormatMask:
    """Format-constrained decoding: motion-code tokens (ids ``code_lo`` … ``code_hi - 1``) are valid only inside a
    ``<Motion>`` … ``</Motion>`` block of the completion. A small model's greedy decode otherwise jumps into
    codes wherever the next word is uncertain: on the quickstart's SFT models the 512 code rows together hold
    ~2% of the mass at a reasoning position, and at 0.1-1% of positions one code beats every word, which ends
    2-35% of t2m answers before ``<answer>``. The mask changes only those positions; GRPO's log-probs
    (:meth:`correct`) use the same masked distribution as the rollouts that sampled the tokens."""
    code_lo: int
    code_hi: int
    open_id: int
    close_id: int

    def steps(self, tokens: torch.Tensor) -> torch.Tensor:
        """+1 at ``<Motion>``, -1 at ``</Motion>``, 0 elsewhere: the block depth is their running sum."""
        return (tokens == self.open_id).long() - (tokens == self.close_id).long()

    def inside_before(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, C) completion tokens -> (N, C) bool: position t lies inside a block (the tokens before it opened
        one and have not closed it). Completions start outside (an m2t prompt's block is closed)."""
        step = self.steps(tokens)
        return (step.cumsum(1) - step) > 0  # the tokens before t

    def mask_(self, logits: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """In place on (N, V) logits of one decode step: codes to -inf in the rows outside a block."""
        logits[:, self.code_lo:self.code_hi].masked_fill_(~inside[:, None], float("-inf"))
        return logits

    def mask(self, logits: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """Out of place on (..., V) logits with ``inside`` (...) (for autograd)."""
        codes = logits[..., self.code_lo:self.code_hi].masked_fill(~inside[..., None], float("-inf"))
        return torch.cat([logits[..., :self.code_lo], codes, logits[..., self.code_hi:]], -1)

    def step(self, inside: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
        return (inside | (tok == self.open_id)) & (tok != self.close_id)

    def correct(self, logp: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unmasked log-probs ``logp`` (N, C) of ``target`` under ``logits`` (N, C, V) -> the masked ones, without
        materialising a masked copy of the logits: outside a block, log p(tok) - log(1 - P(codes)). A code
        outside a block (never sampled under the mask) keeps its unmasked value, so it stays finite."""
        inside = self.inside_before(target)
        is_code = (target >= self.code_lo) & (target < self.code_hi)
        lse = logits.gather(-1, target[..., None]).squeeze(-1) - logp  # logsumexp over the vocabulary
        frac = (torch.logsumexp(logits[..., self.code_lo:self.code_hi], -1) - lse).clamp_max(-1e-6)
        fix = torch.log1p(-frac.exp())  # log(1 - P(codes))
        return torch.where(inside | is_code, logp, logp - fix)


class FormatMaskProcessor:
    """The format mask as a ``transformers`` logits processor (beam search through ``generate``): the block
    state of each row is read from its tokens after the prompt (length ``prompt_len``)."""

    def __init__(self, fmt: FormatMask, prompt_len: int):
        self.fmt, self.prompt_len = fmt, prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        inside = self.fmt.steps(input_ids[:, self.prompt_len:]).sum(1) > 0  # nothing generated yet: outside
        return self.fmt.mask_(scores.clone(), inside)


def format_mask_for(tokenizer, code_lo: int, nb_code: int) -> FormatMask:
    from models.prompts import MOTION_END, MOTION_START
    o, c = tokenizer.convert_tokens_to_ids([MOTION_START, MOTION_END])
    return FormatMask(int(code_lo), int(code_lo) + int(nb_code), int(o), int(c))


def process_logits(logits: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    """(N, V) raw logits -> the logits of the sampling distribution (filtered entries are -inf)."""
    logits = logits.float()
    if not p.do_sample:
        return logits
    if p.temperature != 1.0:
        logits = logits / p.temperature
    if p.top_k and p.top_k < logits.shape[-1]:
        kth = torch.topk(logits, p.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if p.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens ranked above it already hold top_p of the mass (the first always stays)
        drop_sorted = (probs.cumsum(-1) - probs) >= p.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_tokens(logits: torch.Tensor, p: SamplingParams) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, V) processed logits -> (tokens (N,), their log-probabilities (N,)). Sampling inverts the CDF with
    one uniform number per row (the token i with cdf[i-1] <= u < cdf[i], so a filtered token, of probability
    0, is never drawn): the same distribution as ``multinomial`` at a fraction of its cost on a CPU, where
    drawing V random numbers per row dominates a small model's decode step."""
    logp = torch.log_softmax(logits, -1)
    if p.do_sample:
        cdf = logp.exp().cumsum(-1)
        u = torch.rand((cdf.shape[0], 1), device=cdf.device, dtype=cdf.dtype) * cdf[:, -1:]
        tok = torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_max(cdf.shape[-1] - 1)
    else:
        tok = logits.argmax(-1)
    return tok, logp.gather(-1, tok[:, None]).squeeze(-1)


COMPACT_FRACTION = 4  # finished rows leave the batch once they are at least 1/4 of it


@torch.no_grad()
def decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int, eos_token_id: int,
           pad_token_id: int, params: SamplingParams, num_return_sequences: int = 1, sync=None,
           fmt: FormatMask | None = None) -> dict:
    """Left-padded prompts (B, L) -> ``tokens`` (B·n, C) (pad after EOS), ``logprobs`` (B·n, C) of each
    sampled token under the sampling distribution (0 after EOS). Rows are grouped per prompt (prompt i's samples are rows i·n … i·n + n − 1).
    ``sync(flag: bool) -> bool``: any-rank reduction for sharded models (see module doc). ``fmt``: the format
    mask (:class:`FormatMask`), applied to the raw logits before temperature / top-k / top-p."""
    from transformers import DynamicCache

    B, L = input_ids.shape
    n = int(num_return_sequences)
    dev = input_ids.device
    att = attention_mask.to(dev).long()
    pos = (att.cumsum(1) - 1).clamp_min(0)
    cache = DynamicCache()
    out = model(input_ids=input_ids, attention_mask=att, position_ids=pos, cache=cache, use_cache=True,
                logits_to_keep=1)  # the cache is filled in place
    logits = out.logits[:, -1]
    if n > 1:  # one prefill per prompt, its cache shared by the prompt's samples
        cache.batch_repeat_interleave(n)
        logits = logits.repeat_interleave(n, 0)
        att = att.repeat_interleave(n, 0)
        pos = pos.repeat_interleave(n, 0)
    N = B * n
    next_pos = pos[:, -1] + 1
    tokens = torch.full((N, max_new_tokens), pad_token_id, dtype=torch.long, device=dev)
    logps = torch.zeros((N, max_new_tokens), dtype=torch.float32, device=dev)
    rows = torch.arange(N, device=dev)  # the rows still in the batch (finished rows leave it, see compact)
    done = torch.zeros(N, dtype=torch.bool, device=dev)  # of the rows in the batch
    inside = torch.zeros(N, dtype=torch.bool, device=dev)
    for t in range(max_new_tokens):
        if fmt is not None:
            logits = fmt.mask_(logits.float().clone(), inside)
        tok, lp = sample_tokens(process_logits(logits, params), params)
        tok = torch.where(done, torch.full_like(tok, pad_token_id), tok)
        if fmt is not None:
            inside = fmt.step(inside, tok)
        tokens[rows, t] = tok
        logps[rows, t] = lp.masked_fill(done, 0.0)
        done = done | (tok == eos_token_id)
        unfinished = not bool(done.all())
        if sync is not None:
            unfinished = sync(unfinished)
        if not unfinished or t + 1 == max_new_tokens:
            tokens, logps = tokens[:, :t + 1], logps[:, :t + 1]
            break
        n_done = int(done.sum())
        if n_done and n_done * COMPACT_FRACTION >= len(rows) and n_done < len(rows):
            # drop the finished rows from the batch (their outputs are written; pad and 0 from here on), so the
            # steps cost what the unfinished rows need, not what the longest row of the batch needs
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            rows, att, next_pos, inside, tok = rows[keep], att[keep], next_pos[keep], inside[keep], tok[keep]
            done = done[keep]
        att = torch.cat([att, att.new_ones((len(rows), 1))], 1)
        out = model(input_ids=tok[:, None], attention_mask=att, position_ids=next_pos[:, None],
                    cache=cache, use_cache=True)
        logits = out.logits[:, -1]
        next_pos = next_pos + 1
    return {"tokens": tokens, "logprobs": logps}
