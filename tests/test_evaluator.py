"""T2M evaluator: official checkpoint layout, input-order embeddings, opt.txt parsing, training."""
import json
import shutil

import numpy as np
import pytest
import torch

from models.evaluator import TextMotionEvaluator
from models.evaluator_wrapper import EvaluatorWrapper, parse_opt_file

OFFICIAL_OPT = """------------ Options -------------
batch_size: 32
checkpoints_dir: ./checkpoints
dataset_name: t2m
decomp_name: Decomp_SP001_SM001_H512
dim_att_vec: 512
dim_movement_dec_hidden: 512
dim_movement_enc_hidden: 512
dim_movement_latent: 512
dim_pos_hidden: 1024
dim_pri_hidden: 1024
dim_text_hidden: 512
dim_z: 128
estimator_mod: bigru
feat_bias: 5
gpu_id: 0
is_continue: False
is_train: True
lambda_gan_l: 0.1
lambda_kld: 0.005
lr: 0.0002
max_text_len: 20
n_layers_dec: 1
n_layers_pos: 1
n_layers_pri: 1
name: Comp_v6_KLD005
text_enc_mod: bigru
unit_length: 4
-------------- End ----------------
"""


def _official_layout(tmp_path, reference_dir):
    """A released-style evaluator folder whose finest.tar has exactly the official keys/shapes."""
    keys = json.loads((reference_dir / "checkpoint_keys.json").read_text())["evaluator_t2m_finest_tar"]
    g = torch.Generator().manual_seed(0)
    ckpt = {part: {k: torch.randn(s, generator=g) * 0.05 for k, s in keys[part].items()}
            for part in ("movement_encoder", "text_encoder", "motion_encoder")}
    ckpt.update({"epoch": 10, "iter": 1000})
    root = tmp_path / "checkpoints" / "t2m"
    (root / "text_mot_match" / "model").mkdir(parents=True)
    torch.save(ckpt, root / "text_mot_match" / "model" / "finest.tar")
    (root / "Comp_v6_KLD005" / "meta").mkdir(parents=True)
    for f in ("mean.npy", "std.npy"):
        shutil.copy(reference_dir / "evaluator_meta" / f, root / "Comp_v6_KLD005" / "meta" / f)
    (root / "Comp_v6_KLD005" / "opt.txt").write_text(OFFICIAL_OPT)
    return root / "Comp_v6_KLD005" / "opt.txt", ckpt


def test_official_checkpoint_loads_strict(tmp_path, reference_dir, monkeypatch):
    opt_path, ckpt = _official_layout(tmp_path, reference_dir)
    monkeypatch.chdir(tmp_path / "checkpoints" / "t2m")  # './checkpoints' does not resolve from here
    w = EvaluatorWrapper(opt_path)  # found through the folder layout around opt.txt
    assert w.opt["is_continue"] is False and w.opt["is_train"] is True  # the bool('False') pitfall is fixed
    assert w.dim_pose == 263 and w.opt["dim_motion_hidden"] == 1024
    torch.testing.assert_close(w.model.motion_encoder.hidden, ckpt["motion_encoder"]["hidden"])
    assert w.mean.shape == (263,) and abs(w.std[0] - 0.000515) < 1e-5


def test_embeddings_are_in_input_order(tmp_path, reference_dir, monkeypatch):
    opt_path, _ = _official_layout(tmp_path, reference_dir)
    monkeypatch.chdir(tmp_path)
    w = EvaluatorWrapper(opt_path)
    g = torch.Generator().manual_seed(1)
    B = 7
    motions = torch.randn(B, 196, 263, generator=g)
    m_lens = torch.tensor([196, 40, 120, 64, 196, 88, 52])
    for i, n in enumerate(m_lens):
        motions[i, n:] = 0
    word = torch.randn(B, 22, 300, generator=g)
    pos = torch.zeros(B, 22, 15)
    pos[..., 14] = 1
    cap_lens = torch.tensor([5, 22, 9, 3, 12, 7, 15])
    t, m = w.get_co_embeddings(word, pos, cap_lens, motions, m_lens)
    perm = torch.tensor([3, 0, 6, 2, 5, 1, 4])
    t2, m2 = w.get_co_embeddings(word[perm], pos[perm], cap_lens[perm], motions[perm], m_lens[perm])
    torch.testing.assert_close(t2, t[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m2, m[perm], atol=1e-5, rtol=1e-5)
    # one at a time (zero-padded to 196 as the protocol does) gives the same row
    single = w.get_motion_embeddings(motions[1:2], m_lens[1:2])
    torch.testing.assert_close(single, m[1:2], atol=1e-5, rtol=1e-5)
    # raw-motion helper: normalises with the meta statistics and crops to a multiple of 4
    raw = [np.random.default_rng(0).standard_normal((43, 263)).astype(np.float32)]
    x, lens = w.prepare_motions(raw)
    assert lens.tolist() == [40]
    torch.testing.assert_close(x[0, :40], torch.from_numpy((raw[0][:40] - w.mean) / w.std))
    with pytest.raises(ValueError, match=r"expected \(T, 263\)"):
        w.prepare_motions([np.zeros((40, 251), np.float32)])
    with pytest.raises(ValueError, match="motion width 251"):
        w.get_motion_embeddings(torch.zeros(1, 40, 251), [40])


def test_opt_file_errors(tmp_path):
    p = tmp_path / "opt.txt"
    p.write_text("------------ Options -------------\ncheckpoints_dir: ./c\nname: x\n-------------- End ----------------\n")
    with pytest.raises(ValueError, match="missing required field.*dataset_name"):
        parse_opt_file(p)
    p.write_text("dataset_name: t2m\ncheckpoints_dir: ./c\nname: x\nthis line is broken\n")
    with pytest.raises(ValueError, match="opt.txt:4"):
        parse_opt_file(p)
    p.write_text("dataset_name: t2m\ncheckpoints_dir: ./c\nname: x\ndim_text_hidden: big\n")
    with pytest.raises(ValueError, match="dim_text_hidden"):
        parse_opt_file(p)
    p.write_text("dataset_name: t2m\ncheckpoints_dir: ./nowhere\nname: x\n")
    with pytest.raises(FileNotFoundError, match="finest.tar"):
        EvaluatorWrapper(p)
    with pytest.raises(FileNotFoundError, match="opt.txt"):
        EvaluatorWrapper(tmp_path / "missing_dir")


def test_wrong_checkpoint_shapes_are_reported(tmp_path, reference_dir, monkeypatch):
    opt_path, ckpt = _official_layout(tmp_path, reference_dir)
    text = opt_path.read_text().replace("dim_text_hidden: 512", "dim_text_hidden: 256")
    opt_path.write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="text_encoder.*does not match"):
        EvaluatorWrapper(opt_path)


# ----------------------------------------------------------------------------- training
TINY = ["--dim-movement-enc-hidden", "16", "--dim-movement-latent", "16", "--dim-text-hidden", "16",
        "--dim-motion-hidden", "16", "--dim-coemb-hidden", "16"]


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    from prepare.make_synthetic_dataset import build_dataset
    out = tmp_path_factory.mktemp("evdata") / "syn"
    build_dataset(out, num_motions=60, seed=2, progress=False)
    return out


def test_train_evaluator_writes_official_layout_and_resumes(syn, tmp_path):
    import train_evaluator
    base = ["--data-root", str(syn), "--glove-dir", str(syn / "glove"), "--checkpoints-dir", str(tmp_path / "ck"),
            "--movement-iters", "10", "--movement-batch-size", "8", "--no-progress", "--eval-split", "train", *TINY]
    rep = train_evaluator.main(base + ["--max-epoch", "2"])
    run = tmp_path / "ck" / "t2m" / "text_mot_match"
    for f in ("model/finest.tar", "model/latest.tar", "meta/mean.npy", "meta/std.npy", "opt.txt", "metrics.jsonl",
              "movement_autoencoder.tar"):
        assert (run / f).is_file(), f
    assert torch.load(run / "model" / "latest.tar", weights_only=True)["epoch"] == 1
    assert set(rep["real_motion"]) >= {"R_precision_top1", "MM_Dist", "FID", "Diversity"}
    # the written evaluator loads through the same wrapper as the released one
    w = EvaluatorWrapper(run / "opt.txt")
    assert w.opt["dim_coemb_hidden"] == 16
    std = np.load(run / "meta" / "std.npy")
    assert std[0] * 25 == pytest.approx(np.load(syn / "Std.npy")[0], rel=1e-5)
    train_evaluator.main(base + ["--max-epoch", "3", "--resume"])
    assert torch.load(run / "model" / "latest.tar", weights_only=True)["epoch"] == 2
    epochs = [json.loads(ln).get("epoch") for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e for e in epochs if e is not None] == [0, 1, 2]


def test_evaluator_learns_to_match(syn, tmp_path):
    """A few epochs of contrastive training separate matched pairs far above chance (1/32)."""
    import train_evaluator
    rep = train_evaluator.main(["--data-root", str(syn), "--glove-dir", str(syn / "glove"),
                                "--checkpoints-dir", str(tmp_path / "ck"), "--movement-iters", "100",
                                "--movement-lr", "1e-3", "--lr", "1e-3", "--max-epoch", "8", "--no-progress",
                                "--eval-split", "train", "--dim-movement-enc-hidden", "32", "--dim-movement-latent",
                                "32", "--dim-text-hidden", "32", "--dim-motion-hidden", "32", "--dim-coemb-hidden", "32"])
    assert rep["real_motion"]["R_precision_top3"]["mean"] > 0.3


def test_model_dimensions_default_to_official():
    m = TextMotionEvaluator()
    assert m.motion_encoder.hidden.shape == (2, 1, 1024) and m.text_encoder.hidden.shape == (2, 1, 512)


def test_train_vq_reports_fid_with_an_evaluator(syn, tmp_path):
    import train_evaluator
    import train_vq
    train_evaluator.main(["--data-root", str(syn), "--glove-dir", str(syn / "glove"), "--checkpoints-dir",
                          str(tmp_path / "ck"), "--movement-iters", "5", "--max-epoch", "1", "--no-progress",
                          "--eval-split", "train", *TINY])
    best = train_vq.main(["--data-root", str(syn), "--out-dir", str(tmp_path), "--exp-name", "vq", "--batch-size", "8",
                          "--total-iter", "2", "--eval-iter", "2", "--no-progress", "--nb-code", "16", "--code-dim", "16",
                          "--output-emb-width", "16", "--width", "16", "--depth", "1", "--val-split", "train",
                          "--evaluator-dir", str(tmp_path / "ck" / "t2m" / "text_mot_match")])
    assert np.isfinite(best["fid"]) and (tmp_path / "vq" / "net_best_fid.pth").is_file()
    rec = [json.loads(ln) for ln in (tmp_path / "vq" / "metrics.jsonl").read_text().splitlines() if "val/fid" in ln][-1]
    assert 0 <= rec["val/top1"] <= 1 and rec["val/top1_real"] > 0


def test_m2t_matching_through_the_evaluator(syn, tmp_path):
    """Caption R-precision: real captions rank their motions far better than shuffled ones."""
    import train_evaluator
    from dataset.humanml3d import HumanML3DReader
    from utils.eval_m2t import m2t_matching
    from utils.word_vectorizer import WordVectorizer
    train_evaluator.main(["--data-root", str(syn), "--glove-dir", str(syn / "glove"), "--checkpoints-dir",
                          str(tmp_path / "ck"), "--movement-iters", "100", "--movement-lr", "1e-3", "--lr", "2e-3",
                          "--max-epoch", "25", "--no-progress", "--eval-split", "train", "--dim-movement-enc-hidden",
                          "64", "--dim-movement-latent", "64", "--dim-text-hidden", "64", "--dim-motion-hidden", "64",
                          "--dim-coemb-hidden", "64"])
    w = EvaluatorWrapper(tmp_path / "ck" / "t2m" / "text_mot_match")
    wv = WordVectorizer(syn / "glove")
    items = HumanML3DReader(syn, "train", progress=False).items[:96]
    motions = [it["motion"] for it in items]
    captions = [it["captions"][0]["caption"] for it in items]
    real = m2t_matching(w, wv, motions, captions, seed=0)
    wrong = m2t_matching(w, wv, motions, captions[1:] + captions[:1], seed=0)
    assert real["n"] == 96 and real["orientation"] == "motion rows"
    # a 64-d evaluator trained for seconds; captions shifted by one item often describe the same clip
    assert real["R_precision_top3"] > wrong["R_precision_top3"] + 0.06
    assert real["MM_Dist"] < wrong["MM_Dist"]
    with pytest.raises(ValueError, match="differ in number"):
        m2t_matching(w, wv, motions, captions[:5])


def test_validation_of_a_two_text_split_reports_top1_and_top2():
    """A validation split of 2 texts (tiny datasets) ranks 2 candidates: top-1/2 are reported instead of
    crashing on top-3 (it used to raise in calculate_top_k)."""
    from types import SimpleNamespace

    import torch

    from train_evaluator import validate

    class Stub(torch.nn.Module):
        def encode_text(self, w, p, lens):
            return w.mean(1)

        def encode_motion(self, m, lens):
            return m.mean(1)

    w = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    batch = (w, torch.zeros(2, 1, 2), None, [1, 1], w.clone(), [1, 1], None)
    out = validate(Stub(), [batch], SimpleNamespace(batch_size=32, negative_margin=10.0), "cpu",
                   np.random.default_rng(0))
    assert out["val/R_precision_top1"] == 1.0 and out["val/R_precision_top2"] == 1.0
    assert "val/R_precision_top3" not in out and out["val/MM_Dist"] == 0.0
