"""The paper recipes experiments/*.sh: syntax, DRY_RUN output, and every printed command line accepted by
the parser of the script it calls (in-process, nothing is run); multi-process launches keep the same argv."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "experiments").glob("*.sh") if p.name != "common.sh")
FAKE = {"DATA_ROOT": "/fake/data", "EVALUATOR_DIR": "/fake/judge", "GLOVE_DIR": "/fake/glove",
        "CRITIC_DIR": "/fake/critic/t2m/text_mot_match", "OUT_DIR": "/fake/out", "BACKBONE": "/fake/backbone"}
LAUNCH_VARIANTS = {"single": {"NUM_GPUS": "1"}, "accelerate": {"NUM_GPUS": "2"},
                   "torchrun": {"LAUNCH": "torchrun --nproc_per_node 2"}}


def parse_argv(script: str, argv: list):
    """The argument parsing of ``script`` (its get_args / parse_args, validation included) on ``argv``."""
    if script == "train_vq.py":
        from options.option_vq import get_args
    elif script == "train_evaluator.py":
        from options.option_evaluator import get_args
    elif script == "train_mllm.py":
        from options.option_train import get_args
    elif script == "eval_mllm.py":
        from options.option_llm import get_args
    elif script == "eval_vq.py":
        from eval_vq import parse_args as get_args
    elif script == "prepare/build_cot.py":
        from prepare.build_cot import parse_args as get_args
    elif script == "experiments/make_tables.py":
        from experiments.make_tables import parse_args as get_args
    else:
        raise AssertionError(f"no parser known for {script}: add it to tests/test_experiments.py")
    return get_args(argv)


def dry_run(script: Path, cwd=ROOT, **env) -> list:
    e = {k: v for k, v in os.environ.items() if k not in ("NUM_GPUS", "LAUNCH", "STAGE", "DATASET")}
    e.update(FAKE)
    e.update(env, DRY_RUN="1")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=e, cwd=cwd, timeout=60)
    assert r.returncode == 0, f"{script.name}: {r.stderr}"
    cmds = [shlex.split(line) for line in r.stdout.splitlines() if line.strip()]
    assert cmds, f"{script.name} printed no command"
    return cmds


def split_command(cmd: list):
    """(launcher, script, argv): the script is the first ``*.py`` word."""
    i = next(i for i, w in enumerate(cmd) if w.endswith(".py"))
    return cmd[:i], cmd[i], cmd[i + 1:]


def test_scripts_found():
    names = {p.name for p in SCRIPTS}
    for part in ("critic", "vqvae", "eval_vqvae", "sft_t2m", "sft_m2t", "rlvr_t2m", "rlvr_m2t", "eval_t2m.",
                 "eval_t2m_com", "eval_m2t.", "eval_m2t_com", "no_sem", "no_coh", "no_phys", "no_align", "tables"):
        assert any(part in n for n in names), part


@pytest.mark.parametrize("script", SCRIPTS + [ROOT / "experiments" / "common.sh"], ids=lambda p: p.name)
def test_bash_syntax(script):
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = script.read_text()
    if script.name != "common.sh":
        assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
        assert os.access(script, os.X_OK), f"{script.name} is not executable"


@pytest.mark.parametrize("dataset", ["humanml3d", "kit"])
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_dry_run_commands_parse(script, dataset, tmp_path):
    argvs = {}
    for variant, env in LAUNCH_VARIANTS.items():
        # from another directory: the scripts cd to the repository root themselves
        cmds = dry_run(script, cwd=tmp_path, DATASET=dataset, **env)
        argvs[variant] = [split_command(c) for c in cmds]
    for launcher, name, argv in argvs["single"]:
        assert launcher == ["python"], launcher
        assert (ROOT / name).is_file(), name
        parse_argv(name, argv)  # raises SystemExit on a rejected flag
        if "--dataname" in argv:
            assert argv[argv.index("--dataname") + 1] == ("t2m" if dataset == "humanml3d" else "kit")
        if "--out-dir" in argv and name != "prepare/build_cot.py":
            assert argv[argv.index("--out-dir") + 1] == "/fake/out"
    # the multi-process variants run the same scripts with the same arguments; only training goes multi-process
    for variant in ("accelerate", "torchrun"):
        assert [(s, a) for _, s, a in argvs[variant]] == [(s, a) for _, s, a in argvs["single"]]
        for launcher, name, _ in argvs[variant]:
            if name.startswith("train_"):
                assert launcher == (["accelerate", "launch", "--num_processes", "2"] if variant == "accelerate"
                                    else ["torchrun", "--nproc_per_node", "2"])
            else:
                assert launcher == ["python"]


def test_judge_is_never_the_critic():
    for script in SCRIPTS:
        for cmd in dry_run(script):
            _, name, argv = split_command(cmd)
            for flag in ("--reward-dataset-opt-path", "--com-evaluator-dir"):
                if flag in argv:
                    assert argv[argv.index(flag) + 1] == FAKE["CRITIC_DIR"], (script.name, flag)
            if "--evaluator-dir" in argv and name in ("eval_mllm.py", "eval_vq.py"):
                assert argv[argv.index("--evaluator-dir") + 1] == FAKE["EVALUATOR_DIR"]
            assert "--allow-judge-as-critic" not in argv


def test_ablations_change_one_reward_and_eval_stage():
    base = {tuple(a) for _, s, a in map(split_command, dry_run(ROOT / "experiments" / "05_rlvr_t2m.sh"))}
    (argv,) = base
    for script in (p for p in SCRIPTS if "ablation" in p.name):
        for cmd in dry_run(script):
            _, name, a = split_command(cmd)
            if name == "train_mllm.py" and "--training-task" in a and a[a.index("--training-task") + 1] == "t2m":
                diff = [(x, y) for x, y in zip(argv, a) if x != y]
                assert len(a) == len(argv)
                # the run name and exactly one reward weight differ
                assert len(diff) == 2 and diff[1][1] == "0", (script.name, diff)
    sft = dry_run(ROOT / "experiments" / "07_eval_t2m.sh", STAGE="sft")
    _, _, a = split_command(sft[0])
    assert a[a.index("--eval-ckpt") + 1].endswith("_sft_t2m/motionllm_t2m_best.pth")
    r = subprocess.run(["bash", str(ROOT / "experiments" / "07_eval_t2m.sh")], capture_output=True, text=True,
                       env={**os.environ, "DRY_RUN": "1", "STAGE": "bogus"})
    assert r.returncode != 0 and "STAGE" in r.stderr


def test_vq_eval_recipe_feeds_the_tables():
    """01b evaluates the checkpoint 01 picked (net_best_fid.pth) on the test split with the judge, 20
    replications, into <tag>_eval_vqvae/; 15 hands that folder to make_tables --vq."""
    (cmd,) = dry_run(ROOT / "experiments" / "01b_eval_vqvae.sh")
    _, name, argv = split_command(cmd)
    args = parse_argv(name, argv)
    assert name == "eval_vq.py" and args.vq_ckpt == "/fake/out/hml3d_vqvae/net_best_fid.pth"
    assert args.split == "test" and args.replications == 20 and args.batch_size == 32 and not args.identity
    assert args.evaluator_dir == FAKE["EVALUATOR_DIR"] and args.glove_dir == FAKE["GLOVE_DIR"]
    assert (args.out_dir, args.exp_name) == ("/fake/out", "hml3d_eval_vqvae")
    (tables,) = dry_run(ROOT / "experiments" / "15_tables.sh")
    _, name, argv = split_command(tables)
    assert parse_argv(name, argv).vq == ["VQ-VAE (ours)=/fake/out/hml3d_eval_vqvae"]


def test_quoting_round_trips(tmp_path):
    """Paths with spaces and quotes survive the printed command (shlex)."""
    odd = "/fake/it's a dir"
    cmds = dry_run(ROOT / "experiments" / "01_vqvae.sh", DATA_ROOT=odd)
    _, _, argv = split_command(cmds[0])
    assert argv[argv.index("--data-root") + 1] == odd
    # a relative path in the environment is taken from where the script is started
    cmds = dry_run(ROOT / "experiments" / "01_vqvae.sh", cwd=tmp_path, DATA_ROOT="rel/data")
    _, _, argv = split_command(cmds[0])
    assert argv[argv.index("--data-root") + 1] == f"{tmp_path}/rel/data"
