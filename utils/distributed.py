"""Multi-process data parallelism through Hugging Face ``accelerate`` (one code path for 1..N processes).

Launch as usual; a plain ``python script.py`` is a single process and nothing changes:

    accelerate launch --num_processes 8 train_mllm.py ...        # GPUs (DDP; train_mllm.py --fsdp shards)
    torchrun --nproc_per_node 2 train_mllm.py ...                  # anywhere; on CPU the backend is gloo

(``accelerate launch --cpu --num_processes 2`` starts a single process; use torchrun for multi-process
CPU runs.) When the launcher has set ``WORLD_SIZE > 1``, :func:`init_distributed` creates an
``accelerate.Accelerator`` (``cpu=True`` without CUDA, so torchrun + gloo works) and returns a
:class:`Dist`; otherwise a single-process :class:`Dist` that never touches ``torch.distributed``.

Conventions of the training scripts: ``--batch-size`` is per process (global batch = batch × world
size); every rank starts from the same seed (identical initial weights, which DDP also broadcasts),
then sampling RNGs are offset by the rank; data are sharded so that every rank runs the same number
of steps; metrics are averaged over ranks; only rank 0 writes checkpoints, logs and reports.
"""
from __future__ import annotations

import contextlib
import hashlib
import os

import numpy as np
import torch


def launched_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


class Dist:
    """Rank/world info and the few collectives the loops need (no-ops on one process)."""

    def __init__(self, accelerator=None):
        self.accelerator = accelerator
        if accelerator is not None:
            self.rank, self.world_size = accelerator.process_index, accelerator.num_processes
            self.local_rank, self.device = accelerator.local_process_index, accelerator.device
        else:
            self.rank, self.world_size, self.local_rank, self.device = 0, 1, 0, None
        self.fsdp = False

    # ------------------------------------------------------------------ info
    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        if self.enabled and torch.distributed.is_initialized():
            return torch.distributed.get_backend()
        return None

    def describe(self) -> dict:
        return {"world_size": self.world_size, "rank": self.rank, "backend": self.backend,
                "distributed_type": str(getattr(self.accelerator, "distributed_type", "NO")),
                "sharding": "fsdp2" if self.fsdp else ("ddp" if self.enabled else "none")}

    # ------------------------------------------------------------------ data
    def shard(self, items, drop_uneven: bool = True) -> list:
        """This rank's share of ``items`` (round-robin); with ``drop_uneven`` every rank gets the same
        count (the last ``len % world`` items are dropped) so that collectives stay in step."""
        items = list(items)
        if not self.enabled:
            return items
        n = (len(items) // self.world_size) * self.world_size if drop_uneven else len(items)
        return items[self.rank:n:self.world_size]

    # ------------------------------------------------------------------ collectives
    def barrier(self):
        if self.enabled:
            self.accelerator.wait_for_everyone()

    def _tensor_device(self):
        return self.device if self.device is not None and self.device.type == "cuda" else torch.device("cpu")

    def mean_dict(self, d: dict) -> dict:
        """Average the numeric (non-bool) entries of a metrics dict over the ranks that have them (ranks
        may report different keys, e.g. a violation counter seen on one rank only); other entries are
        rank 0's. Every rank must call it at the same point."""
        if not self.enabled:
            return d
        num = {k: float(v) for k, v in d.items()
               if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)}
        out = dict(d)
        sums: dict = {}
        for part in self.gather_object(num):
            for k, v in part.items():
                s, n = sums.get(k, (0.0, 0))
                sums[k] = (s + v, n + 1)
        out.update({k: s / n for k, (s, n) in sums.items()})
        return out

    def sum_scalars(self, *values: float) -> list:
        if not self.enabled:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._tensor_device())
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t.tolist()

    def gather_object(self, obj) -> list:
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    # ------------------------------------------------------------------ models
    def wrap(self, module: torch.nn.Module):
        """DDP-wrap ``module`` (through accelerate) for the training forward; returns it unchanged on
        one process. Buffers are not re-broadcast at every forward (the loops keep them in sync)."""
        if not self.enabled:
            return module
        return self.accelerator.prepare_model(module)

    def shard_model(self, mllm, bf16: bool = False):
        """FSDP2: ``fully_shard`` every decoder layer, then the causal LM that ``generate`` calls (so its
        forward hook gathers the embeddings and head too). LoRA and new-token parameters are sharded
        with their layers; the optimizer must be created afterwards."""
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mesh = init_device_mesh(self.device.type, (self.world_size,))
        kw = {"mesh": mesh}
        if bf16 and self.device.type == "cuda":
            kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        base = mllm.model.get_base_model()
        layers = [m for m in base.modules() if type(m).__name__.endswith("DecoderLayer")]
        if not layers:
            raise RuntimeError(f"--fsdp: no *DecoderLayer modules found in {type(base).__name__}")
        for layer in layers:
            fully_shard(layer, **kw)
        fully_shard(base, **kw)
        self.fsdp = True

    def no_sync(self, wrapped, skip: bool):
        """Skip the gradient all-reduce of this backward (gradient accumulation) when ``skip``."""
        if self.enabled and skip and hasattr(wrapped, "no_sync"):
            return wrapped.no_sync()
        return contextlib.nullcontext()

    def weights_checksums(self, params) -> list:
        """sha1 of this rank's parameters, gathered from every rank (all equal when in sync)."""
        h = hashlib.sha1()
        for p in params:
            p = p.full_tensor() if hasattr(p, "full_tensor") else p  # FSDP shards: gathered
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
        return self.gather_object(h.hexdigest())


_DIST: Dist | None = None


def init_distributed(mixed_precision: str = "no", find_unused_parameters: bool = False) -> Dist:
    """The process-wide :class:`Dist` (created once). Multi-process only when a launcher set
    ``WORLD_SIZE > 1``; ``accelerate`` then owns the process group (NCCL on GPUs, gloo on CPU)."""
    global _DIST
    if _DIST is not None:
        return _DIST
    if launched_world_size() <= 1:
        _DIST = Dist()
        return _DIST
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    ddp = DistributedDataParallelKwargs(broadcast_buffers=False, find_unused_parameters=find_unused_parameters)
    acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision, kwargs_handlers=[ddp])
    kind = str(acc.distributed_type).split(".")[-1]
    if kind in ("DEEPSPEED", "FSDP", "MEGATRON_LM"):
        raise RuntimeError(f"the accelerate config selects {kind}; MoRL's loops do their own data parallelism: "
                           "use a plain multi-GPU config (DDP), and add --fsdp to train_mllm.py to shard a large "
                           "backbone with FSDP2")
    _DIST = Dist(acc)
    return _DIST


def setup_process(args):
    """The start of every training script: processes, seed (the same on every rank: identical initial
    weights), device (accelerate's in a multi-process run, else ``--device``) and TF32. Returns
    (dist, device)."""
    from utils.device import configure_backends, resolve_device, seed_everything
    from utils.threads import apply_threads
    apply_threads(args.threads)
    dist = init_distributed()
    seed_everything(args.seed)
    device = dist.device if dist.enabled else resolve_device(args.device)
    configure_backends(device, tf32=getattr(args, "tf32", True))
    return dist, device


def get_dist() -> Dist:
    return _DIST if _DIST is not None else Dist()
