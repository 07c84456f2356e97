"""Motion-to-text evaluation data (docs/evaluation.md §3.1 TM2T protocol, with the MotionGPT raw-caption option).

Per item:

* ``motion``: the full clip (not cropped to a multiple of 4), ``m_len = min(T, 196)`` (frames
  196..199 are cut), normalised with the given mean/std, zero-padded to 196 frames;
* ``references``: every caption of the item as its processed-word string (the ``word`` parts of
  the ``word/POS`` tokens, docs/evaluation.md §3.1), forced to exactly 3 (:func:`utils.m2t_metrics.force_n_references`);
* ``captions``: every raw caption (variable count) and ``raw_references``: the raw captions forced
  to 3 (the MotionGPT convention, docs/evaluation.md §3.2).

The loader default is ``shuffle=False, drop_last=False``: generation should see every item once,
in a stable order. (The caption R-precision pass is :func:`utils.eval_m2t.m2t_matching`.)
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from utils.m2t_metrics import force_n_references
from utils.word_vectorizer import process_words

from .humanml3d import HumanML3DReader, captioned_reader, check_mean_std
from .loader_utils import make_generator, seed_worker

class Motion2TextEvalDataset(Dataset):
    """See the module docstring. ``source`` is a dataset folder or a :class:`HumanML3DReader`."""

    def __init__(self, source: Union[str, HumanML3DReader], mean, std, split: str = "test",
                 dataname: str = "t2m", max_motion_length: int = 196, **reader_kwargs):
        reader = captioned_reader(source, split, dataname, **reader_kwargs)
        self.reader = reader
        self.items = reader.items
        self.mean, self.std = check_mean_std(mean, std, reader.dim)
        self.max_motion_length = max_motion_length

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
            references=force_n_references([process_words(c["tokens"]) for c in item["captions"]]),
            raw_references=force_n_references(captions),
            captions=captions,
        )
        return sample


_TENSOR_KEYS = ("motion",)
_INT_KEYS = ("m_len",)


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
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, collate_fn=m2t_collate_fn, worker_init_fn=seed_worker,
                      generator=make_generator(seed))
