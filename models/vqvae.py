"""T2M-GPT-style motion VQ-VAE (docs/method.md §2.1).

Module names and nesting reproduce the released checkpoints' state-dict keys
(``vqvae.encoder.model.2.1.model.0.conv1.weight`` …, see docs/checkpoint-format.md §1.2),
so ``{'net': state_dict}`` files load with ``strict=True``.

Batched encode/decode of clips of different lengths is padding-aware: activations beyond each
clip's length are zeroed after every layer, so every clip gets exactly the codes (and the
reconstruction) it would get on its own.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .quantizers import build_quantizer


def _act(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; choose relu, silu or gelu")
    return acts[name]()


def _norm(name, width):
    if name in (None, "None", "none", ""):
        return nn.Identity()
    if name == "LN":
        return _ChannelLayerNorm(width)
    if name == "GN":
        return nn.GroupNorm(num_groups=32, num_channels=width, eps=1e-6, affine=True)
    if name == "BN":
        return nn.BatchNorm1d(width, eps=1e-6, affine=True)
    raise ValueError(f"unknown norm {name!r}; choose None, LN, GN or BN")


class _ChannelLayerNorm(nn.LayerNorm):
    def forward(self, x):  # (B, C, T)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask[:, None, :].to(x.dtype)


def _down_mask(mask: torch.Tensor | None, stride: int) -> torch.Tensor | None:
    if mask is None:
        return None
    lengths = mask.sum(1)
    T = mask.shape[1] // stride
    return torch.arange(T, device=mask.device)[None] < (lengths // stride)[:, None]


def _up_mask(mask: torch.Tensor | None, factor: int) -> torch.Tensor | None:
    if mask is None:
        return None
    return mask.repeat_interleave(factor, dim=1)


class ResConv1DBlock(nn.Module):
    """y = x + conv2(act(conv1(act(x)))) with optional norms; conv1 is dilated (k3), conv2 is k1."""

    def __init__(self, width, dilation=1, activation="relu", norm=None):
        super().__init__()
        self.norm1 = _norm(norm, width)
        self.norm2 = _norm(norm, width)
        self.activation1 = _act(activation)
        self.activation2 = _act(activation)
        self.conv1 = nn.Conv1d(width, width, 3, 1, dilation, dilation)
        self.conv2 = nn.Conv1d(width, width, 1, 1, 0)

    def forward(self, x, mask=None):
        h = self.activation1(self.norm1(x))
        h = _masked(self.conv1(_masked(h, mask)), mask)
        h = self.conv2(self.activation2(self.norm2(h)))
        return _masked(x + h, mask)


class Resnet1D(nn.Module):
    def __init__(self, width, depth, dilation_growth_rate=1, reverse_dilation=True, activation="relu", norm=None):
        super().__init__()
        blocks = [ResConv1DBlock(width, dilation_growth_rate ** d, activation, norm) for d in range(depth)]
        if reverse_dilation:
            blocks = blocks[::-1]
        self.model = nn.Sequential(*blocks)

    def forward(self, x, mask=None):
        for block in self.model:
            x = block(x, mask)
        return x


class Encoder(nn.Module):
    def __init__(self, input_emb_width=263, output_emb_width=512, down_t=2, stride_t=2, width=512, depth=3,
                 dilation_growth_rate=3, activation="relu", norm=None):
        super().__init__()
        self.stride_t = stride_t
        filter_t, pad_t = stride_t * 2, stride_t // 2
        blocks = [nn.Conv1d(input_emb_width, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            blocks.append(nn.Sequential(
                nn.Conv1d(width, width, filter_t, stride_t, pad_t),
                Resnet1D(width, depth, dilation_growth_rate, activation=activation, norm=norm)))
        blocks.append(nn.Conv1d(width, output_emb_width, 3, 1, 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x, mask=None):
        mods = list(self.model)
        x = _masked(mods[1](mods[0](_masked(x, mask))), mask)
        for down in mods[2:-1]:
            conv, res = down[0], down[1]
            x = conv(x)
            mask = _down_mask(mask, self.stride_t)
            x = res(_masked(x, mask), mask)
        return _masked(mods[-1](x), mask), mask


class Decoder(nn.Module):
    def __init__(self, input_emb_width=263, output_emb_width=512, down_t=2, stride_t=2, width=512, depth=3,
                 dilation_growth_rate=3, activation="relu", norm=None):
        super().__init__()
        blocks = [nn.Conv1d(output_emb_width, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            blocks.append(nn.Sequential(
                Resnet1D(width, depth, dilation_growth_rate, reverse_dilation=True, activation=activation, norm=norm),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(width, width, 3, 1, 1)))
        blocks += [nn.Conv1d(width, width, 3, 1, 1), nn.ReLU(), nn.Conv1d(width, input_emb_width, 3, 1, 1)]
        self.model = nn.Sequential(*blocks)

    def forward(self, x, mask=None):
        mods = list(self.model)
        x = _masked(mods[1](mods[0](_masked(x, mask))), mask)
        for up in mods[2:-3]:
            res, upsample, conv = up[0], up[1], up[2]
            x = upsample(res(x, mask))
            mask = _up_mask(mask, 2)
            x = _masked(conv(_masked(x, mask)), mask)
        x = _masked(mods[-2](mods[-3](x)), mask)
        return _masked(mods[-1](x), mask)


@dataclass
class VQConfig:
    nb_code: int = 512
    code_dim: int = 512
    output_emb_width: int = 512
    down_t: int = 2
    stride_t: int = 2
    width: int = 512
    depth: int = 3
    dilation_growth_rate: int = 3
    vq_act: str = "relu"
    vq_norm: str | None = None
    quantizer: str = "ema_reset"
    mu: float = 0.99
    beta: float = 1.0
    input_dim: int = 263

    @classmethod
    def from_args(cls, args, input_dim: int = 263) -> "VQConfig":
        fields = {k: getattr(args, k) for k in cls.__dataclass_fields__ if hasattr(args, k)}
        fields["input_dim"] = input_dim
        return cls(**fields)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def unit_length(self) -> int:
        return self.stride_t ** self.down_t


class VQVAE(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        if cfg.code_dim != cfg.output_emb_width:
            raise ValueError(f"code_dim ({cfg.code_dim}) must equal output_emb_width ({cfg.output_emb_width})")
        if cfg.stride_t != 2:
            raise ValueError("stride_t must be 2 (the decoder upsamples by 2 per stage)")
        self.cfg = cfg
        kw = dict(down_t=cfg.down_t, stride_t=cfg.stride_t, width=cfg.width, depth=cfg.depth,
                  dilation_growth_rate=cfg.dilation_growth_rate, activation=cfg.vq_act, norm=cfg.vq_norm)
        self.encoder = Encoder(cfg.input_dim, cfg.output_emb_width, **kw)
        self.decoder = Decoder(cfg.input_dim, cfg.output_emb_width, **kw)
        self.quantizer = build_quantizer(cfg.quantizer, cfg.nb_code, cfg.code_dim, cfg.mu, cfg.beta)


class HumanVQVAE(nn.Module):
    """Wrapper whose ``vqvae`` attribute gives the released key prefix ``vqvae.``."""

    def __init__(self, cfg: VQConfig | None = None, **kwargs):
        super().__init__()
        cfg = cfg or VQConfig(**kwargs)
        self.cfg = cfg
        self.vqvae = VQVAE(cfg)

    # ------------------------------------------------------------------ properties
    @property
    def nb_code(self) -> int:
        return self.cfg.nb_code

    @property
    def unit_length(self) -> int:
        return self.cfg.unit_length

    @property
    def input_dim(self) -> int:
        return self.cfg.input_dim

    def _check_input(self, x):
        if x.dim() != 3:
            raise ValueError(f"motion batch must be (B, T, D), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.cfg.input_dim:
            raise ValueError(f"feature width {x.shape[-1]} does not match the VQ-VAE input width "
                             f"{self.cfg.input_dim} (263 for HumanML3D, 251 for KIT-ML)")

    def _mask(self, x, lengths):
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, device=x.device)
        if (lengths % self.unit_length).any():
            raise ValueError(f"lengths must be multiples of {self.unit_length}, got {lengths.tolist()}")
        if int(lengths.max()) > x.shape[1] or int(lengths.min()) <= 0:
            raise ValueError(f"lengths {lengths.tolist()} out of range for a padded length {x.shape[1]}")
        return torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None]

    # ------------------------------------------------------------------ API
    def forward(self, x: torch.Tensor, lengths=None):
        """Training pass: x (B, T, D) -> (reconstruction (B, T, D), commit loss, perplexity)."""
        self._check_input(x)
        if x.shape[1] % self.unit_length:
            raise ValueError(f"sequence length {x.shape[1]} is not a multiple of {self.unit_length}")
        mask = self._mask(x, lengths)
        z, zmask = self.vqvae.encoder(x.permute(0, 2, 1).float(), mask)
        zq, loss, perplexity = self.vqvae.quantizer(z, zmask)
        out = self.vqvae.decoder(zq, zmask)
        return out.permute(0, 2, 1), loss, perplexity

    @torch.no_grad()
    def encode(self, x: torch.Tensor, lengths=None) -> torch.Tensor:
        """Motion (B, T, D) -> codes (B, T // unit_length); with ``lengths`` (multiples of the unit
        length) the codes past each clip's end are -1."""
        self._check_input(x)
        T = x.shape[1] - x.shape[1] % self.unit_length
        x = x[:, :T]
        mask = self._mask(x, lengths)
        z, zmask = self.vqvae.encoder(x.permute(0, 2, 1).float(), mask)
        B, C, N = z.shape
        codes = self.vqvae.quantizer.quantize(z.permute(0, 2, 1).reshape(-1, C)).view(B, N)
        if zmask is not None:
            codes = codes.masked_fill(~zmask, -1)
        return codes

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, code_lengths=None) -> torch.Tensor:
        """Codes (B, N) -> features (B, N * unit_length, D). Entries past ``code_lengths`` (or
        negative codes) are padding; the output there is zero."""
        if codes.dim() == 1:
            codes = codes[None]
        codes = codes.long()
        nb = self.cfg.nb_code
        mask = None
        if code_lengths is not None:
            code_lengths = torch.as_tensor(code_lengths, device=codes.device)
            mask = torch.arange(codes.shape[1], device=codes.device)[None] < code_lengths[:, None]
        elif (codes < 0).any():
            mask = codes >= 0
        valid = codes if mask is None else codes[mask]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= nb):
            raise ValueError(f"motion codes must be in [0, {nb}); got range [{int(valid.min())}, {int(valid.max())}]")
        safe = codes.clamp(0, nb - 1) if mask is None else codes.masked_fill(~mask, 0)
        zq = self.vqvae.quantizer.dequantize(safe).permute(0, 2, 1)
        out = self.vqvae.decoder(zq, mask)
        return out.permute(0, 2, 1)


# ---------------------------------------------------------------------------- checkpoints
def _strip_prefix(sd: dict) -> dict:
    """Accept keys saved from a DataParallel/DDP-wrapped model ('module.')."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd


def infer_config(state_dict: dict, base: VQConfig | None = None) -> VQConfig:
    """Architecture read off a state dict's shapes (dilation growth and activation cannot be read
    from shapes and come from ``base``)."""
    sd = _strip_prefix(state_dict)
    base = base or VQConfig()
    try:
        nb_code, code_dim = sd["vqvae.quantizer.codebook"].shape
        width, input_dim, _ = sd["vqvae.encoder.model.0.weight"].shape
    except KeyError as exc:
        raise ValueError(f"not a motion VQ-VAE state dict: missing key {exc}") from exc
    down_t = 0
    while f"vqvae.encoder.model.{2 + down_t}.0.weight" in sd:
        down_t += 1
    depth = 0
    while f"vqvae.encoder.model.2.1.model.{depth}.conv1.weight" in sd:
        depth += 1
    out_w = sd[f"vqvae.encoder.model.{2 + down_t}.weight"].shape[0]
    norm = None
    if "vqvae.encoder.model.2.1.model.0.norm1.running_mean" in sd:
        norm = "BN"
    elif "vqvae.encoder.model.2.1.model.0.norm1.weight" in sd:
        norm = base.vq_norm if base.vq_norm in ("LN", "GN") else "LN"
    stride = sd["vqvae.encoder.model.2.0.weight"].shape[-1] // 2 if down_t else base.stride_t
    return VQConfig(nb_code=int(nb_code), code_dim=int(code_dim), output_emb_width=int(out_w), down_t=down_t,
                    stride_t=int(stride), width=int(width), depth=depth, dilation_growth_rate=base.dilation_growth_rate,
                    vq_act=base.vq_act, vq_norm=norm, quantizer=base.quantizer, mu=base.mu, beta=base.beta,
                    input_dim=int(input_dim))


def check_config(found: VQConfig, expected: VQConfig, source: str):
    """Clear error when a checkpoint disagrees with the requested architecture."""
    names = {"nb_code": "--nb-code", "code_dim": "--code-dim", "width": "--width", "depth": "--depth",
             "down_t": "--down-t", "output_emb_width": "--output-emb-width", "input_dim": "feature width"}
    bad = [f"{flag} {getattr(expected, k)} but the checkpoint has {getattr(found, k)}"
           for k, flag in names.items() if getattr(found, k) != getattr(expected, k)]
    if bad:
        raise ValueError(f"VQ-VAE checkpoint {source} does not match the requested configuration: " + "; ".join(bad))


def load_vq(path, device="cpu", expected: VQConfig | None = None) -> HumanVQVAE:
    """Load a VQ-VAE from a released ``{'net': state_dict}`` file or a checkpoint of train_vq.py
    (weights only, ``strict=True``). The architecture comes from the checkpoint's ``config`` or is
    read off the tensor shapes; ``expected`` raises a clear error on any mismatch."""
    from utils.io import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    if not isinstance(ckpt, dict) or "net" not in ckpt:
        raise ValueError(f"{path}: expected a dict with key 'net' (the VQ-VAE state dict)")
    sd = _strip_prefix(ckpt["net"])
    base = VQConfig(**ckpt["config"]) if isinstance(ckpt.get("config"), dict) else (expected or VQConfig())
    cfg = infer_config(sd, base)
    if expected is not None:
        check_config(cfg, expected, str(path))
    model = HumanVQVAE(cfg)
    model.load_state_dict(sd, strict=True)
    model.vqvae.quantizer.mark_initialised()
    if "quantizer_state" in ckpt:
        model.vqvae.quantizer.load_extra_state_dict(ckpt["quantizer_state"])
    return model.to(device).eval()


def vq_meta_dir(vq_ckpt) -> Path:
    return Path(vq_ckpt).resolve().parent / "meta"


def load_vq_with_stats(vq_ckpt, device="cpu", meta_dir=None, expected=None):
    """VQ-VAE plus the normalisation statistics it was trained with (``<run>/meta``)."""
    model = load_vq(vq_ckpt, device, expected)
    meta = Path(meta_dir) if meta_dir else vq_meta_dir(vq_ckpt)
    if not meta.is_dir():
        raise FileNotFoundError(f"normalisation statistics not found: {meta} (pass --meta-dir with mean.npy/std.npy)")
    from dataset.humanml3d import load_mean_std
    mean, std = load_mean_std(meta, dim=model.input_dim)
    return model, mean, std


@torch.no_grad()
def encode_motions(model: HumanVQVAE, motions, mean, std, batch_size=64, device="cpu", progress=False):
    """Raw (T_i, D) motions -> list of code lists (each clip cropped to a multiple of the unit length)."""
    unit = model.unit_length
    lengths = np.array([len(m) - len(m) % unit for m in motions])
    if (lengths < unit).any():
        bad = int(np.argmin(lengths))
        raise ValueError(f"clip {bad} has {len(motions[bad])} frames, fewer than the unit length {unit}")
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device)
    order = np.argsort(-lengths, kind="stable")
    out = [None] * len(motions)
    from tqdm import tqdm
    for s in tqdm(range(0, len(order), batch_size), desc="encode", disable=not progress):
        idx = order[s:s + batch_size]
        Tm = int(lengths[idx].max())
        x = torch.zeros(len(idx), Tm, motions[idx[0]].shape[1], device=device)
        for r, i in enumerate(idx):
            x[r, :lengths[i]] = torch.from_numpy(np.asarray(motions[i][:lengths[i]], dtype=np.float32)).to(device)
        x = (x - mean_t) / std_t
        codes = model.encode(x, torch.as_tensor(lengths[idx], device=device)).cpu()
        for r, i in enumerate(idx):
            out[i] = codes[r, : lengths[i] // unit].tolist()
    return out
