"""The T2M text–motion evaluator (Guo et al. 2022), docs/evaluation.md §1.3–1.4.

Module and parameter names reproduce the released ``text_mot_match/model/finest.tar`` state
dicts (see docs/checkpoint-format.md §2), so the official checkpoint loads with
``strict=True``. Embeddings are returned in **input order** for any batch order and lengths
(sequences are packed with ``enforce_sorted=False``), which is numerically the same as the
original's sort-then-restore.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence


def init_weight(m):
    if isinstance(m, (nn.Conv1d, nn.Linear, nn.ConvTranspose1d)):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)


class MovementConvEncoder(nn.Module):
    """(B, T, D) -> (B, T/4, out). D = feature width minus the 4 foot-contact dims."""

    def __init__(self, input_size: int, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2, inplace=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2, inplace=True), nn.LeakyReLU(0.2, inplace=True))
        self.out_net = nn.Linear(output_size, output_size)
        self.main.apply(init_weight)
        self.out_net.apply(init_weight)

    def forward(self, x):
        return self.out_net(self.main(x.permute(0, 2, 1)).permute(0, 2, 1))


class MovementConvDecoder(nn.Module):
    """(B, T/4, latent) -> (B, T, D): the decoder half of the movement autoencoder used to
    pre-train :class:`MovementConvEncoder` (not part of the evaluator checkpoint)."""

    def __init__(self, input_size: int = 512, hidden_size: int = 512, output_size: int = 259):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose1d(input_size, hidden_size, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose1d(hidden_size, output_size, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
        self.out_net = nn.Linear(output_size, output_size)
        self.main.apply(init_weight)
        self.out_net.apply(init_weight)

    def forward(self, x):
        return self.out_net(self.main(x.permute(0, 2, 1)).permute(0, 2, 1))


def _bigru_last(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    lengths = torch.as_tensor(lengths).detach().to("cpu", torch.int64)
    if lengths.numel() and (int(lengths.min()) <= 0 or int(lengths.max()) > x.shape[1]):
        raise ValueError(f"sequence lengths must be in [1, {x.shape[1]}], got {lengths.tolist()}")
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    h0 = hidden.repeat(1, x.shape[0], 1)
    _, last = gru(packed, h0)  # (2, B, H), already in input order
    return torch.cat([last[0], last[1]], dim=-1)


class TextEncoderBiGRUCo(nn.Module):
    def __init__(self, word_size: int = 300, pos_size: int = 15, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(nn.Linear(hidden_size * 2, hidden_size), nn.LayerNorm(hidden_size),
                                        nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden_size, output_size))
        self.input_emb.apply(init_weight)
        self.pos_emb.apply(init_weight)
        self.output_net.apply(init_weight)
        self.hidden_size = hidden_size
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size), requires_grad=True))

    def forward(self, word_embs, pos_onehot, cap_lens):
        x = self.input_emb(word_embs + self.pos_emb(pos_onehot))
        return self.output_net(_bigru_last(self.gru, x, cap_lens, self.hidden))


class MotionEncoderBiGRUCo(nn.Module):
    def __init__(self, input_size: int = 512, hidden_size: int = 1024, output_size: int = 512):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(nn.Linear(hidden_size * 2, hidden_size), nn.LayerNorm(hidden_size),
                                        nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden_size, output_size))
        self.input_emb.apply(init_weight)
        self.output_net.apply(init_weight)
        self.hidden_size = hidden_size
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size), requires_grad=True))

    def forward(self, inputs, m_lens):
        """``m_lens`` are lengths in movement steps (frames // unit_length)."""
        return self.output_net(_bigru_last(self.gru, self.input_emb(inputs), m_lens, self.hidden))


class TextMotionEvaluator(nn.Module):
    """The three encoders with the official dimensions by default (t2m: 263-d features)."""

    def __init__(self, dim_pose: int = 263, dim_word: int = 300, dim_pos_ohot: int = 15,
                 dim_movement_enc_hidden: int = 512, dim_movement_latent: int = 512, dim_text_hidden: int = 512,
                 dim_motion_hidden: int = 1024, dim_coemb_hidden: int = 512, unit_length: int = 4):
        super().__init__()
        self.unit_length = unit_length
        self.dim_pose = dim_pose
        self.movement_encoder = MovementConvEncoder(dim_pose - 4, dim_movement_enc_hidden, dim_movement_latent)
        self.text_encoder = TextEncoderBiGRUCo(dim_word, dim_pos_ohot, dim_text_hidden, dim_coemb_hidden)
        self.motion_encoder = MotionEncoderBiGRUCo(dim_movement_latent, dim_motion_hidden, dim_coemb_hidden)

    def encode_motion(self, motions: torch.Tensor, m_lens) -> torch.Tensor:
        """Normalised, zero-padded motions (B, T, D) with frame lengths ``m_lens`` -> (B, E)."""
        if motions.shape[-1] != self.dim_pose:
            raise ValueError(f"motion width {motions.shape[-1]} does not match the evaluator ({self.dim_pose})")
        movements = self.movement_encoder(motions[..., :-4]).detach()
        lens = torch.as_tensor(m_lens).to("cpu", torch.int64) // self.unit_length
        return self.motion_encoder(movements, lens)

    def encode_text(self, word_embs, pos_ohot, cap_lens) -> torch.Tensor:
        return self.text_encoder(word_embs, pos_ohot, cap_lens)

    # released checkpoint layout --------------------------------------------------------
    def load_finest(self, ckpt: dict, source: str = "finest.tar", strict: bool = True):
        missing = [k for k in ("movement_encoder", "text_encoder", "motion_encoder") if k not in ckpt]
        if missing:
            raise ValueError(f"{source}: evaluator checkpoint lacks {missing}")
        for key in ("movement_encoder", "text_encoder", "motion_encoder"):
            try:
                getattr(self, key).load_state_dict(ckpt[key], strict=strict)
            except RuntimeError as exc:
                raise ValueError(f"{source}: '{key}' does not match the evaluator architecture "
                                 f"(check dim_* in opt.txt): {exc}") from exc

    def finest_dict(self) -> dict:
        return {k: getattr(self, k).state_dict() for k in ("movement_encoder", "text_encoder", "motion_encoder")}
