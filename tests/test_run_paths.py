"""Run folders stay inside --out-dir, and an unusable output folder stops a run before the expensive part."""
import pytest

from utils.io import check_writable, run_dir


def test_run_dir_refuses_names_that_leave_out_dir(tmp_path):
    assert run_dir(tmp_path, "exp") == tmp_path / "exp"
    assert run_dir(tmp_path, "group/exp") == tmp_path / "group" / "exp"
    for bad in ("../../x", "../x", "a/../../x", str(tmp_path.parent / "abs"), ""):
        with pytest.raises(SystemExit, match="--exp-name"):
            run_dir(tmp_path, bad)
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_training_refuses_an_escaping_exp_name_before_creating_anything(tmp_path):
    import train_mllm
    cot = tmp_path / "cot.jsonl"
    cot.write_text("")
    out = tmp_path / "runs"
    with pytest.raises(SystemExit, match="--exp-name"):
        train_mllm.main(["--cot-train-jsonl", str(cot), "--out-dir", str(out), "--exp-name", "../../escaped",
                         "--device", "cpu"])
    assert not out.exists() and not (tmp_path.parent / "escaped").exists()


def test_eval_checks_its_output_folder_first(tmp_path):
    import eval_mllm
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"not loaded before the checks")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    common = ["--eval-ckpt", str(ckpt), "--vq-ckpt", str(ckpt), "--device", "cpu"]
    with pytest.raises(SystemExit, match="cannot write"):
        eval_mllm.main(common + ["--out-dir", str(blocker), "--exp-name", "x"])
    with pytest.raises(SystemExit, match="--exp-name"):
        eval_mllm.main(common + ["--out-dir", str(tmp_path), "--exp-name", "../out"])
    with pytest.raises(SystemExit, match="--max-new-tokens 0"):
        eval_mllm.main(common + ["--max-new-tokens", "0"])
    with pytest.raises(SystemExit, match="cannot write"):
        check_writable(blocker / "sub", "what")


def test_an_existing_run_is_never_touched_without_resume_or_overwrite(tmp_path):
    import train_mllm

    from utils.io import prepare_run_dir
    run = tmp_path / "runs" / "sft"
    run.mkdir(parents=True)
    (run / "motionllm_t2m_best.pth").write_bytes(b"the earlier run's best checkpoint")
    cot = tmp_path / "cot.jsonl"
    cot.write_text("")
    argv = ["--cot-train-jsonl", str(cot), "--out-dir", str(tmp_path / "runs"), "--exp-name", "sft", "--device", "cpu"]
    with pytest.raises(SystemExit, match="already holds a run.*--resume.*--overwrite"):
        train_mllm.main(argv)
    with pytest.raises(SystemExit, match="nothing to resume"):
        train_mllm.main(argv + ["--resume"])
    assert (run / "motionllm_t2m_best.pth").read_bytes() == b"the earlier run's best checkpoint"
    # --overwrite replaces the folder; resuming keeps it
    assert prepare_run_dir(run, resume=True, overwrite=False).is_dir() and any(run.iterdir())
    prepare_run_dir(run, resume=False, overwrite=True)
    assert run.is_dir() and not any(run.iterdir())
    prepare_run_dir(run, resume=False, overwrite=False)  # an empty folder is fine
