"""Optional vLLM generation backend for GRPO rollouts and evaluation (``pip install vllm`` on a GPU box).

The Hugging Face ``generate`` path stays the default and is what the test suite runs. With
``--rollout-engine vllm`` (train_mllm.py) or ``--gen-engine vllm`` (eval_mllm.py) a MotionLLM routes its
batched generation through a colocated ``vllm.LLM``:

* at start, the task adapter is merged into a plain Hugging Face folder (:func:`models.merged.export_merged`:
  resized vocabulary with the motion tokens, extended tokenizer) that vLLM loads;
* after every GRPO optimizer step, :meth:`VLLMEngine.sync` pushes the merged weights
  (:func:`models.merged.merged_state_dict`, computed without touching the training model) into the
  running engine with ``load_weights`` and clears its prefix cache;
* prompts go in as token ids (the same ids the HF path uses) and completions come back as token ids, so
  parsing, rewards and log-prob scoring are shared with the HF path.

Single process only: under ``torchrun``/``accelerate launch`` the HF path is used (a clear error says so).
The vLLM calls were written against the vLLM 0.1x ``LLM`` API (``llm_engine.model_executor.driver_worker``)
used by TRL's colocate mode; no GPU or vLLM was available where this module was written, so only the
merge/export part is covered by the tests.
"""
from __future__ import annotations

import tempfile
from pathlib import Path


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


class VLLMEngine:
    def __init__(self, mllm, task: str, work_dir=None, gpu_memory_utilization: float = 0.3,
                 max_model_len: int = 2048, seed: int = 0, dtype: str = "auto"):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("the vLLM generation engine needs vLLM (pip install vllm, CUDA machines); "
                              "use the default Hugging Face engine (--rollout-engine hf / --gen-engine hf)") from exc
        from utils.distributed import get_dist
        if get_dist().enabled:
            raise RuntimeError("the vLLM engine runs in single-process jobs only; drop --rollout-engine vllm "
                               "under torchrun / accelerate launch (the HF engine shards rollouts over processes)")
        from models.merged import export_merged

        self.mllm, self.task = mllm, task
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="morl_vllm_"))
        export_merged(mllm, self.work_dir / "merged", task)
        self.llm = LLM(model=str(self.work_dir / "merged"), gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, seed=seed, dtype=dtype, enable_prefix_caching=True)
        self.syncs = 0

    def sync(self):
        """Push the current merged weights (adapter of ``task``) into the running engine."""
        from models.merged import merged_state_dict

        weights = merged_state_dict(self.mllm, self.task)
        model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        model.load_weights(list(weights.items()))
        self.llm.reset_prefix_cache()
        self.syncs += 1

    def generate(self, prompt_ids: list, n: int = 1, do_sample: bool = False, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 256, eos_token_id: int | None = None) -> list:
        """Completion token ids, ``len(prompt_ids) * n`` lists grouped per prompt; a completion that
        stopped on EOS ends with it (as in the HF path, whose GRPO mask includes the EOS)."""
        from vllm import SamplingParams

        sp = SamplingParams(n=n, temperature=temperature if do_sample else 0.0, top_p=top_p if do_sample else 1.0,
                            max_tokens=max_new_tokens, stop_token_ids=[eos_token_id] if eos_token_id is not None else None,
                            detokenize=False)
        outs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompt_ids], sp, use_tqdm=False)
        res = []
        for o in outs:
            for c in o.outputs:
                ids = list(c.token_ids)
                if eos_token_id is not None and c.finish_reason == "stop" and (not ids or ids[-1] != eos_token_id):
                    ids.append(eos_token_id)
                res.append(ids)
        return res
