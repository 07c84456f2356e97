"""GRPO for MotionLLM (docs/method.md §6).

One step for B prompts:

1. **Rollout**: one batched ``generate`` call samples G completions per prompt (temperature / top-p).
2. **Rewards** for all B·G completions at once; advantages are group-normalised,
   A_i = (r_i − mean_g r) / (std_g r + eps), on the total reward or per reward component.
3. **Log-probs** of the sampled tokens under the sampling policy (π_old, no grad; with one inner epoch
   it equals the detached current log-prob and is not recomputed) and the frozen reference (a copy of
   the adapter and new token rows, switched in; not a second backbone; skipped when β = 0).
4. For each inner epoch, the token-level clipped surrogate with the k3 KL (with gradient)::

       L = −1/G Σ_i 1/|o_i| Σ_t [ min(ρ_it A_i, clip(ρ_it, 1−ε, 1+ε) A_i) − β KL_it ]
       ρ_it = π_θ / π_old,   KL_it = π_ref/π_θ − log(π_ref/π_θ) − 1

   ``loss_norm``: ``grpo`` (per-sequence token mean, then mean — the formula above),
   ``token`` (mean over all completion tokens of the step, across micro-batches), ``dr_grpo``
   (token sum / max_new_tokens).

Every log-prob (π_θ, π_old, π_ref) is taken under the distribution the rollout sampled from:
logits / temperature and the same top-k / top-p filter (``models.decoding``; the backbone's own
``generation_config`` never applies). Dropout is off during the step with the model left in training
mode, so gradient checkpointing stays active.

Chain-of-Motion rollouts (``com_rounds`` = T > 1): T rounds of G samples per prompt; from round 2 the
prompt carries the best reasoning so far (ranked by a scorer that sees only the model inputs) as a
plan to refine; the group of a prompt holds its G·T samples and each sample's log-probs are taken
under the prompt it was sampled with.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from utils.threads import adapt as adapt_threads


def _arg(default, flag: str | None, help: str):
    """A config field whose command-line flag is ``flag`` (``None``: no flag of its own)."""
    return field(default=default, metadata={"flag": flag, "help": help})


@dataclass
class GRPOConfig:
    """Every GRPO setting with its one default; :mod:`options.option_train` declares the flags from
    these fields and :meth:`from_args` reads them back (``lr``, ``max_grad_norm`` and ``com_rounds`` come
    from the flags the SFT stage shares: ``--learning-rate``, ``--max-grad-norm``, ``--com-refine-steps``)."""
    group_size: int = _arg(8, "rl_group_size", "samples per prompt (G)")
    clip_eps: float = _arg(0.2, "rl_clip_eps", "PPO clip epsilon on the token ratio")
    kl_coef: float = _arg(0.02, "rl_kl_coef", "beta of the k3 KL to the reference")
    inner_epochs: int = _arg(1, "rl_inner_epochs", "policy updates per rollout batch")
    temperature: float = _arg(1.0, "rl_temperature", "rollout sampling temperature")
    top_p: float = _arg(1.0, "rl_top_p", "rollout nucleus sampling threshold")
    top_k: int = _arg(0, "rl_top_k", "rollout top-k filter (0: off)")
    max_new_tokens: int = _arg(200, "rl_max_new_tokens", "generated tokens per rollout")
    loss_norm: str = _arg("grpo", "rl_loss_norm", "grpo: per-sequence token mean; token: mean over all tokens; "
                                                  "dr_grpo: token sum / max_new_tokens")
    component_norm: bool = _arg(True, "rl_component_norm", "normalise each reward component within its group")
    micro_batch_size: int = _arg(16, "rl_micro_batch_size", "sequences per forward/backward")
    lr: float = _arg(1e-5, None, "AdamW learning rate over LoRA + new token rows (--learning-rate)")
    max_grad_norm: float = _arg(1.0, None, "gradient clipping (--max-grad-norm)")
    adv_eps: float = _arg(1e-4, None, "added to the group std")
    adv_std_floor: float = _arg(0.0, "rl_adv_std_floor", "advantages divide by max(group std, this floor) (per reward "
                                                         "component with component norm): near-ties stay small "
                                                         "instead of becoming ±1 (0: off)")
    # Chain-of-Motion rollouts: rounds of G samples; round r > 1 re-prompts with the best plan
    com_rounds: int = _arg(1, None, "CoM rollout rounds T (--com-refine-steps; 0/1 = plain GRPO)")

    @classmethod
    def from_args(cls, args) -> "GRPOConfig":
        kw = {f.name: getattr(args, f.metadata["flag"]) for f in fields(cls) if f.metadata.get("flag")}
        return cls(**kw, lr=args.learning_rate, max_grad_norm=args.max_grad_norm,
                   com_rounds=max(1, args.com_refine_steps))


@dataclass
class Rollout:
    task: str
    input_ids: torch.Tensor        # (N, P + C) left-padded prompt + right-padded completion
    attention_mask: torch.Tensor   # (N, P + C)
    prompt_len: int                # P
    completion_mask: torch.Tensor  # (N, C) 1 on sampled tokens (EOS included)
    outputs: list                  # parsed outputs (dicts), N = B * G
    prompts: list                  # B prompt payloads (captions or code lists)
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    sample_logp: torch.Tensor | None = None  # (N, C) as the decode loop drew the tokens (None from an engine)
    meta: dict = field(default_factory=dict)


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4, std_floor: float = 0.0) -> torch.Tensor:
    """(N,) rewards, N = B * G consecutive groups -> group-normalised advantages.

    ``std_floor`` > 0 divides by max(group std, std_floor): a group whose rewards differ by less than the
    floor keeps small advantages instead of having near-ties (reward noise) blown up to ±1."""
    r = rewards.view(-1, group_size).float()
    std = r.std(1, keepdim=True, unbiased=False)
    if std_floor > 0:
        std = std.clamp_min(std_floor)
    adv = (r - r.mean(1, keepdim=True)) / (std + eps)
    return adv.view(-1)


def combine_advantages(components: dict, weights: dict, group_size: int, component_norm: bool,
                       eps: float = 1e-4, std_floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-component group normalisation then weighting (``component_norm``), or normalisation of
    the weighted total. Returns (total reward, advantages)."""
    total = sum(weights[k] * torch.as_tensor(v, dtype=torch.float32) for k, v in components.items())
    if component_norm:
        adv = sum(weights[k] * group_advantages(torch.as_tensor(v, dtype=torch.float32), group_size, eps, std_floor)
                  for k, v in components.items())
    else:
        adv = group_advantages(total, group_size, eps, std_floor)
    return total, adv


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """KL estimator exp(ref − logp) − (ref − logp) − 1 (≥ 0, zero when equal, has a gradient)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def policy_loss(logp, old_logp, ref_logp, adv, mask, clip_eps: float, kl_coef: float, loss_norm: str = "grpo",
                max_new_tokens: int | None = None, token_count: float | None = None) -> tuple[torch.Tensor, dict]:
    """Token-level clipped GRPO objective. All tensors (N, C) except ``adv`` (N,). ``token_count``: the
    denominator of ``loss_norm="token"`` (the step's completion tokens when the step is split into
    micro-batches; default: this batch's)."""
    mask = mask.float()
    ratio = torch.exp(logp - old_logp)
    a = adv[:, None]
    surr = torch.min(ratio * a, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * a)
    kl = k3_kl(logp, ref_logp)
    per_tok = -(surr - kl_coef * kl)
    if loss_norm == "grpo":
        loss = ((per_tok * mask).sum(1) / mask.sum(1).clamp_min(1)).mean()
    elif loss_norm == "token":
        loss = (per_tok * mask).sum() / (max(float(token_count), 1.0) if token_count else mask.sum().clamp_min(1))
    elif loss_norm == "dr_grpo":
        loss = (per_tok * mask).sum() / (mask.shape[0] * (max_new_tokens or mask.shape[1]))
    else:
        raise ValueError(f"unknown loss_norm {loss_norm!r}: grpo, token or dr_grpo")
    with torch.no_grad():
        n = mask.sum().clamp_min(1)
        clipped = ((ratio < 1 - clip_eps) | (ratio > 1 + clip_eps)).float()
        stats = {"kl": float((kl * mask).sum() / n), "clip_frac": float((clipped * mask).sum() / n),
                 "ratio_mean": float((ratio * mask).sum() / n)}
    return loss, stats


def _ce_logprobs(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log softmax at the target tokens only, fused (no (N, C, V) log-prob tensor, a cheap backward)."""
    return -torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                              reduction="none").view(target.shape)


def _logprobs_of(logits: torch.Tensor, target: torch.Tensor, params=None, fmt=None) -> torch.Tensor:
    """Log-probs of ``target`` under the sampling distribution ``params`` (:class:`models.decoding.SamplingParams`:
    logits / temperature, then the same top-k / top-p filter the rollout used; ``None``: the plain softmax), with
    the rollout's format mask ``fmt`` (:class:`models.decoding.FormatMask`, or ``None``). A token the filter
    excludes (possible only once the policy has moved, or under the reference) gets its unfiltered tempered
    log-prob, so the value stays finite."""
    logits = logits.float()
    if params is not None and params.temperature != 1.0:
        logits = logits / params.temperature
    plain = _ce_logprobs(logits, target)
    if fmt is not None:
        plain = fmt.correct(plain, logits, target)
    if params is None or not (params.top_k or params.top_p < 1.0):
        return plain
    from models.decoding import SamplingParams, process_logits
    filt = SamplingParams(True, 1.0, params.top_k, params.top_p)  # the temperature is applied above
    src = fmt.mask(logits, fmt.inside_before(target)) if fmt is not None else logits
    kept = process_logits(src.reshape(-1, logits.shape[-1]), filt).view(logits.shape)
    filtered = _ce_logprobs(kept, target)
    return torch.where(torch.isfinite(filtered), filtered, plain)


def _full_logprobs(module, ids, att, prompt_len: int, params=None, fmt=None) -> torch.Tensor:
    C = ids.shape[1] - prompt_len
    pos = (att.cumsum(1) - 1).clamp_min(0)  # consistent with generation under left padding
    logits = module(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=False,
                    logits_to_keep=C + 1).logits[:, :-1]
    return _logprobs_of(logits, ids[:, prompt_len:], params, fmt)


def _shared_prompt_logprobs(module, ids, att, prompt_len: int, group: int, params=None, fmt=None) -> torch.Tensor:
    """The same log-probs with each prompt run once for its ``group`` consecutive rows: a forward over the
    B distinct prompts fills a KV cache (with its autograd history), repeated for the rows, then one forward
    over the completions reads it. Gradients reach the prompt positions through the cache."""
    from transformers import DynamicCache
    P = prompt_len
    p_ids, p_att = ids[::group, :P], att[::group, :P]
    cache = DynamicCache()
    first = module(input_ids=p_ids, attention_mask=p_att, position_ids=(p_att.cumsum(1) - 1).clamp_min(0),
                   cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1:]
    cache.batch_repeat_interleave(group)
    logits = first.repeat_interleave(group, 0)  # predicts the first completion token
    if ids.shape[1] - P > 1:  # the completion tokens but the last predict the rest
        pos = (att.cumsum(1) - 1).clamp_min(0)
        rest = module(input_ids=ids[:, P:-1], attention_mask=att[:, :-1], position_ids=pos[:, P:-1], cache=cache,
                      use_cache=True).logits
        logits = torch.cat([logits, rest], 1)
    return _logprobs_of(logits, ids[:, P:], params, fmt)


def _groups_share_prompts(ids, prompt_len: int, group: int) -> bool:
    n = ids.shape[0]
    if group <= 1 or n % group:
        return False
    p = ids[:, :prompt_len].view(n // group, group, prompt_len)
    return bool((p == p[:, :1]).all())


def token_logprobs(mllm, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int,
                   micro_batch_size: int = 16, group_size: int = 1, params=None, fmt="model") -> torch.Tensor:
    """log π(token) of the completion tokens, (N, C); only the completion logits are materialised.
    ``params``: the sampling distribution of the rollout (see :func:`_logprobs_of`); ``None``: plain softmax.
    ``fmt``: the format mask of the rollout; by default the model's (:meth:`MotionLLM.active_format_mask`).

    ``group_size`` G: rows come in groups of G sharing one prompt (a GRPO rollout); when the micro-batches
    hold whole groups, each prompt is run once per group (:func:`_shared_prompt_logprobs`) — not under DDP
    (one forward per backward) nor with gradient checkpointing (no cache while recomputing)."""
    grad = torch.is_grad_enabled()
    if fmt == "model":  # an external engine (vLLM) samples without the mask
        fmt = None if getattr(mllm, "engine", None) is not None else mllm.active_format_mask()
    module = mllm.forward_module if grad else mllm.model  # DDP only where gradients flow
    gc = getattr(mllm, "gradient_checkpointing", False)
    share = (group_size > 1 and micro_batch_size % group_size == 0 and not gc
             and (not grad or module is mllm.model) and _groups_share_prompts(input_ids, prompt_len, group_size))
    outs = []
    with contextlib.nullcontext() if grad else mllm.inference_weights():  # no grad: adapter folded in
        for s in range(0, input_ids.shape[0], micro_batch_size):
            ids = input_ids[s:s + micro_batch_size].to(mllm.device)
            att = attention_mask[s:s + micro_batch_size].to(mllm.device)
            if share:
                outs.append(_shared_prompt_logprobs(module, ids, att, prompt_len, group_size, params, fmt))
            else:
                outs.append(_full_logprobs(module, ids, att, prompt_len, params, fmt))
    return torch.cat(outs)


class GRPOTrainer:
    """GRPO on a :class:`models.mllm.MotionLLM` with a reference adapter (``ref_<adapter>``)."""

    def __init__(self, mllm, reward_fn, cfg: GRPOConfig, weights=None, com_scorer=None, dist=None):
        """``reward_fn(task, prompts, outputs) -> dict name -> (N,) values`` (reward components of the
        N = B·G outputs; ``prompts`` are the B records given to :meth:`step`, each repeated G times in
        ``outputs`` order); ``weights``: component weights (default 1 each). ``com_scorer(task, inputs,
        outputs) -> (N,)`` ranks the candidates of a Chain-of-Motion round; it receives only the model
        inputs (captions for t2m, motion codes for m2t), never a reference answer. The optimizer is built
        here over the parameters trainable now: set the task (and add the reference adapter) first."""
        if cfg.com_rounds > 1 and com_scorer is None:
            raise ValueError("Chain-of-Motion rollouts (com_rounds > 1) need a com_scorer")
        self.com_scorer = com_scorer
        self.m, self.reward_fn, self.cfg = mllm, reward_fn, cfg
        self.weights = weights
        self.optimizer = torch.optim.AdamW(mllm.trainable_parameters(), lr=cfg.lr, weight_decay=0.0)
        # multi-process (utils.distributed.Dist): each rank rolls out its own prompts; the DDP-wrapped
        # policy all-reduces the gradients once per inner epoch (on the last micro-batch backward)
        if dist is None:
            from utils.distributed import Dist
            dist = Dist()  # one process: no_sync is a no-op
        self.dist = dist
        from models.decoding import SamplingParams
        # the distribution rollouts sample from, used again for every log-prob of the step
        self.sampling = SamplingParams(True, cfg.temperature, cfg.top_k, cfg.top_p)

    # ------------------------------------------------------------------ rollout
    @staticmethod
    def prompt_payload(task: str, rec):
        """A record (dict with caption / motion_tokens) or a bare caption / code list -> generate input."""
        if isinstance(rec, dict):
            return rec["caption"] if task == "t2m" else rec["motion_tokens"]
        return rec

    @torch.no_grad()
    def rollout(self, task: str, prompts: list, plans: list | None = None) -> Rollout:
        m, cfg = self.m, self.cfg
        t0 = time.time()
        payload = [self.prompt_payload(task, p) for p in prompts]
        gens = m.generate(task, captions=payload if task == "t2m" else None, plans=plans,
                          motion_codes=payload if task == "m2t" else None, num_return_sequences=cfg.group_size,
                          do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                          max_new_tokens=cfg.max_new_tokens, return_full=True)
        full = gens["sequences"]
        P = gens["prompt_len"]
        comp = full[:, P:]
        eos = m.tokenizer.eos_token_id
        # completion mask: tokens up to and including the first EOS
        is_eos = comp == eos
        first = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full((comp.shape[0],), comp.shape[1]))
        cmask = (torch.arange(comp.shape[1])[None] <= first[:, None]).long()
        cmask = cmask * (torch.arange(comp.shape[1])[None] < comp.shape[1]).long()
        att = torch.cat([gens["prompt_mask"].repeat_interleave(cfg.group_size, 0), cmask], 1)
        ro = Rollout(task, full, att, P, cmask, gens["outputs"], list(prompts), sample_logp=gens.get("sample_logprobs"))
        ro.meta["rollout_s"] = time.time() - t0
        ro.meta["gen_tokens"] = int(cmask.sum())
        return ro

    @torch.no_grad()
    def score_logprobs(self, ro: Rollout):
        """Log-probs under the sampling policy and the reference. With one inner epoch the policy has not
        moved since sampling, so π_old is the detached current log-prob and that forward is skipped (as
        TRL does); without a KL term the reference forward is skipped too."""
        m, cfg = self.m, self.cfg
        ro.old_logp = None
        if cfg.inner_epochs > 1:
            ro.old_logp = token_logprobs(m, ro.input_ids, ro.attention_mask, ro.prompt_len, cfg.micro_batch_size,
                                         cfg.group_size, self.sampling)
        ro.ref_logp = None
        if cfg.kl_coef != 0:
            with m.using_adapter(m.reference_name(m.active)):
                ro.ref_logp = token_logprobs(m, ro.input_ids, ro.attention_mask, ro.prompt_len, cfg.micro_batch_size,
                                             cfg.group_size, self.sampling)

    def com_rollouts(self, task: str, prompts: list) -> list:
        """``com_rounds`` rounds of G samples per prompt (one batched generate call each); from round 2
        on, each prompt carries the reasoning of its best candidate so far as a plan to refine, the
        best being chosen by ``com_scorer`` (which never sees a reference)."""
        segments = [self.rollout(task, prompts)]
        if self.cfg.com_rounds <= 1:
            return segments
        from models.com import update_best
        G = self.cfg.group_size
        inputs = [self.prompt_payload(task, p) for p in prompts]
        best: list = [None] * len(prompts)
        for _ in range(self.cfg.com_rounds - 1):
            ro = segments[-1]
            rep = [x for x in inputs for _ in range(G)]
            best = update_best(best, self.com_scorer(task, rep, ro.outputs), ro.outputs, G)
            segments.append(self.rollout(task, prompts, plans=[b[1]["reasoning"] or None for b in best]))
        return segments

    # ------------------------------------------------------------------ update
    def step(self, task: str, prompts: list) -> dict:
        adapt_threads()  # between steps: as many CPU threads as other processes leave free
        m, cfg = self.m, self.cfg
        m.set_task(task)
        # dropout off for the whole step (as TRL does): the ratio to the sampling policy is exactly 1 and the
        # KL to the reference exactly 0 before the first update. The model stays in training mode (dropout
        # rates set to 0 instead of eval()), so gradient checkpointing keeps working
        was_training = m.model.training
        m.model.train()
        try:
            with m.dropout_off():
                return self._step(task, prompts)
        finally:
            if not was_training:
                m.model.eval()

    def _step(self, task: str, prompts: list) -> dict:
        m, cfg = self.m, self.cfg
        t0 = time.time()
        segments = self.com_rollouts(task, prompts)
        t_r = time.time()
        B, G, R = len(prompts), cfg.group_size, len(segments)
        seg_comps = [self.reward_fn(task, ro.prompts, ro.outputs) for ro in segments]
        weights = self.weights or {k: 1.0 for k in seg_comps[0]}
        # a prompt's group holds its samples of every round: (B, R*G) in round order
        comps = {k: torch.cat([torch.as_tensor(sc[k], dtype=torch.float32).view(B, G) for sc in seg_comps], 1).view(-1)
                 for k in seg_comps[0] if weights.get(k, 0) != 0}
        total, adv = combine_advantages(comps, weights, R * G, cfg.component_norm, cfg.adv_eps,
                                        cfg.adv_std_floor)
        adv_seg = adv.view(B, R, G)
        t_rew = time.time()
        for ro in segments:
            self.score_logprobs(ro)
        stats = {}
        N = B * R * G
        # --rl-loss-norm token: the mean over every completion token of the step (all micro-batches and rounds)
        step_tokens = float(sum(int(ro.completion_mask.sum()) for ro in segments))
        for _ in range(cfg.inner_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            n_back = sum(len(range(0, ro.input_ids.shape[0], cfg.micro_batch_size)) for ro in segments)
            i_back = 0
            for r, ro in enumerate(segments):
                a_r = adv_seg[:, r].reshape(-1)
                n_r = ro.input_ids.shape[0]
                for s in range(0, n_r, cfg.micro_batch_size):
                    i_back += 1
                    sl = slice(s, s + cfg.micro_batch_size)
                    k_sl = min(n_r, s + cfg.micro_batch_size) - s
                    # forward and backward inside no_sync: DDP decides at forward time whether to reduce
                    with self.dist.no_sync(m.forward_module, skip=i_back < n_back):
                        logp = token_logprobs(m, ro.input_ids[sl], ro.attention_mask[sl], ro.prompt_len,
                                              cfg.micro_batch_size, cfg.group_size, self.sampling)
                        old = logp.detach() if ro.old_logp is None else ro.old_logp[sl].to(logp.device)
                        ref = logp.detach() if ro.ref_logp is None else ro.ref_logp[sl].to(logp.device)
                        loss, st = policy_loss(logp, old, ref, a_r[sl].to(logp.device),
                                               ro.completion_mask[sl].to(logp.device), cfg.clip_eps, cfg.kl_coef,
                                               cfg.loss_norm, cfg.max_new_tokens, token_count=step_tokens)
                        # grpo / dr_grpo: a mean over the rows of the micro-batch, weighted by its share of
                        # the step's rows; token: already divided by the step's token count
                        share = 1.0 if cfg.loss_norm == "token" else k_sl / N
                        (loss * share).backward()
                    for k, v in st.items():
                        stats[k] = stats.get(k, 0.0) + v * k_sl / N / cfg.inner_epochs
                    stats["loss"] = stats.get("loss", 0.0) + loss.item() * share / cfg.inner_epochs
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(m.trainable_parameters(), cfg.max_grad_norm)
            self.optimizer.step()
        engine = m.engine
        if engine is not None and hasattr(engine, "sync"):  # e.g. vLLM: serve the updated policy next step
            engine.sync()
        dt = time.time() - t0
        ro = segments[0]
        lens = torch.cat([s.completion_mask.sum(1).float() for s in segments])
        ro.meta["gen_tokens"] = sum(s.meta["gen_tokens"] for s in segments)
        ro.outputs = [o for s in segments for o in s.outputs]
        out = {"reward/total_mean": float(total.mean()), "reward/total_std": float(total.std(unbiased=False)),
               "response_len": float(lens.mean()), "rollout_tokens_per_s": ro.meta["gen_tokens"] / max(t_r - t0, 1e-9),
               "step_s": dt, "rollout_s": t_r - t0, "reward_s": t_rew - t_r, **stats}
        for k, v in comps.items():
            out[f"reward/{k}_mean"] = float(v.mean())
            out[f"reward/{k}_std"] = float(v.std(unbiased=False))
            # the spread inside a prompt's group, which the advantage divides by (cf. --rl-adv-std-floor)
            out[f"reward/{k}_group_std"] = float(v.view(B, R * G).std(1, unbiased=False).mean())
        out["well_formed"] = float(np.mean([o["well_formed"] for o in ro.outputs]))
        out["group_size_effective"] = R * G
        out["reward/groups"] = B
        out["reward/zero_std_groups"] = int((adv.view(B, R * G).abs().amax(1) < 1e-6).sum())  # groups without signal
        out["reward/component_norm"] = cfg.component_norm
        return out
