"""Word vectors and POS one-hots for the T2M evaluator's text encoder.

Implements docs/evaluation.md §1.2 (POS classes, VIP overrides, out-of-vocabulary
handling, sequence building) on top of the GloVe subset of docs/evaluation.md §1.1
(``<glove_dir>/<prefix>_data.npy``, ``<prefix>_words.pkl``, ``<prefix>_idx.pkl``).

Tokens are the pre-processed ``word/POS`` strings stored in HumanML3D/KIT-ML ``texts/*.txt``.
"""
from __future__ import annotations

import os
import pickle
from typing import Sequence, Union

import numpy as np

# ----------------------------------------------------------------------------- POS classes
POS_enumerator = {
    "VERB": 0,
    "NOUN": 1,
    "DET": 2,
    "ADP": 3,
    "NUM": 4,
    "AUX": 5,
    "PRON": 6,
    "ADJ": 7,
    "ADV": 8,
    "Loc_VIP": 9,
    "Body_VIP": 10,
    "Obj_VIP": 11,
    "Act_VIP": 12,
    "Desc_VIP": 13,
    "OTHER": 14,
}
NUM_POS = len(POS_enumerator)  # 15

# ----------------------------------------------------------------------------- VIP word lists
Loc_list = ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back",
            "backward", "up", "down", "straight", "curve")
Body_list = ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee",
             "shoulder", "thigh")
Obj_list = ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball",
            "basketball")
Act_list = ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance",
            "jump", "turn", "stumble", "stop", "sit", "lift", "lower", "raise", "wash", "stand",
            "kneel", "stroll", "rub", "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate",
            "spin", "spread", "climb")
Desc_list = ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad",
             "happily", "angrily", "sadly")

# Checked in this order; the first list containing the word wins.
VIP_dict = {
    "Loc_VIP": Loc_list,
    "Body_VIP": Body_list,
    "Obj_VIP": Obj_list,
    "Act_VIP": Act_list,
    "Desc_VIP": Desc_list,
}

SOS_TOKEN = "sos/OTHER"
EOS_TOKEN = "eos/OTHER"
UNK_TOKEN = "unk/OTHER"
SPECIAL_WORDS = ("sos", "eos", "unk")

Tokens = Union[str, Sequence[str]]


# ----------------------------------------------------------------------------- token helpers
def split_token(token: str) -> tuple[str, str]:
    """``'word/POS'`` -> ``('word', 'POS')``. A token without ``/`` gets POS ``'OTHER'``.

    The split is on the last ``/`` so a word containing ``/`` keeps it.
    """
    word, sep, pos = token.rpartition("/")
    if not sep:
        return token, "OTHER"
    return word, pos


def as_token_list(tokens: Tokens) -> list[str]:
    """Accept a list of ``word/POS`` strings or one space-separated string; drop empty entries."""
    if isinstance(tokens, str):
        tokens = tokens.split(" ")
    return [t for t in tokens if t]


def process_words(tokens: Tokens) -> str:
    """Processed-word reference string: the words of the ``word/POS`` tokens joined by spaces.

    This is the m2t reference format of docs/evaluation.md §3.1 (lemmatised words, POS dropped).
    """
    return " ".join(split_token(t)[0] for t in as_token_list(tokens))


def build_token_sequence(tokens: Tokens, max_text_len: int = 20) -> tuple[list[str], int]:
    """Sequence building of docs/evaluation.md §1.2, on token strings.

    Fewer than ``max_text_len`` tokens: ``[sos] + tokens + [eos]``, ``sent_len = n + 2``, padded
    with ``unk/OTHER`` to ``max_text_len + 2``. Otherwise the first ``max_text_len`` tokens are
    kept and ``sent_len = max_text_len + 2``. Returns ``(padded_tokens, sent_len)``.
    """
    tokens = as_token_list(tokens)
    if len(tokens) < max_text_len:
        seq = [SOS_TOKEN] + tokens + [EOS_TOKEN]
        sent_len = len(seq)
        seq = seq + [UNK_TOKEN] * (max_text_len + 2 - sent_len)
    else:
        seq = [SOS_TOKEN] + tokens[:max_text_len] + [EOS_TOKEN]
        sent_len = len(seq)
    return seq, sent_len


# ----------------------------------------------------------------------------- vectorizer
class WordVectorizer:
    """``vectorizer['word/POS'] -> (word_vec (300,), pos_onehot (15,))``, float32.

    * Out-of-vocabulary word: the ``unk`` vector and the OTHER one-hot, whatever its POS.
    * In-vocabulary word found in a VIP list (Loc, Body, Obj, Act, Desc, checked in that order):
      that list's class replaces the POS.
    * Any POS tag outside :data:`POS_enumerator` (CCONJ, PROPN, PART, ...) becomes OTHER.

    Lookup is exact (no lower-casing): HumanML3D tokens are already lower case.
    """

    def __init__(self, glove_dir: Union[str, os.PathLike], prefix: str = "our_vab"):
        self.glove_dir = os.fspath(glove_dir)
        data_path = os.path.join(self.glove_dir, f"{prefix}_data.npy")
        words_path = os.path.join(self.glove_dir, f"{prefix}_words.pkl")
        idx_path = os.path.join(self.glove_dir, f"{prefix}_idx.pkl")
        for path in (data_path, words_path, idx_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"word-vector file not found: {path} "
                                        f"(expected {prefix}_data.npy, {prefix}_words.pkl and "
                                        f"{prefix}_idx.pkl in {self.glove_dir})")
        try:
            vectors = np.load(data_path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file name
            raise ValueError(f"cannot read word-vector matrix {data_path}: {exc}") from exc
        words = _load_pickle(words_path)
        word2idx = _load_pickle(idx_path)

        if vectors.ndim != 2:
            raise ValueError(f"{data_path}: expected a 2-D (words, dim) matrix, got shape {vectors.shape}")
        if not isinstance(words, (list, tuple)):
            raise ValueError(f"{words_path}: expected a list of words, got {type(words).__name__}")
        if not isinstance(word2idx, dict):
            raise ValueError(f"{idx_path}: expected a dict word -> row, got {type(word2idx).__name__}")
        n = vectors.shape[0]
        if len(words) != n or len(word2idx) != n:
            raise ValueError(
                f"word-vector files disagree in size: {data_path} has {n} rows, "
                f"{words_path} has {len(words)} words, {idx_path} has {len(word2idx)} entries")
        bad = [w for w, i in word2idx.items() if not isinstance(i, (int, np.integer)) or not 0 <= i < n]
        if bad:
            raise ValueError(f"{idx_path}: row index out of range [0, {n}) for {len(bad)} word(s), "
                             f"e.g. {bad[0]!r}")
        missing = [w for w in SPECIAL_WORDS if w not in word2idx]
        if missing:
            raise ValueError(f"{idx_path}: special word(s) {missing} missing from the vocabulary")

        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.words = list(words)
        self.word2idx = dict(word2idx)
        self.dim_word = self.vectors.shape[1]
        self._unk = self.vectors[self.word2idx["unk"]]
        self._ohot = np.eye(NUM_POS, dtype=np.float32)
        # word -> VIP class, first list wins
        self._vip = {}
        for cls, lst in VIP_dict.items():
            for w in lst:
                self._vip.setdefault(w, cls)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.word2idx

    def pos_onehot(self, pos: str) -> np.ndarray:
        """One-hot (15,) of a POS class name; unknown names give OTHER."""
        return self._ohot[POS_enumerator.get(pos, POS_enumerator["OTHER"])].copy()

    def lookup(self, word: str, pos: str) -> tuple[np.ndarray, np.ndarray]:
        row = self.word2idx.get(word)
        if row is None:
            return self._unk.copy(), self.pos_onehot("OTHER")
        pos = self._vip.get(word, pos)
        return self.vectors[row].copy(), self.pos_onehot(pos)

    def __getitem__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        return self.lookup(*split_token(token))

    def tokens_to_sequence(self, tokens: Tokens, max_text_len: int = 20):
        """Tokens -> ``(word_embs (L+2, 300), pos_ohot (L+2, 15), sent_len)`` per docs/evaluation.md §1.2."""
        seq, sent_len = build_token_sequence(tokens, max_text_len)
        word_embs, pos_ohot = self.encode(seq)
        return word_embs, pos_ohot, sent_len

    def encode(self, tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
        """Stack the vectors of a token list: ``(n, 300)`` word vectors, ``(n, 15)`` one-hots."""
        tokens = as_token_list(tokens)
        word_embs = np.empty((len(tokens), self.dim_word), dtype=np.float32)
        pos_ohot = np.empty((len(tokens), NUM_POS), dtype=np.float32)
        for i, tok in enumerate(tokens):
            word_embs[i], pos_ohot[i] = self[tok]
        return word_embs, pos_ohot


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain containers only: lists, tuples, dicts, str, int, float, bool, None. Any class or
    function reference (how a poisoned pickle runs code) is refused before it is looked up."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: word-vector files hold only lists/dicts "
                                     "of words and indices")


def _load_pickle(path: str):
    try:
        with open(path, "rb") as f:
            return _PlainUnpickler(f).load()
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"cannot read word-vector pickle {path}: {exc}") from exc
