"""The Gradio page of ``demo.py --web`` over :class:`utils.web_demo.WebDemo` (Gradio 6; works offline).

Two tabs: text -> motion (reasoning, status, the animation, downloads: joints .npy, features .npy, BVH,
GIF/MP4, results.json) and motion -> caption (upload .npy / .bvh, optional joint mapping JSON for the
BVH; caption, reasoning, status and the uploaded motion animated). Chain-of-Motion (on/off, K, T),
sampling and the seed apply to both. A bad input is a ``gr.Error`` with demo.py's one-line message; a
generation without motion / caption is a ``gr.Warning`` plus the failure status in the page.
"""
from __future__ import annotations

import html
import os
import traceback

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry, no version check
import gradio as gr  # noqa: E402

from demo import DemoError, one_line
from models.prompts import FAILURE_KINDS

DOWNLOADS = ("joints", "features", "bvh", "animation")


def _error(exc: Exception) -> gr.Error:
    if isinstance(exc, DemoError):
        # stays until closed: the message names the file and what is wrong with it
        return gr.Error(html.escape(str(exc)), title="Bad input", duration=None, print_exception=False)
    traceback.print_exc()
    return gr.Error(html.escape(f"internal error: {one_line(exc, 240)}"), title="Error")


def _status_line(rec: dict, what: str) -> str:
    status = rec.get("status", "ok")
    if status == "ok":
        return f"**Status:** ok ({what})"
    why = FAILURE_KINDS.get(status, status)
    raw = one_line(rec.get("text") or "", 200) or "(empty output)"
    return f"**Status:** {html.escape(status)}: {html.escape(why)}. Raw output: `{html.escape(raw)}`"


def _com_line(com: dict) -> str:
    if not com.get("used"):
        return "Chain-of-Motion: off"
    return (f"Chain-of-Motion: K={com['candidates']}, T={com['refine_steps']} "
            f"(scorer: {html.escape(str(com.get('scorer', '?')))})")


def make_handlers(demo):
    """(t2m, m2t) callables of the page; usable directly (tests)."""

    def t2m(prompt, use_com, candidates, refine_steps, seed, sample):
        try:
            rec = demo.text_to_motion(prompt, use_com, candidates, refine_steps, seed, sample)
        except Exception as exc:  # noqa: BLE001 - the server keeps running; the page shows the message
            raise _error(exc) from exc
        files = rec.get("files") or {}
        anim = files.get("animation")
        gif = anim if anim and anim.endswith(".gif") else None
        mp4 = anim if anim and anim.endswith(".mp4") else None
        downloads = [files[k] for k in DOWNLOADS if files.get(k)] + [rec["results_json"]]
        if not rec.get("codes"):
            gr.Warning(f"No motion generated ({rec.get('status')}): the model gave no motion codes.")
            status = _status_line(rec, "") + " - no motion"
        else:
            status = _status_line(rec, f"{len(rec['codes'])} motion codes, {rec.get('frames', 0)} frames")
        errs = files.get("errors") or {}
        if errs:
            status += "  \n" + "; ".join(f"could not write the {k}: {html.escape(v)}" for k, v in errs.items())
        status += "  \n" + _com_line(rec["com"])
        return (rec.get("reasoning") or "(no reasoning)", status, gr.update(value=gif, visible=mp4 is None),
                gr.update(value=mp4, visible=mp4 is not None), downloads)

    def m2t(path, mapping, use_com, candidates, refine_steps, seed, sample):
        try:
            rec = demo.motion_to_caption(path, use_com, candidates, refine_steps, seed, sample, mapping=mapping)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc) from exc
        caption = rec.get("caption") or ""
        if not caption:
            gr.Warning(f"No caption ({rec.get('status')}): see the status line.")
        status = _status_line(rec, f"{rec['input_kind']}, {rec['frames']} frames, {len(rec['codes'])} codes")
        if rec["frames"] > 196:
            status += "  \nnote: longer than the training clips (at most 196 frames); expect a less reliable caption"
        status += "  \n" + _com_line(rec["com"])
        anim = (rec.get("files") or {}).get("animation")
        return caption or "(no caption)", rec.get("reasoning") or "(no reasoning)", status, anim

    return t2m, m2t


def build_app(demo) -> gr.Blocks:
    args = demo.args
    t2m_fn, m2t_fn = make_handlers(demo)
    with gr.Blocks(title="MoRL demo", analytics_enabled=False) as app:
        gr.Markdown("## MoRL: text ↔ motion with reasoning\n"
                    f"t2m checkpoint `{html.escape(str(args.eval_ckpt))}` · m2t checkpoint "
                    f"`{html.escape(str(args.m2t_model_ckpt))}` · VQ `{html.escape(str(args.vq_ckpt))}`")
        with gr.Row():
            use_com = gr.Checkbox(label="Chain-of-Motion", value=bool(args.use_com), elem_id="use-com")
            k = gr.Slider(1, 16, value=min(max(int(args.com_candidates), 1), 16), step=1, label="K candidates",
                          elem_id="com-k")
            t = gr.Slider(1, 8, value=min(max(int(args.com_refine_steps), 1), 8), step=1,
                          label="T refinement steps", elem_id="com-t")
            seed = gr.Number(value=int(args.seed), precision=0, label="Seed", elem_id="seed")
            sample = gr.Checkbox(label="Sample (temperature / top-p)", value=bool(args.do_sample), elem_id="sample")
        common = [use_com, k, t, seed, sample]
        with gr.Tab("Text → motion"):
            prompt = gr.Textbox(label="Prompt", placeholder="a person walks forward and waves.", elem_id="prompt")
            gen = gr.Button("Generate motion", variant="primary", elem_id="generate")
            t2m_status = gr.Markdown(elem_id="t2m-status")
            reasoning = gr.Textbox(label="Reasoning", lines=4, interactive=False, elem_id="t2m-reasoning")
            gif = gr.Image(label="Animation", type="filepath", interactive=False, elem_id="t2m-animation")
            video = gr.Video(label="Animation", interactive=False, visible=False, elem_id="t2m-video")
            files = gr.File(label="Downloads (joints .npy, features .npy, BVH, animation, results.json)",
                            file_count="multiple", interactive=False, elem_id="t2m-files")
        with gr.Tab("Motion → caption"):
            upload = gr.File(label="Motion: .npy features (T, 263) or joints (T, 22, 3), or .bvh",
                             file_types=[".npy", ".bvh"], type="filepath", elem_id="motion-upload")
            mapping = gr.File(label="Joint mapping for a .bvh (JSON, optional; default: demo.py's BVH joint names)",
                              file_types=[".json"], type="filepath", elem_id="bvh-mapping")
            cap = gr.Button("Caption motion", variant="primary", elem_id="caption")
            m2t_status = gr.Markdown(elem_id="m2t-status")
            caption = gr.Textbox(label="Caption", interactive=False, elem_id="m2t-caption")
            m2t_reasoning = gr.Textbox(label="Reasoning", lines=4, interactive=False, elem_id="m2t-reasoning")
            m2t_anim = gr.Image(label="Uploaded motion", type="filepath", interactive=False, elem_id="m2t-animation")
        # one model, one request at a time: both events share one concurrency group of size 1
        gen.click(t2m_fn, [prompt] + common, [reasoning, t2m_status, gif, video, files],
                  concurrency_limit=1, concurrency_id="model", api_name="text_to_motion")
        prompt.submit(t2m_fn, [prompt] + common, [reasoning, t2m_status, gif, video, files],
                      concurrency_limit=1, concurrency_id="model", api_visibility="private")
        cap.click(m2t_fn, [upload, mapping] + common, [caption, m2t_reasoning, m2t_status, m2t_anim],
                  concurrency_limit=1, concurrency_id="model", api_name="motion_to_caption")
    return app
