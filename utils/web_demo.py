"""The browser demo's model side: ``python demo.py --web`` (the Gradio page is ``utils/web_ui.py``).

:class:`WebDemo` loads the VQ-VAE and the MotionLLM checkpoint(s) once and answers one request at a
time (a lock here, a concurrency-1 queue in the page) through demo.py's own functions: ``run_t2m``
(generation with or without Chain-of-Motion, joints / features / BVH / animation files) and
``run_m2t``. Uploads (``.npy`` features (T, 263) or joints (T, 22, 3), ``.bvh`` with a joint mapping)
are checked before anything runs; every problem is a :class:`demo.DemoError` with one line that
names the file, which the page shows as an error message (the server keeps running).

Without ``--model-ckpt`` the quickstart's checkpoints are used (:data:`QUICKSTART`); a missing one
stops the demo with its path and the command that creates it.
"""
from __future__ import annotations

import copy
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from demo import (ROOT, DemoError, check_model_ckpt, load_model, load_motion_file, load_runtime, load_vq_assets,
                  one_line, run_m2t, run_t2m, write_motion)

# the quickstart's outputs (quickstart.py stages(), default --out-dir experiments, --rl-epochs 1)
QUICKSTART = {
    "t2m": "experiments/morl_rlvr_t2m/motionllm_rlvr_epoch_0.pth",
    "m2t": "experiments/morl_rlvr_m2t/motionllm_rlvr_epoch_0.pth",
    "vq": "experiments/vq_synthetic/net_last.pth",
    "critic": "experiments/evaluator_critic/t2m/text_mot_match",  # the CoM scorer's evaluator
    "glove": "data/synthetic_h3d/glove",
}
QUICKSTART_CMD = "bash quickstart.sh"
MAX_PROMPT_CHARS = 400


def _default_eval_ckpt() -> str:
    from options.option_llm import get_demo_parser
    return get_demo_parser().get_default("eval_ckpt")


def resolve_checkpoints(args):
    """Fill in the quickstart's checkpoints when no --model-ckpt was given; check that every file exists."""
    quick = not args.model_ckpt and args.eval_ckpt == _default_eval_ckpt()
    if quick:
        args.eval_ckpt = str(ROOT / QUICKSTART["t2m"])
        args.m2t_model_ckpt = args.m2t_model_ckpt or str(ROOT / QUICKSTART["m2t"])
        args.vq_ckpt = args.vq_ckpt or str(ROOT / QUICKSTART["vq"])
        if not getattr(args, "com_evaluator_dir", None) and (ROOT / QUICKSTART["critic"]).is_dir():
            args.com_evaluator_dir = str(ROOT / QUICKSTART["critic"])  # as the quickstart's CoM evaluation
            if (ROOT / QUICKSTART["glove"]).is_dir():
                args.reward_glove_path = str(ROOT / QUICKSTART["glove"])
            args.nli_model_name = "none"
        for flag, path in (("--model-ckpt", args.eval_ckpt), ("--m2t-model-ckpt", args.m2t_model_ckpt),
                           ("--vq-ckpt", args.vq_ckpt)):
            if not Path(path).is_file():
                raise DemoError(f"--web: the quickstart's checkpoint {path} is missing; create it with "
                                f"`{QUICKSTART_CMD}` (in {ROOT}), or pass --model-ckpt / --m2t-model-ckpt / "
                                f"--vq-ckpt ({flag} here)")
    args.m2t_model_ckpt = args.m2t_model_ckpt or args.eval_ckpt
    check_model_ckpt(args)
    if not Path(args.m2t_model_ckpt).is_file():
        raise DemoError(f"--m2t-model-ckpt: checkpoint not found: {args.m2t_model_ckpt}")
    return args


def t2m_joint_mapping(dataname: str = "t2m") -> dict:
    """The identity mapping of the BVH files demo.py writes (utils/bvh.py uses the skeleton's joint names)."""
    from utils.paramUtil import get_spec
    return {n: n for n in get_spec(dataname).joint_names}


class WebDemo:
    """The models, loaded once, and the two requests of the page."""

    def __init__(self, args):
        self.args = resolve_checkpoints(args)
        self.vq, self.mean, self.std = load_vq_assets(args)
        self.device, self.model_t2m = load_runtime(args, self.vq)
        if Path(args.m2t_model_ckpt).resolve() == Path(args.eval_ckpt).resolve():
            self.model_m2t = self.model_t2m
        else:
            a = copy.copy(args)
            a.eval_ckpt = args.m2t_model_ckpt
            self.model_m2t = load_model(a, self.device, self.vq)
        self.out_root = Path(args.save_dir).resolve() / "web"
        self.out_root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self._n = 0

    # ------------------------------------------------------------------ helpers
    def _request_args(self, use_com, candidates, refine_steps, seed, sample):
        a = copy.copy(self.args)
        a.use_com = bool(use_com)
        a.com_candidates, a.com_refine_steps = int(candidates), int(refine_steps)
        if a.use_com and (a.com_candidates < 1 or a.com_refine_steps < 1):
            raise DemoError("Chain-of-Motion needs K >= 1 candidates and T >= 1 refinement steps")
        try:
            a.seed = int(seed)
        except (TypeError, ValueError):
            raise DemoError(f"seed must be an integer, got {seed!r}") from None
        a.do_sample = bool(sample)
        return a

    def _out_dir(self, kind: str) -> Path:
        self._n += 1
        d = self.out_root / f"{time.strftime('%Y%m%d-%H%M%S')}_{self._n:04d}_{kind}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _run(self, a, fn):
        from utils.device import seed_everything
        with self.lock:  # one request at a time on the model
            seed_everything(a.seed)
            try:
                return fn()
            except ValueError as exc:  # e.g. the CoM scorer's checks
                raise DemoError(one_line(exc)) from exc

    # ------------------------------------------------------------------ requests
    def text_to_motion(self, prompt, use_com=False, candidates=4, refine_steps=2, seed=0, sample=False) -> dict:
        """One prompt -> demo.py's result record (reasoning, status, files) plus ``com`` and ``dir``."""
        prompt = " ".join(str(prompt or "").split())
        if not prompt:
            raise DemoError("type a prompt first (e.g. 'a person walks forward and waves.')")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise DemoError(f"the prompt is {len(prompt)} characters long; keep it under {MAX_PROMPT_CHARS}")
        a = self._request_args(use_com, candidates, refine_steps, seed, sample)
        out = self._out_dir("t2m")
        res = self._run(a, lambda: run_t2m(a, self.model_t2m, self.vq, self.mean, self.std, [prompt], out))
        (out / "results.json").write_text(json.dumps(res, indent=1))
        rec = dict(res["results"][0])
        rec.update(com=res["com"], dir=str(out), results_json=str(out / "results.json"))
        return rec

    def load_upload(self, path, mapping=None):
        """(raw features (T, D), kind) of an uploaded .npy / .bvh; a DemoError naming the file when it is no motion."""
        if not path:
            raise DemoError("upload a motion file first: .npy features (T, 263) or joints (T, 22, 3), or .bvh")
        path = Path(path)
        name = path.name
        limit = int(self.args.web_max_frames)
        suffix = path.suffix.lower()
        if suffix == ".npy":
            try:  # the header only: a huge upload is refused before it is read
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
                shape = tuple(arr.shape)
            except Exception as exc:  # noqa: BLE001
                raise DemoError(f"{name}: not a motion: cannot read it as a .npy array ({one_line(exc, 160)})") \
                    from None
            if len(shape) not in (2, 3) or not shape[0]:
                raise DemoError(f"{name}: shape {shape} is neither features (T, {self.vq.input_dim}) nor joints "
                                f"(T, {len(t2m_joint_mapping(self.args.dataname))}, 3)")
            if shape[0] > limit:
                raise DemoError(f"{name}: {shape[0]} frames is too long; at most {limit} frames "
                                f"(--web-max-frames) are accepted")
            if not np.issubdtype(arr.dtype, np.number):
                raise DemoError(f"{name}: not a motion: dtype {arr.dtype} is not numeric")
            feats, kind = load_motion_file(path, self.vq, self.mean, self.std, self.args.dataname, label=name)
            return feats, kind
        if suffix == ".bvh":
            return self._load_bvh(path, mapping)
        raise DemoError(f"{name}: not a motion file; upload .npy features (T, {self.vq.input_dim}) or joints "
                        f"(T, {len(t2m_joint_mapping(self.args.dataname))}, 3), or a .bvh")

    def _load_bvh(self, path: Path, mapping=None):
        from prepare.convert_mocap import ConversionError, MappingError, convert_bvh, resampled_length
        from utils.bvh import BvhError, read_bvh
        from utils.paramUtil import get_spec
        name, dataname = path.name, self.args.dataname
        mapping = mapping or self.args.bvh_mapping or t2m_joint_mapping(dataname)
        try:
            bvh = read_bvh(path)
            n = resampled_length(bvh.num_frames, bvh.fps, get_spec(dataname).fps)
            if n > int(self.args.web_max_frames):
                raise DemoError(f"{name}: {n} frames at {get_spec(dataname).fps:g} fps is too long; at most "
                                f"{self.args.web_max_frames} frames (--web-max-frames) are accepted")
            with tempfile.TemporaryDirectory(prefix="morl_bvh_") as tmp:
                res = convert_bvh(path, mapping, tmp, name="upload", dataname=dataname, log=None)
                feats_path = res["features"]
                return load_motion_file(feats_path, self.vq, self.mean, self.std, dataname, label=name)[0], "bvh"
        except MappingError as exc:
            raise DemoError(f"{name}: the joint mapping does not fit this BVH ({one_line(exc, 240)}); upload a "
                            "mapping JSON (see prepare/mappings/mocapbank.json)") from None
        except (BvhError, ConversionError, ValueError, OSError, UnicodeDecodeError) as exc:
            raise DemoError(f"{name}: not a usable BVH motion ({one_line(exc, 240)})") from None

    def motion_to_caption(self, path, use_com=False, candidates=4, refine_steps=2, seed=0, sample=False,
                          mapping=None) -> dict:
        """An uploaded motion -> demo.py's m2t record (caption, reasoning, status) plus its animation."""
        feats, kind = self.load_upload(path, mapping)
        a = self._request_args(use_com, candidates, refine_steps, seed, sample)
        out = self._out_dir("m2t")
        name = Path(path).name
        res = self._run(a, lambda: run_m2t(a, self.model_m2t, self.vq, self.mean, self.std, [name],
                                           [(feats, kind)]))
        rec = dict(res["results"][0])
        rec.update(com=res["com"], dir=str(out), files={})
        if not self.args.no_render:  # the uploaded motion, animated
            from demo import JOINTS_NUM
            from utils.motion_process import recover_from_ric
            joints = np.asarray(recover_from_ric(feats, JOINTS_NUM[self.args.dataname]), dtype=np.float32)
            rec["files"] = write_motion(out, "input", feats, joints, title=rec.get("caption") or name,
                                        dataname=self.args.dataname, mp4=self.args.mp4, bvh=False,
                                        max_frames=self.args.render_max_frames,
                                        renderer=getattr(self.args, "render", "skeleton"),
                                        body_model=getattr(self.args, "body_model", "mannequin"),
                                        body_model_dir=getattr(self.args, "body_model_dir", None))
        (out / "results.json").write_text(json.dumps({**res, "results": [rec]}, indent=1))
        return rec


def serve(args, block: bool = True):
    """``demo.py --web``: load the models once, then serve the page (returns (app, url) when not blocking)."""
    import os
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry, no version check
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise DemoError("--web needs Gradio: pip install -r requirements.txt (gradio)") from None
    if args.text or args.text_file or args.motion:
        raise DemoError("--web takes its prompts and motions in the browser; drop --text/--text-file/--motion")
    from utils.web_ui import build_app
    demo = WebDemo(args)
    app = build_app(demo)
    app.queue(default_concurrency_limit=1, max_size=32)  # one request at a time on the model; the rest wait
    print(f"[demo] web demo: t2m {args.eval_ckpt}, m2t {args.m2t_model_ckpt}, VQ {args.vq_ckpt}; outputs under "
          f"{demo.out_root}; serving on {args.host} (--share {'on' if args.share else 'off'})")
    _, url, share_url = app.launch(server_name=args.host, server_port=args.port or None, share=bool(args.share),
                                   allowed_paths=[str(demo.out_root)], max_file_size="50mb", show_error=True,
                                   prevent_thread_lock=True, quiet=True, ssr_mode=False)
    print(f"[demo] web demo running: {url}" + (f" (public link: {share_url})" if share_url else "")
          + ("; Ctrl+C stops it" if block else ""), flush=True)
    if block:
        app.block_thread()  # until Ctrl+C
    return app, url
