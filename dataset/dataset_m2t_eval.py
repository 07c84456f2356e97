"""Motion-to-text evaluation data (§4.1 TM2T protocol, with the MotionGPT raw-caption option).

Per item:

* ``motion``: the full clip (not cropped to a multiple of 4), ``m_len = min(T, 196)`` (frames
  196..199 are cut), normalised with the given mean/std, zero-padded to 196 frames;
* ``references``: every caption of the item as its processed-word string (the ``word`` parts of
  the ``word/POS`` tokens, §4.1), forced to exactly 3 (see :func:`force_three`);
* ``captions``: every raw caption (variable count) and ``raw_references``: the raw captions forced
  to 3 (the MotionGPT convention, §4.2/§4.3);
* with a ``w_vectorizer``: one randomly drawn real caption encoded for the evaluator
  (``word_embs``, ``pos_ohot``, ``sent_len``, ``caption``) for the ground-truth R-precision row.

The loader default is ``shuffle=False, drop_last=False``: generation should see every item once,
in a stable order. For the m2t R-precision pass (§4.1: batch 32, shuffled, drop_last) pass
``shuffle=True, drop_last=True``. The collate keeps the batch order (no sorting by sent_len), so a
text encoder with packed sequences must sort itself.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from utils.word_vectorizer import WordVectorizer, process_words

from .humanml3d import HumanML3DReader, check_mean_std
from .loader_utils import make_generator, new_rng, seed_worker

N_REFERENCES = 3


def force_three(refs: Sequence[str], n: int = N_REFERENCES) -> list[str]:
    """Exactly ``n`` references: keep the first ``n``; if fewer, append the first until ``n``.

    With ``n = 3``: more than 3 -> first 3; 2 -> append the first; 1 -> triplicate.
    """
    refs = list(refs)
    if not refs:
        raise ValueError("an item needs at least one reference")
    while len(refs) < n:
        refs.append(refs[0])
    return refs[:n]


class Motion2TextEvalDataset(Dataset):
    """See the module docstring. ``source`` is a dataset folder or a :class:`HumanML3DReader`."""

    def __init__(self, source: Union[str, HumanML3DReader], mean, std, split: str = "test",
                 dataname: str = "t2m", w_vectorizer: Optional[WordVectorizer] = None,
                 max_motion_length: int = 196, max_text_len: int = 20, seed=None, **reader_kwargs):
        reader = source if isinstance(source, HumanML3DReader) else HumanML3DReader(
            source, split=split, dataname=dataname, **reader_kwargs)
        if not all(it["captions"] for it in reader.items):
            raise ValueError("the reader must be built with with_text=True")
        self.reader = reader
        self.items = reader.items
        self.mean, self.std = check_mean_std(mean, std, reader.dim)
        self.w_vectorizer = w_vectorizer
        self.max_motion_length = max_motion_length
        self.max_text_len = max_text_len
        self.rng = new_rng(seed)

    def reset_rng(self, seed) -> None:
        self.rng = new_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict:
        item = self.items[idx]
        motion = item["motion"]
        m_len = min(motion.shape[0], self.max_motion_length)
        out = np.zeros((self.max_motion_length, motion.shape[1]), dtype=np.float32)
        out[:m_len] = (motion[:m_len] - self.mean) / self.std
        captions = [c["caption"] for c in item["captions"]]
        sample = dict(
            name=item["name"],
            motion=out,
            m_len=m_len,
            references=force_three([process_words(c["tokens"]) for c in item["captions"]]),
            raw_references=force_three(captions),
            captions=captions,
        )
        if self.w_vectorizer is not None:
            cap = item["captions"][int(self.rng.integers(len(item["captions"])))]
            word_embs, pos_ohot, sent_len = self.w_vectorizer.tokens_to_sequence(cap["tokens"], self.max_text_len)
            sample.update(caption=cap["caption"], word_embs=word_embs, pos_ohot=pos_ohot, sent_len=sent_len)
        return sample


_TENSOR_KEYS = ("motion", "word_embs", "pos_ohot")
_INT_KEYS = ("m_len", "sent_len")


def m2t_collate_fn(batch: list[dict]) -> dict:
    """Stack arrays into tensors, ints into a LongTensor; strings and lists stay Python lists.

    ``references``/``raw_references`` become ``[B][3]`` lists; ``captions`` ``[B][n_i]``.
    """
    out = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if key in _TENSOR_KEYS:
            out[key] = torch.from_numpy(np.stack(values))
        elif key in _INT_KEYS:
            out[key] = torch.as_tensor(values, dtype=torch.long)
        else:
            out[key] = values
    return out


def get_m2t_eval_loader(dataset: Motion2TextEvalDataset, batch_size: int = 32, shuffle: bool = False,
                        drop_last: bool = False, num_workers: int = 0, seed=None):
    """m2t DataLoader; defaults for generation (every item once). See the module docstring."""
    if seed is not None:
        dataset.reset_rng(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, collate_fn=m2t_collate_fn, worker_init_fn=seed_worker,
                      generator=make_generator(seed))
