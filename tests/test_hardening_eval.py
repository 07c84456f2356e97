"""Issue-14 defects of evaluation and training start-up, each reproduced: the evaluator the user names is
the one that loads (with its checksum in the report), cut-off or malformed outputs are failures, and bad
inputs stop a run before the run folder, the backbone or a training stage is touched."""
import hashlib
import shutil

import numpy as np
import pytest

from models.evaluator_wrapper import EvaluatorWrapper
from models.prompts import FAILURE_KINDS, generation_status, parse_output
from test_evaluator import _official_layout


# ---------------------------------------------------------------------------- 1. the named evaluator loads
def test_a_broken_copy_of_the_evaluator_never_loads_the_original(tmp_path, reference_dir, monkeypatch):
    """opt.txt says checkpoints_dir ./checkpoints: from a working directory that holds the intact evaluator,
    a copy with a truncated finest.tar used to load the intact weights and produce a table."""
    opt_path, _ = _official_layout(tmp_path, reference_dir)  # tmp/checkpoints/t2m/... intact
    copy = tmp_path / "copy" / "checkpoints"
    shutil.copytree(tmp_path / "checkpoints", copy)
    finest = copy / "t2m" / "text_mot_match" / "model" / "finest.tar"
    finest.write_bytes(finest.read_bytes()[:5000])
    monkeypatch.chdir(tmp_path)  # ./checkpoints resolves to the intact one from here
    with pytest.raises(ValueError, match=str(finest)):
        EvaluatorWrapper(copy / "t2m")
    # a copy without weights at all is not rescued by the working directory either
    finest.unlink()
    with pytest.raises(FileNotFoundError, match="never from opt.txt's checkpoints_dir"):
        EvaluatorWrapper(copy / "t2m")
    # the intact one loads and records what it loaded
    w = EvaluatorWrapper(opt_path)
    real = tmp_path / "checkpoints" / "t2m" / "text_mot_match" / "model" / "finest.tar"
    assert w.fingerprint["weights"] == str(real.resolve())
    assert w.fingerprint["weights_sha256"] == hashlib.sha256(real.read_bytes()).hexdigest()
    assert len(w.fingerprint["sha256"]) == 64


def test_an_opt_file_outside_the_evaluator_layout_is_refused(tmp_path, reference_dir):
    opt_path, _ = _official_layout(tmp_path, reference_dir)
    stray = tmp_path / "elsewhere" / "opt.txt"
    stray.parent.mkdir()
    stray.write_text(opt_path.read_text().replace("./checkpoints", str(tmp_path / "checkpoints")))
    with pytest.raises(FileNotFoundError, match="must sit at"):
        EvaluatorWrapper(stray)


# ---------------------------------------------------------------------------- 2. malformed answers fail
def test_reasoning_is_never_returned_as_the_answer():
    p = parse_output("the person walks forward and then turns left", 8)
    assert p.answer == "" and not p.has_answer and not p.well_formed
    assert generation_status("m2t", p) == "no_answer"
    assert generation_status("m2t", p, hit_token_limit=True) == "truncated"
    # an answer that holds further tags (the demo's 3,700-frame clip) loses them and is malformed
    p = parse_output("plan</think><answer>a man</think><answer>walks</answer>", 8)
    assert "<" not in p.answer and "walks" in p.answer and not p.well_formed
    assert generation_status("m2t", p) == "malformed"
    # a t2m answer cut at the token limit keeps its codes but is a failure
    p = parse_output("plan</think><answer><Motion><Motion_1><Motion_2>", 8)
    assert p.motion_codes == [1, 2] and generation_status("t2m", p, hit_token_limit=True) == "truncated"
    assert generation_status("t2m", parse_output("x</think><answer><Motion></Motion></answer>", 8)) == "empty"
    good = parse_output("x</think><answer><Motion><Motion_3></Motion></answer>", 8)
    assert generation_status("t2m", good) == "ok" and generation_status("m2t", good) == "empty"
    assert generation_status("m2t", parse_output("x</think><answer>a man waves.</answer>")) == "ok"
    assert set(FAILURE_KINDS) == {"no_answer", "truncated", "malformed", "empty"}


def test_generate_reports_cut_off_outputs_and_eval_counts_them(tmp_path):
    """Generation at a 3-token limit cannot close its answer: every output is a 'truncated' failure and the
    evaluation's Generator counts them by kind (it used to report 0 failures for m2t)."""
    from types import SimpleNamespace

    from conftest import build_tiny_lm_assets
    from eval_mllm import Generator, markdown
    from models.mllm import MLLMConfig, MotionLLM
    _, bb = build_tiny_lm_assets(tmp_path, num_motions=8, pretrain_steps=0)
    m = MotionLLM(MLLMConfig(llm_backbone=str(bb), nb_code=16, lora_r={"t2m": 4, "m2t": 4},
                             lora_alpha={"t2m": 8, "m2t": 8}), device="cpu", dtype="fp32")
    args = SimpleNamespace(gen_batch_size=8, use_com=False, do_sample=False, temperature=1.0, top_p=1.0, top_k=0,
                           num_beams=1, max_new_tokens=3)
    gen = Generator(m, args)
    outs = gen("m2t", [[1, 2, 3], [4, 5]])
    outs += gen("t2m", ["a person walks."])
    assert [o["status"] for o in outs] == ["truncated"] * 3 and all(o["num_tokens"] == 3 for o in outs)
    assert gen.failures == 3 and gen.failure_kinds == {"truncated": 3} and gen.samples == 3
    assert all("</think>" not in o["answer"] and "<answer>" not in o["answer"] for o in outs)
    md = markdown("m2t", {"nlg": {}}, {"checkpoint": "c", "split": "test", "device": "cpu", "com": "off",
                                       "failures": 3, "failure_kinds": gen.failure_kinds, "samples": 3,
                                       "seconds_per_sample": 0.1})
    assert "failed generations: 3 of 3 (truncated: 3)" in md


# ---------------------------------------------------------------------------- 6. fail before the work
def test_eval_refuses_max_items_below_the_batch_size_before_loading(tmp_path):
    import eval_mllm
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"never loaded")
    with pytest.raises(SystemExit, match="--max-items 10 is below --batch-size 32"):
        eval_mllm.main(["--eval-ckpt", str(ckpt), "--vq-ckpt", str(ckpt), "--device", "cpu", "--eval-task", "t2m",
                        "--max-items", "10", "--out-dir", str(tmp_path), "--exp-name", "e"])
    assert not (tmp_path / "e").exists()


def test_training_checks_its_inputs_before_the_run_folder_and_the_backbone(tmp_path):
    import train_mllm
    out = tmp_path / "runs"
    base = ["--train-stage", "sft", "--training-task", "t2m", "--out-dir", str(out), "--exp-name", "sft",
            "--device", "cpu", "--llm-backbone", str(tmp_path / "no_such_backbone"), "--nb-code", "16"]
    with pytest.raises(SystemExit, match="--cot-train-jsonl .*missing.jsonl: file not found"):
        train_mllm.main(base + ["--cot-train-jsonl", str(tmp_path / "missing.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "t2m", "id": "0", "caption": "a man walks.", "motion_tokens": [1, 2], '
                   '"reasoning": "walk."}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl.*2"):  # a record error, not a backbone error
        train_mllm.main(base + ["--cot-train-jsonl", str(bad)])
    with pytest.raises(SystemExit, match="--rl-reference-ckpt .*sft.pth: file not found"):
        train_mllm.main(base[:1] + ["rlvr"] + base[2:] + ["--cot-train-jsonl", str(bad), "--rl-reference-ckpt",
                                                           str(tmp_path / "sft.pth")])
    assert not out.exists()  # no empty run folder left behind


def test_train_evaluator_checks_glove_before_training(tmp_path):
    import train_evaluator
    from prepare.make_synthetic_dataset import build_dataset
    data = tmp_path / "syn"
    build_dataset(data, num_motions=6, seed=0, progress=False)
    ck = tmp_path / "ev"
    with pytest.raises(FileNotFoundError, match="word-vector file not found"):
        train_evaluator.main(["--data-root", str(data), "--glove-dir", str(tmp_path / "no_glove"),
                              "--checkpoints-dir", str(ck), "--movement-iters", "2", "--max-epoch", "1",
                              "--no-progress"])
    assert not ck.exists()


def test_a_resumed_run_logs_every_step_once(tmp_path):
    """The interrupted run logged steps 3-4 after its last checkpoint (step 2) and a half-written line;
    the resumed run drops them before logging steps 3-4 again."""
    import json

    from utils.run_logger import RunLogger
    log = RunLogger(tmp_path)
    for s in (1, 2, 3, 4):
        log.log({"loss": 1.0 / s}, step=s)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')
    log = RunLogger(tmp_path, resume_step=2)
    for s in (3, 4):
        log.log({"loss": 0.0}, step=s)
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and recs[2]["loss"] == 0.0
