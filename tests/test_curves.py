"""Training curves (utils.plot_curves) and RunLogger's metrics.png."""
import json

import pytest

from utils.plot_curves import choose_keys, choose_panels, main, plot_metrics, read_records
from utils.run_logger import NullLogger, RunLogger

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sft(step, loss):
    return {"time": 1.0 + step, "step": step, "train/loss": loss, "train/acc": 1 - loss / 3,
            "train/answer_acc": 0.5 - loss / 10, "train/tokens_per_s": 1000.0 + step, "lr": 1e-4 / step,
            "epoch": 0}


def _rlvr(step, r):
    return {"time": 100.0 + step, "step": step, "reward/total_mean": r, "reward/total_std": 0.1,
            "reward/r_precision_mean": r / 2, "reward/r_precision_std": 0.05, "reward/format_mean": 0.9,
            "kl": 0.01 * step, "clip_frac": 0.02, "response_len": 40.0 + step, "loss": -r, "step_s": 1.3,
            "rollout_tokens_per_s": 500.0, "group_size_effective": 8, "reward/component_norm": "std"}


def _write(path, recs, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + tail)
    return path


@pytest.fixture
def mixed(tmp_path):
    recs = [_sft(s, 2.0 / s) for s in (1, 2, 3)]
    recs.append({"time": 9.0, "step": 3, "val/loss": 1.1, "val/acc": 0.4})
    recs += [_rlvr(s, 0.1 * s) for s in (4, 5, 6)]
    recs[5]["kl"] = "nan"  # RunLogger writes a non-finite float as a string
    recs.append({"time": 99.0, "loss": 123.0})  # no step: ignored
    recs.append({"time": 99.0, "step": 7, "note": "text only", "flag": True})  # nothing numeric
    return _write(tmp_path / "metrics.jsonl", recs, tail='{"step": 8, "reward/total_mean": 0.')  # half-written


def test_read_records_keeps_numeric_fields_with_a_step(mixed):
    recs = read_records(mixed)
    assert [r["step"] for r in recs] == [1, 2, 3, 3, 4, 5, 6, 7]
    assert all("time" not in r and "epoch" not in r for r in recs)
    assert "kl" not in recs[5] and recs[6]["kl"] == pytest.approx(0.06)
    assert "reward/component_norm" not in recs[4] and recs[7] == {"step": 7}


def test_automatic_choice_prefers_the_training_names(mixed):
    recs = read_records(mixed)
    panels = choose_panels(recs)
    keys = choose_keys(recs)
    assert len(panels) <= 12
    assert keys[:6] == ["train/loss", "val/loss", "train/acc", "val/acc", "train/answer_acc", "reward/total_mean"]
    for k in ("reward/r_precision_mean", "reward/format_mean", "kl", "clip_frac", "response_len", "loss", "lr"):
        assert k in keys
    # the reward components share one panel, the total has its own
    comp = [ks for _, ks in panels if "reward/r_precision_mean" in ks]
    assert comp == [["reward/r_precision_mean", "reward/format_mean"]]
    assert not {"time", "step", "epoch"} & set(keys)
    # timings, stds and constants only fill what room is left
    assert "step_s" not in keys and "reward/total_std" not in keys
    big = choose_keys(recs, max_panels=100)
    assert big.index("train/tokens_per_s") > big.index("lr") and "reward/total_std" in big


def test_explicit_keys_and_patterns(mixed):
    recs = read_records(mixed)
    assert choose_keys(recs, ["kl", "missing", "reward/*_mean"]) == \
        ["kl", "reward/total_mean", "reward/r_precision_mean", "reward/format_mean"]
    assert choose_keys(recs, ["missing"]) == []


def test_vq_run_uses_its_train_keys(tmp_path):
    recs = [{"step": s, "train/loss": 1 / s, "train/recons": 0.5 / s, "train/commit": 0.1,
             "train/perplexity": 100.0 * s, "lr": 2e-4, "train/frames_per_s": 9000.0} for s in (100, 200, 300)]
    recs.append({"step": 300, "val/mpjpe_mm": 80.0, "val/perplexity": 300.0})
    keys = choose_keys(read_records(_write(tmp_path / "m.jsonl", recs)))
    assert keys[:2] == ["train/loss", "lr"]
    assert set(keys) >= {"train/recons", "train/perplexity", "val/mpjpe_mm", "train/commit"}
    assert keys.index("train/commit") > keys.index("val/mpjpe_mm")  # a constant comes last


def test_plot_metrics_writes_a_png(mixed, tmp_path):
    import matplotlib.image

    out = plot_metrics(mixed, tmp_path / "sub" / "curves.png")
    assert out == tmp_path / "sub" / "curves.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    img = matplotlib.image.imread(out)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]  # atomic: no temporary left
    assert plot_metrics(mixed) == mixed.with_suffix(".png") and mixed.with_suffix(".png").is_file()
    with pytest.raises(ValueError):
        plot_metrics(mixed, tmp_path / "x.png", keys=["missing"])


def test_cli(mixed, tmp_path, capsys):
    assert main([str(mixed), "-o", str(tmp_path / "cli.png"), "--keys", "kl", "train/loss"]) == 0
    assert (tmp_path / "cli.png").read_bytes()[:8] == PNG_MAGIC
    assert "kl, train/loss" in capsys.readouterr().out
    assert main([str(tmp_path / "absent.jsonl")]) == 1


def test_run_logger_close_writes_metrics_png(tmp_path):
    log = RunLogger(tmp_path)
    for s in (1, 2, 3):
        log.log({"train/loss": 1.0 / s, "lr": 1e-3, "bad": float("nan")}, step=s)
    log.close()
    png = tmp_path / "metrics.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert log.plot(tmp_path / "again.png") == tmp_path / "again.png"


def test_run_logger_close_needs_two_steps(tmp_path):
    log = RunLogger(tmp_path)
    log.log({"train/loss": 1.0}, step=1)
    log.close()
    assert not (tmp_path / "metrics.png").exists()
    assert log.plot() == tmp_path / "metrics.png"  # plot() on demand draws even one point
    RunLogger(tmp_path / "off", enabled=False).close()
    assert not (tmp_path / "off").exists()
    assert NullLogger().plot() is None


def test_run_logger_close_never_raises(tmp_path, capsys):
    log = RunLogger(tmp_path)
    (tmp_path / "metrics.jsonl").write_bytes(b"\x00\xff garbage\n[1, 2]\n{\"step\": \n")
    log.close()  # nothing plottable: silently no PNG
    assert not (tmp_path / "metrics.png").exists()
    # a real plotting failure (the PNG's folder is a file) is one warning line
    for s in (1, 2):
        log.log({"loss": float(s)}, step=s)
    (tmp_path / "blocked").write_text("")
    assert log.plot(tmp_path / "blocked" / "m.png") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: could not plot")
    (tmp_path / "metrics.jsonl").unlink()
    log.close()  # the JSONL is gone
