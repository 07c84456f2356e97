"""Adapter merging (the weights a vLLM engine serves) and the pluggable generation engine: a plain HF
model built from the merged weights must reproduce the MotionLLM's logits and greedy outputs, and GRPO
must push updated weights to the engine after each step."""
import pytest
import torch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from prepare.make_tiny_backbone import build_tiny_backbone
    out = {}
    for tied in (True, False):
        d = tmp_path_factory.mktemp("bb") / ("tied" if tied else "untied")
        build_tiny_backbone(d, tokenizer="bpe", verbose=False, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, intermediate_size=64, pretrain_steps=0,
                            tie_word_embeddings=tied)
        out[tied] = d
    return out


def _perturbed_mllm(backbone, seed=0):
    from models.mllm import MLLMConfig, MotionLLM
    torch.manual_seed(seed)
    m = MotionLLM(MLLMConfig(llm_backbone=str(backbone), nb_code=16, lora_r={"t2m": 4, "m2t": 4},
                             lora_alpha={"t2m": 8, "m2t": 8}, lora_dropout=0.0))
    with torch.no_grad():  # non-zero LoRA B and token deltas, different per adapter
        for n, p in m.model.named_parameters():
            if "lora_B" in n or "trainable_tokens_delta" in n:
                p.add_(torch.randn_like(p) * 0.3)
    return m


class HFEngine:
    """A stand-in for the vLLM engine: a plain HF model loaded from the merged export, synced with
    ``merged_state_dict`` (the same two calls VLLMEngine makes)."""

    def __init__(self, mllm, task, work_dir):
        from transformers import AutoModelForCausalLM

        from models.merged import export_merged
        self.mllm, self.task = mllm, task
        export_merged(mllm, work_dir, task)
        self.model = AutoModelForCausalLM.from_pretrained(work_dir).eval()
        self.syncs = 0

    def sync(self):
        from models.merged import merged_state_dict
        self.model.load_state_dict(merged_state_dict(self.mllm, self.task), strict=False)
        self.syncs += 1

    def generate(self, prompt_ids, n=1, do_sample=False, temperature=1.0, top_p=1.0, max_new_tokens=16,
                 eos_token_id=None):
        res = []
        for p in prompt_ids:
            ids = torch.tensor([p])
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=do_sample,
                                      max_new_tokens=max_new_tokens, num_return_sequences=n,
                                      eos_token_id=eos_token_id, pad_token_id=eos_token_id,
                                      **({"temperature": temperature, "top_k": 0} if do_sample else {}))
            for row in out[:, ids.shape[1]:].tolist():
                if eos_token_id in row:
                    row = row[: row.index(eos_token_id) + 1]
                res.append(row)
        return res


@pytest.mark.parametrize("tied", [True, False])
def test_merged_weights_reproduce_the_adapter(tiny, tmp_path, tied):
    from transformers import AutoModelForCausalLM

    from models.merged import export_merged
    m = _perturbed_mllm(tiny[tied])
    ids = torch.tensor([m.tokenizer.encode("a person walks") + [m.cfg.motion_token_offset + 3, m.cfg.motion_token_offset + 7]])
    for task in ("t2m", "m2t"):
        export_merged(m, tmp_path / task, task)
        plain = AutoModelForCausalLM.from_pretrained(tmp_path / task).eval()
        m.set_task(task)
        with torch.no_grad():
            ref = m.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            got = plain(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        assert got.shape == ref.shape
        assert torch.allclose(got, ref, atol=1e-4), (task, float((got - ref).abs().max()))
    # the two adapters really differ (the test would pass trivially otherwise)
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "t2m")
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "m2t")
    assert not torch.allclose(a.model.embed_tokens.weight, b.model.embed_tokens.weight)


def test_generation_engine_and_grpo_sync(tiny, tmp_path):
    from rl.grpo import GRPOConfig, GRPOTrainer
    m = _perturbed_mllm(tiny[True], seed=1)
    caps = ["a person walks forward.", "someone jumps twice."]
    hf = m.generate("t2m", captions=caps, max_new_tokens=12)
    eng = HFEngine(m, "t2m", tmp_path / "merged")
    m.use_engine(eng)
    via = m.generate("t2m", captions=caps, max_new_tokens=12, return_full=True)
    assert [o["text"] for o in via["outputs"]] == [o["text"] for o in hf]
    assert via["sequences"].shape[0] == 2 and via["prompt_len"] > 0

    m.add_reference("t2m")
    reward = lambda task, prompts, outs: {"len": [float(len(o["text"])) for o in outs]}  # noqa: E731
    tr = GRPOTrainer(m, reward, GRPOConfig(group_size=3, max_new_tokens=10, lr=1e-2))
    before = eng.model.model.layers[0].self_attn.q_proj.weight.clone()
    st = tr.step("t2m", caps)
    assert eng.syncs == 1 and st["response_len"] > 0
    assert not torch.allclose(before, eng.model.model.layers[0].self_attn.q_proj.weight)  # new policy served
    m.use_engine(None)


def test_vllm_engine_reports_missing_dependency(tiny):
    from models.vllm_engine import VLLMEngine, vllm_available
    if vllm_available():
        pytest.skip("vLLM is installed")
    with pytest.raises(ImportError, match="pip install vllm"):
        VLLMEngine(object(), "t2m")


@pytest.mark.parametrize("tied", [True, False])
def test_generation_merges_token_rows_temporarily(tiny, tied, monkeypatch):
    """Generation writes the new-token rows into the matrices for its duration (fast path) and restores
    them: outputs equal the unmerged path and the training forward is unchanged afterwards."""
    m = _perturbed_mllm(tiny[tied], seed=2)
    caps = ["a person walks forward.", "someone jumps twice."]
    ids = torch.tensor([m.tokenizer.encode("a person") + [m.cfg.motion_token_offset + 1]])
    with torch.no_grad():
        before = m.model(input_ids=ids).logits
    fast = m.generate("t2m", captions=caps, max_new_tokens=10)
    with torch.no_grad():
        after = m.model(input_ids=ids).logits
    assert torch.equal(before, after)
    monkeypatch.setattr(type(m), "_merge_token_rows", lambda self: [])
    slow = m.generate("t2m", captions=caps, max_new_tokens=10)
    assert [o["text"] for o in fast] == [o["text"] for o in slow]
