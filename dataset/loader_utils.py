"""Small DataLoader helpers shared by the dataset modules: seeding and infinite cycling.

Datasets here own a ``numpy.random.Generator`` (attribute ``rng``, method ``reset_rng(seed)``).
DataLoader workers receive copies of the dataset, so each worker reseeds its copy from the
per-worker torch seed; that seed derives from the loader's ``generator``, so a seeded loader is
reproducible with any ``num_workers``.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np
import torch


def make_generator(seed) -> Optional[torch.Generator]:
    """A seeded CPU ``torch.Generator`` (a given one is used as is), or ``None`` when unseeded."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2 ** 62))
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: reseed the worker's dataset copy from its torch seed."""
    info = torch.utils.data.get_worker_info()
    if info is None:  # pragma: no cover - only called inside workers
        return
    dataset = info.dataset
    if hasattr(dataset, "reset_rng"):
        dataset.reset_rng(info.seed % (2 ** 63))


def new_rng(seed) -> np.random.Generator:
    """``numpy`` Generator from an int seed, a numpy Generator (used as is), a torch Generator
    (one draw from it seeds the numpy one) or ``None`` (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, torch.Generator):
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=seed))
    return np.random.default_rng(seed)


def cycle(loader: Iterable) -> Iterator:
    """Iterate a loader forever, starting a new epoch (new shuffle) each time it is exhausted.

    Unlike ``itertools.cycle`` it caches nothing.
    """
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("cannot cycle an empty loader (dataset smaller than one batch with drop_last?)")
