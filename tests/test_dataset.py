"""Tests of the HumanML3D reader, the word vectorizer and the VQ / t2m-eval / m2t-eval datasets.

Everything runs on tiny synthetic folders written in the HumanML3D layout.
"""
from __future__ import annotations

import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset.dataset_m2t_eval import Motion2TextEvalDataset, get_m2t_eval_loader
from dataset.dataset_TM_eval import Text2MotionEvalDataset, collate_fn, crop_length, get_t2m_eval_loader
from dataset.dataset_VQ import VQMotionDataset, get_vq_loader
from dataset.humanml3d import HumanML3DReader, load_mean_std, mirror_id, parse_text_line
from dataset.loader_utils import cycle
from utils.word_vectorizer import (POS_enumerator, WordVectorizer, build_token_sequence,
                                   process_words)

# ----------------------------------------------------------------------------- fixtures
VOCAB = ["sos", "eos", "unk", "a", "person", "walk", "forward", "slowly", "left", "arm", "chair",
         "the", "then", "turn", "around", "man", "jump", "up", "and", "wave", "hand", "his"]

L_WALK = "a person walks forward slowly.#a/DET person/NOUN walk/VERB forward/ADV slowly/ADV#0.0#0.0"
L_JUMP = "the man jumps up.#the/DET man/NOUN jump/VERB up/ADP#0.0#0.0"
L_WAVE = "a man waves his left hand#a/DET man/NOUN wave/VERB his/PRON left/ADJ hand/NOUN#nan#nan"
L_TURN = "then turns around#then/ADV turn/VERB around/ADP#0.0#0.0"


def _tokens(n):
    return " ".join(["walk/VERB"] * n)


# name -> (T, [text lines]) ; text None means no texts file
T2M_CLIPS = {
    "000001": (60, [L_WALK, L_JUMP]),
    "M000001": (60, [L_WALK.replace("forward", "forward")]),
    "000002": (120, [L_TURN,
                     "a person walks#a/DET person/NOUN walk/VERB#1.0#4.0",   # frames 20:80 -> kept
                     "a person jumps#a/DET person/NOUN jump/VERB#0.5#1.0"]),  # 10 frames -> too short
    "000003": (30, [L_WALK]),                                                 # too short clip
    "000004": (250, [L_WALK]),                                                # too long clip
    "000005": (199, [L_WALK, L_JUMP, L_WAVE, L_TURN]),                         # 4 captions, m_len 196
    "000006": (100, ["a man waves#a/DET man/NOUN wave/VERB#0.0#3.0"]),        # segment only
}


def write_dataset(root: Path, clips: dict, dim: int = 263, seed: int = 0, splits=("train", "test")):
    rng = np.random.default_rng(seed)
    (root / "new_joint_vecs").mkdir(parents=True, exist_ok=True)
    (root / "texts").mkdir(exist_ok=True)
    for name, (T, lines) in clips.items():
        np.save(root / "new_joint_vecs" / f"{name}.npy", rng.normal(size=(T, dim)).astype(np.float32))
        if lines is not None:
            (root / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    for split in splits:
        (root / f"{split}.txt").write_text("\n".join(clips) + "\n")
    np.save(root / "Mean.npy", np.zeros(dim, np.float32) + 0.1)
    np.save(root / "Std.npy", np.ones(dim, np.float32) * 2.0)
    return root


def write_glove(folder: Path, words=VOCAB, dim: int = 300, seed: int = 1):
    folder.mkdir(parents=True, exist_ok=True)
    vecs = np.random.default_rng(seed).normal(size=(len(words), dim)).astype(np.float32)
    np.save(folder / "our_vab_data.npy", vecs)
    with open(folder / "our_vab_words.pkl", "wb") as f:
        pickle.dump(list(words), f)
    with open(folder / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    return folder


@pytest.fixture()
def t2m_root(tmp_path):
    return write_dataset(tmp_path / "HumanML3D", T2M_CLIPS)


@pytest.fixture()
def kit_root(tmp_path):
    clips = {"00001": (30, [L_WALK]), "00002": (20, [L_WALK]), "M00001": (210, [L_JUMP]),
             "00003": (100, [L_TURN, L_WAVE])}
    return write_dataset(tmp_path / "KIT-ML", clips, dim=251)


@pytest.fixture()
def glove(tmp_path):
    return WordVectorizer(write_glove(tmp_path / "glove"))


def reader(root, **kw):
    kw.setdefault("progress", False)
    return HumanML3DReader(root, **kw)


MEAN = np.full(263, 0.5, np.float32)
STD = np.full(263, 2.0, np.float32)

# ----------------------------------------------------------------------------- reader


def test_reader_items_and_filtering(t2m_root):
    r = reader(t2m_root)
    by_clip = {}
    for it in r:
        by_clip.setdefault(it["clip_id"], []).append(it)
    assert len(r) == 6
    assert set(by_clip) == {"000001", "M000001", "000002", "000005", "000006"}
    # whole clip + one kept segment for 000002
    seg = [it for it in by_clip["000002"] if it["segment"] is not None]
    assert len(seg) == 1 and seg[0]["segment"] == (20, 80) and seg[0]["length"] == 60
    assert seg[0]["name"][0].isupper() and seg[0]["name"][1:] == "_000002"
    np.testing.assert_array_equal(seg[0]["motion"], np.load(t2m_root / "new_joint_vecs/000002.npy")[20:80])
    # segment-only clip: no whole-clip item
    assert [it["segment"] for it in by_clip["000006"]] == [(0, 60)]
    assert by_clip["000005"][0]["length"] == 199 and len(by_clip["000005"][0]["captions"]) == 4
    assert by_clip["000001"][0]["captions"][0] == dict(
        caption="a person walks forward slowly.",
        tokens=["a/DET", "person/NOUN", "walk/VERB", "forward/ADV", "slowly/ADV"])
    assert r.stats["too_short"] == 1 and r.stats["too_long"] == 1
    assert r.stats["segment_too_short"] == 1 and r.stats["no_whole_caption"] == 1
    for it in r:
        assert it["motion"].dtype == np.float32 and it["motion"].shape == (it["length"], 263)
        assert 40 <= it["length"] < 200


def test_reader_min_max_len_and_ids(t2m_root):
    r = reader(t2m_root, min_len=20, max_len=None, ids=["000003", "000004"])
    assert sorted(it["name"] for it in r) == ["000003", "000004"]
    assert r.stats["too_short"] == 0 and r.stats["too_long"] == 0


def test_reader_motion_only_mode(t2m_root):
    os.remove(t2m_root / "texts" / "000005.txt")  # texts are not read
    r = reader(t2m_root, with_text=False, max_len=None)
    assert len(r) == 6 and all(it["captions"] == [] for it in r)


def test_reader_kit(kit_root):
    r = reader(kit_root, dataname="kit")
    assert sorted(it["name"] for it in r) == ["00001", "00003"]
    assert r.stats["too_short"] == 1 and r.stats["too_long"] == 1
    assert r[0]["motion"].shape[1] == 251


def test_wrong_width_names_file(kit_root):
    with pytest.raises(ValueError, match=r"00001\.npy.*263"):
        reader(kit_root, dataname="t2m")


def test_segment_names_unique_and_seeded(t2m_root):
    lines = [L_WALK] + [f"seg {i}#walk/VERB#{i * 0.1:.1f}#{i * 0.1 + 3:.1f}" for i in range(30)]
    (t2m_root / "texts" / "000005.txt").write_text("\n".join(lines))
    r1, r2 = reader(t2m_root, ids=["000005"], seed=3), reader(t2m_root, ids=["000005"], seed=3)
    names = r1.names
    assert len(names) == 31 and len(set(names)) == 31
    assert names == r2.names


# ----------------------------------------------------------------------------- bad inputs
def test_missing_texts_file(t2m_root):
    os.remove(t2m_root / "texts" / "000001.txt")
    with pytest.raises(ValueError, match=r"000001\.txt"):
        reader(t2m_root)


def test_missing_motion_file(t2m_root):
    os.remove(t2m_root / "new_joint_vecs" / "000002.npy")
    with pytest.raises(ValueError, match=r"000002\.npy"):
        reader(t2m_root)


def test_nan_features(t2m_root):
    m = np.load(t2m_root / "new_joint_vecs" / "000001.npy")
    m[5, 7] = np.nan
    np.save(t2m_root / "new_joint_vecs" / "000001.npy", m)
    with pytest.raises(ValueError, match=r"000001\.npy.*NaN"):
        reader(t2m_root)


def test_wrong_feature_width(t2m_root):
    np.save(t2m_root / "new_joint_vecs" / "000005.npy", np.zeros((80, 251), np.float32))
    with pytest.raises(ValueError, match=r"000005\.npy.*\(T, 263\)"):
        reader(t2m_root)


def test_empty_and_missing_split(t2m_root):
    (t2m_root / "val.txt").write_text("\n\n")
    with pytest.raises(ValueError, match=r"val\.txt.*empty"):
        reader(t2m_root, split="val")
    with pytest.raises(FileNotFoundError, match=r"train_val\.txt"):
        reader(t2m_root, split="train_val")


@pytest.mark.parametrize("bad_line, what", [
    ("a person walks#a/DET person/NOUN walk/VERB#0.0", "4 '#'-separated fields"),
    ("a person walks#a/DET#abc#0.0", "bad start/end"),
    ("a person walks#a/DET#-1.0#2.0", "bad start/end"),
])
def test_malformed_text_line(t2m_root, bad_line, what):
    (t2m_root / "texts" / "000002.txt").write_text(f"{L_TURN}\n{bad_line}\n")
    with pytest.raises(ValueError) as exc:
        reader(t2m_root)
    msg = str(exc.value)
    assert "000002.txt" in msg and "line 2" in msg and what in msg


def test_empty_text_file(t2m_root):
    (t2m_root / "texts" / "000002.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"000002\.txt: no caption"):
        reader(t2m_root)


def test_skip_mode_counts(t2m_root):
    os.remove(t2m_root / "texts" / "000001.txt")
    np.save(t2m_root / "new_joint_vecs" / "M000001.npy", np.full((60, 263), np.nan, np.float32))
    np.save(t2m_root / "new_joint_vecs" / "000006.npy", np.zeros((100, 250), np.float32))
    (t2m_root / "texts" / "000005.txt").write_text("broken line\n")
    os.remove(t2m_root / "new_joint_vecs" / "000002.npy")
    write_dataset(t2m_root, {"000007": (80, [L_WALK])}, splits=())  # the one good clip left
    with open(t2m_root / "train.txt", "a") as f:
        f.write("000007\n")
    r = reader(t2m_root, on_error="skip")
    assert r.names == ["000007"]
    assert r.stats["missing_text"] == 1 and r.stats["nan"] == 1 and r.stats["bad_width"] == 1
    assert r.stats["bad_text"] == 1 and r.stats["missing_motion"] == 1
    assert r.stats["too_short"] == 1 and r.stats["too_long"] == 1  # normal filtering still counted


def test_skip_mode_keeps_good_clips_and_logs(t2m_root, caplog):
    os.remove(t2m_root / "texts" / "000001.txt")
    with caplog.at_level(logging.INFO, logger="dataset.humanml3d"):
        r = reader(t2m_root, on_error="skip")
    assert len(r) == 5 and "000001" not in r.names
    assert r.stats["missing_text"] == 1
    msgs = [rec.getMessage() for rec in caplog.records if rec.name == "dataset.humanml3d"]
    assert len(msgs) == 1 and "missing_text=1" in msgs[0] and "\n" not in msgs[0]


def test_all_skipped_raises(t2m_root):
    with pytest.raises(ValueError, match="no items left"):
        reader(t2m_root, ids=["000003", "000004"])


def test_parse_text_line_nan_counts_as_zero():
    cap, toks, a, b = parse_text_line(L_WAVE)
    assert (a, b) == (0.0, 0.0) and toks[-1] == "hand/NOUN" and cap.startswith("a man")


def test_mirror_id_and_mean_std(t2m_root, tmp_path):
    assert mirror_id("000123") == "M000123" and mirror_id("M000123") == "000123"
    mean, std = load_mean_std(t2m_root, dim=263)
    assert mean.shape == (263,) and std.dtype == np.float32
    meta = tmp_path / "meta"
    meta.mkdir()
    np.save(meta / "mean.npy", np.zeros(263))
    with pytest.raises(FileNotFoundError, match="meta"):
        load_mean_std(meta)
    np.save(meta / "std.npy", np.zeros(263))
    with pytest.raises(ValueError, match=r"std\.npy.*> 0"):
        load_mean_std(meta)
    with pytest.raises(ValueError, match=r"Mean\.npy.*251"):
        load_mean_std(t2m_root, dim=251)


def test_reference_meta_loads(reference_dir):
    mean, std = load_mean_std(reference_dir / "evaluator_meta", dim=263)
    dmean, dstd = load_mean_std(reference_dir / "humanml3d_sample", dim=263)
    assert np.allclose(dstd[0] / std[0], 25, rtol=0.02)


# ----------------------------------------------------------------------------- word vectorizer
def test_word_vectorizer_lookup(glove):
    vec, oh = glove["walk/VERB"]
    assert vec.shape == (300,) and oh.shape == (15,)
    np.testing.assert_array_equal(vec, glove.vectors[VOCAB.index("walk")])
    assert oh.argmax() == POS_enumerator["Act_VIP"] and oh.sum() == 1
    assert glove["left/ADJ"][1].argmax() == POS_enumerator["Loc_VIP"]
    assert glove["arm/NOUN"][1].argmax() == POS_enumerator["Body_VIP"]
    assert glove["chair/NOUN"][1].argmax() == POS_enumerator["Obj_VIP"]
    assert glove["slowly/ADV"][1].argmax() == POS_enumerator["Desc_VIP"]
    assert glove["person/NOUN"][1].argmax() == POS_enumerator["NOUN"]
    assert glove["and/CCONJ"][1].argmax() == POS_enumerator["OTHER"]  # unknown tag
    # OOV: unk vector and OTHER, even for a VIP word missing from the vocabulary
    for tok in ("zebra/NOUN", "kick/VERB", "feet/NOUN"):
        vec, oh = glove[tok]
        np.testing.assert_array_equal(vec, glove.vectors[VOCAB.index("unk")])
        assert oh.argmax() == POS_enumerator["OTHER"]


def test_tokens_to_sequence_short(glove):
    toks = ["a/DET", "person/NOUN", "walk/VERB"]
    we, po, n = glove.tokens_to_sequence(toks)
    assert we.shape == (22, 300) and po.shape == (22, 15) and n == 5
    np.testing.assert_array_equal(we[0], glove.vectors[0])  # sos
    np.testing.assert_array_equal(we[4], glove.vectors[1])  # eos
    np.testing.assert_array_equal(we[5:], np.broadcast_to(glove.vectors[2], (17, 300)))  # unk pad
    assert (po[[0, 4]].argmax(1) == POS_enumerator["OTHER"]).all()
    assert (po[5:].argmax(1) == POS_enumerator["OTHER"]).all()
    assert po[3].argmax() == POS_enumerator["Act_VIP"]
    seq, n2 = build_token_sequence(" ".join(toks))
    assert seq[:5] == ["sos/OTHER"] + toks + ["eos/OTHER"] and n2 == 5 and len(seq) == 22


@pytest.mark.parametrize("n_tok", [19, 20, 25])
def test_tokens_to_sequence_long(glove, n_tok):
    toks = [f"{w}/NOUN" for w in (VOCAB[3:] * 3)[:n_tok]]
    we, po, n = glove.tokens_to_sequence(toks)
    assert we.shape == (22, 300)
    seq, _ = build_token_sequence(toks)
    if n_tok < 20:
        assert n == n_tok + 2 and seq[n - 1] == "eos/OTHER"
    else:
        assert n == 22 and seq == ["sos/OTHER"] + toks[:20] + ["eos/OTHER"]
        np.testing.assert_array_equal(we[21], glove.vectors[1])


def test_process_words():
    assert process_words(["a/DET", "person/NOUN", "walk/VERB"]) == "a person walk"
    assert process_words("the/DET man/NOUN") == "the man"


def test_vocab_errors(tmp_path):
    g = write_glove(tmp_path / "g1")
    os.remove(g / "our_vab_idx.pkl")
    with pytest.raises(FileNotFoundError, match=r"our_vab_idx\.pkl"):
        WordVectorizer(g)
    g = write_glove(tmp_path / "g2")
    np.save(g / "our_vab_data.npy", np.zeros((5, 300), np.float32))
    with pytest.raises(ValueError, match=r"our_vab_data\.npy has 5 rows.*our_vab_words\.pkl"):
        WordVectorizer(g)
    g = write_glove(tmp_path / "g3", words=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"our_vab_idx\.pkl.*sos"):
        WordVectorizer(g)


def test_real_vocab_pickles(reference_dir, tmp_path):
    g = tmp_path / "real"
    g.mkdir()
    for f in ("our_vab_words.pkl", "our_vab_idx.pkl"):
        shutil.copy(reference_dir / "glove_vocab" / f, g / f)
    np.save(g / "our_vab_data.npy", np.random.default_rng(0).normal(size=(4199, 300)).astype(np.float32))
    wv = WordVectorizer(g)
    assert len(wv) == 4199 and wv.word2idx["unk"] == 2
    assert wv["walk/VERB"][1].argmax() == POS_enumerator["Act_VIP"]
    assert wv["left/ADV"][1].argmax() == POS_enumerator["Loc_VIP"]
    # 'feet' is a Body VIP word but is not in the released vocabulary -> unk + OTHER
    assert "feet" not in wv and wv["feet/NOUN"][1].argmax() == POS_enumerator["OTHER"]


# ----------------------------------------------------------------------------- t2m eval dataset
@pytest.fixture()
def eval_ds(t2m_root, glove):
    return Text2MotionEvalDataset(t2m_root, glove, MEAN, STD, split="test", seed=0, progress=False)


def test_crop_length():
    assert crop_length(199, False) == 196 and crop_length(199, True) == 192
    assert crop_length(40, True) == 36 and crop_length(43, False) == 40
    assert crop_length(24, True) == 20  # KIT minimum


def test_eval_item_and_crop_protocol(eval_ds):
    wp, po, cap, sent_len, motion, m_len, tok_str = eval_ds[0]
    assert wp.shape == (22, 300) and po.shape == (22, 15) and motion.shape == (196, 263)
    assert tok_str.startswith("sos/OTHER_") and isinstance(cap, str)
    idx_long = eval_ds.reader.names.index("000005")  # T = 199
    raw = eval_ds.items[idx_long]["motion"]
    counts = {196: 0, 192: 0}
    for _ in range(600):
        *_, motion, m_len, _ = eval_ds[idx_long]
        counts[m_len] += 1
        assert not motion[m_len:].any()
        # the crop is a normalised window of the raw clip at some start
        orig = motion[:m_len] * STD + MEAN
        starts = [s for s in range(0, 199 - m_len + 1) if np.allclose(raw[s:s + m_len], orig, atol=1e-5)]
        assert len(starts) == 1
    assert 0.26 < counts[192] / 600 < 0.40
    for i in range(len(eval_ds)):
        T = eval_ds.items[i]["length"]
        for _ in range(20):
            m_len = eval_ds[i][5]
            assert m_len % 4 == 0 and 36 <= m_len <= 196 and m_len in (T // 4 * 4, (T // 4 - 1) * 4)


def test_eval_reproducible(eval_ds, t2m_root, glove):
    other = Text2MotionEvalDataset(t2m_root, glove, MEAN, STD, split="test", seed=0, progress=False)
    a = [eval_ds[i % len(eval_ds)] for i in range(20)]
    b = [other[i % len(other)] for i in range(20)]
    for x, y in zip(a, b):
        assert x[2] == y[2] and x[5] == y[5] and np.array_equal(x[4], y[4])
    eval_ds.reset_rng(0)
    c = [eval_ds[i % len(eval_ds)] for i in range(20)]
    assert [x[5] for x in a] == [x[5] for x in c]


def test_collate_sorts_by_sent_len(eval_ds):
    batch = [eval_ds[i] for i in range(len(eval_ds))]
    wp, po, caps, sent_len, motion, m_len, toks = collate_fn(batch)
    assert list(sent_len) == sorted(sent_len.tolist(), reverse=True)
    assert wp.shape == (len(batch), 22, 300) and motion.shape == (len(batch), 196, 263)
    for c, n, t in zip(caps, sent_len.tolist(), toks):  # pairs stay aligned
        assert t.split("_").index("eos/OTHER") == n - 1


def test_eval_loader(eval_ds):
    loader = get_t2m_eval_loader(eval_ds, batch_size=4, seed=1)
    batches = list(loader)
    assert len(batches) == len(eval_ds) // 4  # drop_last
    assert all(b[4].shape == (4, 196, 263) for b in batches)
    again = list(get_t2m_eval_loader(eval_ds, batch_size=4, seed=1))
    assert all(torch.equal(x[4], y[4]) and x[2] == y[2] for x, y in zip(batches, again))


# ----------------------------------------------------------------------------- VQ dataset
def test_vq_windows(t2m_root):
    ds = VQMotionDataset(t2m_root, window_size=64, mean=MEAN, std=STD, seed=0, progress=False)
    assert sorted(ds.names) == ["000002", "000004", "000005", "000006"]  # no text, no upper bound
    for i in range(len(ds)):
        w = ds[i]
        assert w.shape == (64, 263) and w.dtype == np.float32
        raw = np.load(t2m_root / "new_joint_vecs" / f"{ds.names[i]}.npy")
        orig = ds.inv_transform(w)
        assert any(np.allclose(raw[s:s + 64], orig, atol=1e-5) for s in range(raw.shape[0] - 63))


def test_vq_from_reader_and_errors(t2m_root):
    r = reader(t2m_root)
    ds = VQMotionDataset(r, window_size=64, mean=MEAN, std=STD)
    assert ds.names == ["000002", "000005"]  # the 60-frame clips and segments are too short
    with pytest.raises(ValueError, match="multiple"):
        VQMotionDataset(r, window_size=62, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="mean and std"):
        VQMotionDataset(r, window_size=64)


def test_vq_loader_deterministic_and_infinite(t2m_root):
    kw = dict(batch_size=2, window_size=64, mean=MEAN, std=STD, progress=False)
    l1 = get_vq_loader(t2m_root, seed=5, **kw)
    l2 = get_vq_loader(t2m_root, seed=5, **kw)
    b1, b2 = list(l1), list(l2)
    assert len(b1) == 2 and b1[0].shape == (2, 64, 263)
    assert all(torch.equal(x, y) for x, y in zip(b1, b2))
    w1 = list(get_vq_loader(t2m_root, seed=7, num_workers=2, **kw))
    w2 = list(get_vq_loader(t2m_root, seed=7, num_workers=2, **kw))
    assert all(torch.equal(x, y) for x, y in zip(w1, w2))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(next(iter(get_vq_loader(t2m_root, seed=g1, **kw))),
                       next(iter(get_vq_loader(t2m_root, seed=g2, **kw))))
    it = get_vq_loader(t2m_root, seed=5, infinite=True, **kw)
    got = [next(it) for _ in range(7)]
    assert len(got) == 7
    assert next(cycle([1, 2])) == 1


# ----------------------------------------------------------------------------- m2t dataset
def test_m2t_references_exactly_three(t2m_root):
    ds = Motion2TextEvalDataset(t2m_root, MEAN, STD, split="test", progress=False)
    seen = set()
    for i in range(len(ds)):
        s = ds[i]
        n_caps = len(ds.items[i]["captions"])
        seen.add(n_caps)
        assert len(s["references"]) == 3 and len(s["raw_references"]) == 3
        assert len(s["captions"]) == n_caps
        assert s["m_len"] == min(ds.items[i]["length"], 196)
        assert s["motion"].shape == (196, 263) and not s["motion"][s["m_len"]:].any()
        np.testing.assert_allclose(s["motion"][:s["m_len"]] * STD + MEAN,
                                   ds.items[i]["motion"][:s["m_len"]], atol=1e-5)
    assert {1, 2, 4} <= seen
    s = ds[ds.reader.names.index("000001")]
    assert s["references"] == ["a person walk forward slowly", "the man jump up", "a person walk forward slowly"]
    s = ds[ds.reader.names.index("000005")]
    assert s["m_len"] == 196 and len(s["captions"]) == 4 and s["references"][2] == "a man wave his left hand"


def test_m2t_loader(t2m_root):
    ds = Motion2TextEvalDataset(t2m_root, MEAN, STD, split="test", progress=False)
    batches = list(get_m2t_eval_loader(ds, batch_size=4))
    assert sum(len(b["name"]) for b in batches) == len(ds)  # no drop_last by default
    b = batches[0]
    assert b["motion"].shape == (4, 196, 263) and b["m_len"].dtype == torch.long
    assert all(len(r) == 3 for r in b["references"])
    assert [x for bb in batches for x in bb["name"]] == ds.reader.names  # stable order


def test_poisoned_word_vector_pickle_never_runs(tmp_path):
    """A pickle that would run code on load (os.system via __reduce__) is refused with the file name, and its
    payload never runs (its marker file is never created)."""
    import pickle

    from utils.word_vectorizer import WordVectorizer
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))
    glove = tmp_path / "glove"
    glove.mkdir()
    np.save(glove / "our_vab_data.npy", np.zeros((1, 300), dtype=np.float32))
    (glove / "our_vab_words.pkl").write_bytes(pickle.dumps(["a"]))
    (glove / "our_vab_idx.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="our_vab_idx.pkl.*refusing"):
        WordVectorizer(glove)
    assert not marker.exists()
