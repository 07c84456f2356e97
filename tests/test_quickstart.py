"""The quickstart's recipe keeps the judge out of training and selection (issue 15, item 1): the critic is
trained apart (another seed, train split only) and is what every reward and CoM stage reads; the judge only
evaluates. Its summary names both."""
import json

import pytest

import quickstart


def _args(**kw):
    ns = quickstart.parser().parse_args([])  # the defaults
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def _flag(cmd, flag):
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def test_the_judge_only_evaluates():
    st = {s["name"]: s for s in quickstart.stages(_args())}
    judge_cmd, critic_cmd = st["evaluator (judge)"]["cmd"], st["evaluator (critic)"]["cmd"]
    judge = str(st["evaluator (judge)"]["output"].parent.parent)
    critic = str(st["evaluator (critic)"]["output"].parent.parent)
    assert judge != critic and _flag(critic_cmd, "--seed") != _flag(judge_cmd, "--seed")
    assert _flag(critic_cmd, "--val-split") == "train" and _flag(critic_cmd, "--eval-split") == "train"
    for name, s in st.items():
        if callable(s["cmd"]):  # the render stage reads the dataset when it runs
            continue
        cmd = s["cmd"]
        for flag in ("--reward-dataset-opt-path", "--com-evaluator-dir"):
            assert _flag(cmd, flag) in (None, critic), (name, flag)
        assert "--allow-judge-as-critic" not in cmd, name
        if name.startswith("RLVR"):
            assert _flag(cmd, "--reward-dataset-opt-path") == critic and _flag(cmd, "--judge-evaluator-dir") == judge
        if name.startswith("eval "):
            assert _flag(cmd, "--evaluator-dir") == judge
            if "CoM" in name:
                assert _flag(cmd, "--com-evaluator-dir") == critic
    # m2t evaluation decodes greedily by default (no --do-sample anywhere)
    assert all("--do-sample" not in s["cmd"] for s in st.values() if not callable(s["cmd"]))
    assert quickstart.weight_flags("align=1,coh=0.5") == ["--reward-align-weight", "1.0", "--reward-coh-weight", "0.5"]
    with pytest.raises(SystemExit, match="bad entry"):
        quickstart.weight_flags("judge=1")


def test_summary_names_judge_and_critic(tmp_path):
    fp = {"opt": "/j/opt.txt", "weights": "/j/finest.tar", "weights_sha256": "a" * 64, "sha256": "b" * 64}
    cfp = {"opt": "/c/opt.txt", "weights": "/c/finest.tar", "weights_sha256": "c" * 64, "sha256": "d" * 64}
    block = {k: {"mean": 0.5, "ci": 0.01} for k in ("R_precision_top1", "R_precision_top2", "R_precision_top3",
                                                     "FID", "MM_Dist", "Diversity")}
    meta = {"evaluator": fp, "failures": 1, "samples": 96, "replications": 3}
    for run, name, extra in (("eval_sft", "eval_t2m.json", {}), ("eval_rlvr", "eval_t2m_com.json", {"critic": cfp})):
        (tmp_path / run).mkdir(exist_ok=True)
        (tmp_path / run / name).write_text(json.dumps({"meta": {**meta, **extra}, "results": {
            "generated": block, "real_motion": block, "items": 96}}))
    text = quickstart.summary(tmp_path)
    assert "| SFT |" in text and "| + RLVR + CoM |" in text and "| + RLVR |" not in text
    assert "judge (every number above): /j/opt.txt (sha256 bbbbbbbbbbbb)" in text
    assert "critic (rewards and CoM ranking): /c/opt.txt (sha256 dddddddddddd)" in text


def test_ablation_runs_one_rlvr_per_variant_and_tabulates(tmp_path, monkeypatch):
    calls = []
    block = {k: {"mean": 0.5, "ci": 0.0} for k in ("R_precision_top1", "R_precision_top3", "FID", "MM_Dist",
                                                    "Phys_below_0.8")}

    def fake_run(cmd, cwd=None, env=None):
        calls.append(cmd)
        if cmd[1] == "eval_mllm.py":
            task = cmd[cmd.index("--eval-task") + 1]
            out = tmp_path / cmd[cmd.index("--exp-name") + 1]
            out.mkdir(parents=True, exist_ok=True)
            res = {"generated": block} if task == "t2m" else {"nlg": {"bleu_4": 0.1, "cider": 0.5}}
            (out / f"eval_{task}.json").write_text(json.dumps({"results": res}))
        import types
        return types.SimpleNamespace(returncode=0)
    monkeypatch.setattr(quickstart.subprocess, "run", fake_run)
    assert quickstart.run_ablation(_args(out_dir=str(tmp_path)), env={}) == 0
    trains = [c for c in calls if c[1] == "train_mllm.py"]
    assert len(trains) == 7  # full x2, w/o sem (m2t), w/o coh x2, w/o phys, w/o align
    for c in trains:
        name = c[c.index("--exp-name") + 1]
        for w in ("sem", "coh", "phys", "align"):
            zeroed = [c[i + 1] for i, x in enumerate(c) if x == f"--reward-{w}-weight"][-1:] == ["0"]
            assert zeroed == (f"wo_R_{w}" in name), (name, w)
        if name.endswith("_m2t"):  # from the SFT checkpoint, not from the full chain's RLVR
            assert c[c.index("--rl-reference-ckpt") + 1].endswith("motionllm_m2t_best.pth")
    text = (tmp_path / "ablation.md").read_text()
    for v in quickstart.ABLATIONS:
        assert f"| {v} |" in text


def test_aggregate_over_seeds(tmp_path):
    """--aggregate: mean ± sd (ddof 1) per row over the seed folders, t2m and m2t in their own tables; a row
    missing from a folder is averaged over the folders that have it."""
    import json
    for seed, (top3, phys, bleu) in enumerate([(0.5, 0.4, 0.10), (0.7, 0.2, 0.20)]):
        for run in ("eval_sft", "eval_rlvr"):
            d = tmp_path / f"s{seed}" / run
            d.mkdir(parents=True)
            g = {"R_precision_top1": {"mean": 0.2}, "R_precision_top3": {"mean": top3}, "FID": {"mean": 3.0},
                 "MM_Dist": {"mean": 5.0}, "Phys_below_0.8": {"mean": phys}}
            (d / "eval_t2m.json").write_text(json.dumps({"results": {"generated": g}}))
            nlg = {"bleu_4": bleu, "rouge_l": 0.3, "cider": 0.5}
            (d / "eval_m2t.json").write_text(json.dumps({"results": {"matching": {"R_precision_top3": 0.25},
                                                                     "nlg": nlg}}))
    (tmp_path / "s0" / "eval_rlvr" / "eval_t2m_com.json").write_text(
        (tmp_path / "s0" / "eval_rlvr" / "eval_t2m.json").read_text())
    text = quickstart.aggregate([tmp_path / "s0", tmp_path / "s1"])
    lines = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in text.splitlines()
             if ln.startswith("| t2m") or ln.startswith("| m2t")}
    assert lines["t2m SFT"] == ["2", "0.200 ± 0.000", "0.600 ± 0.141", "3.000 ± 0.000", "5.000 ± 0.000",
                                "0.300 ± 0.141"]
    assert lines["t2m + RLVR + CoM"][:3] == ["1", "0.200 ± 0.000", "0.500 ± 0.000"]
    assert lines["m2t + RLVR"] == ["2", "0.250 ± 0.000", "15.000 ± 7.071", "30.000 ± 0.000", "50.000 ± 0.000"]
    assert "m2t + RLVR + CoM" not in lines
    assert "phys < 0.8" in text and "CIDEr" in text
    # paired gains: (+ RLVR) − (SFT) per seed; seed 0 alone has the CoM row
    gains = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in text.splitlines()
             if ln.startswith("| t2m:") or ln.startswith("| m2t:")}
    assert gains["t2m: (+ RLVR) − (SFT)"][2] == "+0.000 ± 0.000 (+0.000, +0.000)"
    assert gains["t2m: (+ RLVR + CoM) − (RLVR)"][:3] == ["1", "+0.000 ± 0.000 (+0.000)", "+0.000 ± 0.000 (+0.000)"]
    assert "m2t: (+ RLVR + CoM) − (RLVR)" not in gains


def test_evaluators_wait_for_the_vq_vae_only_on_a_quiet_small_machine(monkeypatch):
    """On < 4 CPUs of a quiet machine the evaluators are held behind the VQ-VAE (which then gets both threads);
    on a busy one they train beside it. main() decides from utils.threads.other_load."""
    def after(**kw):
        return {s["name"]: s["after"] for s in quickstart.stages(_args(**kw))}
    assert "VQ-VAE" in after(hold_evaluators=True)["evaluator (judge)"]
    assert "VQ-VAE" not in after(hold_evaluators=False)["evaluator (critic)"]
    assert "VQ-VAE" not in after()["evaluator (judge)"]  # e.g. the ablation's stages(args): nothing held

    import utils.threads as th
    ticks = iter([10.0, 11.5])  # the machine was busy 1.5 CPU-s over the window, this process 0.2 of them
    own = iter([1.0, 1.2])
    clock = iter([0.0, 1.0])
    monkeypatch.setattr(th._Adapter, "_machine_busy_s", staticmethod(lambda: next(ticks)))
    monkeypatch.setattr(th._Adapter, "_own_s", staticmethod(lambda: next(own)))
    monkeypatch.setattr(th.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(th.time, "sleep", lambda s: None)
    assert abs(th.other_load(1.0) - 1.3) < 1e-9
