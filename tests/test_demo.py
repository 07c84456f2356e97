"""demo.py on tiny assets: text -> motion (files + results.json), motion -> caption, clear errors."""
import json

import numpy as np
import pytest

NB = 16


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from conftest import build_tiny_lm_assets

    import train_mllm
    import train_vq

    root = tmp_path_factory.mktemp("demo")
    data, backbone = build_tiny_lm_assets(root, num_motions=12, seed=3, pretrain_steps=20)
    train_vq.main(["--data-root", str(data), "--out-dir", str(root), "--exp-name", "vq", "--batch-size", "4",
                   "--total-iter", "2", "--eval-iter", "2", "--no-progress", "--nb-code", str(NB),
                   "--code-dim", "16", "--output-emb-width", "16", "--width", "16", "--depth", "1"])
    vq = root / "vq" / "net_last.pth"
    rng = np.random.default_rng(0)
    verbs = ["walks", "runs", "jumps", "waves"]
    table = {v: [int(c) for c in rng.integers(0, NB, size=4)] for v in verbs}
    cot = root / "cot.jsonl"
    cot.write_text("".join(json.dumps({"task": "t2m", "id": f"{i:03d}", "caption": f"a person {v}.",
                                       "motion_tokens": table[v], "reasoning": f"the person {v}."}) + "\n"
                           for i, v in enumerate(verbs * 2)))
    train_mllm.main(["--train-stage", "sft", "--training-task", "t2m", "--cot-train-jsonl", str(cot),
                     "--use-reasoning", "--exp-name", "sft", "--out-dir", str(root), "--llm-backbone", str(backbone),
                     "--vq-ckpt", str(vq), "--lora-r-t2m", "8", "--lora-alpha-t2m", "16", "--learning-rate", "3e-3",
                     "--batch-size", "4", "--epochs", "2", "--no-progress", "--device", "cpu", "--dtype", "fp32"])
    ckpt = root / "sft" / "motionllm_t2m_best.pth"
    assert ckpt.is_file() and vq.is_file()
    return {"root": root, "data": data, "vq": vq, "ckpt": ckpt}


def _common(assets, out):
    return ["--model-ckpt", str(assets["ckpt"]), "--vq-ckpt", str(assets["vq"]), "--save-dir", str(out),
            "--device", "cpu", "--dtype", "fp32", "--max-new-tokens", "24", "--seed", "0"]


def test_text_to_motion_batched(assets, tmp_path, monkeypatch, capsys):
    import demo
    from models.mllm import MotionLLM

    calls = []
    real = MotionLLM.generate

    def spy(self, task, **kw):  # the real batched call, then one output forced to codes, one to none
        calls.append((task, list(kw.get("captions") or [])))
        outs = real(self, task, **kw)
        outs[0] = {**outs[0], "motion_codes": [1, 2, 3], "reasoning": "plan a walk.", "status": "ok"}
        outs[1] = {**outs[1], "motion_codes": []}
        return outs

    monkeypatch.setattr(MotionLLM, "generate", spy)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# comment\na person runs.\n")
    out = tmp_path / "out"
    res = demo.main(_common(assets, out) + ["--text", "a person walks forward.", "--text-file", str(prompts)])
    assert calls == [("t2m", ["a person walks forward.", "a person runs."])]  # one batched call
    text = capsys.readouterr().out
    assert "no motion generated for prompt 1:" in text and "plan a walk." in text
    assert res["com"] == {"requested": False, "used": False}
    saved = json.loads((out / "results.json").read_text())
    assert saved["num_inputs"] == 2 and saved["num_no_motion"] == 1 and saved["mode"] == "t2m"
    r0, r1 = saved["results"]
    for r in (r0, r1):
        assert {"prompt", "reasoning", "codes", "files", "well_formed", "text", "status"} <= set(r)
    assert r0["status"] == "ok" and r0["codes"] == [1, 2, 3] and r0["frames"] == 12
    stem = out / "0_a_person_walks_forward"
    for suffix in (".npy", "_features.npy", ".gif", ".bvh"):
        assert (out / (stem.name + suffix)).is_file(), suffix
    assert np.load(f"{stem}.npy").shape == (12, 22, 3)
    assert np.load(f"{stem}_features.npy").shape == (12, 263)
    assert set(r0["files"]) >= {"joints", "features", "animation", "bvh"} and "errors" not in r0["files"]
    assert r1["status"] == "no_motion" and r1["files"] == {} and not list(out.glob("1_*"))


def test_text_to_motion_real_generation_never_crashes(assets, tmp_path):
    import demo
    out = tmp_path / "out"
    res = demo.main(_common(assets, out) + ["--text", "a person walks.", "--text", "a person jumps.", "--no-render"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["num_inputs"] == 2 and len(saved["results"]) == 2
    assert saved["num_no_motion"] == sum(r["status"] != "ok" for r in saved["results"]) == res["num_no_motion"]
    for r in saved["results"]:
        if r["codes"]:
            assert (out / f"{r['index']}_{demo.slugify(r['prompt'])}.npy").is_file()
        else:
            assert r["status"] == "no_motion" and not r["files"]


def test_com_runs_or_stops_loudly(assets, tmp_path, capsys):
    """--use-com runs Chain-of-Motion; a scorer that cannot be built stops the demo with the flags to set
    (it never falls back to plain decoding)."""
    import demo
    com = ["--text", "a person waves.", "--use-com", "--com-candidates", "2", "--com-refine-steps", "2", "--no-render"]
    err = _exit2(_common(assets, tmp_path / "o") + com + ["--reward-dataset-opt-path", str(tmp_path / "no_evaluator")],
                 capsys)
    assert "--com-evaluator-dir" in err and "--reward-align-weight 0" in err
    assert not (tmp_path / "o" / "results.json").exists()
    out = tmp_path / "out"
    res = demo.main(_common(assets, out) + com + ["--reward-align-weight", "0", "--nli-model-name", "none"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["com"]["used"] and res["com"]["candidates"] == 2 and res["com"]["refine_steps"] == 2
    assert res["com"]["stats"]["com_rounds"] == 2 and len(saved["results"]) == 1


def test_decode_and_write_helper(assets, tmp_path):
    import demo
    from models.vqvae import load_vq_with_stats
    vq, mean, std = load_vq_with_stats(assets["vq"])
    feats, joints = demo.codes_to_motion(vq, mean, std, [0, 5, NB - 1])
    assert feats.shape == (12, 263) and joints.shape == (12, 22, 3) and np.isfinite(joints).all()
    files = demo.write_motion(tmp_path, "0_x", feats, joints, title="x", render=False)
    assert set(files) == {"joints", "features", "bvh"}
    with pytest.raises(ValueError):
        demo.codes_to_motion(vq, mean, std, [])


def test_motion_to_caption(assets, tmp_path, capsys):
    import demo
    clip = sorted((assets["data"] / "new_joint_vecs").glob("*.npy"))[0]
    joints = assets["data"] / "new_joints" / clip.name
    out = tmp_path / "out"
    res = demo.main(_common(assets, out) + ["--motion", str(clip), "--motion", str(joints)])
    saved = json.loads((out / "results.json").read_text())
    assert saved["mode"] == "m2t" and saved["num_inputs"] == 2 == len(res["results"])
    feats = np.load(clip)
    r0, r1 = saved["results"]
    assert r0["input_kind"] == "features" and r1["input_kind"] == "joints"
    assert r0["frames"] == len(feats) - len(feats) % 4 and len(r0["codes"]) == r0["frames"] // 4
    for r in (r0, r1):
        assert {"reasoning", "caption", "codes", "well_formed", "text"} <= set(r)
    assert "caption:" in capsys.readouterr().out


def _exit2(argv, capsys):
    import demo
    with pytest.raises(SystemExit) as e:
        demo.main(argv)
    assert e.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("demo.py: error:")]
    assert len(lines) == 1
    return lines[0]


def test_clear_errors(assets, tmp_path, capsys):
    base = ["--save-dir", str(tmp_path / "o"), "--device", "cpu"]
    err = _exit2(["--model-ckpt", str(tmp_path / "nope.pth"), "--vq-ckpt", str(assets["vq"]), "--text", "x"] + base,
                 capsys)
    assert "--model-ckpt" in err and "nope.pth" in err
    err = _exit2(["--eval-ckpt", str(assets["ckpt"]), "--vq-ckpt", str(tmp_path / "vq.pth"), "--text", "x"] + base,
                 capsys)
    assert "--vq-ckpt" in err and "vq.pth" in err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 7), dtype=np.float32))
    err = _exit2(_common(assets, tmp_path / "o") + ["--motion", str(bad)], capsys)
    assert "bad.npy" in err and "(10, 7)" in err
    err = _exit2(["--model-ckpt", str(assets["ckpt"]), "--vq-ckpt", str(assets["vq"])] + base, capsys)
    assert "--text" in err
    # a VQ whose codebook differs from the checkpoint's motion vocabulary
    import train_vq
    train_vq.main(["--data-root", str(assets["data"]), "--out-dir", str(tmp_path), "--exp-name", "vq8",
                   "--batch-size", "4", "--total-iter", "1", "--eval-iter", "1", "--no-progress", "--nb-code", "8",
                   "--code-dim", "16", "--output-emb-width", "16", "--width", "16", "--depth", "1"])
    capsys.readouterr()
    err = _exit2(["--model-ckpt", str(assets["ckpt"]), "--vq-ckpt", str(tmp_path / "vq8" / "net_last.pth"),
                  "--text", "x"] + base, capsys)
    assert "codebook size 8" in err and str(NB) in err
