"""Motion VQ-VAE: released-checkpoint compatibility, batching, training, resume, tokenisation."""
import json

import numpy as np
import pytest
import torch

from models.vqvae import HumanVQVAE, VQConfig, infer_config, load_vq

TINY = dict(nb_code=32, code_dim=32, output_emb_width=32, width=32, depth=2)
TINY_FLAGS = ["--nb-code", "32", "--code-dim", "32", "--output-emb-width", "32", "--width", "32", "--depth", "2"]


def _released_like(tmp_path, cfg, seed=0):
    torch.manual_seed(seed)
    model = HumanVQVAE(cfg)
    with torch.no_grad():
        model.vqvae.quantizer.codebook.normal_()
    path = tmp_path / "vqvae.pth"
    torch.save({"net": model.state_dict()}, path)  # the released format: no config, no extras
    return model.eval(), path


@pytest.mark.parametrize("key,nb", [("vqvae_t2m_nb512", 512), ("vqvae_t2m_nb1024", 1024)])
def test_state_dict_matches_released_keys(reference_dir, key, nb):
    ref = json.loads((reference_dir / "checkpoint_keys.json").read_text())[key]["state_dict"]
    model = HumanVQVAE(VQConfig(nb_code=nb))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == ref
    # a checkpoint with exactly these keys loads strictly, and the architecture is inferred from it
    sd = {k: torch.zeros(s) for k, s in ref.items()}
    cfg = infer_config(sd)
    assert (cfg.nb_code, cfg.width, cfg.depth, cfg.down_t, cfg.input_dim) == (nb, 512, 3, 2, 263)
    HumanVQVAE(cfg).load_state_dict(sd, strict=True)


def test_released_format_loads_strict_with_same_codes(tmp_path):
    cfg = VQConfig(**TINY)
    model, path = _released_like(tmp_path, cfg)
    loaded = load_vq(path, expected=VQConfig(**TINY))
    x = torch.randn(2, 40, 263)
    assert torch.equal(model.encode(x), loaded.encode(x))
    with pytest.raises(ValueError, match="--nb-code 64 but the checkpoint has 32"):
        load_vq(path, expected=VQConfig(**{**TINY, "nb_code": 64}))
    torch.save({"model": {}}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth.*'net'"):
        load_vq(tmp_path / "bad.pth")


def test_batched_encode_decode_equals_one_clip_at_a_time():
    torch.manual_seed(1)
    model = HumanVQVAE(VQConfig(**TINY)).eval()
    with torch.no_grad():
        model.vqvae.quantizer.codebook.normal_()
    lengths = [64, 20, 44, 4]
    x = torch.randn(4, 64, 263)
    codes = model.encode(x, lengths)
    rec = model.decode(codes, [n // 4 for n in lengths])
    for i, n in enumerate(lengths):
        single = model.encode(x[i:i + 1, :n])
        assert torch.equal(single[0], codes[i, : n // 4])
        assert (codes[i, n // 4:] == -1).all()
        torch.testing.assert_close(model.decode(single)[0], rec[i, :n], atol=1e-5, rtol=1e-5)
        assert rec[i, n:].abs().max() == 0 if n < 64 else True
    # negative codes are treated as padding without lengths too
    torch.testing.assert_close(model.decode(codes), rec, atol=1e-5, rtol=1e-5)


def test_codes_in_range_and_bad_inputs():
    model = HumanVQVAE(VQConfig(**TINY)).eval()
    codes = model.encode(torch.randn(3, 52, 263) * 10)
    assert codes.shape == (3, 13) and codes.min() >= 0 and codes.max() < 32
    with pytest.raises(ValueError, match="feature width 251 does not match"):
        model.encode(torch.randn(1, 16, 251))
    with pytest.raises(ValueError, match=r"codes must be in \[0, 32\)"):
        model.decode(torch.tensor([[1, 40]]), [2])
    with pytest.raises(ValueError, match="multiples of 4"):
        model.encode(torch.randn(1, 16, 263), [10])
    with pytest.raises(ValueError, match="code_dim"):
        HumanVQVAE(VQConfig(code_dim=16, output_emb_width=32))


def test_quantizer_variants_train_step():
    for q in ("ema_reset", "ema", "reset", "orig"):
        torch.manual_seed(0)
        model = HumanVQVAE(VQConfig(**TINY, quantizer=q))
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        x = torch.randn(4, 16, 263)
        pred, loss, ppl = model(x)
        (torch.nn.functional.smooth_l1_loss(pred, x) + 0.02 * loss).backward()
        opt.step()
        assert pred.shape == x.shape and torch.isfinite(loss) and ppl >= 1


def test_ema_reset_revives_dead_codes():
    torch.manual_seed(0)
    model = HumanVQVAE(VQConfig(**TINY)).train()
    q = model.vqvae.quantizer
    x = torch.randn(8, 32, 263)
    model(x)
    with torch.no_grad():
        q.code_count.zero_()  # every code dead: all are reset to current latents
        before = q.codebook.clone()
        model(x)
    assert not torch.equal(before, q.codebook)


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from prepare.make_synthetic_dataset import build_dataset
    out = tmp_path_factory.mktemp("vqdata") / "syn"
    build_dataset(out, num_motions=12, seed=5, progress=False)
    return out


def _train(tiny_data, out_dir, exp, total, extra=()):
    import train_vq
    argv = ["--data-root", str(tiny_data), "--out-dir", str(out_dir), "--exp-name", exp, "--batch-size", "8",
            "--total-iter", str(total), "--warm-up-iter", "2", "--lr-scheduler", "1000", "--eval-iter", "4",
            "--print-iter", "2", "--no-progress", "--seed", "7", *TINY_FLAGS, *extra]
    return train_vq.main(argv)


def test_resume_continues_exactly(tiny_data, tmp_path):
    _train(tiny_data, tmp_path, "full", 8)
    _train(tiny_data, tmp_path, "part", 4)
    last = tmp_path / "part" / "net_last.pth"
    assert torch.load(last, weights_only=True)["iter"] == 3
    _train(tiny_data, tmp_path, "part", 8, ["--resume-pth", str(last)])
    a = torch.load(tmp_path / "full" / "net_last.pth", weights_only=True)
    b = torch.load(tmp_path / "part" / "net_last.pth", weights_only=True)
    assert a["iter"] == b["iter"] == 7
    for k in a["net"]:
        torch.testing.assert_close(a["net"][k], b["net"][k], rtol=0, atol=0, msg=k)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 8
    assert (tmp_path / "part" / "meta" / "mean.npy").is_file() and (tmp_path / "part" / "net_best_mpjpe.pth").is_file()
    # a run's checkpoint loads with the generic loader, weights only
    model = load_vq(tmp_path / "part" / "net_last.pth")
    assert model.nb_code == 32


def test_overfit_few_clips_lowers_reconstruction_error():
    """The training objective of train_vq drives the reconstruction error of a few clips down."""
    import train_vq
    from prepare.make_synthetic_dataset import generate_motion
    from utils.motion_process import process_file
    rng = np.random.default_rng(0)
    clips = np.stack([process_file(generate_motion(rng)[0])[0][:40] for _ in range(4)])
    x = torch.tensor((clips - clips.mean((0, 1))) / (clips.std((0, 1)) + 1e-3), dtype=torch.float32)
    torch.manual_seed(0)
    model = HumanVQVAE(VQConfig(**TINY))
    opt = torch.optim.AdamW(model.parameters(), 2e-3)
    recons, ric = train_vq.recons_loss_fn("l1_smooth"), train_vq.ric_slice(22)
    losses = []
    for _ in range(150):
        pred, commit, _ = model(x)
        rec = recons(pred, x)
        loss = rec + 0.02 * commit + 0.5 * recons(pred[..., ric], x[..., ric])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(rec.item())
    assert losses[-1] < 0.33 * losses[0]
    model.eval()
    with torch.no_grad():  # the quantised reconstruction (eval mode) is close as well
        err = (model.decode(model.encode(x)) - x).abs().mean().item()
    assert err < 0.5 * x.abs().mean().item()


def test_tokenize_dataset(tiny_data, tmp_path):
    from prepare.tokenize_dataset import main as tokenize_main
    from dataset.humanml3d import HumanML3DReader
    _train(tiny_data, tmp_path, "tok", 2, ["--eval-iter", "2"])
    out = tmp_path / "tokens.jsonl"
    tokenize_main(["--vq-ckpt", str(tmp_path / "tok" / "net_last.pth"), "--data-root", str(tiny_data),
                   "--split", "train", "--out", str(out), "--batch-size", "5", "--no-progress", "--device", "cpu"])
    recs = [json.loads(ln) for ln in out.read_text().splitlines()]
    reader = HumanML3DReader(tiny_data, "train", progress=False)
    assert len(recs) == len(reader.items)
    assert any(r["id"].startswith("M") for r in recs)
    for r in recs:
        assert len(r["motion_tokens"]) == r["length"] // 4
        assert all(0 <= c < 32 for c in r["motion_tokens"])
        assert r["captions"] and len(r["tokens"]) == len(r["captions"])
    # batched tokenisation equals encoding each clip alone
    model = load_vq(tmp_path / "tok" / "net_last.pth")
    mean = np.load(tmp_path / "tok" / "meta" / "mean.npy")
    std = np.load(tmp_path / "tok" / "meta" / "std.npy")
    item = reader.items[0]
    T = item["length"] - item["length"] % 4
    x = torch.from_numpy((item["motion"][:T] - mean) / std).float()[None]
    assert model.encode(x)[0].tolist() == recs[0]["motion_tokens"]
