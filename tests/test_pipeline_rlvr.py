"""The command chain of the README on tiny assets: VQ -> evaluator -> CoT -> SFT -> RLVR, each stage
reading what the previous one wrote."""
import json

import numpy as np

import torch


def test_sft_then_rlvr_chain(tmp_path):
    import train_mllm
    from conftest import build_tiny_rl_assets

    a = build_tiny_rl_assets(tmp_path)
    data, vq = a["data"], a["vq"]
    common = ["--llm-backbone", str(tmp_path / "bb"), "--vq-ckpt", str(vq), "--use-reasoning", "--out-dir",
              str(tmp_path), "--no-progress", "--device", "cpu", "--dtype", "fp32", "--lora-r-t2m", "8",
              "--lora-alpha-t2m", "16", "--batch-size", "4"]
    train_mllm.main(["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl",
                     str(tmp_path / "cot" / "t2m_train.jsonl"), "--exp-name", "morl_sft_t2m", "--epochs", "2",
                     "--learning-rate", "3e-3", *common])
    sft = tmp_path / "morl_sft_t2m" / "motionllm_t2m_best.pth"
    rl = ["--train-stage", "rlvr", "--training-task", "t2m", "--cot-train-jsonl",
          str(tmp_path / "cot" / "t2m_train.jsonl"), "--exp-name", "morl_rlvr_t2m",
          "--rl-reference-ckpt", str(sft), "--rl-group-size", "3", "--rl-batch-size", "2",
          "--rl-max-prompts", "4", "--rl-max-new-tokens", "48", "--learning-rate", "1e-4",
          "--reward-dataset-opt-path", str(tmp_path / "ev" / "t2m" / "text_mot_match"),
          "--reward-glove-path", str(data / "glove"), "--rl-metrics-jsonl", str(tmp_path / "rl_metrics.jsonl"), *common]
    res = train_mllm.main(rl + ["--rl-epochs", "1"])
    run = tmp_path / "morl_rlvr_t2m"
    assert (run / "motionllm_rlvr_epoch_0.pth").is_file() and res["steps"] == 2
    ck = torch.load(run / "motionllm_rlvr_epoch_0.pth", weights_only=True)
    assert set(ck["adapters"]) == {"t2m", "m2t"}  # the frozen reference copy is not saved
    rec = json.loads((tmp_path / "rl_metrics.jsonl").read_text().splitlines()[-1])
    for k in ("reward/total_mean", "kl", "clip_frac", "response_len", "rollout_tokens_per_s"):
        assert k in rec, k
    assert any(k.startswith("reward/phys") for k in rec) and any(k.startswith("reward/align") for k in rec)
    # resume: a second epoch continues from motionllm_rlvr_latest.pth (step count carries on)
    res = train_mllm.main(rl + ["--rl-epochs", "2", "--resume", "--com-refine-steps", "2"])  # with CoM rollouts
    assert res["steps"] == 4 and len(res["epochs"]) == 1 and (run / "motionllm_rlvr_epoch_1.pth").is_file()
    assert res["epochs"][0]["group_size_effective"] == 6
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "rl_metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]

    # evaluation of the RLVR checkpoint: t2m (with Chain-of-Motion) and m2t, JSON + Markdown written
    import eval_mllm
    ev = ["--eval-ckpt", str(run / "motionllm_rlvr_epoch_1.pth"), "--vq-ckpt", str(vq), "--data-root", str(data),
          "--evaluator-dir", str(tmp_path / "ev" / "t2m" / "text_mot_match"), "--glove-dir", str(data / "glove"),
          "--split", "train", "--max-items", "32", "--max-new-tokens", "40", "--no-progress", "--device", "cpu",
          "--out-dir", str(tmp_path), "--exp-name", "eval", "--no-bertscore"]
    res = eval_mllm.main(ev + ["--eval-task", "t2m", "--replications", "1", "--mm-num-samples", "4",
                               "--mm-num-repeats", "3", "--mm-num-times", "2", "--use-com", "--com-candidates", "2",
                               "--com-refine-steps", "2", "--nli-model-name", "none", "--allow-judge-as-critic"])
    gen = res["results"]["generated"]
    for k in ("R_precision_top1", "R_precision_top3", "FID", "MM_Dist", "Diversity", "MModality", "Phys"):
        assert np.isfinite(gen[k]["mean"]), k
    assert 0 <= gen["Phys_below_0.8"]["mean"] <= 1 and 0 <= gen["Phys"]["mean"] <= 1
    assert (tmp_path / "eval" / "eval_t2m_com.json").is_file() and (tmp_path / "eval" / "eval_t2m_com.md").is_file()
    # the report names the critic the CoM scorer ranked with: here, knowingly, the judge itself (no separate
    # critic was trained), which the report says
    md = (tmp_path / "eval" / "eval_t2m_com.md").read_text()
    assert res["meta"]["judge_as_critic"] and "the CoM critic is the judge" in md
    assert res["meta"]["critic"]["sha256"] == res["meta"]["evaluator"]["sha256"]
    assert res["meta"]["com_scorer"] in md
    res = eval_mllm.main(ev + ["--eval-task", "m2t"])
    nlg = res["results"]["nlg"]
    assert all(np.isfinite(nlg[k]) for k in ("bleu_1", "bleu_4", "rouge_l", "cider"))
    assert np.isfinite(res["results"]["matching"]["MM_Dist"]) and (tmp_path / "eval" / "eval_m2t.md").is_file()
    base = res["results"]["baseline_most_frequent_caption"]
    assert base["caption"] and 0 <= base["bleu_4"] <= 1
    assert "Most frequent caption" in (tmp_path / "eval" / "eval_m2t.md").read_text()
