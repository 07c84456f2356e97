"""VQ-VAE training data: random fixed-length windows of normalised motion (docs/method.md §2.3).

Clips with at least ``window_size`` frames; each ``__getitem__`` returns a uniformly random
window of ``window_size`` frames normalised as ``(x - mean) / std``. Built from a folder, the
clip list is the split's ids with no text files and no upper length bound (as the T2M-GPT VQ
loader); built from an existing :class:`HumanML3DReader`, its items (segments included) are used.
Use the model's meta statistics (for T2M-GPT: the VQVAEV3 meta, i.e. the evaluator meta).
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .humanml3d import HumanML3DReader, check_mean_std
from .loader_utils import cycle, make_generator, new_rng, seed_worker


class VQMotionDataset(Dataset):
    def __init__(self, source: Union[str, HumanML3DReader], split: str = "train", window_size: int = 64,
                 unit_length: int = 4, mean=None, std=None, dataname: str = "t2m", seed=None,
                 **reader_kwargs):
        if window_size <= 0 or window_size % unit_length:
            raise ValueError(f"window_size {window_size} must be a positive multiple of unit_length {unit_length}")
        if isinstance(source, HumanML3DReader):
            reader = source
        else:
            reader_kwargs.setdefault("max_len", None)
            reader_kwargs.setdefault("with_text", False)
            reader_kwargs.setdefault("min_len", window_size)
            reader = HumanML3DReader(source, split=split, dataname=dataname, **reader_kwargs)
        self.reader = reader
        self.window_size = window_size
        self.unit_length = unit_length
        self.mean, self.std = check_mean_std(mean, std, reader.dim)
        self.motions = [it["motion"] for it in reader.items if it["length"] >= window_size]
        self.names = [it["name"] for it in reader.items if it["length"] >= window_size]
        if not self.motions:
            raise ValueError(f"no clip of at least {window_size} frames in {reader.root}")
        self.rng = new_rng(seed)

    def reset_rng(self, seed) -> None:
        self.rng = new_rng(seed)

    def __len__(self) -> int:
        return len(self.motions)

    def __getitem__(self, idx: int) -> np.ndarray:
        motion = self.motions[idx]
        start = int(self.rng.integers(0, motion.shape[0] - self.window_size + 1))
        window = motion[start:start + self.window_size]
        return ((window - self.mean) / self.std).astype(np.float32)

    def batch_at(self, seed: int, iteration: int, batch_size: int) -> np.ndarray:
        """The training batch of one iteration, a pure function of (seed, iteration): clips drawn
        with replacement and a uniformly random window in each. Used by iteration-based training
        so that a resumed run sees exactly the batches an uninterrupted run would."""
        rng = np.random.default_rng([int(seed), int(iteration)])
        idx = rng.integers(0, len(self.motions), size=batch_size)
        out = np.empty((batch_size, self.window_size, self.mean.shape[0]), dtype=np.float32)
        for r, i in enumerate(idx):
            motion = self.motions[i]
            start = int(rng.integers(0, motion.shape[0] - self.window_size + 1))
            out[r] = motion[start:start + self.window_size]
        return (out - self.mean) / self.std

    def inv_transform(self, data):
        """Undo the normalisation (numpy array or torch tensor)."""
        if isinstance(data, torch.Tensor):
            return data * torch.as_tensor(self.std, device=data.device) + torch.as_tensor(self.mean, device=data.device)
        return data * self.std + self.mean


def get_vq_loader(source, batch_size: int = 256, split: str = "train", window_size: int = 64,
                  unit_length: int = 4, mean=None, std=None, dataname: str = "t2m",
                  num_workers: int = 0, shuffle: bool = True, drop_last: bool = True,
                  seed=None, infinite: bool = False, **reader_kwargs):
    """DataLoader of ``(B, window_size, D)`` float tensors; ``infinite=True`` wraps it in :func:`cycle`.

    ``source`` is a dataset folder, a :class:`HumanML3DReader` or a :class:`VQMotionDataset`.
    With ``seed`` the windows and the shuffle order are reproducible.
    """
    if isinstance(source, VQMotionDataset):
        dataset = source
        if seed is not None:
            dataset.reset_rng(seed)
    else:
        dataset = VQMotionDataset(source, split=split, window_size=window_size, unit_length=unit_length,
                                  mean=mean, std=std, dataname=dataname, seed=seed, **reader_kwargs)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                        num_workers=num_workers, worker_init_fn=seed_worker,
                        generator=make_generator(seed), pin_memory=False)
    return cycle(loader) if infinite else loader
