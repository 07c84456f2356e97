"""RLVR rewards: physics on recovered joints, format rules, the weighted composite, evaluator consistency,
semantic similarity, coherence backends, caches and once-per-batch decoding. (Advantages: test_grpo.py.)"""
import argparse

import numpy as np
import pytest
import torch

from options.rewards import add_reward_args
from rewards import CompositeReward, PhysicsReward, Reward, RewardBatch, RewardOutput, build_rewards, motion_from_features
from rewards.format_reward import FormatReward
from utils.motion_process import recover_from_ric

FPS = 20.0


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    from prepare.make_synthetic_dataset import build_dataset
    out = tmp_path_factory.mktemp("rewdata") / "syn"
    build_dataset(out, num_motions=30, seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_vq(syn, tmp_path_factory):
    """(model, mean, std) of a 2-iteration VQ-VAE run, loaded the way the trainer loads it."""
    import train_vq
    from models.vqvae import load_vq_with_stats
    out = tmp_path_factory.mktemp("rewvq")
    train_vq.main(["--data-root", str(syn), "--out-dir", str(out), "--exp-name", "vq", "--batch-size", "8",
                   "--total-iter", "2", "--warm-up-iter", "1", "--eval-iter", "1000", "--no-progress",
                   "--nb-code", "32", "--code-dim", "16", "--output-emb-width", "16", "--width", "16", "--depth", "1",
                   "--val-split", "train"])
    return load_vq_with_stats(out / "vq" / "net_last.pth")


@pytest.fixture(scope="module")
def syn_clips(syn):
    from dataset.humanml3d import HumanML3DReader
    return [it for it in HumanML3DReader(syn, "all", progress=False).items if it["segment"] is None]


@pytest.fixture(scope="module")
def tiny_evaluator(syn, syn_clips, tmp_path_factory):
    """A 16-d T2M evaluator in the official layout, trained contrastively (InfoNCE, full batch) on
    every caption of the synthetic clips; the movement encoder stays at its initialisation."""
    from models.evaluator import TextMotionEvaluator
    from models.evaluator_wrapper import write_opt_file
    from utils.word_vectorizer import WordVectorizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("rewev")
    root = out / "t2m" / "text_mot_match"
    (root / "model").mkdir(parents=True)
    (root / "meta").mkdir()
    mean, std = np.load(syn / "Mean.npy").astype(np.float32), np.load(syn / "Std.npy").astype(np.float32)
    np.save(root / "meta" / "mean.npy", mean)
    np.save(root / "meta" / "std.npy", std)
    dims = {k: 16 for k in ("dim_movement_enc_hidden", "dim_movement_latent", "dim_text_hidden",
                            "dim_motion_hidden", "dim_coemb_hidden")}
    write_opt_file(root / "opt.txt", {"name": "text_mot_match", "dataset_name": "t2m", "checkpoints_dir": str(out),
                                      "unit_length": 4, "dim_word": 300, "dim_pos_ohot": 15, **dims,
                                      "max_text_len": 20, "max_motion_length": 196})
    wv = WordVectorizer(syn / "glove")
    model = TextMotionEvaluator(**dims)
    words, pos, lens, owner, motions, mlens = [], [], [], [], [], []
    for k, it in enumerate(syn_clips):
        T = min(len(it["motion"]), 196)
        T -= T % 4
        m = np.zeros((196, 263), np.float32)
        m[:T] = (it["motion"][:T] - mean) / std
        motions.append(m)
        mlens.append(T)
        for c in it["captions"]:
            w, p, n = wv.tokens_to_sequence(c["tokens"], 20)
            words.append(w)
            pos.append(p)
            lens.append(n)
            owner.append(k)
    words, pos = torch.tensor(np.stack(words)), torch.tensor(np.stack(pos))
    lens, owner = torch.tensor(lens), torch.tensor(owner)
    motions, mlens = torch.tensor(np.stack(motions)), torch.tensor(mlens)
    opt = torch.optim.Adam(list(model.text_encoder.parameters()) + list(model.motion_encoder.parameters()), lr=3e-3)
    for _ in range(100):
        t = torch.nn.functional.normalize(model.encode_text(words, pos, lens), dim=-1)
        m = torch.nn.functional.normalize(model.encode_motion(motions, mlens), dim=-1)
        loss = torch.nn.functional.cross_entropy(t @ m.T / 0.1, owner)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.finest_dict(), root / "model" / "finest.tar")
    return root


def _args(argv=(), **extra):
    p = argparse.ArgumentParser()
    add_reward_args(p)
    args = p.parse_args(list(argv))
    for k, v in {"device": "cpu", "use_reasoning": True, "dataname": "t2m", **extra}.items():
        setattr(args, k, v)
    return args


def _t2m_text(codes, reasoning="The person walks forward.", close=True):
    body = "<Motion>" + "".join(f"<Motion_{c}>" for c in codes) + "</Motion>"
    return f"{reasoning}</think><answer>{body}{'</answer>' if close else ''}"


class _Fixed(Reward):
    """A reward returning given values (for composite tests)."""

    def __init__(self, name, values, tasks=("t2m", "m2t")):
        self.name, self._values, self.tasks = name, np.asarray(values, float), tasks
        self.calls = 0

    def score(self, batch):
        self.calls += 1
        return RewardOutput(self._values[: len(batch)], {}, {})


# ----------------------------------------------------------------------------- physics
def _drift(j, v=0.5):  # the whole body slides along +X while the feet stay low: foot skating
    j = j.copy()
    j[..., 0] += v * np.arange(len(j))[:, None] / FPS
    return j


def _sink(j, d=0.10):  # everything 10 cm lower: ground penetration
    j = j.copy()
    j[..., 1] -= d
    return j


def _jitter(j, sigma=0.02, seed=0):  # frame-level noise: jerk and bone-length violations
    return j + np.random.default_rng(seed).normal(0.0, sigma, j.shape)


def _lift(j, d=0.15):  # hovering above the floor for the whole clip
    j = j.copy()
    j[..., 1] += d
    return j


def test_physics_ground_truth_beats_corrupted_motion(reference_dir, syn):
    real = np.load(reference_dir / "humanml3d_sample" / "new_joints" / "012314.npy")
    feats = np.load(reference_dir / "humanml3d_sample" / "new_joint_vecs" / "012314.npy")
    # the recovery used by the decoder reproduces the released joints (metres, y = 0 floor)
    np.testing.assert_allclose(motion_from_features(feats).joints, real, atol=1e-4)
    R = PhysicsReward()
    syn_joints = [recover_from_ric(np.load(p)) for p in sorted((syn / "new_joint_vecs").glob("0*.npy"))[:12]]
    gt_all = R.score_joints(syn_joints).values
    clean = [j for j, v in zip(syn_joints, gt_all) if v > 0.95]  # procedural clips that do not skate already
    assert len(clean) >= 5
    clips = [real] + clean[:5]
    gt = R.score_joints(clips)
    assert (gt.values > 0.95).all(), gt.values
    assert gt.components["floating"][0] == 1.0  # the real clip's short jump is ballistic, not floating
    cases = {"skate": _drift, "penetration": _sink, "jerk": _jitter, "floating": _lift}
    for term, corrupt in cases.items():
        bad = R.score_joints([corrupt(j) for j in clips])
        margin = gt.values - bad.values
        term_margin = gt.components[term] - bad.components[term]
        assert (margin > 0.12).all(), (term, margin)
        assert (term_margin > 0.5).all(), (term, term_margin)
    # jitter also breaks the bone lengths (recover_from_ric positions are not skeleton-constrained)
    assert (R.score_joints([_jitter(j) for j in clips]).components["bone"] < 0.6).all()


def test_physics_is_padding_aware_and_handles_missing_motion(reference_dir):
    real = np.load(reference_dir / "humanml3d_sample" / "new_joints" / "012314.npy")
    clips = [real, real[:37], _jitter(real[:80]), real[:4]]
    R = PhysicsReward()
    together = R.score_joints(clips + [None])
    for i, c in enumerate(clips):
        alone = R.score_joints([c])
        assert together.values[i] == pytest.approx(alone.values[0], abs=1e-9)
        for k in alone.components:
            assert together.components[k][i] == pytest.approx(alone.components[k][0], abs=1e-9)
    assert together.values[-1] == 0.0 and together.info["invalid"] == 1
    assert PhysicsReward(value_range="[-1,0]").score_joints([None, real]).values.tolist() == \
        pytest.approx([-1.0, together.values[0] - 1.0])


def test_physics_target_caps_and_rescales(reference_dir):
    """--reward-phys-target 0.8: a motion at or above 0.8 scores 1, one below scores its value / 0.8, so a
    group's physics advantage only separates the implausible samples; 0 leaves the reward as it was."""
    real = np.load(reference_dir / "humanml3d_sample" / "new_joints" / "012314.npy")
    clips = [real, _jitter(real[:80], 0.2), _jitter(real[:80], 0.05), None]
    plain = PhysicsReward().score_joints(clips).values
    capped = PhysicsReward(target=0.8).score_joints(clips).values
    assert plain.min() < 0.8 < plain.max()  # the fixture spans both sides of the target
    np.testing.assert_allclose(capped, np.minimum(plain, 0.8) / 0.8)
    assert capped[-1] == 0.0 and (capped <= 1.0).all()
    assert PhysicsReward(target=0.0).score_joints(clips).values.tolist() == pytest.approx(plain.tolist())
    with pytest.raises(ValueError, match="target"):
        PhysicsReward(target=1.5)


# ----------------------------------------------------------------------------- format
def test_format_reward_rules_never_raise():
    fr = FormatReward(nb_code=32, max_motion_tokens=49)
    texts = {
        "good": _t2m_text([1, 2, 3]),
        "empty": "",
        "text_only": "I plan.</think><answer>a man walks</answer>",
        "one_out_of_range": _t2m_text([1, 40]),
        "all_out_of_range": _t2m_text([32, 99]),
        "unclosed": "plan</think><answer><Motion><Motion_1><Motion_2>",
        "too_long": _t2m_text(list(range(32)) * 2),
        "no_reasoning": _t2m_text([5], reasoning=""),
        "codes_only": "<Motion_3><Motion_4>",
        "junk": "<Motion_abc> <answer><answer></Motion></think><Motion_-3>\x00\ufffd",
        "extra_text": "plan</think><answer>a caption <Motion><Motion_1></Motion></answer>",
        "trailing": _t2m_text([1]) + " and more",
    }
    batch = RewardBatch("t2m", list(texts.values()) + [None], nb_code=32)
    out = fr.score(batch)
    v = dict(zip(list(texts) + ["none"], out.values))
    assert v["good"] == 1.0 and out.components["well_formed"][0] == 1.0
    assert v["empty"] == v["text_only"] == v["all_out_of_range"] == v["none"] == -1.0
    assert v["one_out_of_range"] == pytest.approx(0.5)
    assert v["unclosed"] == pytest.approx(1.0 - 0.2 * 2)
    assert v["too_long"] == pytest.approx(0.5)
    assert v["no_reasoning"] == pytest.approx(0.7)
    assert v["codes_only"] == pytest.approx(1.0 - 5 * 0.2 - 0.3)  # 5 missing tags, no reasoning: still above -1
    assert v["extra_text"] == pytest.approx(0.9) and v["trailing"] == pytest.approx(0.9)
    assert np.all((out.values >= -1) & (out.values <= 1))
    assert out.info["violations"]["out_of_range"] == 3  # [1, 40], [32, 99] and the junk <Motion_-3>
    # reasoning not expected: an empty think block is fine
    assert fr.score(RewardBatch("t2m", [texts["no_reasoning"]], nb_code=32, reasoning_expected=False)).values[0] == 1.0
    # the decoded codes are the in-range ones, cropped to the limit
    b = RewardBatch("t2m", [texts["one_out_of_range"], texts["too_long"]], nb_code=32, max_motion_tokens=49)
    assert b.motion_codes(0) == [1] and len(b.motion_codes(1)) == 49

    m2t = ["The motion is a walk.</think><answer>a person walks forward.</answer>",
           "reasoning</think><answer>  </answer>",
           "r</think><answer>a person <Motion_3> walks</answer>",
           "a person walks forward.",
           "r</think><answer>" + "word " * 80 + "</answer>"]
    o = fr.score(RewardBatch("m2t", m2t, nb_code=32)).values
    assert o[0] == 1.0 and o[1] == -1.0 and o[2] == pytest.approx(0.7)
    assert o[3] == pytest.approx(1.0 - 0.6 - 0.3) and o[4] == pytest.approx(0.8)


# ----------------------------------------------------------------------------- composite
def test_composite_total_components_and_zero_weights():
    a = np.array([0.00, 0.01, 0.02, 0.03])
    b = np.array([3.0, 0.0, 1.0, 0.0])
    skipped = _Fixed("c", np.zeros(4))
    comp = CompositeReward({"a": (_Fixed("a", a), 1.0), "b": (_Fixed("b", b), 0.5), "c": (skipped, 0.0)})
    res = comp.score(RewardBatch("t2m", [""] * 4))
    np.testing.assert_allclose(res.total, a + 0.5 * b)  # the raw weighted total
    np.testing.assert_allclose(res.components["b"], b)
    assert skipped.calls == 0 and "c" not in res.components and comp.config()["skipped_zero_weight"] == ["c"]
    assert comp.weights == {"a": 1.0, "b": 0.5}
    assert res.stats["reward/a_mean"] == pytest.approx(a.mean()) and res.stats["reward/b_std"] == pytest.approx(b.std())


# ----------------------------------------------------------------------------- pipeline
def test_decoding_once_per_batch_shared_and_cached(syn, tiny_vq, tiny_evaluator, monkeypatch):
    model = tiny_vq[0]
    calls = []
    orig = model.decode
    monkeypatch.setattr(model, "decode", lambda *a, **k: calls.append(1) or orig(*a, **k))
    args = _args(["--reward-dataset-opt-path", str(tiny_evaluator), "--reward-glove-path", str(syn / "glove"),
                  "--nli-model-name", "none"])
    comp = build_rewards(args, "t2m", vq=tiny_vq)
    assert comp.names == ["format", "phys", "align", "coh"]
    assert comp.config()["coherence_backend"] == "embedding-fallback"
    caption = "a person walks forward."
    texts = [_t2m_text([1, 2, 3, 4]), _t2m_text([1, 2, 3, 4]), _t2m_text([5, 6]), "garbage",
             _t2m_text([7] * 12), _t2m_text([31, 40]), "", _t2m_text([9, 9, 9])]
    batch = comp.make_batch("t2m", texts, captions=[caption] * 4 + ["a man jumps."] * 4)
    res = comp.score(batch)
    assert len(calls) == 1  # one VQ forward for the whole batch, shared by phys and align
    st = comp.decoder.stats()
    assert st["decoded"] == 5 and st["invalid"] == 2 and st["hits"] == 1  # 5 distinct valid clips, 1 repeat
    assert res.stats["reward/decoder/vq_calls"] == 1
    assert np.isfinite(res.total).all()
    assert res.components["phys"][3] == 0.0 and res.components["format"][3] == -1.0
    assert res.components["align"][6] == -1.0
    assert res.components["phys"][0] == res.components["phys"][1] > 0
    assert "reward/phys/skate_mean" in res.stats and res.stats["reward/coh/backend"] == "embedding-fallback"
    # a second batch with the same answers: no VQ call, all from the cache
    comp.score(comp.make_batch("t2m", texts, captions=[caption] * 8))
    assert len(calls) == 1 and comp.decoder.stats()["hits"] == 1 + 6
    # epoch reset: counters, and with --reward-clear-cache-values the values too
    comp.reset_cache_each_epoch, comp.clear_cache_values = True, True
    comp.on_epoch_start()
    assert comp.decoder.stats()["hits"] == 0 and comp.decoder.stats()["entries"] == 0
    # m2t at test time: the generated caption against the input motion, never the reference
    m2t = build_rewards(args, "m2t", vq=tiny_vq, purpose="com")
    assert m2t.names == ["align", "coh"]
    b = m2t.make_batch("m2t", ["The person walks.</think><answer>a person walks forward.</answer>"] * 2,
                       input_codes=[[1, 2, 3], [4, 5]])
    out = m2t.score(b)
    assert np.isfinite(out.total).all() and len(calls) == 2


def test_factory_flags_and_missing_assets(tmp_path, tiny_vq):
    args = _args()
    assert (args.reward_format_weight, args.reward_sem_weight, args.reward_coh_weight, args.reward_phys_weight,
            args.reward_align_weight, args.reward_max_batch_size) == (0.2, 0.5, 0.8, 0.5, 0.5, 16)
    assert args.semantic_model_name == "minilm" and args.nli_model_name == "microsoft/deberta-large-mnli"
    assert args.reward_device is None and not args.reward_reset_cache_each_epoch and not args.reward_clear_cache_values
    with pytest.raises(FileNotFoundError, match="--reward-dataset-opt-path"):
        build_rewards(_args(["--reward-dataset-opt-path", str(tmp_path / "nope")]), "t2m", vq=tiny_vq)
    with pytest.raises(ValueError, match="--vq-ckpt"):
        build_rewards(_args(["--nli-model-name", "none"]), "t2m")
    m2t = build_rewards(_args(["--nli-model-name", "none"]), "m2t")  # no evaluator, no VQ needed
    assert m2t.names == ["format", "sem", "coh"]
    no_coh = build_rewards(_args(["--nli-model-name", "none"], use_reasoning=False), "m2t")
    assert no_coh.names == ["format", "sem"] and "coh_skipped" in no_coh.config()
    phys_only = build_rewards(_args(["--reward-align-weight", "0", "--reward-coh-weight", "0",
                                     "--reward-format-weight", "0"]), "t2m", vq=tiny_vq)
    assert phys_only.names == ["phys"]


def test_factory_names_missing_glove(syn, tiny_vq, tiny_evaluator, tmp_path):
    args = _args(["--reward-dataset-opt-path", str(tiny_evaluator), "--reward-glove-path", str(tmp_path / "noglove"),
                  "--nli-model-name", "none"])
    with pytest.raises(FileNotFoundError, match="--reward-glove-path"):
        build_rewards(args, "t2m", vq=tiny_vq)
