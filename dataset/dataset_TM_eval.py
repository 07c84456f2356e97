"""Ground-truth text-to-motion evaluation data (docs/data-format.md §6.3, docs/evaluation.md §2.1).

Per ``__getitem__``: a random caption of the item; its tokens -> ``(word_embs, pos_ohot,
sent_len)`` (docs/evaluation.md §1.2); a random crop of the motion of length ``m_len`` (``floor(T/4)*4`` with
probability 2/3, ``(floor(T/4)-1)*4`` with probability 1/3) from a uniformly random start,
normalised with the **evaluator meta** mean/std (docs/data-format.md §7.3, passed in by the caller) and
zero-padded to 196 frames.

Returns, in the original order::

    (word_embs (22, 300), pos_ohot (22, 15), caption, sent_len, motion (196, D), m_len, tokens_str)

where ``tokens_str`` is the padded token sequence (sos ... eos unk ...) joined by ``'_'``.
Randomness comes from a numpy Generator owned by the dataset; ``reset_rng(seed)`` reseeds it
(one seed per replication, docs/evaluation.md §2.6).
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data._utils.collate import default_collate

from utils.word_vectorizer import WordVectorizer, build_token_sequence

from .humanml3d import HumanML3DReader, captioned_reader, check_mean_std
from .loader_utils import make_generator, new_rng, seed_worker


def crop_length(T: int, double: bool, unit_length: int = 4, max_motion_length: int = 196) -> int:
    """Evaluation crop length: ``floor(T/u)*u``, one unit shorter for the 'double' coin.

    Capped at ``max_motion_length`` (a no-op under the standard < 200 filter).
    """
    units = T // unit_length - (1 if double else 0)
    if units <= 0:  # too short for the double crop: fall back to the single one
        units = T // unit_length
    if units <= 0:
        raise ValueError(f"clip of {T} frames is shorter than unit_length {unit_length}")
    return min(units * unit_length, max_motion_length - max_motion_length % unit_length)


class Text2MotionEvalDataset(Dataset):
    """See the module docstring. ``source`` is a dataset folder or a :class:`HumanML3DReader`."""

    def __init__(self, source: Union[str, HumanML3DReader], w_vectorizer: WordVectorizer, mean, std,
                 split: str = "test", dataname: str = "t2m", max_motion_length: int = 196,
                 max_text_len: int = 20, unit_length: int = 4, seed=None, **reader_kwargs):
        reader = captioned_reader(source, split, dataname, **reader_kwargs)
        self.reader = reader
        self.items = reader.items
        self.w_vectorizer = w_vectorizer
        self.mean, self.std = check_mean_std(mean, std, reader.dim)
        self.max_motion_length = max_motion_length
        self.max_text_len = max_text_len
        self.unit_length = unit_length
        self.rng = new_rng(seed)

    def reset_rng(self, seed) -> None:
        self.rng = new_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int):
        item = self.items[idx]
        captions = item["captions"]
        cap = captions[int(self.rng.integers(len(captions)))]
        seq, sent_len = build_token_sequence(cap["tokens"], self.max_text_len)
        word_embs, pos_ohot = self.w_vectorizer.encode(seq)

        motion = item["motion"]
        T = motion.shape[0]
        double = int(self.rng.integers(3)) == 2  # coin in {single, single, double}
        m_len = crop_length(T, double, self.unit_length, self.max_motion_length)
        start = int(self.rng.integers(0, T - m_len + 1))
        out = np.zeros((self.max_motion_length, motion.shape[1]), dtype=np.float32)
        out[:m_len] = (motion[start:start + m_len] - self.mean) / self.std
        return word_embs, pos_ohot, cap["caption"], sent_len, out, m_len, "_".join(seq)


def collate_fn(batch):
    """Sort the batch by ``sent_len`` (index 3) descending, as packed text encoding needs."""
    batch = sorted(batch, key=lambda x: x[3], reverse=True)
    return default_collate(batch)


class ShardSampler(Sampler):
    """Rank ``rank`` of ``world``: its equal share of one (seeded) permutation shared by all ranks, so
    the ranks see disjoint items and the same number of batches."""

    def __init__(self, n: int, rank: int, world: int, shuffle: bool = True, seed=None):
        self.n, self.rank, self.world, self.shuffle, self.seed = n, rank, world, shuffle, seed

    def __len__(self):
        return self.n // self.world

    def __iter__(self):
        g = make_generator(self.seed if self.seed is not None else 0)
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        per = len(self)
        return iter(order[self.rank * per:(self.rank + 1) * per])


def get_t2m_eval_loader(dataset: Text2MotionEvalDataset, batch_size: int = 32, shuffle: bool = True,
                        drop_last: bool = True, num_workers: int = 0, seed=None, shard: tuple | None = None,
                        pin_memory: bool = False):
    """Evaluation DataLoader (docs/evaluation.md §2.1: batch 32, shuffled, drop_last, sorted by sent_len).

    With ``seed``, the dataset's Generator is reseeded and the shuffle order is seeded too, so
    ``get_t2m_eval_loader(ds, seed=base + rep)`` gives reproducible replications. ``shard=(rank,
    world)`` (multi-process training): this rank's part of the shuffled items; the random caption and
    crop choices then use a per-rank stream.
    """
    if shard is not None and shard[1] > 1:
        rank, world = shard
        dataset.reset_rng([seed if seed is not None else 0, rank])
        return DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(len(dataset), rank, world, shuffle, seed),
                          drop_last=drop_last, num_workers=num_workers, collate_fn=collate_fn,
                          worker_init_fn=seed_worker, pin_memory=pin_memory)
    if seed is not None:
        dataset.reset_rng(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, collate_fn=collate_fn, worker_init_fn=seed_worker,
                      generator=make_generator(seed), pin_memory=pin_memory)
