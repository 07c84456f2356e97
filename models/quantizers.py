"""Vector quantizers of the T2M-GPT motion VQ-VAE (docs/method.md §2.2).

``ema_reset`` (default): EMA codebook (a buffer, no gradient) with dead-code reset to the first
latents of the current batch; ``ema``: EMA without reset; ``reset``: learned codebook (codebook
loss) with dead-code reset; ``orig``: the plain VQ-VAE codebook loss. All share the lookup
(nearest code by squared L2), the straight-through estimator and the commitment loss
MSE(x, sg(x_q)). Only ``codebook`` is persistent in the state dict (released checkpoints hold
``quantizer.codebook`` only); the EMA statistics are exported separately for resuming.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _dist_world() -> int:
    """World size of an initialised process group (1 otherwise). Under multi-process training the
    codebook statistics are all-reduced and random restarts broadcast from rank 0, so every rank keeps
    the same codebook (what one process would compute on the global batch)."""
    import torch.distributed as td
    return td.get_world_size() if td.is_available() and td.is_initialized() else 1


def _all_reduce_sum(*ts):
    if _dist_world() > 1:
        import torch.distributed as td
        for t in ts:
            td.all_reduce(t)


def _broadcast(t: torch.Tensor) -> torch.Tensor:
    if _dist_world() > 1:
        import torch.distributed as td
        td.broadcast(t, 0)
    return t


class _Quantizer(nn.Module):
    uses_ema = False
    uses_reset = False

    def __init__(self, nb_code: int, code_dim: int, mu: float = 0.99, beta: float = 1.0):
        super().__init__()
        self.nb_code = nb_code
        self.code_dim = code_dim
        self.mu = mu
        self.beta = beta
        self.register_buffer("codebook", torch.zeros(nb_code, code_dim))
        # EMA statistics: not part of the released state dict
        self.register_buffer("code_sum", torch.zeros(nb_code, code_dim), persistent=False)
        self.register_buffer("code_count", torch.zeros(nb_code), persistent=False)
        self.register_buffer("initialised", torch.tensor(False), persistent=False)

    # ------------------------------------------------------------------ state for resuming
    def extra_state_dict(self) -> dict:
        return {"code_sum": self.code_sum.clone(), "code_count": self.code_count.clone(),
                "initialised": self.initialised.clone()}

    def load_extra_state_dict(self, state: dict):
        self.code_sum.copy_(state["code_sum"])
        self.code_count.copy_(state["code_count"])
        self.initialised.copy_(state["initialised"])

    def mark_initialised(self):
        """Call after loading a trained codebook so training does not re-initialise it."""
        self.initialised.fill_(True)
        if self.uses_ema and float(self.code_count.sum()) == 0:
            self.code_sum.copy_(self.codebook)
            self.code_count.fill_(1.0)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _tile(x: torch.Tensor, n: int) -> torch.Tensor:
        """At least ``n`` rows: repeat with small noise when there are fewer latents than codes."""
        rows = x.shape[0]
        if rows >= n:
            return x
        reps = (n + rows - 1) // rows
        std = 0.01 / (x.shape[1] ** 0.5)
        out = x.repeat(reps, 1)
        return out + torch.randn_like(out) * std

    @torch.no_grad()
    def init_codebook(self, x: torch.Tensor):
        out = _broadcast(self._tile(x, self.nb_code)[: self.nb_code].contiguous())
        self.codebook.copy_(out)
        self.code_sum.copy_(self.codebook)
        self.code_count.fill_(1.0)
        self.initialised.fill_(True)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest code index for each row of ``x`` (N, C)."""
        k = self.codebook.t()
        dist = (x * x).sum(-1, keepdim=True) - 2 * x @ k + (k * k).sum(0, keepdim=True)
        return dist.argmin(-1)

    def dequantize(self, code_idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(code_idx, self.codebook)

    def _perplexity(self, code_idx: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(code_idx, minlength=self.nb_code).float()
        prob = counts / counts.sum().clamp_min(1)
        return torch.exp(-(prob * torch.log(prob + 1e-7)).sum())

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, code_idx: torch.Tensor):
        onehot = F.one_hot(code_idx, self.nb_code).type(x.dtype)  # (N, K)
        code_sum = onehot.t() @ x
        code_count = onehot.sum(0)
        _all_reduce_sum(code_sum, code_count)
        self.code_sum.mul_(self.mu).add_(code_sum, alpha=1 - self.mu)
        self.code_count.mul_(self.mu).add_(code_count, alpha=1 - self.mu)
        usage = (self.code_count >= 1.0).unsqueeze(1).type(x.dtype)
        code_update = self.code_sum / self.code_count.clamp_min(1e-12).unsqueeze(1)
        if self.uses_reset:
            code_rand = _broadcast(self._tile(x, self.nb_code)[: self.nb_code].contiguous())
            self.codebook.copy_(usage * code_update + (1 - usage) * code_rand)
        else:
            self.codebook.copy_(usage * code_update + (1 - usage) * self.codebook)

    @torch.no_grad()
    def _reset_dead(self, x: torch.Tensor, code_idx: torch.Tensor):
        code_count = torch.bincount(code_idx, minlength=self.nb_code).type(x.dtype)
        _all_reduce_sum(code_count)
        self.code_count.mul_(self.mu).add_(code_count, alpha=1 - self.mu)
        usage = (self.code_count >= 1.0).unsqueeze(1).type(x.dtype)
        code_rand = _broadcast(self._tile(x, self.nb_code)[: self.nb_code].contiguous())
        self.codebook.copy_(usage * self.codebook + (1 - usage) * code_rand)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """x (B, C, T) latents -> (x_q (B, C, T), commitment loss, perplexity).

        ``mask`` (B, T) bool marks valid positions; padded positions are ignored by the
        statistics and the losses.
        """
        B, C, T = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, C)
        valid = flat if mask is None else flat[mask.reshape(-1)]
        if self.training and not bool(self.initialised):
            self.init_codebook(valid.detach())
        code_idx = self.quantize(flat)
        valid_idx = code_idx if mask is None else code_idx[mask.reshape(-1)]
        x_d = self.dequantize(code_idx)
        if self.training:  # the codebook moves after the lookup, as in T2M-GPT
            self._update(valid.detach(), valid_idx, x_d)
        perplexity = self._perplexity(valid_idx)
        x_d_valid = x_d if mask is None else x_d[mask.reshape(-1)]
        commit = F.mse_loss(valid, x_d_valid.detach())
        loss = commit
        if not self.uses_ema:  # learned codebooks: codebook loss towards the encoder output
            loss = self.beta * commit + F.mse_loss(x_d_valid, valid.detach())
        # straight-through estimator
        x_st = flat + (x_d - flat).detach()
        x_st = x_st.view(B, T, C).permute(0, 2, 1).contiguous()
        return x_st, loss, perplexity

    def _update(self, x, code_idx, x_d):  # pragma: no cover - overridden
        pass


class QuantizeEMAReset(_Quantizer):
    uses_ema = True
    uses_reset = True

    def _update(self, x, code_idx, x_d):
        self._ema_update(x, code_idx)


class QuantizeEMA(_Quantizer):
    uses_ema = True

    def _update(self, x, code_idx, x_d):
        self._ema_update(x, code_idx)


class QuantizeReset(_Quantizer):
    """Learned codebook (a parameter) with dead-code reset."""
    uses_reset = True

    def __init__(self, nb_code, code_dim, mu=0.99, beta=1.0):
        super().__init__(nb_code, code_dim, mu, beta)
        del self.codebook
        self.codebook = nn.Parameter(torch.zeros(nb_code, code_dim))

    def _update(self, x, code_idx, x_d):
        self._reset_dead(x, code_idx)

    def init_codebook(self, x):
        with torch.no_grad():
            self.codebook.data.copy_(_broadcast(self._tile(x, self.nb_code)[: self.nb_code].contiguous()))
            self.code_count.fill_(1.0)
            self.initialised.fill_(True)


class Quantizer(_Quantizer):
    """The original VQ-VAE quantizer: a learned codebook with codebook + commitment loss."""

    def __init__(self, nb_code, code_dim, mu=0.99, beta=1.0):
        super().__init__(nb_code, code_dim, mu, beta)
        del self.codebook
        self.codebook = nn.Parameter(torch.empty(nb_code, code_dim).uniform_(-1.0 / nb_code, 1.0 / nb_code))
        self.initialised.fill_(True)


QUANTIZERS = {"ema_reset": QuantizeEMAReset, "ema": QuantizeEMA, "reset": QuantizeReset, "orig": Quantizer}


def build_quantizer(name: str, nb_code: int, code_dim: int, mu: float = 0.99, beta: float = 1.0) -> _Quantizer:
    if name not in QUANTIZERS:
        raise ValueError(f"unknown quantizer {name!r}; choose one of {sorted(QUANTIZERS)}")
    return QUANTIZERS[name](nb_code, code_dim, mu, beta)
