"""Critic ≠ judge (issue 15, item 1): the evaluator inside the reward and the CoM scorer is refused when it is
the evaluator that computes the metrics — same folder, or a copy with the same weights — unless
--allow-judge-as-critic; reports name both. And decoding defaults (item 4): m2t greedy, beams on request."""
import shutil

import pytest
import torch

from rewards.critic import check_args_critic, check_critic, evaluator_fingerprint
from test_evaluator import _official_layout


@pytest.fixture()
def judge_and_critic(tmp_path, reference_dir):
    judge_opt, _ = _official_layout(tmp_path / "judge", reference_dir)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "judge", copy)  # the judge under another name: same sha256
    critic_opt, ckpt = _official_layout(tmp_path / "critic", reference_dir)
    finest = tmp_path / "critic" / "checkpoints" / "t2m" / "text_mot_match" / "model" / "finest.tar"
    ckpt["text_encoder"] = {k: v + 0.01 for k, v in ckpt["text_encoder"].items()}  # another network
    torch.save(ckpt, finest)
    return judge_opt, copy / "checkpoints" / "t2m" / "Comp_v6_KLD005" / "opt.txt", critic_opt


def test_the_judge_is_refused_as_critic_by_path_and_by_checksum(judge_and_critic):
    judge, copy, critic = judge_and_critic
    fj, fc = evaluator_fingerprint(judge), evaluator_fingerprint(copy)
    assert fj["sha256"] == fc["sha256"] and fj["weights"] != fc["weights"]
    for same in (judge, judge.parent, copy):
        with pytest.raises(SystemExit, match="is the judge.*--allow-judge-as-critic"):
            check_critic(evaluator_fingerprint(same), judge, allow=False, what="test")
    info = check_critic(fc, judge, allow=True, what="test")
    assert info["judge_as_critic"] and info["judge"]["sha256"] == fj["sha256"]
    ok = check_critic(evaluator_fingerprint(critic), judge, allow=False, what="test")
    assert not ok["judge_as_critic"] and ok["critic"]["sha256"] != fj["sha256"]
    # a judge that is not on this machine (training before the official evaluator is downloaded): not compared
    assert check_critic(fj, judge.parent / "missing", allow=False, what="test")["judge"]["found"] is False


def test_com_scorer_and_rlvr_refuse_the_judge_before_loading_anything(judge_and_critic, tmp_path):
    from options.option_llm import get_args
    from rewards.callbacks import build_com_scorer
    judge, copy, critic = judge_and_critic
    args = get_args(["--evaluator-dir", str(judge), "--com-evaluator-dir", str(copy), "--use-com"])
    with pytest.raises(SystemExit, match="Chain-of-Motion scorer: the critic"):
        build_com_scorer(args, "t2m", vq=None, device="cpu", judge=args.evaluator_dir)
    # no critic at all: no silent fallback to the judge any more
    args = get_args(["--evaluator-dir", str(judge), "--reward-dataset-opt-path", str(tmp_path / "none"), "--use-com"])
    with pytest.raises(FileNotFoundError, match="reward-dataset-opt-path"):
        build_com_scorer(args, "t2m", vq=None, device="cpu", judge=args.evaluator_dir)
    import train_mllm
    with pytest.raises(SystemExit, match="rlvr: the consistency reward: the critic"):
        train_mllm.main(["--train-stage", "rlvr", "--training-task", "t2m", "--cot-train-jsonl", str(judge),
                         "--rl-reference-ckpt", str(judge), "--reward-dataset-opt-path", str(copy),
                         "--judge-evaluator-dir", str(judge), "--out-dir", str(tmp_path / "runs"), "--device", "cpu"])
    assert not (tmp_path / "runs").exists()
    a = get_args(["--reward-dataset-opt-path", str(critic)])
    assert check_args_critic(a, judge, "x")["critic"]["opt"] == str(critic.resolve())


def test_decoding_defaults_per_task():
    from options.option_llm import get_args, get_demo_args
    assert get_args(["--eval-task", "t2m"]).do_sample is True  # as the original
    assert get_args(["--eval-task", "m2t"]).do_sample is False  # greedy, as the published caption tables
    assert get_args(["--eval-task", "m2t", "--do-sample"]).do_sample is True
    assert get_args(["--eval-task", "t2m", "--greedy"]).do_sample is False
    a = get_args(["--eval-task", "m2t", "--num-beams", "4"])
    assert a.num_beams == 4 and a.do_sample is False
    with pytest.raises(SystemExit, match="beam search"):
        get_args(["--eval-task", "m2t", "--num-beams", "4", "--do-sample"])
    assert get_demo_args(["--text", "x"]).do_sample is False
