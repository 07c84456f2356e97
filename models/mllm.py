"""MotionLLM: a causal LM with motion tokens as new vocabulary, fine-tuned with LoRA (docs/method.md §3–4).

* The backbone is any ``AutoModelForCausalLM`` given by hub id or local directory
  (``trust_remote_code`` only when asked).
* The tokenizer gets the tag tokens (those it lacks; Qwen3 already has ``<think>``) and
  ``<Motion_0>`` … ``<Motion_{nb_code-1}>`` appended in a fixed order, so their ids are a function of
  the base tokenizer only (checked again on load).
* One LoRA adapter per task (``t2m``, ``m2t``; or one ``shared`` adapter) on q/k/v/o/gate/up/down.
  Only LoRA and the rows of the *new* tokens (input embedding and output head) are trainable
  (peft ``trainable_token_indices``); every other weight stays bit-identical.
* Checkpoints hold only tensors — the adapter state dicts (LoRA + new token rows) — plus the
  configuration as a JSON string; they load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from models.prompts import (DEFAULT_PROMPT_FORMAT, REGION_ANSWER, REGION_PROMPT, REGION_REASONING, TAG_TOKENS,
                            TOKENIZER_FORMAT_ATTR, encode_example, encode_prompt, generation_status,
                            motion_token_list, parse_output, resolve_prompt_format)
from models.decoding import SamplingParams, decode
from utils.io import atomic_torch_save, atomic_write_json, load_checkpoint


def _any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on any process (sharded decoding keeps every rank stepping)."""
    t = torch.tensor([1.0 if flag else 0.0],
                     device="cuda" if torch.cuda.is_available() and torch.distributed.get_backend() == "nccl" else "cpu")
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_BACKBONE = "Qwen/Qwen3-4B-Instruct-2507"


SHARED_PREFIX_MIN = 8  # a prompt prefix shared by every row of an SFT batch is run once from this many tokens


@dataclass
class MLLMConfig:
    llm_backbone: str = DEFAULT_BACKBONE
    nb_code: int = 512
    tasks: list = field(default_factory=lambda: ["t2m", "m2t"])
    shared_adapter: bool = False
    lora_r: dict = field(default_factory=lambda: {"t2m": 64, "m2t": 32})
    lora_alpha: dict = field(default_factory=lambda: {"t2m": 64, "m2t": 32})
    lora_dropout: float = 0.1
    lora_targets: list = field(default_factory=lambda: list(LORA_TARGETS))
    trust_remote_code: bool = False
    # "instruction" (the original format) or "chat" (the backbone's chat template); "auto" is resolved to one of
    # them when the model is built, and the resolved value is what checkpoints record (models/prompts.py)
    prompt_format: str = DEFAULT_PROMPT_FORMAT
    # filled in when the tokens are added
    base_vocab_size: int = 0
    new_token_ids: list = field(default_factory=list)
    motion_token_offset: int = 0

    def adapter_name(self, task: str) -> str:
        return "shared" if self.shared_adapter else task

    def adapters(self) -> list:
        return ["shared"] if self.shared_adapter else list(self.tasks)

    @classmethod
    def from_args(cls, args, nb_code: int) -> "MLLMConfig":
        """The configuration of a new model from the LLM/LoRA flags (:mod:`options.llm`, whose defaults
        are this class's; no ``--llm-backbone`` means the default backbone)."""
        return cls(llm_backbone=args.llm_backbone or DEFAULT_BACKBONE, nb_code=nb_code, shared_adapter=args.shared_adapter,
                   lora_r={"t2m": args.lora_r_t2m, "m2t": args.lora_r_m2t},
                   lora_alpha={"t2m": args.lora_alpha_t2m, "m2t": args.lora_alpha_m2t},
                   lora_dropout=args.lora_dropout, trust_remote_code=args.trust_remote_code,
                   prompt_format=getattr(args, "prompt_format", None) or DEFAULT_PROMPT_FORMAT)


class _Unregistered:
    """Holds a module (a DDP wrapper or compiled form of the peft model) without registering it as a
    submodule, so its parameters do not appear twice in ``state_dict()``."""

    def __init__(self, module=None):
        self.module = module


def _dtype_for(device: torch.device, dtype: str | None):
    if dtype in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
            "fp32": torch.float32, "float32": torch.float32}[dtype]


class MotionLLM(torch.nn.Module):
    def __init__(self, cfg: MLLMConfig, device="cpu", dtype: str | None = "auto", gradient_checkpointing=False,
                 attn_implementation: str | None = "sdpa"):
        super().__init__()
        from peft import LoraConfig, get_peft_model
        from transformers import AddedToken, AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = _dtype_for(self.device, dtype)
        self.engine = None  # another generation engine (models.vllm_engine.VLLMEngine); None = HF generate
        self.use_format_mask = True  # motion codes only inside <Motion> ... </Motion> (models.decoding.FormatMask)
        self.fsdp = False  # backbone sharded with FSDP2 (decoding then steps every rank until all are done)
        self.merge_lora_for_inference: bool | None = None  # None: by size, see _merge_lora
        self._train_module = _Unregistered()
        kw = {"trust_remote_code": cfg.trust_remote_code}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.llm_backbone, **kw)
        except OSError as exc:
            raise OSError(f"cannot load the tokenizer of --llm-backbone {cfg.llm_backbone!r}: {exc}. Pass a local "
                          "directory (e.g. one made by prepare/make_tiny_backbone.py) or a reachable hub id.") from exc
        # "auto" becomes "chat" or "instruction" here; recorded on the tokenizer too, so that every prompt built
        # with it (models.prompts.encode_prompt without an explicit format) is this model's
        cfg.prompt_format = resolve_prompt_format(self.tokenizer, cfg.prompt_format)
        setattr(self.tokenizer, TOKENIZER_FORMAT_ATTR, cfg.prompt_format)
        base_len = len(self.tokenizer)
        vocab = self.tokenizer.get_vocab()
        motion_tokens = motion_token_list(cfg.nb_code)
        clash = [t for t in motion_tokens[:1] + motion_tokens[-1:] if t in vocab]
        if clash:
            raise ValueError(f"the backbone tokenizer already contains {clash}; pass the base backbone, "
                             "not an exported MotionLLM")
        # tag tokens the tokenizer already has as single tokens (Qwen3 has <think>, </think>) are reused
        missing_tags = [t for t in TAG_TOKENS if t not in vocab]
        self.tokenizer.add_tokens([AddedToken(t, normalized=False, special=False) for t in missing_tags + motion_tokens])
        ids = self.tokenizer.convert_tokens_to_ids(TAG_TOKENS + motion_tokens)
        motion_ids = ids[len(TAG_TOKENS):]
        if motion_ids != list(range(motion_ids[0], motion_ids[0] + cfg.nb_code)):
            raise RuntimeError("motion tokens did not get consecutive ids")
        if cfg.new_token_ids and cfg.new_token_ids != ids:
            raise ValueError(f"token ids differ from the checkpoint (the base tokenizer has {base_len} tokens, the "
                             f"checkpoint was trained with {cfg.base_vocab_size}); use the same --llm-backbone")
        cfg.base_vocab_size = base_len
        cfg.new_token_ids = ids
        cfg.motion_token_offset = motion_ids[0]
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f"backbone {cfg.llm_backbone}: tokenizer has no EOS token")

        try:
            model = AutoModelForCausalLM.from_pretrained(cfg.llm_backbone, dtype=self.dtype,
                                                         attn_implementation=attn_implementation, **kw)
        except (ValueError, ImportError):  # attention implementation not available for this model
            model = AutoModelForCausalLM.from_pretrained(cfg.llm_backbone, dtype=self.dtype, **kw)
        model.resize_token_embeddings(len(self.tokenizer), pad_to_multiple_of=64, mean_resizing=False)
        self._init_new_rows(model, base_len, len(self.tokenizer))
        self.gradient_checkpointing = bool(gradient_checkpointing)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        model.config.use_cache = not gradient_checkpointing

        tied = bool(getattr(model.config, "tie_word_embeddings", False))
        token_targets = ids if tied else {"embed_tokens": ids, "lm_head": ids}
        self.model = None
        for name in cfg.adapters():
            task = "t2m" if name == "shared" else name
            lcfg = LoraConfig(r=cfg.lora_r[task], lora_alpha=cfg.lora_alpha[task], lora_dropout=cfg.lora_dropout,
                              target_modules=cfg.lora_targets, trainable_token_indices=token_targets,
                              task_type="CAUSAL_LM", bias="none")
            if self.model is None:
                self.model = get_peft_model(model, lcfg, adapter_name=name)
            else:
                self.model.add_adapter(name, lcfg)
        self.model.to(self.device)
        self.active = None
        self.set_task(cfg.tasks[0])

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    @torch.no_grad()
    def _init_new_rows(model, start: int, end: int):
        """New rows start at the mean of the existing embeddings (plus a little noise)."""
        g = torch.Generator().manual_seed(0)
        for emb in {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}.values():
            w = emb.weight
            mean = w[:start].float().mean(0)
            std = w[:start].float().std(0).mean() * 0.1
            noise = torch.randn(end - start, w.shape[1], generator=g) * std
            w[start:end] = (mean + noise).to(w.dtype)

    def set_task(self, task: str):
        name = self.cfg.adapter_name(task)
        if name != self.active:
            self.model.set_adapter(name)
            self.active = name
        self._freeze_inactive()

    def _freeze_inactive(self):
        """Only the active adapter's LoRA and new-token parameters require grad."""
        for n, p in self.model.named_parameters():
            p.requires_grad_(self._is_trainable(n) and f".{self.active}" in n)

    @staticmethod
    def _is_trainable(name: str) -> bool:
        return "lora_" in name or "trainable_tokens_delta" in name

    def trainable_parameters(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def num_parameters(self) -> dict:
        total = sum(p.numel() for p in self.model.parameters())
        train = sum(p.numel() for p in self.trainable_parameters())
        return {"total": total, "trainable": train}

    @property
    def motion_ids(self) -> torch.Tensor:
        off = self.cfg.motion_token_offset
        return torch.arange(off, off + self.cfg.nb_code)

    def active_format_mask(self):
        """The :class:`models.decoding.FormatMask` of this vocabulary, or None with ``use_format_mask`` off."""
        if not self.use_format_mask:
            return None
        from models.decoding import format_mask_for
        return format_mask_for(self.tokenizer, self.cfg.motion_token_offset, self.cfg.nb_code)

    def codes_to_token_ids(self, codes) -> list:
        return [self.cfg.motion_token_offset + int(c) for c in codes]

    # ------------------------------------------------------------------ batching
    def collate(self, encoded: list, sample_weights=None) -> dict:
        """Right-padded training batch from :class:`models.prompts.Encoded` items."""
        L = max(len(e.input_ids) for e in encoded)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(encoded), L), pad, dtype=torch.long)
        regions = torch.full((len(encoded), L), -1, dtype=torch.long)
        att = torch.zeros((len(encoded), L), dtype=torch.long)
        for i, e in enumerate(encoded):
            n = len(e.input_ids)
            ids[i, :n] = torch.tensor(e.input_ids)
            regions[i, :n] = torch.tensor(e.regions)
            att[i, :n] = 1
        batch = {"input_ids": ids, "attention_mask": att, "regions": regions}
        if sample_weights is not None:
            batch["sample_weights"] = torch.as_tensor(sample_weights, dtype=torch.float32)
        return batch

    def encode(self, task, caption, motion_codes, reasoning="", answer=None, max_len=None, plan=None):
        return encode_example(self.tokenizer, task, caption, motion_codes, reasoning, answer, max_len, plan,
                              prompt_format=self.cfg.prompt_format)

    # ------------------------------------------------------------------ loss
    @property
    def forward_module(self):
        """The module for gradient-carrying forwards: the DDP wrapper after :meth:`enable_data_parallel`
        (its backward all-reduces the trainable gradients) and/or its compiled form after
        :meth:`enable_compile`, else the peft model itself."""
        return self._train_module.module or self.model

    def enable_data_parallel(self, dist) -> bool:
        """Wrap the peft model for multi-process data parallelism (``utils.distributed.Dist``); call after
        the task and any reference adapter are set, since DDP fixes the set of trainable tensors.
        Generation and no-grad forwards keep using the unwrapped model."""
        if not dist.enabled:
            return False
        # not registered as a submodule: the parameters must not appear twice in state_dict()
        self._train_module.module = dist.wrap(self.model)
        return True

    @torch.no_grad()
    def _merge_token_rows(self) -> list:
        """Write the active adapter's new-token rows into the embedding / output matrices in place (a copy
        of those rows only) and mark the peft token layers merged, so that generation reads the plain
        matrices instead of rebuilding a merged copy of the whole vocabulary at every decoding step (peft's
        unmerged forward does an ``index_copy`` of the full matrix: for a 151k-token vocabulary that copy
        costs more than a small model's decode step). :meth:`_unmerge_token_rows` restores the rows."""
        from peft.tuners.trainable_tokens.layer import TrainableTokensLayer
        name = self.model.active_adapter  # the task's adapter, or its reference inside using_adapter()
        done = []
        for mod in self.model.modules():
            if not isinstance(mod, TrainableTokensLayer) or mod.merged or name not in mod.token_indices:
                continue
            if mod.tied_adapter is None:  # the owner of the rows writes them (a tied head shares the matrix)
                self._write_token_rows(mod, name, mod.trainable_tokens_delta[name].detach())
            mod.merged_adapters.append(name)
            done.append((mod, name))
        return done

    @torch.no_grad()
    def _unmerge_token_rows(self, done: list):
        for mod, name in done:
            mod.merged_adapters.remove(name)
            if mod.tied_adapter is None:
                self._write_token_rows(mod, name, mod.trainable_tokens_original[name])

    @torch.no_grad()
    def _merge_lora(self) -> list:
        """Fold the active adapter's LoRA into the base weights of its layers for no-grad forwards (decoding,
        reference log-probs): one matmul per layer instead of three plus dropout and scaling, which is most of
        a small model's decode step. The merged weights are new tensors; the original tensors are kept and put
        back by :meth:`_unmerge_lora`, so the base weights stay bit-identical. Costs a copy of the adapted
        weights while merged: on by default for backbones whose adapted weights hold <= 3e8 elements
        (``merge_lora_for_inference``: True/False forces it)."""
        from peft.tuners.lora.layer import Linear as LoraLinear
        layers = [m for m in self.model.modules() if isinstance(m, LoraLinear) and not m.merged]
        enabled = self.merge_lora_for_inference
        if enabled is None:
            enabled = sum(m.get_base_layer().weight.numel() for m in layers) <= 3e8
        if not enabled or self.fsdp:
            return []
        done = []
        for mod in layers:
            names = [a for a in mod.active_adapters if a in mod.lora_A]
            if not names:
                continue
            w = mod.get_base_layer().weight
            orig = w.data
            delta = sum(mod.get_delta_weight(a) for a in names)
            w.data = orig + delta.to(orig.dtype)
            mod.merged_adapters.extend(names)
            done.append((mod, w, orig, names))
        return done

    @torch.no_grad()
    def _unmerge_lora(self, done: list):
        for mod, w, orig, names in done:
            w.data = orig
            for a in names:
                mod.merged_adapters.remove(a)

    def dropout_off(self):
        """Context manager: every dropout of the model (``nn.Dropout`` modules, LoRA dropout, attention dropout
        rates) at 0 while the model stays in training mode, so gradient checkpointing keeps working (it is
        off in ``eval()``). Restored exactly on exit."""
        import contextlib

        @contextlib.contextmanager
        def ctx():
            saved = []
            for mod in self.model.modules():
                if isinstance(mod, torch.nn.Dropout):
                    saved.append((mod, "p", mod.p))
                    mod.p = 0.0
                for attr in ("attention_dropout", "dropout"):
                    v = getattr(mod, attr, None)
                    if isinstance(v, float) and not isinstance(mod, torch.nn.Dropout):
                        saved.append((mod, attr, v))
                        setattr(mod, attr, 0.0)
            try:
                yield
            finally:
                for mod, attr, v in saved:
                    setattr(mod, attr, v)
        return ctx()

    def inference_weights(self):
        """Context manager for no-grad forwards with the active adapter folded into the weights (LoRA and the
        new-token rows); everything is restored exactly on exit."""
        import contextlib

        @contextlib.contextmanager
        def ctx():
            tokens = [] if self.fsdp else self._merge_token_rows()  # sharded rows cannot be written in place
            lora = self._merge_lora()
            try:
                yield
            finally:
                self._unmerge_lora(lora)
                self._unmerge_token_rows(tokens)
        return ctx()

    @staticmethod
    def _write_token_rows(mod, name: str, rows: torch.Tensor):
        w = mod.base_layer.weight
        idx = torch.as_tensor(mod.token_indices[name], device=w.device)
        w.data.index_copy_(0, idx, rows.to(w.dtype))

    def enable_fsdp(self, dist, bf16: bool = False) -> bool:
        """Shard the backbone (frozen weights included) over the processes with FSDP2 (``fully_shard`` per
        decoder layer + the causal LM), for backbones too large to replicate. Call after the task, the
        reference adapter and any checkpoint are loaded. Decoding then steps every rank until all are done."""
        if not dist.enabled:
            return False
        dist.shard_model(self, bf16=bf16)
        self.fsdp = True
        return True

    def use_engine(self, engine):
        """Route :meth:`generate` through another engine (``models.vllm_engine.VLLMEngine``); ``None``
        restores Hugging Face ``generate``."""
        self.engine = engine

    def enable_compile(self, **kw):
        """``torch.compile`` the gradient-carrying forward (the DDP wrapper when there is one); generation
        stays eager (its shapes change every step)."""
        self._train_module.module = torch.compile(self.forward_module, **kw)

    def forward_logits(self, input_ids, attention_mask):
        module = self.forward_module if torch.is_grad_enabled() else self.model
        out = module(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device),
                     use_cache=False)
        return out.logits

    def response_logits(self, input_ids, attention_mask, first: int):
        """Logits at positions ``first`` … L−1 of a right-padded batch (B, L): what a loss over the tokens after
        ``first`` needs. The vocabulary projection runs only there (``logits_to_keep``), and with the plain peft
        model (no DDP/compile wrapper, no FSDP sharding, no gradient checkpointing) the prompt prefix that every row shares
        (the instruction) is run once, for one row, and its KV cache repeated for the batch: the same numbers
        up to float rounding, with the prefix's gradient summed over the rows as before."""
        ids, att = input_ids.to(self.device), attention_mask.to(self.device)
        B, L = ids.shape
        module = self.forward_module if torch.is_grad_enabled() else self.model
        prefix = 0
        # FSDP2 shards in place (module is self.model) and frees the gathered weights after each forward, which
        # the prefix forward's saved activations would still point at: one forward there
        if module is self.model and not self.gradient_checkpointing and not self.fsdp and B > 1:
            same = ((ids == ids[:1]) & (att == 1)).all(0)
            prefix = min(int(same.long().cumprod(0).sum()), first, L - 1)
        if prefix < SHARED_PREFIX_MIN:
            return module(input_ids=ids, attention_mask=att, use_cache=False, logits_to_keep=L - first).logits
        from transformers import DynamicCache
        cache = DynamicCache()
        module(input_ids=ids[:1, :prefix], attention_mask=att[:1, :prefix], past_key_values=cache, use_cache=True,
               logits_to_keep=1)
        cache.batch_repeat_interleave(B)
        return module(input_ids=ids[:, prefix:], attention_mask=att, past_key_values=cache, use_cache=True,
                      logits_to_keep=L - first).logits

    def sft_loss(self, batch: dict, reasoning_weight: float = 1.0, motion_weight: float = 1.0) -> dict:
        """Region-weighted next-token cross-entropy; prompt and padding tokens are masked out (and get no
        logits: :meth:`response_logits` from the first position whose next token counts)."""
        region = batch["regions"].to(self.device)[:, 1:]
        counted = (region > REGION_PROMPT).any(0)
        first = int(counted.long().argmax()) if counted.any() else region.shape[1] - 1
        ids = batch["input_ids"].to(self.device)
        logits = self.response_logits(ids, batch["attention_mask"], first)[:, :-1].float()
        target = ids[:, first + 1:]
        region = region[:, first:]
        w = torch.zeros_like(region, dtype=torch.float32)
        w[region == REGION_REASONING] = reasoning_weight
        w[region == REGION_ANSWER] = motion_weight
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none").view_as(w)
        denom = w.sum().clamp_min(1e-8)
        sw = batch.get("sample_weights")
        tok_w = w * (sw.to(self.device)[:, None] if sw is not None else 1.0)
        loss = (ce * tok_w).sum() / denom
        with torch.no_grad():
            pred = logits.argmax(-1)
            valid = region > REGION_PROMPT
            ans = region == REGION_ANSWER
            correct = (pred == target)
            stats = {"tokens": int(valid.sum()), "acc": float(correct[valid].float().mean()) if valid.any() else 0.0,
                     "answer_acc": float(correct[ans].float().mean()) if ans.any() else 0.0,
                     "answer_tokens": int(ans.sum())}
        return {"loss": loss, **stats}

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, task: str, captions=None, motion_codes=None, plans=None, num_return_sequences: int = 1,
                 do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
                 return_ids: bool = False, return_full: bool = False, top_k: int = 0, num_beams: int = 1):
        """Batched generation: one ``generate`` call for all inputs × ``num_return_sequences``.

        Returns a list (len = inputs × num_return_sequences, grouped per input) of dicts with the
        parsed output (``reasoning``, ``answer``, ``motion_codes``, ``well_formed``), ``text`` and ``status``
        ("ok" or why the output is a failure: :func:`models.prompts.generation_status`).
        ``return_full``: a dict with ``outputs`` (that list), ``sequences`` (left-padded prompts +
        completions), ``prompt_len``, ``prompt_mask`` (for computing log-probs, e.g. in GRPO) and
        ``sample_logprobs`` (N, C): each token's log-probability under the distribution it was sampled
        from (``None`` from an external engine). Decoding is :func:`models.decoding.decode`: exactly
        ``temperature`` / ``top_k`` / ``top_p`` (greedy when not ``do_sample``), none of the backbone's
        ``generation_config`` processors; ``num_beams`` > 1 without sampling: beam search.
        """
        self.set_task(task)
        n = len(captions) if task == "t2m" else len(motion_codes)
        plans = plans or [None] * n
        prompts = [encode_prompt(self.tokenizer, task, captions[i] if task == "t2m" else None,
                                 motion_codes[i] if task == "m2t" else None, plans[i],
                                 prompt_format=self.cfg.prompt_format) for i in range(n)]
        L = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((n, L), pad, dtype=torch.long)
        att = torch.zeros((n, L), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding for decoder-only generation
            ids[i, L - len(p):] = torch.tensor(p)
            att[i, L - len(p):] = 1
        engine = self.engine
        sample_logprobs = None
        if engine is not None:  # e.g. models.vllm_engine.VLLMEngine: token ids in, token ids out
            comps = engine.generate(prompts, n=num_return_sequences, do_sample=do_sample, temperature=temperature,
                                    top_p=top_p, max_new_tokens=max_new_tokens, eos_token_id=self.tokenizer.eos_token_id)
            C = max([len(c) for c in comps] + [1])
            new = torch.full((len(comps), C), pad, dtype=torch.long)
            for i, c in enumerate(comps):
                new[i, :len(c)] = torch.tensor(c, dtype=torch.long)
            out = torch.cat([ids.repeat_interleave(num_return_sequences, 0), new], 1)
        else:
            was_training = self.model.training
            self.model.eval()
            if num_beams > 1 and not do_sample:  # beam search (TM2T-style captions): transformers' generate,
                from transformers import GenerationConfig  # with a config of our own (no backbone defaults)
                gcfg = GenerationConfig(num_beams=num_beams, do_sample=False, max_new_tokens=max_new_tokens,
                                        num_return_sequences=num_return_sequences, early_stopping=True,
                                        eos_token_id=self.tokenizer.eos_token_id, pad_token_id=pad)
                fmt, procs = self.active_format_mask(), None
                if fmt is not None:
                    from transformers import LogitsProcessorList

                    from models.decoding import FormatMaskProcessor
                    procs = LogitsProcessorList([FormatMaskProcessor(fmt, L)])
                # transformers fills every field our config leaves unset from the backbone's generation_config
                # (a repetition penalty, no_repeat_ngram_size, ...): beam search runs with a blank one instead
                base = self.model.get_base_model()
                saved = base.generation_config
                base.generation_config = GenerationConfig(bos_token_id=saved.bos_token_id,
                                                          eos_token_id=self.tokenizer.eos_token_id, pad_token_id=pad)
                try:
                    with self.inference_weights():
                        out = self.model.generate(input_ids=ids.to(self.device), attention_mask=att.to(self.device),
                                                  generation_config=gcfg, synced_gpus=self.fsdp,
                                                  logits_processor=procs).cpu()
                finally:
                    base.generation_config = saved
            else:
                params = SamplingParams(do_sample, temperature if do_sample else 1.0, top_k if do_sample else 0,
                                        top_p if do_sample else 1.0)
                sync = _any_rank if self.fsdp else None  # every rank steps until all are done (layers all-gather)
                with self.inference_weights():
                    dec = decode(self.model, ids.to(self.device), att.to(self.device), max_new_tokens,
                                 self.tokenizer.eos_token_id, pad, params, num_return_sequences, sync=sync,
                                 fmt=self.active_format_mask())
                out = torch.cat([ids.repeat_interleave(num_return_sequences, 0), dec["tokens"].cpu()], 1)
                sample_logprobs = dec["logprobs"].cpu()
            if was_training:
                self.model.train()
        new = out[:, L:].cpu()
        results = []
        for row in new:
            toks = row.tolist()
            eos = self.tokenizer.eos_token_id
            ended = eos in toks
            if ended:
                toks = toks[: toks.index(eos)]
            text = self.tokenizer.decode(toks, skip_special_tokens=False)
            p = parse_output(text, self.cfg.nb_code)
            cut = not ended and len(toks) >= max_new_tokens
            item = {"text": text, "reasoning": p.reasoning, "answer": p.answer, "motion_codes": p.motion_codes,
                    "well_formed": p.well_formed, "status": generation_status(task, p, cut), "num_tokens": len(toks)}
            if return_ids:
                item["ids"] = toks
            results.append(item)
        if return_full:
            return {"outputs": results, "sequences": out.cpu(), "prompt_len": L, "prompt_mask": att,
                    "sample_logprobs": sample_logprobs}
        return results

    # ------------------------------------------------------------------ reference policy (GRPO)
    @staticmethod
    def reference_name(adapter: str) -> str:
        return f"ref_{adapter}"

    def add_reference(self, task: str) -> str:
        """A frozen copy of the task's adapter (LoRA + new token rows) to switch to as the reference
        policy; the backbone is shared, not copied."""
        name = self.cfg.adapter_name(task)
        ref = self.reference_name(name)
        if ref not in self.model.peft_config:
            import copy
            self.model.add_adapter(ref, copy.deepcopy(self.model.peft_config[name]))
        self.load_adapter_state(ref, self.adapter_state(name))
        self.set_task(task)
        return ref

    def using_adapter(self, name: str):
        """Context manager: temporarily activate adapter ``name`` (no parameter changes)."""
        import contextlib

        @contextlib.contextmanager
        def ctx():
            prev = self.active
            self.model.set_adapter(name)
            try:
                yield
            finally:
                self.model.set_adapter(prev)
                self._freeze_inactive()
        return ctx()

    # ------------------------------------------------------------------ checkpoints
    @property
    def tied_embeddings(self) -> bool:
        return bool(getattr(self.model.get_base_model().config, "tie_word_embeddings", False))

    def adapter_state(self, name: str) -> dict:
        """LoRA weights and new-token rows of one adapter (never the full embedding matrices; with tied
        embeddings the output head shares the input rows, so its alias is dropped)."""
        from peft import get_peft_model_state_dict
        sd = get_peft_model_state_dict(self.model, adapter_name=name, save_embedding_layers=False)
        out = {}
        for k, v in sd.items():
            if "base_layer" in k or (self.tied_embeddings and "lm_head.token_adapter" in k):
                continue
            if hasattr(v, "full_tensor"):  # FSDP-sharded DTensor: gathered (every rank must call)
                v = v.full_tensor()
            out[k] = v.detach().cpu().clone()
        return out

    def load_adapter_state(self, name: str, state: dict):
        from peft import set_peft_model_state_dict
        res = set_peft_model_state_dict(self.model, state, adapter_name=name)
        unexpected = [k for k in getattr(res, "unexpected_keys", []) if "lora_" in k or "trainable_tokens" in k]
        if unexpected:
            raise ValueError(f"adapter {name}: unexpected keys {unexpected[:3]}")
        missing = [k for k in getattr(res, "missing_keys", []) if (f".{name}." in k or k.endswith(f".{name}"))
                   and ("lora_" in k or ("trainable_tokens_delta" in k and not (self.tied_embeddings and "lm_head" in k)))]
        if missing:
            raise ValueError(f"adapter {name}: checkpoint lacks {missing[:3]}")

    def state_for_checkpoint(self, extra: dict | None = None) -> dict:
        cfg_json = json.dumps(asdict(self.cfg))  # reference copies (ref_*) are not saved
        return {"adapters": {n: self.adapter_state(n) for n in self.cfg.adapters()}, "config_json": cfg_json,
                **(extra or {})}

    def save(self, path, extra: dict | None = None, write: bool = True):
        """Tensors + JSON config, atomically; a readable ``<path>.json`` sidecar is written too. Under FSDP
        every rank calls it (the adapter tensors are gathered) and only the one with ``write`` writes."""
        state = self.state_for_checkpoint(extra)
        if write:
            atomic_torch_save(state, path)
            atomic_write_json(str(path) + ".json", {"config": asdict(self.cfg), "num_parameters": self.num_parameters()})

    @classmethod
    def from_checkpoint(cls, path, device="cpu", llm_backbone: str | None = None, dtype="auto", **kw) -> "MotionLLM":
        ckpt = load_checkpoint(path)
        if "config_json" not in ckpt or "adapters" not in ckpt:
            raise ValueError(f"{path}: not a MotionLLM checkpoint (needs 'adapters' and 'config_json')")
        cfg = MLLMConfig(**json.loads(ckpt["config_json"]))
        if llm_backbone:
            cfg.llm_backbone = llm_backbone
        else:  # a relative local backbone folder is found again from the checkpoint's location
            rel = Path(cfg.llm_backbone)
            if not rel.is_absolute() and not rel.exists():
                for base in Path(path).resolve().parents:
                    if (base / rel / "config.json").is_file():
                        cfg.llm_backbone = str(base / rel)
                        break
        model = cls(cfg, device=device, dtype=dtype, **kw)
        for name, state in ckpt["adapters"].items():
            model.load_adapter_state(name, state)
        return model

    def export_peft(self, out_dir, adapters=None):
        """A standard peft adapter directory (+ the extended tokenizer) for use outside this project:
        ``<out>/<adapter>/adapter_config.json`` + ``adapter_model.safetensors`` (LoRA and the new token
        rows) for each adapter; load with ``PeftModel.from_pretrained(base, out, subfolder=<adapter>)``
        after resizing the base model to the saved tokenizer."""
        out = Path(out_dir)
        self.model.save_pretrained(str(out), selected_adapters=list(adapters or self.cfg.adapters()))
        self.tokenizer.save_pretrained(str(out))
        atomic_write_json(out / "motionllm_config.json", asdict(self.cfg))
        return out

