"""Training curves as a PNG from a run's ``metrics.jsonl`` (what :class:`utils.run_logger.RunLogger` writes).

One small panel per metric, x axis = step. Without ``keys`` the panels are chosen automatically
(:func:`choose_panels`): the usual SFT / RLVR / VQ names first, every ``reward/<component>_mean`` of an
RLVR run in one panel, bookkeeping (time, step, epoch) never, timings / ``*_std`` / ``epoch/*`` summaries /
constant series last, at most ``max_panels`` panels.

    python -m utils.plot_curves experiments/<exp>/metrics.jsonl [-o out.png] [--keys k1 'reward/*_mean']
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import re
import sys
from pathlib import Path

MAX_PANELS = 12
# never plotted: the logger's own fields and counters
BOOKKEEPING = frozenset({"time", "step", "epoch", "_step", "_runtime", "_timestamp"})
# panel order for the usual runs (SFT, then RLVR); "<reward components>" is the one panel of every
# reward/<component>_mean other than the total
COMPONENTS = "<reward components>"
PREFERRED = ("train/loss", "val/loss", "train/acc", "val/acc", "train/answer_acc", "val/answer_acc",
             "reward/total_mean", COMPONENTS, "kl", "clip_frac", "response_len", "loss", "lr")
_COMPONENT_RE = re.compile(r"^reward/(.+)_mean$")
# timings and throughputs: plotted only when room is left
_TIMING_RE = re.compile(r"(_s|_sec|_seconds|_time|/time)$")


def _number(v):
    """``v`` as a finite float, or None (strings such as "nan", bools, lists, non-finite numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def read_records(jsonl_path) -> list[dict]:
    """The records of a metrics JSONL that have an integer ``step``, each reduced to its finite numeric
    fields (plus ``step``). Blank, unparsable (e.g. a half-written last line) and non-object lines are
    skipped; a missing file raises ``FileNotFoundError``."""
    path = Path(jsonl_path)
    if not path.is_file():
        raise FileNotFoundError(f"metrics file not found: {path}")
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            step = rec.get("step")
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
                continue
            clean = {"step": int(step)}
            for k, v in rec.items():
                if k in BOOKKEEPING:
                    continue
                x = _number(v)
                if x is not None:
                    clean[str(k)] = x
            out.append(clean)
    return out


def series(records, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``key``, sorted by step; a step logged twice keeps its last value."""
    by_step = {}
    for r in records:
        if key in r:
            by_step[r["step"]] = r[key]
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def distinct_steps(records) -> int:
    """How many different steps carry at least one numeric metric."""
    return len({r["step"] for r in records if len(r) > 1})


def _metric_keys(records) -> list[str]:
    """Every numeric metric name, in order of first appearance."""
    seen = {}
    for r in records:
        for k in r:
            if k not in BOOKKEEPING and k not in seen:
                seen[k] = None
    return list(seen)


def _is_component(key: str) -> bool:
    m = _COMPONENT_RE.match(key)
    return bool(m) and m.group(1) != "total"


def _low_priority(key: str, records) -> bool:
    if key.startswith("epoch/") or key.endswith("_std") or _TIMING_RE.search(key):
        return True
    values = {v for v in series(records, key)[1]}
    return len(values) == 1 and sum(1 for r in records if key in r) > 1  # a constant: nothing to see


def choose_panels(records, keys=None, max_panels: int = MAX_PANELS) -> list[tuple[str, list[str]]]:
    """The panels to draw, as ``(title, [metric keys])``.

    ``keys`` given: one panel per key, in that order; a key may be a shell pattern (``reward/*_mean``);
    names that match nothing are skipped. ``keys=None``: the automatic choice described in the module
    docstring, at most ``max_panels`` panels."""
    available = _metric_keys(records)
    if keys:
        chosen = []
        for k in keys:
            hits = [a for a in available if fnmatch.fnmatchcase(a, k)] if any(c in k for c in "*?[") else \
                ([k] if k in available else [])
            chosen += [h for h in hits if h not in chosen]
        return [(k, [k]) for k in chosen]
    components = [k for k in available if _is_component(k)]
    panels, used = [], set()
    for name in PREFERRED:
        if name == COMPONENTS:
            if len(components) == 1:
                panels.append((components[0], components))
            elif components:
                panels.append(("reward/<component>_mean", components))
            used.update(components)
        elif name in available:
            panels.append((name, [name]))
            used.add(name)
    rest = [k for k in available if k not in used]
    low = [k for k in rest if _low_priority(k, records)]
    panels += [(k, [k]) for k in rest if k not in low] + [(k, [k]) for k in low]
    return panels[:max(int(max_panels), 1)]


def choose_keys(records, keys=None, max_panels: int = MAX_PANELS) -> list[str]:
    """The metric keys :func:`plot_metrics` draws for ``records``, in panel order."""
    return [k for _, ks in choose_panels(records, keys, max_panels) for k in ks]


def _short(key: str) -> str:
    m = _COMPONENT_RE.match(key)
    return m.group(1) if m else key


def render(records, png_path, keys=None, max_panels: int = MAX_PANELS, title: str | None = None) -> Path:
    """Draw ``records`` (as :func:`read_records` returns them) to ``png_path``, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg directly: no pyplot, no display
    from matplotlib.figure import Figure

    from utils.io import _atomic

    panels = choose_panels(records, keys, max_panels)
    if not panels:
        wanted = f" among {list(keys)}" if keys else ""
        raise ValueError(f"no numeric metric with a step to plot{wanted}")
    n = len(panels)
    ncols = 1 if n == 1 else 2 if n <= 4 else 3 if n <= 9 else 4
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 2.9 * nrows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, ks) in zip(axes, panels):
        lows, highs = [], []
        for k in ks:
            steps, vals = series(records, k)
            marker = "." if len(steps) <= 40 else None
            ax.plot(steps, vals, marker=marker, linewidth=1.2, label=_short(k) if len(ks) > 1 else None)
            if len(ks) == 1 and k.endswith("_mean"):  # mean +- std band when the std is logged too
                s_std, v_std = series(records, k[:-len("_mean")] + "_std")
                std = dict(zip(s_std, v_std))
                pts = [(s, v, std[s]) for s, v in zip(steps, vals) if s in std]
                if len(pts) > 1:
                    ax.fill_between([p[0] for p in pts], [p[1] - p[2] for p in pts], [p[1] + p[2] for p in pts],
                                    alpha=0.2, linewidth=0)
            if vals:
                lows.append(min(vals))
                highs.append(max(vals))
        if lows and min(lows) > 0 and max(highs) / min(lows) > 1e3:
            ax.set_yscale("log")  # e.g. a loss or a perplexity falling by orders of magnitude
        else:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)  # lr 1e-4, not 0.000100
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        if len(ks) > 1:
            ax.legend(fontsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    png_path = Path(png_path)
    plotted = ", ".join(k for _, ks in panels for k in ks)
    with _atomic(png_path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Description": f"metrics: {plotted}"})
    return png_path


def plot_metrics(jsonl_path, png_path=None, keys=None, max_panels: int = MAX_PANELS) -> Path:
    """Read a metrics JSONL and write its curves to ``png_path`` (default: the JSONL's path with ``.png``).
    Returns the PNG's path; the keys drawn are ``choose_keys(read_records(jsonl_path), keys)`` (also in the
    PNG's ``Description`` text chunk). ``ValueError`` when nothing numeric with a step is in the file."""
    jsonl_path = Path(jsonl_path)
    records = read_records(jsonl_path)
    png_path = Path(png_path) if png_path is not None else jsonl_path.with_suffix(".png")
    title = f"{jsonl_path.parent.name}/{jsonl_path.name}" if jsonl_path.parent.name else jsonl_path.name
    return render(records, png_path, keys=keys, max_panels=max_panels, title=title)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m utils.plot_curves",
                                description="Plot the per-step metrics of a run (metrics.jsonl) to a PNG.")
    p.add_argument("jsonl", help="metrics JSONL, e.g. experiments/<exp>/metrics.jsonl")
    p.add_argument("-o", "--output", default=None, help="PNG to write (default: the JSONL path with .png)")
    p.add_argument("--keys", nargs="+", default=None,
                   help="metrics to plot, one panel each (shell patterns allowed: 'reward/*_mean'); "
                        "default: an automatic choice")
    p.add_argument("--max-panels", type=int, default=MAX_PANELS, help="panels of the automatic choice")
    p.add_argument("--list", action="store_true", help="print the numeric metrics of the file and exit")
    args = p.parse_args(argv)
    try:
        records = read_records(args.jsonl)
        if args.list:
            for k in _metric_keys(records):
                print(f"{k}\t{sum(1 for r in records if k in r)} points")
            return 0
        out = plot_metrics(args.jsonl, args.output, keys=args.keys, max_panels=args.max_panels)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {', '.join(choose_keys(records, args.keys, args.max_panels))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
