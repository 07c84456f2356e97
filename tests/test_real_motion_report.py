"""eval_real_motion.py: the real-motion report (issue 17 item 3) on tiny inputs.

A tiny synthetic dataset, VQ-VAE, judge and (untrained) MotionLLM are built once per module, as the other
pipeline tests build them (tests/conftest.py); the "real" folder is made of synthetic clips plus one clip too
short for the loaders, so the report's structure and numbers can be checked without pybullet. The last test
converts two shipped DeepMimic clips (skipped without pybullet)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import eval_real_motion as erm
from utils.paramUtil import T2M

NB = 32  # codebook of the tiny VQ-VAE (train_vq --nb-code)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    import train_evaluator
    from conftest import build_tiny_lm_assets, train_tiny_vq
    from models.mllm import MLLMConfig, MotionLLM

    root = tmp_path_factory.mktemp("real_report")
    data, bb = build_tiny_lm_assets(root, num_motions=40, seed=3, pretrain_steps=0)
    train_tiny_vq(data, root, 3, NB)
    train_evaluator.main(["--data-root", str(data), "--glove-dir", str(data / "glove"), "--checkpoints-dir",
                          str(root / "ev"), "--movement-iters", "2", "--max-epoch", "1", "--no-progress",
                          "--eval-split", "train", "--dim-movement-enc-hidden", "16", "--dim-movement-latent", "16",
                          "--dim-text-hidden", "16", "--dim-motion-hidden", "16", "--dim-coemb-hidden", "16"])
    torch.manual_seed(0)
    m = MotionLLM(MLLMConfig(llm_backbone=str(bb), nb_code=NB, lora_r={"t2m": 4, "m2t": 4},
                             lora_alpha={"t2m": 8, "m2t": 8}), device="cpu", dtype="fp32")
    m.save(root / "mllm.pth")
    # the "real" folder: four synthetic test clips (two of them with the same caption) and one too short
    real = root / "real"
    for sub in ("new_joint_vecs", "texts"):
        (real / sub).mkdir(parents=True)
    ids = [i for i in (data / "all.txt").read_text().split()
           if 40 <= len(np.load(data / "new_joint_vecs" / f"{i}.npy", mmap_mode="r")) < 200][:4]
    for cid in ids:
        shutil.copy(data / "new_joint_vecs" / f"{cid}.npy", real / "new_joint_vecs" / f"{cid}.npy")
        lines = [ln for ln in (data / "texts" / f"{cid}.txt").read_text().splitlines() if ln.endswith("#0.0#0.0")]
        (real / "texts" / f"{cid}.txt").write_text("\n".join(lines) + "\n")
    (real / "texts" / f"{ids[1]}.txt").write_text((real / "texts" / f"{ids[0]}.txt").read_text())
    long = np.load(data / "new_joint_vecs" / f"{ids[0]}.npy")
    np.save(real / "new_joint_vecs" / "short.npy", long[:30])
    (real / "texts" / "short.txt").write_text("a person kicks.#a/DET person/NOUN kick/VERB#0.0#0.0\n")
    (real / "test.txt").write_text("\n".join(ids + ["short"]) + "\n")
    return {"root": root, "data": data, "bb": bb, "vq": root / "vq" / "net_last.pth",
            "ev": root / "ev" / "t2m" / "text_mot_match", "mllm": root / "mllm.pth", "real": real, "ids": ids}


def _argv(a, out, llm=True):
    argv = ["--real-dir", str(a["real"]), "--vq-ckpt", str(a["vq"]), "--data-root", str(a["data"]),
            "--evaluator-dir", str(a["ev"]), "--out", str(out), "--no-progress", "--max-new-tokens", "24",
            "--synthetic-subsets", "3", "--threads", "1"]
    if llm:
        argv += ["--m2t-ckpt", str(a["mllm"]), "--t2m-ckpt", str(a["mllm"]), "--llm-backbone", str(a["bb"])]
    return argv


@pytest.fixture(scope="module")
def report(assets):
    out = assets["root"] / "report"
    rep = erm.main(_argv(assets, out))
    return rep, out


def _finite(x):
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(_finite(v) for v in x)
    if isinstance(x, float):
        return np.isfinite(x)
    return True


# ---------------------------------------------------------------------------- the metric functions
def test_mpjpe_of_an_identical_motion_is_zero_and_root_alignment_removes_a_shift():
    rng = np.random.default_rng(0)
    j = rng.normal(size=(12, 22, 3))
    assert np.all(erm.mpjpe(j, j) == 0) and np.all(erm.mpjpe(j, j, root_aligned=False) == 0)
    shifted = j + np.array([0.3, 0.0, 0.4])                      # the whole body 0.5 m away
    assert np.allclose(erm.mpjpe(j, shifted), 0.0, atol=1e-12)
    assert np.allclose(erm.mpjpe(j, shifted, root_aligned=False), 0.5)
    bent = j.copy()
    bent[:, 5] += np.array([0.0, 0.22, 0.0])                     # one joint of 22 off by 22 cm
    assert np.allclose(erm.mpjpe(j, bent), 0.01)
    with pytest.raises(ValueError, match="differ in shape"):
        erm.mpjpe(j, j[:5])


def test_within_set_ranks_count_distinct_captions_once():
    # motion 0 and 1 share a caption ("walk"); motion 2's own caption is the farthest
    d = np.array([[1.0, 1.0, 2.0],
                  [3.0, 3.0, 1.0],
                  [0.5, 0.5, 4.0]])
    ranks, n = erm.within_set_ranks(d, ["walk", "walk", "jump"])
    assert n == 2 and ranks.tolist() == [1, 2, 2]
    s = erm.rank_summary(ranks, n)
    assert s["R_precision_top1"] == pytest.approx(1 / 3) and s["chance_top1"] == 0.5
    # a generated caption ranked against the other clips' references
    g, _ = erm.within_set_ranks(d, ["walk", "walk", "jump"], target=[2.5, 0.1, 0.1])
    assert g.tolist() == [2, 1, 1]


# ---------------------------------------------------------------------------- inputs
def test_short_clips_are_skipped_with_a_reason(assets):
    items, skipped = erm.load_clips(assets["real"], "test", T2M)
    assert [it["name"] for it in items] == assets["ids"]
    assert skipped == [{"id": "short", "frames": 30,
                        "reason": "too short: 30 feature frames, the loaders need at least 40"}]
    only_short = assets["root"] / "only_short"
    shutil.copytree(assets["real"], only_short)
    (only_short / "test.txt").write_text("short\n")
    with pytest.raises(SystemExit, match="no clip of .*test.txt passes the length filter.*short: too short"):
        erm.load_clips(only_short, "test", T2M)


def test_missing_inputs_stop_with_the_path(assets, tmp_path):
    out = tmp_path / "out"
    argv = _argv(assets, out, llm=False)
    missing = tmp_path / "nope.pth"
    with pytest.raises(SystemExit, match=f"--vq-ckpt: file not found: {missing}"):
        erm.main([*argv, "--vq-ckpt", str(missing)])
    with pytest.raises(SystemExit, match=f"--m2t-ckpt: file not found: {missing}"):
        erm.main([*argv, "--m2t-ckpt", str(missing)])
    with pytest.raises(SystemExit, match=f"--glove-dir: folder not found: {tmp_path / 'g'}"):
        erm.main([*argv, "--glove-dir", str(tmp_path / "g")])
    broken = tmp_path / "real"
    shutil.copytree(assets["real"], broken)
    (broken / "new_joint_vecs" / f"{assets['ids'][2]}.npy").unlink()
    with pytest.raises(SystemExit, match=f"motion file not found: .*{assets['ids'][2]}.npy"):
        erm.main([*argv, "--real-dir", str(broken)])
    shutil.rmtree(broken / "texts")
    with pytest.raises(SystemExit, match=f"--real-dir: folder not found: {broken / 'texts'}"):
        erm.main([*argv, "--real-dir", str(broken)])
    assert not (out / "report.json").exists()


# ---------------------------------------------------------------------------- the report
def test_report_files_structure_and_finite_numbers(report, assets):
    rep, out = report
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["clips"]["used"] == assets["ids"] and [s["id"] for s in on_disk["clips"]["skipped"]] == ["short"]
    assert set(on_disk) >= {"meta", "clips", "reconstruction", "physics", "captions", "generated"}
    assert _finite(on_disk)
    md = (out / "report.md").read_text()
    for heading in ("## (a)", "## (b)", "## (c)", "`short`: too short", on_disk["physics"]["verdict"]["text"]):
        assert heading in md
    assert not list(out.glob("*.tmp*"))                           # atomic writes leave no temporary files


def test_reconstruction_error_matches_a_direct_computation(report, assets):
    from models.vqvae import load_vq_with_stats
    from utils.motion_process import recover_from_ric
    rep, _ = report
    a = rep["reconstruction"]
    model, mean, std = load_vq_with_stats(assets["vq"])
    cid = assets["ids"][2]
    x = np.load(assets["real"] / "new_joint_vecs" / f"{cid}.npy")
    x = x[: min(len(x), 196) // model.unit_length * model.unit_length]
    with torch.no_grad():
        xn = torch.from_numpy((x - mean) / std).float()[None]
        rec = model.decode(model.encode(xn))[0].numpy() * std + mean    # alone, no padding
    jg, jr = recover_from_ric(x, 22), recover_from_ric(rec.astype(np.float32), 22)
    direct = 1000 * float(np.mean(np.linalg.norm((jg - jg[:, :1]) - (jr - jr[:, :1]), axis=-1)))
    clip = next(p for p in a["real"]["per_clip"] if p["id"] == cid)
    assert clip["frames"] == len(x) and clip["mpjpe_root_aligned_mm"] == pytest.approx(direct, rel=1e-4)
    # the aggregate is frame-weighted, and train_vq.py's own validation agrees on both sets
    per = a["real"]["per_clip"]
    assert a["real"]["mpjpe_root_aligned_mm"] == pytest.approx(
        sum(p["mpjpe_root_aligned_mm"] * p["frames"] for p in per) / sum(p["frames"] for p in per))
    for k in ("real", "synthetic"):
        v = a[k]["train_vq_validator"]
        assert a[k]["mpjpe_root_aligned_mm"] == pytest.approx(v["val/mpjpe_root_aligned_mm"], rel=1e-4)
        assert a[k]["mpjpe_mm"] == pytest.approx(v["val/mpjpe_mm"], rel=1e-4)
        assert a[k]["frames"] > 0 and a[k]["mpjpe_root_aligned_mm"] > 0
    assert "--feat-bias" in a["normalisation"] or "= --data-root Mean.npy/Std.npy" in a["normalisation"]


def test_physics_rows_agree_with_eval_mllm_and_the_terms(report, assets):
    from eval_mllm import physics_scores
    from rewards.physics import TERMS
    rep, _ = report
    b = rep["physics"]
    names = list(b["rows"])
    assert len(names) == 4 and names[0].startswith("real") and names[-1].startswith("generated")
    feats = [np.load(assets["real"] / "new_joint_vecs" / f"{c}.npy") for c in assets["ids"]]
    expect = physics_scores(feats, "t2m")
    got = np.array([p["phys"] for p in b["per_clip_real"]])
    assert np.allclose(got, expect)
    for p in b["per_clip_real"]:   # equal weights: the reward is the mean of the term rewards
        assert p["phys"] == pytest.approx(np.mean([p["terms"][t] for t in TERMS]))
        assert set(p["quantities"]) == set(TERMS)
    real = b["rows"][names[0]]
    assert real["phys_mean"] == pytest.approx(expect.mean())
    assert real["share_below_0.8"] == pytest.approx(float((expect < 0.8).mean()))
    v = b["verdict"]
    assert v["plausible"] == (not (expect < 0.8).any())
    assert ("NOT called plausible" in v["text"]) != v["plausible"]
    assert b["rows"][names[-1]]["n"] == sum(len(c["captions"]) for c in erm.load_clips(assets["real"], "test", T2M)[0])
    assert "generations failed" in b["generated_failures"]


def test_captions_and_judge_matching(report, assets):
    rep, _ = report
    c = rep["captions"]
    n = len(assets["ids"])
    assert len(c["per_clip"]) == n
    for p in c["per_clip"]:
        assert 1 <= p["ref_rank"] <= p["candidates"] and 1 <= p["gen_rank"] <= p["candidates"]
        assert p["ref_dist"] >= 0 and p["gen_dist"] >= 0 and isinstance(p["generated"], str)
    assert c["per_clip"][0]["candidates"] == n - 1                # clips 0 and 1 share their caption
    rr = c["judge"]["real_references"]
    assert 0 <= rr["R_precision_top1"] <= rr["R_precision_top3"] <= 1 and rr["caption_lines"] >= 1
    assert c["judge"]["generated_captions"]["candidates"] == n - 1
    assert "vocabulary_size" in c["unk_words"] and any("generated" in k for k in c["unk_words"])
    assert {"bleu_4", "rouge_l", "cider"} <= set(c["nlg"])
    assert rep["generated"]["failures"] <= len(rep["generated"]["status"])


# ---------------------------------------------------------------------------- the DeepMimic clips
def test_deepmimic_clips_from_the_pybullet_wheel(assets, tmp_path):
    pytest.importorskip("pybullet_data", reason="pybullet is not installed (pip install pybullet==3.2.7)")
    from prepare.convert_deepmimic import convert_many, default_inputs
    files = [p for p in default_inputs() if Path(p).stem in ("humanoid3d_walk", "humanoid3d_kick")]
    assert len(files) == 2
    convert_many(files, tmp_path / "dm")
    rep = erm.main(_argv({**assets, "real": tmp_path / "dm"}, tmp_path / "out", llm=False))
    assert rep["clips"]["used"] == ["deepmimic_walk", "Mdeepmimic_walk"]
    assert {s["id"] for s in rep["clips"]["skipped"]} == {"deepmimic_kick", "Mdeepmimic_kick"}
    assert all("too short: 30 feature frames" in s["reason"] for s in rep["clips"]["skipped"])
    assert rep["captions"]["per_clip"][0]["candidates"] == 1      # walk and its mirror: one caption
    assert (tmp_path / "out" / "report.md").is_file()
