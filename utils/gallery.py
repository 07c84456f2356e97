"""Results gallery: a self-contained HTML page of evaluated items, with their motions as animations.

``eval_mllm.py ... --gallery N`` writes ``<run folder>/gallery/index.html`` (``demo.py --gallery N`` writes
``<save dir>/gallery/index.html``): for text-to-motion each item shows the caption, the model's reasoning,
the ground-truth and the generated motion side by side, the judge's (T2M evaluator's) score of the item
and the physics terms (``rewards/physics.py``) of both motions; for motion-to-text the motion, the
generated caption, its reasoning and the reference captions, with the judge's score of the caption.

The page works offline: CSS and the little JavaScript (replay buttons) are inline, the animations are
files in ``gallery/media/`` next to the page (GIF; MP4 for the mesh renderer when ffmpeg exists), and
nothing points to another host. Each section (``t2m``, ``m2t``, ``t2m_com`` ... one per evaluated
task) keeps its items in ``gallery/<section>.json``; the page shows every section found there, so a t2m
and an m2t evaluation of the same run share one page. Writing is atomic: the media of a section are
rendered into a temporary folder that replaces the old one, then the section file and ``index.html``
are renamed into place.

Judge score per item: t2m ``judge distance`` is the evaluator's text-motion distance of (caption,
generated motion) (its mean over items is MM-Dist), shown beside that of (caption, ground truth);
``judge rank`` ranks the generated motion for its caption among the real motions of the other items
of a pool of 32 test items (1 = the judge would retrieve it: an R-precision top-1 hit). m2t: the
distance of (motion, generated caption) beside (motion, first reference), and the rank of the
generated caption among the first references of the pool's other items (TM2T orientation).
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

__all__ = ["t2m_item", "m2t_item", "physics_rows", "write_gallery", "build_html", "eval_gallery", "demo_gallery",
           "INDEX"]

INDEX = "index.html"
MEDIA = "media"
TERMS = ("skate", "penetration", "floating", "speed", "jerk", "bone")
UNITS = {"skate": "m/s", "penetration": "m", "floating": "m", "speed": "m/s", "jerk": "m/s^3", "bone": "relative"}


# ============================================================================ items
def t2m_item(item_id, caption, reasoning, gt_joints, gen_joints, judge=None, physics=None, status="ok",
             answer="") -> dict:
    """One text-to-motion item (joints (T, J, 3) in metres; ``gt_joints`` may be None)."""
    motions = []
    if gt_joints is not None:
        motions.append({"label": "ground truth", "joints": gt_joints})
    motions.append({"label": "generated", "joints": gen_joints})
    return {"id": str(item_id), "task": "t2m", "caption": caption, "reasoning": reasoning, "status": status,
            "answer": answer, "motions": motions, "judge": judge or {}, "physics": physics or {}}


def m2t_item(item_id, joints, caption, reasoning, references, judge=None, status="ok") -> dict:
    """One motion-to-text item: the input motion, the generated caption and the references."""
    return {"id": str(item_id), "task": "m2t", "caption": caption, "reasoning": reasoning, "status": status,
            "references": list(references), "motions": [{"label": "motion", "joints": joints}],
            "judge": judge or {}, "physics": {}}


def physics_rows(joints_list, dataname: str = "t2m") -> list:
    """Physics reward (``total``) and term rewards, plus the raw quantities (``q_<term>``), per clip
    (None for a clip without motion)."""
    from rewards.physics import PhysicsReward
    from utils.paramUtil import get_spec
    out = PhysicsReward(get_spec(dataname)).score_joints(joints_list)
    rows = []
    for i in range(len(joints_list)):
        if not out.info["valid"][i]:
            rows.append(None)
            continue
        row = {"total": float(out.values[i])}
        for t in TERMS:
            row[t] = float(out.components[t][i])
            row[f"q_{t}"] = float(out.info[f"q_{t}"][i])
        rows.append(row)
    return rows


# ============================================================================ rendering
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "motion"


def render_motion(path_stem: Path, joints, render: str = "skeleton", fps: float = 20.0, size: int = 256,
                  stride: int = 1, body=None) -> Path:
    """Animate joints (T, J, 3) to ``<path_stem>.gif`` (skeleton, or mesh without ffmpeg) or ``.mp4``
    (mesh with ffmpeg); returns the file written."""
    joints = np.asarray(joints, dtype=np.float32)
    if render == "mesh" and joints.ndim == 3 and joints.shape[1] == 22:
        from utils.mesh_render import find_ffmpeg, render_mesh
        ext = ".mp4" if find_ffmpeg() else ".gif"
        return Path(render_mesh(path_stem.with_suffix(ext), joints, fps=fps, size=(size, size), stride=stride,
                                body=body))
    from utils.plot_script import render_joints
    out = path_stem.with_suffix(".gif")
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}.gif")
    try:
        radius = 2.4 if joints.ndim == 3 and joints.shape[1] == 22 else None  # t2m (metres): zoom in from 4 m
        render_joints(tmp, joints, figsize=(size / 100.0, size / 100.0), dpi=100, fps=fps, stride=stride,
                      radius=radius)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def write_gallery(gallery_dir, items, section: str = "t2m", title: str = "", meta: dict | None = None,
                  render: str = "skeleton", fps: float = 20.0, size: int = 256, stride: int = 1,
                  body_model: str = "mannequin", body_model_dir=None, progress: bool = False) -> Path:
    """Render the motions of ``items`` (:func:`t2m_item` / :func:`m2t_item`) into ``gallery_dir/media/
    <section>/``, store the section in ``gallery_dir/<section>.json`` and (re)write ``gallery_dir/index.html``
    with every section of the folder. Returns the path of ``index.html``."""
    if render not in ("skeleton", "mesh"):
        raise ValueError(f"render must be 'skeleton' or 'mesh', got {render!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", section):
        raise ValueError(f"section name {section!r}: letters, digits, '_', '.', '-' only")
    gdir = Path(gallery_dir)
    media_root = gdir / MEDIA
    media_root.mkdir(parents=True, exist_ok=True)
    final = media_root / section
    work = media_root / f".{section}.tmp{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    body = None
    if render == "mesh":
        from utils.mesh_render import load_body
        body = load_body(body_model, body_model_dir)
    records = []
    it = list(enumerate(items))
    if progress:
        try:
            from tqdm import tqdm
            it = tqdm(it, desc=f"gallery {section}", unit="item")
        except ImportError:  # pragma: no cover
            pass
    t0 = time.time()
    try:
        for i, item in it:
            rec = {k: _jsonable(v) for k, v in item.items() if k != "motions"}
            rec["media"] = []
            for m in item.get("motions", []):
                joints = m.get("joints")
                entry = {"label": m["label"], "frames": 0, "file": None}
                if joints is not None and len(joints) > 0:
                    try:
                        out = render_motion(work / f"{i:03d}_{_slug(m['label'])}", joints, render, fps, size, stride,
                                            body)
                        entry.update(file=f"{MEDIA}/{section}/{out.name}", frames=int(len(joints)))
                    except Exception as exc:  # noqa: BLE001 - one bad motion must not lose the page
                        entry["error"] = f"{type(exc).__name__}: {exc}"
                rec["media"].append(entry)
            records.append(rec)
        # swap the section's media folder in, then the section file, then the page
        old = media_root / f".{section}.old{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        os.replace(work, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from utils.io import atomic_write_json, atomic_write_text
    sec = {"section": section, "title": title or section, "meta": _jsonable(meta or {}), "render": render,
           "fps": fps / max(1, int(stride)), "render_seconds": round(time.time() - t0, 1), "items": records,
           "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_json(gdir / f"{section}.json", sec)
    sections = []
    for p in sorted(gdir.glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and "items" in d and "section" in d:
            sections.append(d)
    order = {"t2m": 0, "m2t": 1}
    sections.sort(key=lambda d: (order.get(str(d["section"]).split("_")[0], 2), str(d["section"])))
    return atomic_write_text(gdir / INDEX, build_html(sections))


# ============================================================================ HTML
CSS = """
:root { --fg:#1d2330; --mut:#5b6475; --bg:#f4f5f7; --card:#fff; --line:#dde1e7; --ok:#1f7a3a; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg);
       background:var(--bg); }
header { padding:14px 22px; background:#263041; color:#fff; display:flex; gap:18px; align-items:center;
         flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; }
header a { color:#cfe0ff; }
button { font:inherit; border:1px solid var(--line); background:#fff; border-radius:6px; padding:3px 10px;
         cursor:pointer; }
main { padding:16px 22px; }
section.task > h2 { margin:8px 0 4px; }
.meta { color:var(--mut); font-size:12px; margin-bottom:10px; }
.meta code { background:#e9ecf1; padding:0 4px; border-radius:3px; }
.items { display:grid; grid-template-columns:repeat(auto-fill, minmax(560px, 1fr)); gap:14px; }
article.item { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
article.item h3 { font-size:15px; margin:0 0 6px; display:flex; justify-content:space-between; gap:8px; }
.status { font-size:12px; font-weight:normal; padding:1px 7px; border-radius:9px; background:#e6f4ea;
          color:var(--ok); }
.status.fail { background:#fbe9e7; color:var(--bad); }
.caption { font-size:15px; margin:4px 0 8px; }
details { margin:4px 0 8px; color:var(--mut); }
details p { margin:4px 0; white-space:pre-wrap; }
.media { display:flex; gap:10px; flex-wrap:wrap; }
figure { margin:0; text-align:center; }
figure img, figure video { width:256px; height:256px; object-fit:contain; background:#fafafa;
                           border:1px solid var(--line); border-radius:6px; }
figcaption { font-size:12px; color:var(--mut); }
.missing { width:256px; height:256px; display:flex; align-items:center; justify-content:center;
           border:1px dashed var(--line); color:var(--mut); border-radius:6px; padding:8px; }
table { border-collapse:collapse; margin-top:8px; font-size:12px; }
th, td { border:1px solid var(--line); padding:2px 6px; text-align:right; }
th:first-child, td:first-child { text-align:left; }
td.good { color:var(--ok); } td.bad { color:var(--bad); font-weight:600; }
ol.refs { margin:4px 0 0 18px; padding:0; }
"""

JS = """
function replay(card) {
  card.querySelectorAll('img[data-anim]').forEach(function (im) { var s = im.getAttribute('src');
    im.setAttribute('src', ''); im.setAttribute('src', s); });
  card.querySelectorAll('video').forEach(function (v) { v.currentTime = 0; v.play(); });
}
document.addEventListener('click', function (e) {
  var b = e.target.closest('button[data-replay]');
  if (!b) return;
  if (b.dataset.replay === 'all') document.querySelectorAll('article.item').forEach(replay);
  else replay(b.closest('article.item'));
});
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.3f}"
    return _e(v)


def _media_html(entry) -> str:
    label = _e(entry.get("label", ""))
    f = entry.get("file")
    if not f:
        why = entry.get("error") or "no motion"
        return f'<figure><div class="missing">{_e(why)}</div><figcaption>{label}</figcaption></figure>'
    frames = entry.get("frames") or 0
    if str(f).endswith(".mp4"):
        tag = f'<video src="{_e(f)}" autoplay loop muted playsinline></video>'
    else:
        tag = f'<img data-anim src="{_e(f)}" alt="{label} ({frames} frames)" loading="lazy">'
    return f'<figure>{tag}<figcaption>{label} · {frames} frames</figcaption></figure>'


def _physics_html(phys: dict) -> str:
    if not phys:
        return ""
    head = "".join(f"<th>{_e(t)}</th>" for t in ("physics", "total", *TERMS))
    rows = []
    for name, row in phys.items():
        if row is None:
            rows.append(f'<tr><td>{_e(name)}</td><td colspan="{1 + len(TERMS)}">no motion</td></tr>')
            continue
        cells = []
        for t in ("total", *TERMS):
            v = row.get(t)
            cls = "" if v is None else ("good" if v >= 0.8 else "bad")
            q = row.get(f"q_{t}")
            tip = f' title="{_e(t)} = {q:.4g} {UNITS.get(t, "")}"' if isinstance(q, float) and np.isfinite(q) else ""
            cells.append(f'<td class="{cls}"{tip}>{_fmt(v) if v is not None else "–"}</td>')
        rows.append(f"<tr><td>{_e(name)}</td>{''.join(cells)}</tr>")
    return f'<table class="physics"><tr>{head}</tr>{"".join(rows)}</table>'


def _judge_html(judge: dict) -> str:
    if not judge:
        return ""
    head = "".join(f"<th>{_e(k)}</th>" for k in judge)
    cells = "".join(f"<td>{_fmt(v)}</td>" for v in judge.values())
    return f'<table class="judge"><tr><th>judge</th>{head}</tr><tr><td>evaluator</td>{cells}</tr></table>'


def _item_html(sec: str, i: int, it: dict) -> str:
    status = it.get("status", "ok")
    badge = f'<span class="status{"" if status == "ok" else " fail"}">{_e(status)}</span>'
    parts = [f'<article class="item" id="{_e(sec)}-{i}" data-task="{_e(it.get("task", ""))}">',
             f'<h3><span>#{i + 1} · {_e(it.get("id", ""))}</span>{badge}</h3>']
    if it.get("task") == "m2t":
        cap = it.get("caption") or "(no caption)"
        parts.append(f'<div class="caption"><b>generated:</b> {_e(cap)}</div>')
    else:
        parts.append(f'<div class="caption">{_e(it.get("caption", ""))}</div>')
    if it.get("reasoning"):
        parts.append(f'<details open><summary>reasoning</summary><p>{_e(it["reasoning"])}</p></details>')
    if status != "ok" and it.get("answer"):
        parts.append(f'<details><summary>raw answer</summary><p>{_e(it["answer"])}</p></details>')
    parts.append('<div class="media">' + "".join(_media_html(m) for m in it.get("media", [])) + "</div>")
    parts.append('<button data-replay="one">replay</button>')
    if it.get("references"):
        refs = "".join(f"<li>{_e(r)}</li>" for r in it["references"])
        parts.append(f'<details open><summary>references</summary><ol class="refs">{refs}</ol></details>')
    parts.append(_judge_html(it.get("judge") or {}))
    parts.append(_physics_html(it.get("physics") or {}))
    parts.append("</article>")
    return "\n".join(parts)


def build_html(sections: list) -> str:
    """The page for a list of section dicts (as :func:`write_gallery` stores them)."""
    nav = " ".join(f'<a href="#{_e(s["section"])}">{_e(s["section"])} ({len(s["items"])})</a>' for s in sections)
    body = []
    for s in sections:
        meta = s.get("meta") or {}
        meta_txt = " · ".join(f"{_e(k)} <code>{_e(v)}</code>" for k, v in meta.items() if v not in (None, ""))
        body.append(f'<section class="task" id="{_e(s["section"])}"><h2>{_e(s.get("title", s["section"]))}</h2>'
                    f'<div class="meta">{meta_txt}{" · " if meta_txt else ""}rendered {_e(s.get("render", ""))} at '
                    f'{_e(s.get("fps", ""))} fps, {_e(s.get("written", ""))}</div><div class="items">')
        body += [_item_html(s["section"], i, it) for i, it in enumerate(s["items"])]
        body.append("</div></section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>MoRL results gallery</title><style>{CSS}</style></head><body>"
            f"<header><h1>MoRL results gallery</h1><nav>{nav}</nav>"
            '<button data-replay="all">replay all</button></header>'
            f"<main>{''.join(body)}</main><script>{JS}</script></body></html>\n")


# ============================================================================ eval_mllm.py --gallery
def _rank(d_own: float, d_others: np.ndarray) -> int:
    return 1 + int((np.asarray(d_others) < d_own).sum())


def eval_gallery(args, gen, vq, wrapper, wv, out_dir, decode, pool: int = 32) -> Path:
    """``--gallery N`` of eval_mllm.py: generate for the first N items of the split (one more batched
    call through ``gen``, a fresh :class:`eval_mllm.Generator`, so the reported counts are untouched;
    greedy decoding reproduces the evaluation's outputs, sampling / CoM draw new ones), score them with
    the judge and the physics reward, and write ``out_dir/gallery/index.html``."""
    from dataset.humanml3d import HumanML3DReader
    from utils.motion_process import recover_from_ric
    from utils.paramUtil import get_spec

    n = int(args.gallery)
    task = args.eval_task
    spec = get_spec(args.dataname)
    reader = HumanML3DReader(args.data_root, args.split, args.dataname, progress=False)
    items = reader.items[: args.max_items] if args.max_items else reader.items
    n = min(n, len(items))
    P = min(len(items), max(pool, n))
    joints_of = lambda f: np.asarray(recover_from_ric(np.asarray(f, np.float32), spec.joints_num))  # noqa: E731
    gt = [it["motion"][:196] for it in items[:P]]
    m_emb = wrapper.embed_raw_motions(gt).cpu().numpy()
    section = task + ("_com" if getattr(args, "use_com", False) else "")
    meta = {"checkpoint": getattr(args, "eval_ckpt", ""), "split": args.split, "data": args.data_root,
            "decoding": "Chain-of-Motion" if getattr(args, "use_com", False) else
            ("sampling" if getattr(args, "do_sample", False) else "greedy / beam")}
    out = []
    if task == "t2m":
        caps = [items[i]["captions"][0] for i in range(P)]
        outs = gen("t2m", [c["caption"] for c in caps[:n]])
        raw = decode(vq, outs)
        t_emb = wrapper.embed_token_lists([c["tokens"] for c in caps], wv).cpu().numpy()
        g_emb = wrapper.embed_raw_motions(raw).cpu().numpy()
        gen_j = [joints_of(r) if len(r) >= 2 else None for r in raw]
        gt_j = [joints_of(g) for g in gt[:n]]
        phys = physics_rows(gen_j + gt_j, args.dataname)
        for i in range(n):
            d_gen = float(np.linalg.norm(t_emb[i] - g_emb[i]))
            others = np.linalg.norm(m_emb[np.arange(P) != i] - t_emb[i], axis=1)
            judge = {"judge distance (generated)": d_gen,
                     "judge distance (ground truth)": float(np.linalg.norm(t_emb[i] - m_emb[i])),
                     "judge rank": f"{_rank(d_gen, others)} / {P}"}
            o = outs[i]
            no_codes = not o.get("motion_codes")
            out.append(t2m_item(items[i]["name"], caps[i]["caption"], o.get("reasoning", ""), gt_j[i],
                                None if no_codes else gen_j[i], judge,
                                {"generated": None if no_codes else phys[i], "ground truth": phys[n + i]},
                                status=o.get("status", "ok"), answer=o.get("text", "")))
        title = f"text → motion: {n} {args.split} items"
    else:
        from models.vqvae import encode_motions
        from utils.eval_m2t import caption_embeddings
        model, mean, std = vq
        codes = encode_motions(model, gt[:n], mean, std, device=next(model.parameters()).device)
        outs = gen("m2t", codes)
        cands = [o.get("answer", "") for o in outs]
        refs = [[c["caption"] for c in it["captions"]] for it in items[:P]]
        c_emb = caption_embeddings(wrapper, wv, cands + [r[0] for r in refs])
        g_emb, r_emb = c_emb[:n], c_emb[n:]
        for i in range(n):
            d_gen = float(np.linalg.norm(m_emb[i] - g_emb[i]))
            others = np.linalg.norm(r_emb[np.arange(P) != i] - m_emb[i], axis=1)
            judge = {"judge distance (generated)": d_gen,
                     "judge distance (reference 1)": float(np.linalg.norm(m_emb[i] - r_emb[i])),
                     "judge rank": f"{_rank(d_gen, others)} / {P}"}
            out.append(m2t_item(items[i]["name"], joints_of(gt[i]), cands[i], outs[i].get("reasoning", ""),
                                refs[i], judge, status=outs[i].get("status", "ok")))
        title = f"motion → text: {n} {args.split} items"
    return write_gallery(Path(out_dir) / "gallery", out, section=section, title=title, meta=meta,
                         render=getattr(args, "gallery_render", "skeleton"),
                         body_model=getattr(args, "body_model", "mannequin"),
                         body_model_dir=getattr(args, "body_model_dir", None),
                         progress=not getattr(args, "no_progress", False))


def demo_gallery(results: dict, save_dir, n: int, render: str = "skeleton", body_model: str = "mannequin",
                 body_model_dir=None) -> Path:
    """``demo.py --gallery N``: the first N results of the demo (``results.json`` content) as a page in
    ``save_dir/gallery/``; motions are read back from the files the demo wrote."""
    save_dir = Path(save_dir)
    items = []
    for rec in results.get("results", [])[: max(0, int(n))]:
        if results.get("mode") == "t2m":
            f = (rec.get("files") or {}).get("joints")
            j = np.load(f) if f and Path(f).is_file() else None
            items.append(t2m_item(rec["index"], rec["prompt"], rec.get("reasoning", ""), None, j,
                                  status=rec.get("status", "ok"), answer=rec.get("text", "")))
        else:
            f = rec.get("motion_file")
            j = None
            try:
                arr = np.load(f)
                if arr.ndim == 3:
                    j = arr
                else:
                    from utils.motion_process import recover_from_ric
                    from utils.paramUtil import spec_for_feature_dim
                    spec = spec_for_feature_dim(arr.shape[-1])
                    j = np.asarray(recover_from_ric(arr.astype(np.float32), spec.joints_num))
            except Exception:  # noqa: BLE001 - the page shows "no motion"
                j = None
            items.append(m2t_item(Path(f).name if f else rec["index"], j, rec.get("caption", ""),
                                  rec.get("reasoning", ""), [], status=rec.get("status", "ok")))
    return write_gallery(save_dir / "gallery", items, section=f"demo_{results.get('mode', 't2m')}",
                         title=f"demo: {results.get('mode', '')}", meta={"checkpoint": results.get("model_ckpt")},
                         render=render, body_model=body_model, body_model_dir=body_model_dir)
