"""The embedded synthetic dataset: layout, determinism, captions, mirroring, vocabulary."""
import hashlib
import json
import pickle
from collections import Counter

import numpy as np
import pytest

from prepare.make_synthetic_dataset import build_dataset, generate_motion
from prepare.synthetic.actions import ACTIONS
from prepare.synthetic.captions import mirror_text, realise
from utils.motion_process import feature_slices, recover_from_ric

POS_TAGS = {"VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV", "CCONJ", "SCONJ", "INTJ", "PART"}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "h3d"
    info = build_dataset(out, num_motions=40, seed=3, progress=False)
    return out, info


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_layout_and_shapes(small):
    out, info = small
    for sub in ("new_joints", "new_joint_vecs", "texts", "glove"):
        assert (out / sub).is_dir()
    for f in ("train.txt", "val.txt", "test.txt", "train_val.txt", "all.txt", "Mean.npy", "Std.npy"):
        assert (out / f).is_file(), f
    ids = (out / "all.txt").read_text().split()
    assert len(ids) == 80 == info["num_clips"]
    assert sum(i.startswith("M") for i in ids) == 40
    splits = {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == sorted(ids)
    for s, lst in splits.items():
        assert lst, s
        # mirrored copies stay in the split of their original, as in HumanML3D
        assert {i.lstrip("M") for i in lst if i.startswith("M")} == {i for i in lst if not i.startswith("M")}
    for i in ids:
        f = np.load(out / "new_joint_vecs" / f"{i}.npy")
        j = np.load(out / "new_joints" / f"{i}.npy")
        assert f.dtype == np.float32 and f.shape[1] == 263 and 40 <= len(f) <= 196
        assert j.shape == (len(f), 22, 3) and np.isfinite(f).all()
        np.testing.assert_allclose(j, recover_from_ric(f), atol=1e-5)
        contacts = f[:, feature_slices(22)["foot_contact"]]
        assert set(np.unique(contacts)) <= {0.0, 1.0}
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == std.shape == (263,) and (std > 0).all()


def test_texts_format_and_captions(small):
    out, _ = small
    n_segments = 0
    for path in sorted((out / "texts").glob("*.txt")):
        lines = path.read_text().strip().split("\n")
        whole = 0
        for ln in lines:
            caption, tokens, start, end = ln.split("#")
            assert caption and caption[0].islower() and caption.endswith(".")
            for tok in tokens.split():
                word, pos = tok.rsplit("/", 1)
                assert word.isalpha() and word == word.lower() and pos in POS_TAGS, (path.name, tok)
            s, e = float(start), float(end)
            if s == 0 and e == 0:
                whole += 1
            else:
                n_segments += 1
                assert 0 <= s < e
        assert whole >= 3, path.name
        assert len({ln.split("#")[0] for ln in lines}) == len(lines), "captions of a motion must differ"
    assert n_segments > 0  # compositions come with sub-segment captions


def test_mirrored_text_and_motion(small):
    out, _ = small
    meta = json.loads((out / "synthetic_meta.json").read_text())["motions"]
    checked = 0
    for name, m in meta.items():
        acts = m["actions"]
        if len(acts) == 1 and acts[0]["action"] == "turn":
            orig = (out / "texts" / f"{name}.txt").read_text()
            mirr = (out / "texts" / f"M{name}.txt").read_text()
            side = acts[0]["side"]
            other = "right" if side == "left" else "left"
            assert side in orig and other not in orig
            assert other in mirr and side not in mirr
            yaw = np.load(out / "new_joint_vecs" / f"{name}.npy")[:, 0].sum()
            yaw_m = np.load(out / "new_joint_vecs" / f"M{name}.npy")[:, 0].sum()
            assert np.sign(yaw) == -np.sign(yaw_m) and abs(yaw) > 0.3
            checked += 1
    texts = [(out / "texts" / f"{n}.txt").read_text() for n in meta]
    assert sum("left" in t or "right" in t for t in texts) > 5
    assert mirror_text("a man kicks with his left leg.#a/DET man/NOUN kick/VERB left/ADJ#0.0#0.0") == \
        "a man kicks with his right leg.#a/DET man/NOUN kick/VERB right/ADJ#0.0#0.0"
    assert mirror_text("walks clockwise.") == "walks counterclockwise."


def test_turn_direction_is_semantic():
    """Left turns and right turns rotate the body in opposite senses in the features."""
    from prepare.synthetic.actions import turn
    from prepare.synthetic.body import ground
    from utils.motion_process import process_file
    signs = {}
    rng = np.random.default_rng(0)
    while len(signs) < 2:
        clip, facts = turn(rng)
        data, *_ = process_file(ground(clip))
        signs.setdefault(facts["side"], np.sign(data[:, 0].sum()))
    assert signs["left"] == -signs["right"]


def test_vocabulary_covers_tokens(small):
    out, info = small
    words = pickle.load(open(out / "glove" / "our_vab_words.pkl", "rb"))
    idx = pickle.load(open(out / "glove" / "our_vab_idx.pkl", "rb"))
    vecs = np.load(out / "glove" / "our_vab_data.npy")
    assert words[:3] == ["sos", "eos", "unk"]
    assert vecs.shape == (len(words), 300) == (info["vocab_size"], 300)
    assert all(idx[w] == i for i, w in enumerate(words))
    for path in (out / "texts").glob("*.txt"):
        for ln in path.read_text().strip().split("\n"):
            for tok in ln.split("#")[1].split():
                assert tok.rsplit("/", 1)[0] in idx
    # synonyms are closer than unrelated words
    cos = lambda a, b: float(vecs[idx[a]] @ vecs[idx[b]] / np.linalg.norm(vecs[idx[a]]) / np.linalg.norm(vecs[idx[b]]))  # noqa: E731
    if {"man", "person", "kick"} <= set(idx):
        assert cos("man", "person") > cos("man", "kick") + 0.3


def test_deterministic_for_a_seed(tmp_path):
    a = build_dataset(tmp_path / "a", num_motions=8, seed=11, progress=False)
    b = build_dataset(tmp_path / "b", num_motions=8, seed=11, progress=False)
    build_dataset(tmp_path / "c", num_motions=8, seed=12, progress=False)
    assert a["num_captions"] == b["num_captions"]
    for rel in ("all.txt", "train.txt", "Mean.npy", "glove/our_vab_data.npy", "texts/000003.txt",
                "new_joint_vecs/M000005.npy"):
        assert _md5(tmp_path / "a" / rel) == _md5(tmp_path / "b" / rel), rel
    assert _md5(tmp_path / "a" / "Mean.npy") != _md5(tmp_path / "c" / "Mean.npy")
    with pytest.raises(FileExistsError):
        build_dataset(tmp_path / "a", num_motions=8, seed=11, progress=False)
    with pytest.raises(ValueError, match="format"):
        build_dataset(tmp_path / "d", num_motions=8, fmt="amass", progress=False)


def test_kit_variant_builds(tmp_path):
    info = build_dataset(tmp_path / "kit", num_motions=6, seed=0, fmt="kit", progress=False)
    assert info["fps"] == 12.5
    for i in (tmp_path / "kit" / "all.txt").read_text().split():
        f = np.load(tmp_path / "kit" / "new_joint_vecs" / f"{i}.npy")
        j = np.load(tmp_path / "kit" / "new_joints" / f"{i}.npy")
        assert f.shape[1] == 251 and j.shape[1:] == (21, 3) and len(f) >= 24
        assert 1200 < j[0, 4, 1] < 2200  # head height in millimetres
        for ln in (tmp_path / "kit" / "texts" / f"{i}.txt").read_text().strip().split("\n"):
            assert ln.endswith("#0.0#0.0")  # KIT-ML captions carry no sub-segment tags


def test_action_repertoire():
    assert len(ACTIONS) >= 15
    rng = np.random.default_rng(0)
    counts = Counter()
    for _ in range(150):
        joints, facts, seg = generate_motion(rng)
        assert 41 <= len(joints) <= 197
        counts.update(f["action"] for f in facts)
        if seg is not None:
            assert len(facts) == 2 and 0 < seg[0] < len(joints)
        # standing actions keep a body upright: head above pelvis for most frames
        if not any(f["action"] in ("crawl", "bow") for f in facts):
            assert (joints[:, 15, 1] > joints[:, 0, 1]).mean() > 0.95
    assert len(counts) >= 15


def test_realise_tokens():
    text, tokens = realise("a/DET man/NOUN kicks/VERB:kick with/ADP his/DET left/ADJ leg/NOUN ,/PUNCT then/ADV waves/VERB:wave")
    assert text == "a man kicks with his left leg , then waves."
    assert tokens == ["a/DET", "man/NOUN", "kick/VERB", "with/ADP", "his/DET", "left/ADJ", "leg/NOUN", "then/ADV", "wave/VERB"]


def test_loaders_read_the_synthetic_dataset(small):
    """The embedded dataset goes through the same loaders as the real HumanML3D folder."""
    from dataset.dataset_m2t_eval import Motion2TextEvalDataset
    from dataset.dataset_TM_eval import Text2MotionEvalDataset, get_t2m_eval_loader
    from dataset.dataset_VQ import get_vq_loader
    from dataset.humanml3d import HumanML3DReader, load_mean_std
    from utils.word_vectorizer import WordVectorizer

    out, _ = small
    mean, std = load_mean_std(out)
    train = HumanML3DReader(out, "train", progress=False)
    n_ids = len((out / "train.txt").read_text().split())
    assert len(train.items) >= n_ids  # whole clips plus sub-segment items
    assert any(it["segment"] is not None for it in train.items)
    wv = WordVectorizer(out / "glove")
    ds = Text2MotionEvalDataset(train, wv, mean, std, seed=0)
    word_embs, pos_ohot, _, sent_len, motion, m_len, _ = next(iter(get_t2m_eval_loader(ds, batch_size=8, seed=0)))
    assert word_embs.shape == (8, 22, 300) and motion.shape == (8, 196, 263)
    assert (m_len % 4 == 0).all() and (pos_ohot.sum(-1)[:, 0] == 1).all()
    # in-vocabulary words never fall back to unk/OTHER for real content words
    assert float(pos_ohot[:, 1:-1, 14].mean()) < 0.9
    m2t = Motion2TextEvalDataset(train, mean, std)
    assert all(len(m2t[i]["references"]) == 3 for i in range(len(m2t)))
    batch = next(iter(get_vq_loader(out, batch_size=4, window_size=64, mean=mean, std=std, seed=0, split="train")))
    assert tuple(batch.shape) == (4, 64, 263)


def test_compute_mean_std_cli_matches_dataset_stats(small, tmp_path):
    from prepare.compute_mean_std import compute
    out, _ = small
    res = compute(out, out=tmp_path, progress=False)
    assert res["clips"] == 80 and res["skipped_nan"] == 0
    np.testing.assert_allclose(np.load(tmp_path / "Mean.npy"), np.load(out / "Mean.npy"), rtol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "Std.npy"), np.load(out / "Std.npy"), rtol=1e-6)
    compute(out, evaluator_style=True, out=tmp_path / "meta", progress=False)
    ratio = np.load(tmp_path / "Std.npy") / np.load(tmp_path / "meta" / "std.npy")
    np.testing.assert_allclose(ratio[:4], 25, rtol=1e-5)
    np.testing.assert_allclose(ratio[4:-4], 1, rtol=1e-6)
