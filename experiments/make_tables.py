#!/usr/bin/env python
"""The paper tables from evaluation reports: text-to-motion, motion-to-text, the reward ablation and the VQ-VAE
reconstruction, in Markdown and LaTeX (booktabs), our rows beside the published ones, with a ``convention`` column
that says how each row was computed.

    python experiments/make_tables.py experiments/hml3d_eval_sft "MoRL (ours)=experiments/hml3d_eval_rlvr" \\
        --dataset humanml3d --out experiments/hml3d_tables \\
        --ablation "w/o R_phys=experiments/hml3d_abl_no_phys" \\
        --ablation "w/o CoM=experiments/hml3d_eval_rlvr/eval_t2m.json,experiments/hml3d_eval_rlvr/eval_m2t.json" \
        --vq "VQ-VAE (ours)=experiments/hml3d_eval_vqvae"
    python experiments/make_tables.py experiments/eval_sft experiments/eval_rlvr --dataset synthetic  # quickstart

Inputs (positional): run folders holding ``eval_<task>.json`` / ``eval_<task>_com.json`` (what eval_mllm.py
writes), or such JSON files; ``NAME=PATH`` names the rows (default: the folder name, `` + CoM`` for a
Chain-of-Motion report). ``--ablation VARIANT=PATH[,PATH...]`` (repeatable): the reports of one ablation
variant; a folder contributes, per task, its CoM report if it has one, else the plain one. ``--vq NAME=PATH``
(repeatable): an ``eval_vq.json`` of eval_vq.py (or the folder holding it), one row of the VQ-VAE table each.

Published rows come from ``experiments/published_results.json`` (values as the papers print them, with a
source per row; MoRL's own numbers are provisional). ``--dataset synthetic`` has no published rows.
Outputs with ``--out DIR``: ``tables.md``, ``tables.tex`` and one ``.md``/``.tex`` per table; the
Markdown is also printed.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PUBLISHED = Path(__file__).resolve().with_name("published_results.json")
DATASETS = ("humanml3d", "kit", "synthetic")
DATASET_NAMES = {"humanml3d": "HumanML3D", "kit": "KIT-ML", "synthetic": "the synthetic dataset"}
DASH = "–"
REPORT_NAME = re.compile(r"^eval_(t2m|m2t)(_com)?\.json$")
VQ_REPORT = "eval_vq.json"
PUBLISHED_VALUE = re.compile(r"^-?\d*\.?\d+(±\d*\.?\d+)?$")

# (key, header, direction); direction: up = higher is better, down = lower, real = closer to real motion
T2M_COLS = [("R_precision_top1", "R@1", "up"), ("R_precision_top2", "R@2", "up"), ("R_precision_top3", "R@3", "up"),
            ("FID", "FID", "down"), ("MM_Dist", "MM-Dist", "down"), ("Diversity", "Diversity", "real"),
            ("MModality", "MModality", "up")]
M2T_MATCH = [("R_precision_top1", "R@1", "up"), ("R_precision_top3", "R@3", "up"), ("MM_Dist", "MM-Dist", "down")]
M2T_NLG = [("bleu_1", "BLEU@1", "up"), ("bleu_4", "BLEU@4", "up"), ("rouge_l", "ROUGE-L", "up"),
           ("cider", "CIDEr", "up"), ("bertscore_f1", "BERTScore", "up")]
ABL_T2M = [("R_precision_top1", "R@1", "up"), ("FID", "FID", "down"), ("MM_Dist", "MM-Dist", "down")]
ABL_M2T = [("bleu_4", "BLEU@4", "up"), ("rouge_l", "ROUGE-L", "up"), ("cider", "CIDEr", "up"),
           ("bertscore_f1", "BERTScore", "up")]
# the VQ-VAE reconstruction table (eval_vq.py): the t2m protocol metrics of the reconstructions, plus the
# root-aligned joint-position error (MoMask's MPJPE convention)
VQ_PROTOCOL = [c for c in T2M_COLS if c[0] != "MModality"]
VQ_COLS = VQ_PROTOCOL + [("MPJPE_root_aligned_mm", "MPJPE (mm)", "down")]


class TableError(Exception):
    """A bad input: the message names the file and the field."""


def format_mean_ci(mean: float, ci: float, digits: int = 3) -> str:
    from utils.metrics import format_mean_ci as fmt  # the format of every report of the project
    return fmt(mean, ci, digits)


# ---------------------------------------------------------------------------------------------- reports
@dataclass
class Report:
    path: Path
    task: str
    com: bool
    meta: dict
    results: dict
    name: str = ""


def _field(obj, dotted: str, path: Path, kind=dict, required: bool = True):
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if required:
                raise TableError(f"{path}: missing field '{dotted}'")
            return None
        cur = cur[part]
    if kind is not None and not isinstance(cur, kind):
        raise TableError(f"{path}: field '{dotted}' should be a {getattr(kind, '__name__', kind)}, "
                         f"got {type(cur).__name__}")
    return cur


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _read_report(path: Path, missing: str) -> tuple:
    """(meta, results) of a report file; every failure a TableError naming the file (``missing``: what to say
    when it does not exist)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TableError(f"{path}: {missing}") from None
    except json.JSONDecodeError as e:
        raise TableError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TableError(f"{path}: cannot be read ({e})") from None
    if not isinstance(data, dict):
        raise TableError(f"{path}: expected a JSON object with 'meta' and 'results', got {type(data).__name__}")
    return _field(data, "meta", path), _field(data, "results", path)


def load_report(path, name: str | None = None) -> Report:
    """One eval_mllm.py report, checked: ``{"meta": {...}, "results": {...}}``."""
    path = Path(path)
    meta, results = _read_report(path, "no such file")
    m = REPORT_NAME.match(path.name)
    task = m.group(1) if m else ("t2m" if "generated" in results else "m2t" if "nlg" in results else None)
    if task is None:
        raise TableError(f"{path}: neither 'results.generated' (t2m) nor 'results.nlg' (m2t): not an eval_mllm.py report")
    com_field = _field(meta, "com", path, kind=str)
    com = com_field != "off"
    if m and bool(m.group(2)) != com:
        raise TableError(f"{path}: field 'meta.com' is {com_field!r} but the file name says "
                         f"{'with' if m.group(2) else 'without'} Chain-of-Motion")
    if task == "t2m":
        gen = _field(results, "generated", path)
        for key, _, _ in T2M_COLS:
            _mean_ci(gen, key, path, "results.generated")
        real = _field(results, "real_motion", path, required=False)
        if real is not None:
            for key, _, _ in T2M_COLS:
                _mean_ci(real, key, path, "results.real_motion")
    else:
        nlg = _field(results, "nlg", path)
        for key, _, _ in M2T_NLG:
            if nlg.get(key) is not None and not _number(nlg[key]):
                raise TableError(f"{path}: field 'results.nlg.{key}' should be a number or null, got {nlg[key]!r}")
        for section in ("matching", "matching_real"):
            block = _field(results, section, path, required=False)
            for key, _, _ in M2T_MATCH:
                if block is not None and key in block and not _number(block[key]):
                    raise TableError(f"{path}: field 'results.{section}.{key}' should be a number, got {block[key]!r}")
    rep = Report(path, task, com, meta, results)
    rep.name = name or (path.resolve().parent.name + (" + CoM" if com else ""))
    if name and com and "CoM" not in name:
        rep.name = name + " + CoM"
    return rep


def load_vq_report(path, name: str | None = None) -> Report:
    """One eval_vq.py report (``eval_vq.json``, or the folder holding it), checked:
    ``{"meta": {...}, "results": {"reconstruction": {...}, "real_motion": {...}, "items": N}}``."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such run folder or {VQ_REPORT} (run eval_vq.py with --out-dir/--exp-name "
                         "pointing there)")
    if path.is_dir():
        path = path / VQ_REPORT
    meta, results = _read_report(path, "no such file (run eval_vq.py with --out-dir/--exp-name pointing to its folder)")
    rec = _field(results, "reconstruction", path)
    for key, _, _ in VQ_PROTOCOL:
        if _mean_ci(rec, key, path, "results.reconstruction") is None:
            raise TableError(f"{path}: missing field 'results.reconstruction.{key}' (not an eval_vq.py report?)")
    _mean_ci(rec, "MPJPE_root_aligned_mm", path, "results.reconstruction")
    real = _field(results, "real_motion", path, required=False)
    if real is not None:
        for key, _, _ in VQ_PROTOCOL:
            _mean_ci(real, key, path, "results.real_motion")
    rep = Report(path, "vq", False, meta, results)
    rep.name = name or (path.resolve().parent.name + (" (identity check)" if meta.get("identity") else ""))
    return rep


def vq_reports_in(path, name=None, skip_missing: bool = False) -> list:
    p = Path(path)
    if skip_missing and not (p / VQ_REPORT if p.is_dir() else p).is_file():
        print(f"make_tables: {p}: no {VQ_REPORT}, left out", file=sys.stderr)
        return []
    return [load_vq_report(p, name)]


def _mean_ci(block: dict, key: str, path: Path, where: str):
    """The {"mean", "ci", ...} entry of ``key`` (None when the report has no such metric)."""
    if key not in block:
        return None
    v = block[key]
    if not isinstance(v, dict) or not _number(v.get("mean")) or not _number(v.get("ci")):
        raise TableError(f"{path}: field '{where}.{key}' should be an object with numeric 'mean' and 'ci', got {v!r}")
    return v


def _split_spec(spec: str):
    """'NAME=PATH' -> (NAME, PATH); a plain path (even one holding '=') -> (None, PATH)."""
    if "=" in spec and not Path(spec).exists():
        name, _, path = spec.partition("=")
        return name.strip() or None, path
    return None, spec


def reports_in(path, name=None, prefer_com: bool | None = None, skip_missing: bool = False) -> list:
    """The reports of a run folder (all of them; ``prefer_com``: one per task, the CoM one if present) or of
    one JSON file."""
    p = Path(path)
    if p.is_dir():
        files = [p / f"eval_{t}{c}.json" for t in ("t2m", "m2t") for c in ("", "_com")]
        files = [f for f in files if f.is_file()]
        if prefer_com is not None:
            by_task = {}
            for f in files:
                t = f.name[5:8]
                if t not in by_task or (prefer_com and f.name.endswith("_com.json")):
                    by_task[t] = f
            files = list(by_task.values())
        if not files:
            if skip_missing:
                print(f"make_tables: {p}: no eval_<t2m|m2t>[_com].json, left out", file=sys.stderr)
                return []
            raise TableError(f"{p}: no eval_t2m.json, eval_t2m_com.json, eval_m2t.json or eval_m2t_com.json "
                             "(run eval_mllm.py with --out-dir/--exp-name pointing here)")
        return [load_report(f, name) for f in files]
    if not p.exists():
        if skip_missing:
            print(f"make_tables: {p}: not found, left out", file=sys.stderr)
            return []
        raise TableError(f"{p}: no such run folder or report")
    return [load_report(p, name)]


# ---------------------------------------------------------------------------------------------- published
def load_published(dataset: str, path=PUBLISHED) -> dict:
    """{"t2m": [...], "m2t": [...], "ablation": [...], "vq": [...]} rows of ``dataset`` (checked; the "vq"
    section, VQ-VAE reconstruction rows, may be absent)."""
    path = Path(path)
    if dataset == "synthetic":
        return {"t2m": [], "m2t": [], "ablation": [], "vq": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TableError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    known = {k for k, _, _ in T2M_COLS + M2T_MATCH + M2T_NLG + VQ_COLS}
    out = {}
    for table in ("t2m", "m2t", "ablation", "vq"):
        rows = _field(data, f"{table}.{dataset}", path, kind=list, required=table != "vq")
        if rows is None:
            out[table] = []
            continue
        for i, row in enumerate(rows):
            where = f"{table}.{dataset}[{i}]"
            if not isinstance(row, dict):
                raise TableError(f"{path}: field '{where}' should be an object")
            for req in ("method", "source", "convention"):
                if not isinstance(row.get(req), str) or not row[req]:
                    raise TableError(f"{path}: field '{where}.{req}' is missing or not a string")
            if not isinstance(row.get("provisional"), bool):
                raise TableError(f"{path}: field '{where}.provisional' should be true or false")
            vals = row.get("values")
            if not isinstance(vals, dict):
                raise TableError(f"{path}: field '{where}.values' should be an object")
            for k, v in vals.items():
                if k not in known:
                    raise TableError(f"{path}: field '{where}.values.{k}': unknown metric (known: {sorted(known)})")
                if not isinstance(v, str) or not PUBLISHED_VALUE.match(v):
                    raise TableError(f"{path}: field '{where}.values.{k}' should be a string like '0.511±.003' "
                                     f"or '56.99', got {v!r}")
            for k in row.get("weak", []):
                if k not in vals:
                    raise TableError(f"{path}: field '{where}.weak' names {k!r}, which has no value")
        out[table] = rows
    return out


# ---------------------------------------------------------------------------------------------- conventions
def _sha(fp) -> str:
    return fp.get("sha256", "")[:12] if isinstance(fp, dict) else ""


def decoding_convention(meta: dict) -> str:
    s = str(meta.get("decoding", "?"))
    if meta.get("com", "off") != "off":
        s += f"; CoM {meta['com']}"
        if _sha(meta.get("critic")):
            s += f", critic {_sha(meta['critic'])}"
    return s


def t2m_convention(rep: Report) -> str:
    m = rep.meta
    parts = [decoding_convention(m), f"{m.get('replications', '?')} replications x {rep.results.get('items', '?')} items"]
    if _sha(m.get("evaluator")):
        parts.append(f"judge {_sha(m['evaluator'])}")
    return "; ".join(parts)


def m2t_convention(rep: Report) -> str:
    nlg = rep.results["nlg"]
    conv = nlg.get("convention")
    refs = {"motiongpt": "refs: raw captions (MotionGPT convention)",
            "tm2t": "refs: TM2T processed words (3 per item)"}.get(conv, f"refs: {conv}")
    if nlg.get("bertscore_f1") is None:
        bs = "BERTScore not computed"
    else:
        bs = (f"BERTScore {nlg.get('bertscore_model')}" + (f" L{nlg['bertscore_num_layers']}"
                                                            if nlg.get("bertscore_num_layers") else "")
              + (", rescaled" if nlg.get("bertscore_rescaled") else ", not rescaled"))
    parts = [refs, "pycocoevalcap scorers", bs, decoding_convention(rep.meta)]
    if _sha(rep.meta.get("evaluator")):
        parts.append(f"judge {_sha(rep.meta['evaluator'])}")
    return "; ".join(parts)


def vq_convention(rep: Report) -> str:
    m, r = rep.meta, rep.results
    ck = m.get("checkpoint") if isinstance(m.get("checkpoint"), dict) else {}
    what = ("identity: no VQ-VAE (sanity check)" if m.get("identity") else
            "each GT crop encoded + decoded at its own length; FID vs GT of the same batches")
    parts = [what, f"{m.get('split', '?')} split", f"{m.get('replications', '?')} replications x "
             f"{r.get('evaluated_per_replication', r.get('items', '?'))} items"]
    if ck.get("sha256"):
        parts.append(f"ckpt {str(ck['sha256'])[:12]}")
    if _sha(m.get("evaluator")):
        parts.append(f"judge {_sha(m['evaluator'])}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------- tables
@dataclass
class Table:
    key: str
    title: str
    columns: list                       # (key, header, direction)
    published: list = field(default_factory=list)   # [name, cells..., convention, weak keys]
    ours: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _pub_rows(rows, columns) -> list:
    out = []
    for r in rows:
        name = r["method"] + (" *" if r["provisional"] else "")
        cells = [r["values"].get(k, DASH) + ("†" if k in r.get("weak", []) else "") for k, _, _ in columns]
        out.append([name] + cells + [r["convention"]])
    return out


def _t2m_cells(block: dict, rep: Report, columns) -> list:
    cells = []
    for key, _, _ in columns:
        v = _mean_ci(block, key, rep.path, "results")
        cells.append(format_mean_ci(v["mean"], v["ci"]) if v else DASH)
    return cells


def _nlg_cells(nlg: dict, columns) -> list:
    return [DASH if nlg.get(k) is None else f"{100.0 * nlg[k]:.2f}" for k, _, _ in columns]


def _match_cells(block: dict | None, columns) -> list:
    return [f"{block[k]:.3f}" if block and k in block else DASH for k, _, _ in columns]


def _judges_note(reps) -> list:
    shas = {_sha(r.meta.get("evaluator")) for r in reps} - {""}
    if len(shas) > 1:
        return [f"WARNING: these rows were computed by different judges (evaluator sha256 {', '.join(sorted(shas))}); "
                "they are not comparable."]
    return []


def _failures_note(reps) -> list:
    bad = [f"{r.name}: {r.meta['failures']}/{r.meta['samples']}" for r in reps
           if _number(r.meta.get("failures")) and r.meta.get("failures")]
    return ["failed generations (still scored): " + "; ".join(bad)] if bad else []


def t2m_table(reports, published, dataset) -> Table:
    t = Table("t2m", f"Text-to-motion on {DATASET_NAMES[dataset]} (test; mean ± 95% CI over replications)",
              T2M_COLS)
    t.published = _pub_rows(published, T2M_COLS)
    real = next((r for r in reports if r.results.get("real_motion")), None)
    if real is not None:
        t.ours.append(["Real motion (this judge)"] + _t2m_cells(real.results["real_motion"], real, T2M_COLS)
                      + [f"GT vs GT, {real.meta.get('replications', '?')} replications"
                         + (f"; judge {_sha(real.meta.get('evaluator'))}" if _sha(real.meta.get("evaluator")) else "")])
    for r in reports:
        t.ours.append([r.name] + _t2m_cells(r.results["generated"], r, T2M_COLS) + [t2m_convention(r)])
    t.notes += _judges_note(reports) + _failures_note(reports)
    return t


def m2t_table(reports, published, dataset) -> Table:
    cols = M2T_MATCH + M2T_NLG
    t = Table("m2t", f"Motion-to-text on {DATASET_NAMES[dataset]} (test; NLG metrics x100)", cols)
    t.published = _pub_rows(published, cols)
    first = reports[0]
    if first.results.get("matching_real"):
        t.ours.append(["Real captions (this judge)"] + _match_cells(first.results["matching_real"], M2T_MATCH)
                      + [DASH] * len(M2T_NLG) + ["one real caption per motion; "
                                                 + first.results["matching_real"].get("orientation", "")])
    base = first.results.get("baseline_most_frequent_caption")
    if isinstance(base, dict):
        t.ours.append(["Most frequent train caption"] + [DASH] * len(M2T_MATCH) + _nlg_cells(base, M2T_NLG)
                      + ["chance level: the same caption for every motion"])
    for r in reports:
        t.ours.append([r.name] + _match_cells(r.results.get("matching"), M2T_MATCH)
                      + _nlg_cells(r.results["nlg"], M2T_NLG) + [m2t_convention(r)])
    t.notes += _judges_note(reports) + _failures_note(reports)
    return t


def ablation_table(variants, published, dataset) -> Table:
    """``variants``: [(name, {task: Report})]."""
    cols = ABL_T2M + ABL_M2T
    t = Table("ablation", f"Reward ablation on {DATASET_NAMES[dataset]} (test)", cols)
    t.published = _pub_rows(published, cols)
    for name, by_task in variants:
        t2m, m2t = by_task.get("t2m"), by_task.get("m2t")
        cells = (_t2m_cells(t2m.results["generated"], t2m, ABL_T2M) if t2m else [DASH] * len(ABL_T2M)) \
            + (_nlg_cells(m2t.results["nlg"], ABL_M2T) if m2t else [DASH] * len(ABL_M2T))
        conv = "; ".join(f"{task}: {decoding_convention(r.meta)}" for task, r in (("t2m", t2m), ("m2t", m2t)) if r)
        t.ours.append([name] + cells + [conv])
    t.notes += _judges_note([r for _, d in variants for r in d.values()])
    return t


def vq_table(reports, published, published_t2m, dataset) -> Table:
    """The VQ-VAE reconstruction table: published rows (the papers' real motion, then the "vq" rows of the
    data file), our real-motion row (this judge) and one row per eval_vq.py report."""
    t = Table("vq", f"VQ-VAE reconstruction on {DATASET_NAMES[dataset]} (test; mean ± 95% CI over replications)",
              VQ_COLS)
    real_pub = [r for r in published_t2m if r["method"] == "Real motion"]
    t.published = _pub_rows(real_pub + list(published), VQ_COLS)
    real = next((r for r in reports if r.results.get("real_motion")), None)
    if real is not None:
        t.ours.append(["Real motion (this judge)"] + _t2m_cells(real.results["real_motion"], real, VQ_COLS)
                      + [f"GT vs GT (independent pass), {real.meta.get('replications', '?')} replications"
                         + (f"; judge {_sha(real.meta.get('evaluator'))}" if _sha(real.meta.get("evaluator")) else "")])
    for r in reports:
        t.ours.append([r.name] + _t2m_cells(r.results["reconstruction"], r, VQ_COLS) + [vq_convention(r)])
    t.notes += _judges_note(reports)
    if any(r.meta.get("identity") for r in reports):
        t.notes.append("An identity row is the pipeline check of eval_vq.py --identity (no VQ-VAE), not a tokenizer.")
    t.notes.append("MPJPE: mean joint-position error of the reconstructed crops after aligning the root joint of "
                   "each frame (MoMask's convention, mm); not part of T2M-GPT's protocol.")
    return t


def _common_notes(table: Table, dataset: str) -> list:
    notes = []
    if dataset == "synthetic":
        notes.append("No published numbers exist for the synthetic dataset; only this project's rows are shown.")
    elif table.published and table.key == "vq":
        notes.append("Published rows: as printed by the T2M and T2M-GPT papers (sources in "
                     "experiments/published_results.json), not re-checked against the PDFs. * = provisional; "
                     "† = not confirmed by an independent listing.")
    elif table.published:
        notes.append("Published rows: as printed by the papers (sources in experiments/published_results.json), "
                     "not re-checked against the PDFs. * = provisional (MoRL's numbers come from secondary "
                     "sources); † = a single secondary source.")
    return notes + table.notes


# ---------------------------------------------------------------------------------------------- rendering
def render_markdown(table: Table, dataset: str) -> str:
    from utils.tables import markdown_table
    header = ["Method"] + [h + {"up": " ↑", "down": " ↓", "real": " →"}[d] for _, h, d in table.columns] + ["convention"]
    rows = table.published + table.ours
    lines = [f"## {table.title}", "", markdown_table(header, rows)]
    notes = _common_notes(table, dataset) + (["→: closer to real motion is better."]
                                             if any(d == "real" for _, _, d in table.columns) else [])
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


_LATEX_CHARS = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
                "$": r"\$", "^": r"\^{}", "~": r"\~{}", "±": r"$\pm$", "–": "--", "—": "---", "×": r"$\times$",
                "†": r"$^\dagger$", "τ": r"$\tau$", "→": r"$\rightarrow$", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
                "≈": r"$\approx$", "'": "'", "’": "'", "…": r"\dots{}", "·": r"$\cdot$"}


def latex_escape(text: str) -> str:
    out = []
    for ch in str(text):
        if ch in _LATEX_CHARS:
            out.append(_LATEX_CHARS[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")  # anything else would need a LaTeX package: keep the output plain ASCII
    return "".join(out)


def render_latex(table: Table, dataset: str) -> str:
    n = len(table.columns)
    header = ["Method"] + [latex_escape(h) + {"up": r" $\uparrow$", "down": r" $\downarrow$",
                                                "real": r" $\rightarrow$"}[d] for _, h, d in table.columns] + ["Convention"]
    spec = "l" + "c" * n + "p{6cm}"
    lines = [f"% {table.key} table, written by experiments/make_tables.py (needs \\usepackage{{booktabs}})",
             r"\begin{table*}[t]", r"\centering", r"\scriptsize",
             r"\caption{" + latex_escape(table.title) + "}",
             r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    for row in table.published:
        lines.append(" & ".join(latex_escape(c) for c in row) + r" \\")
    if table.published and table.ours:
        lines.append(r"\midrule")
    for row in table.ours:
        lines.append(" & ".join(latex_escape(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = _common_notes(table, dataset)
    if notes:
        lines.append(r"\par\smallskip{\footnotesize " + latex_escape(" ".join(notes)) + "}")
    lines.append(r"\end{table*}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Paper tables (Markdown + LaTeX) from eval_mllm.py and eval_vq.py reports",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("runs", nargs="*", help="run folders or eval_<task>[_com].json files; NAME=PATH names the rows")
    p.add_argument("--dataset", default="humanml3d", choices=DATASETS,
                   help="which published rows to show (synthetic: none)")
    p.add_argument("--ablation", action="append", default=[], metavar="VARIANT=PATH[,PATH...]",
                   help="one ablation variant (repeatable): run folders (their CoM report per task when they have "
                        "one) or report files")
    p.add_argument("--vq", action="append", default=[], metavar="[NAME=]PATH",
                   help="an eval_vq.py report (eval_vq.json or its folder) for the VQ-VAE reconstruction table "
                        "(repeatable; NAME names the row, default the folder name)")
    p.add_argument("--out", default=None, help="write tables.md, tables.tex and one .md/.tex per table here")
    p.add_argument("--published", default=str(PUBLISHED), help="published numbers (JSON)")
    p.add_argument("--skip-missing", action="store_true", help="leave out run folders/reports that do not exist")
    return p


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    for spec in args.ablation:
        name, _, paths = spec.partition("=")
        if not name.strip() or not paths.strip():
            build_parser().error(f"--ablation {spec!r}: expected VARIANT=PATH[,PATH...]")
    if not args.runs and not args.ablation and not args.vq:
        build_parser().error("give run folders / reports, --ablation or --vq")
    return args


def build_tables(args) -> list:
    reports = []
    for spec in args.runs:
        name, path = _split_spec(spec)
        reps = reports_in(path, name, skip_missing=args.skip_missing)
        reports += reps
    variants = []
    for spec in args.ablation:
        name, _, paths = spec.partition("=")
        by_task = {}
        for p in filter(None, (x.strip() for x in paths.split(","))):
            for r in reports_in(p, prefer_com=True, skip_missing=args.skip_missing):
                if r.task in by_task:
                    raise TableError(f"--ablation {name.strip()!r}: two {r.task} reports ({by_task[r.task].path} and "
                                     f"{r.path}); give one per task")
                by_task[r.task] = r
        if by_task:
            variants.append((name.strip(), by_task))
    vq_reports = []
    for spec in args.vq:
        name, path = _split_spec(spec)
        vq_reports += vq_reports_in(path, name, skip_missing=args.skip_missing)
    if not reports and not variants and not vq_reports:
        raise TableError("no evaluation report found in " + ", ".join(args.runs + args.ablation + args.vq))
    pub = load_published(args.dataset, args.published)
    tables = []
    t2m = [r for r in reports if r.task == "t2m"]
    m2t = [r for r in reports if r.task == "m2t"]
    if t2m:
        tables.append(t2m_table(t2m, pub["t2m"], args.dataset))
    if m2t:
        tables.append(m2t_table(m2t, pub["m2t"], args.dataset))
    if variants:
        tables.append(ablation_table(variants, pub["ablation"], args.dataset))
    if vq_reports:
        tables.append(vq_table(vq_reports, pub["vq"], pub["t2m"], args.dataset))
    return tables


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        tables = build_tables(args)
    except TableError as e:
        print(f"make_tables: {e}", file=sys.stderr)
        return 2
    md = {t.key: render_markdown(t, args.dataset) for t in tables}
    tex = {t.key: render_latex(t, args.dataset) for t in tables}
    all_md = "\n".join(md.values())
    print(all_md)
    if args.out:
        from utils.io import atomic_write_text
        out = Path(args.out)
        for k in md:
            atomic_write_text(out / f"{k}.md", md[k])
            atomic_write_text(out / f"{k}.tex", tex[k])
        atomic_write_text(out / "tables.md", all_md)
        atomic_write_text(out / "tables.tex", "\n".join(tex.values()))
        print(f"written to {out}/ (tables.md, tables.tex, " + ", ".join(f"{k}.md/.tex" for k in md) + ")",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
