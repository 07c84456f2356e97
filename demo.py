#!/usr/bin/env python
"""MoRL demo: text -> motion and motion -> caption with a trained MotionLLM checkpoint.

Text to motion (all prompts in one batched ``generate`` call):

    python demo.py --model-ckpt experiments/morl_sft_t2m/motionllm_t2m_best.pth \\
        --vq-ckpt experiments/vq/net_last.pth --text "a person walks forward." [--text ...] \\
        [--text-file prompts.txt] [--save-dir ./demo] [--mp4]

  writes, per prompt ``i`` that produced motion codes, into ``--save-dir``:
  ``<i>_<slug>.npy`` (joints (T, J, 3)), ``<i>_<slug>_features.npy`` (de-normalised features),
  ``<i>_<slug>.gif`` (``.mp4`` with ``--mp4`` when ffmpeg exists), ``<i>_<slug>.bvh``; plus
  ``results.json`` for every prompt. A generation without motion codes is reported and counted.

Motion to caption:

    python demo.py --model-ckpt CKPT --vq-ckpt VQ --motion clip.npy [--motion other.npy]

  ``clip.npy`` holds raw (un-normalised) features (T, 263) / (T, 251 for kit) or joints
  (T, 22, 3) / (T, 21, 3); joints are converted with ``utils.motion_process.extract_features``.

Web demo (Gradio, offline, on 127.0.0.1 unless ``--host``; ``--share`` only when given):

    python demo.py --web [--port 7860] [--model-ckpt T2M_CKPT --m2t-model-ckpt M2T_CKPT --vq-ckpt VQ]

  defaults to the quickstart's checkpoints; see ``utils/web_demo.py`` and docs/web-demo.md.

Chain-of-Motion (``--use-com``, K = ``--com-candidates``, T = ``--com-refine-steps``) ranks candidates
with a critic evaluator (``--com-evaluator-dir`` or ``--reward-dataset-opt-path``; ``--reward-align-weight 0``
ranks without one). Flags: ``options/option_llm.py`` (the original ``option_llm`` names, plus the
demo's inputs and outputs). Missing assets stop the demo with exit code 2 and one line.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if __name__ == "__main__":  # one module either way: utils/web_demo.py imports demo (and its DemoError)
    sys.modules.setdefault("demo", sys.modules[__name__])
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

import numpy as np
import torch

from models.prompts import FAILURE_KINDS  # noqa: E402
from utils.io import check_writable  # noqa: E402


JOINTS_NUM = {"t2m": 22, "kit": 21}
FEATURE_DIM = {"t2m": 263, "kit": 251}


class DemoError(Exception):
    """A user-facing problem (missing file, bad shape, ...): one line, exit code 2."""


# ============================================================================ helpers
def slugify(text: str, max_len: int = 40) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = "_".join(words)[:max_len].strip("_")
    return slug or "prompt"


def one_line(text: str, limit: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def read_prompts(args) -> list:
    prompts = [t.strip() for t in args.text if t and t.strip()]
    if args.text_file:
        path = Path(args.text_file)
        if not path.is_file():
            raise DemoError(f"--text-file: file not found: {path}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DemoError(f"--text-file {path}: cannot read ({exc.strerror or exc})") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise DemoError(f"--text-file {path}: line {line}: not valid UTF-8 text (byte 0x{data[exc.start]:02x}); "
                            "give a UTF-8 text file with one prompt per line") from None
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise DemoError(f"--text-file {path}: line {line}: contains NUL bytes (a binary file?); "
                            "give a UTF-8 text file with one prompt per line")
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                prompts.append(line)
        if not prompts:
            raise DemoError(f"--text-file: no prompts in {path}")
    return prompts


def pick_device(name: str) -> torch.device:
    from utils.device import resolve_device
    try:
        return resolve_device(name)
    except RuntimeError as exc:  # the original demo falls back to cpu when cuda is missing
        print(f"[demo] {exc}; falling back to cpu")
        return torch.device("cpu")


def check_model_ckpt(args) -> Path:
    ckpt = Path(args.eval_ckpt)
    if not ckpt.is_file():
        raise DemoError(f"--model-ckpt: checkpoint not found: {ckpt}")
    return ckpt


def load_vq_assets(args):
    """(vq, mean, std) from --vq-ckpt (and its meta/ statistics), checked against --dataname."""
    if not args.vq_ckpt:
        raise DemoError("--vq-ckpt is required (the VQ-VAE that decodes/encodes the motion tokens)")
    vq_path = Path(args.vq_ckpt)
    if not vq_path.is_file():
        raise DemoError(f"--vq-ckpt: VQ-VAE checkpoint not found: {vq_path}")
    from models.vqvae import load_vq_with_stats
    try:
        vq, mean, std = load_vq_with_stats(vq_path, device="cpu", meta_dir=args.meta_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise DemoError(f"--vq-ckpt {vq_path}: {one_line(exc)}") from exc
    if vq.input_dim != FEATURE_DIM[args.dataname]:
        raise DemoError(f"--vq-ckpt {vq_path}: feature width {vq.input_dim} does not match --dataname "
                        f"{args.dataname} ({FEATURE_DIM[args.dataname]})")
    vq.eval()
    return vq, np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)


def load_model(args, device, vq):
    """The MotionLLM of --model-ckpt; its motion vocabulary must match the VQ codebook."""
    ckpt = check_model_ckpt(args)
    from models.mllm import MotionLLM
    try:
        model = MotionLLM.from_checkpoint(ckpt, device=device, llm_backbone=args.llm_backbone, dtype=args.dtype)
        model.use_format_mask = getattr(args, "format_mask", True)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DemoError(f"--model-ckpt {ckpt}: cannot load ({one_line(exc, 240)}); "
                        "pass --llm-backbone if the backbone moved") from exc
    if vq.nb_code != model.cfg.nb_code:
        raise DemoError(f"--vq-ckpt {args.vq_ckpt}: codebook size {vq.nb_code} != {model.cfg.nb_code} motion tokens "
                        f"of --model-ckpt {ckpt}")
    return model


def generate(model, task, inputs, args, vq_stats=None) -> tuple:
    """(outputs, com_info): one batched generate call, or Chain-of-Motion when asked for (a failure
    there stops the demo: it never falls back to plain decoding silently)."""
    gen_kw = dict(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens)
    key = "captions" if task == "t2m" else "motion_codes"
    if not args.use_com:
        return model.generate(task, num_return_sequences=1, do_sample=args.do_sample, **{key: inputs},
                              **gen_kw), {"requested": False, "used": False}
    from models.com import chain_of_motion
    from rewards.callbacks import build_com_scorer
    try:
        scorer, scorer_name = build_com_scorer(args, task, vq_stats, model.device)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise DemoError(f"--use-com: cannot build the CoM scorer ({one_line(exc, 300)}); pass --com-evaluator-dir "
                        "(a trained evaluator) or --reward-align-weight 0 to rank without one") from exc
    out, stats = chain_of_motion(model, task, inputs, scorer, args.com_candidates, args.com_refine_steps, **gen_kw)
    print(f"[demo] Chain-of-Motion: K={args.com_candidates}, T={args.com_refine_steps} (scorer: {scorer_name})")
    return out, {"requested": True, "used": True, "candidates": args.com_candidates,
                 "refine_steps": args.com_refine_steps, "scorer": scorer_name, "stats": stats}


@torch.no_grad()
def codes_to_motion(vq, mean, std, codes, dataname="t2m"):
    """Motion codes -> (de-normalised features (T, D), joints (T, J, 3))."""
    from utils.motion_process import recover_from_ric
    if not codes:
        raise ValueError("no motion codes to decode")
    x = torch.as_tensor([list(codes)], dtype=torch.long)
    feats = vq.decode(x)[0].float().cpu().numpy()
    feats = (feats * std + mean).astype(np.float32)
    joints = np.asarray(recover_from_ric(feats, JOINTS_NUM[dataname]), dtype=np.float32)
    return feats, joints


def write_motion(save_dir, stem, feats, joints, title="", dataname="t2m", render=True, mp4=False, bvh=True,
                 max_frames=None, renderer="skeleton", body_model="mannequin", body_model_dir=None) -> dict:
    """Write ``<stem>.npy`` (joints), ``<stem>_features.npy``, the animation and the BVH; returns
    {kind: path} (rendering/BVH problems are reported under 'errors', never raised)."""
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    files, errors = {}, {}
    np.save(save_dir / f"{stem}.npy", joints)
    files["joints"] = str(save_dir / f"{stem}.npy")
    np.save(save_dir / f"{stem}_features.npy", feats)
    files["features"] = str(save_dir / f"{stem}_features.npy")
    if bvh:
        try:
            from utils.bvh import write_bvh
            files["bvh"] = str(write_bvh(save_dir / f"{stem}.bvh", joints, dataname=dataname))
        except Exception as exc:  # noqa: BLE001
            errors["bvh"] = one_line(exc)
    if render and renderer == "mesh":  # shaded skinned body (utils/mesh_render.py); .gif without ffmpeg
        try:
            from utils.mesh_render import render_mesh
            path = render_mesh(save_dir / f"{stem}{'.mp4' if mp4 else '.gif'}", joints, title=title,
                               max_frames=max_frames, body_model=body_model, body_model_dir=body_model_dir)
            files["animation"] = str(path)
        except Exception as exc:  # noqa: BLE001
            errors["animation"] = one_line(exc)
    elif render:
        ext = ".gif"
        if mp4:
            if shutil.which("ffmpeg"):
                ext = ".mp4"
            else:
                print("[demo] --mp4: ffmpeg not found on PATH, writing .gif instead")
        try:
            from utils.plot_script import render_joints
            path = render_joints(save_dir / f"{stem}{ext}", joints, title=title, dataname=dataname,
                                 max_frames=max_frames)
            files["animation"] = str(path)
        except Exception as exc:  # noqa: BLE001
            errors["animation"] = one_line(exc)
    if errors:
        files["errors"] = errors
        for k, v in errors.items():
            print(f"[demo] could not write the {k} for {stem}: {v}")
    return files


def load_motion_file(path, vq, mean, std, dataname="t2m", label=None):
    """.npy features (T, D) or joints (T, J, 3) -> (raw features, kind). ``label`` names the input in the
    messages (default ``--motion <path>``; the web demo: the uploaded file's name)."""
    from utils.motion_process import extract_features
    path = Path(path)
    label = label or f"--motion {path}"
    if not path.is_file():
        raise DemoError(f"--motion: file not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DemoError(f"{label}: cannot read as .npy ({one_line(exc)})") from exc
    D, J = vq.input_dim, JOINTS_NUM[dataname]
    if arr.ndim == 2 and arr.shape[1] == D:
        feats, kind = arr.astype(np.float32), "features"
    elif arr.ndim == 3 and arr.shape[1:] == (J, 3):
        try:
            feats, kind = extract_features(arr.astype(np.float32), dataname), "joints"
        except Exception as exc:
            raise DemoError(f"{label}: cannot extract features from joints ({one_line(exc)})") from exc
    else:
        raise DemoError(f"{label}: shape {tuple(arr.shape)} is neither features (T, {D}) nor joints "
                        f"(T, {J}, 3)")
    unit = vq.unit_length
    T = len(feats) - len(feats) % unit
    if T < unit:
        raise DemoError(f"{label}: {len(feats)} feature frames, fewer than the VQ unit length {unit}")
    if not np.isfinite(feats).all():
        raise DemoError(f"{label}: contains NaN/inf")
    return feats[:T], kind


@torch.no_grad()
def encode_motion(vq, mean, std, feats) -> list:
    x = torch.from_numpy((feats - mean) / std).float()[None]
    return [int(c) for c in vq.encode(x)[0].tolist()]


# ============================================================================ modes
def run_t2m(args, model, vq, mean, std, prompts, save_dir) -> dict:
    print(f"[demo] text -> motion: {len(prompts)} prompt(s)")
    outputs, com = generate(model, "t2m", prompts, args, (vq, mean, std))
    results, missing = [], 0
    for i, (prompt, out) in enumerate(zip(prompts, outputs)):
        codes = [int(c) for c in out.get("motion_codes") or []]
        rec = {"index": i, "prompt": prompt, "reasoning": out.get("reasoning", ""), "codes": codes,
               "well_formed": bool(out.get("well_formed", False)), "text": out.get("text", ""), "files": {}}
        print(f"\n[{i}] {prompt}")
        print(f"    reasoning: {one_line(rec['reasoning']) or '(empty)'}")
        if not codes:
            missing += 1
            rec["status"] = "no_motion"
            print(f"no motion generated for prompt {i}: {one_line(rec['text']) or '(empty output)'}")
        else:
            try:
                feats, joints = codes_to_motion(vq, mean, std, codes, args.dataname)
            except Exception as exc:  # noqa: BLE001 - one bad prompt must not lose the others
                missing += 1
                rec.update(status="decode_failed", error=one_line(exc))
                print(f"no motion generated for prompt {i}: decoding failed ({one_line(exc)})")
            else:
                stem = f"{i}_{slugify(prompt)}"
                rec["files"] = write_motion(save_dir, stem, feats, joints, title=prompt, dataname=args.dataname,
                                            render=not args.no_render, mp4=args.mp4, bvh=not args.no_bvh,
                                            max_frames=args.render_max_frames,
                                            renderer=getattr(args, "render", "skeleton"),
                                            body_model=getattr(args, "body_model", "mannequin"),
                                            body_model_dir=getattr(args, "body_model_dir", None))
                status = out.get("status", "ok")
                rec.update(status=status, frames=len(joints))
                print(f"    {len(codes)} codes -> {len(joints)} frames -> {save_dir / stem}.*")
                if status != "ok":
                    print(f"    warning: the answer is {status} ({FAILURE_KINDS.get(status, status)}); the motion holds "
                          "the codes generated before that")
        results.append(rec)
    if missing:
        print(f"\n[demo] {missing}/{len(prompts)} prompt(s) produced no motion")
    return {"mode": "t2m", "num_inputs": len(prompts), "num_no_motion": missing, "com": com, "results": results}


def run_m2t(args, model, vq, mean, std, motions, loaded) -> dict:
    codes = [encode_motion(vq, mean, std, f) for f, _ in loaded]
    print(f"[demo] motion -> caption: {len(motions)} motion(s)")
    outputs, com = generate(model, "m2t", codes, args, (vq, mean, std))
    results, empty = [], 0
    for i, (path, (feats, kind), c, out) in enumerate(zip(motions, loaded, codes, outputs)):
        status = out.get("status", "ok")
        caption = (out.get("answer") or "").strip() if status == "ok" else ""
        rec = {"index": i, "motion_file": str(path), "input_kind": kind, "frames": len(feats), "codes": c,
               "reasoning": out.get("reasoning", ""), "caption": caption, "status": status,
               "well_formed": bool(out.get("well_formed", False)), "text": out.get("text", "")}
        if not caption:
            empty += 1
        print(f"\n[{i}] {path} ({kind}, {len(feats)} frames, {len(c)} codes)")
        if len(feats) > 196:
            print(f"    note: {len(feats)} frames is longer than the clips the model was trained on (at most 196 "
                  "frames, 9.8 s at 20 fps); expect a less reliable caption")
        print(f"    reasoning: {one_line(rec['reasoning']) or '(empty)'}")
        why = FAILURE_KINDS.get(status, "empty output") if status != "ok" else "empty output"
        print(f"    caption:   {caption or '(no caption: ' + why + '; raw output: ' + (one_line(rec['text']) or '-') + ')'}")
        results.append(rec)
    return {"mode": "m2t", "num_inputs": len(motions), "num_no_caption": empty, "com": com, "results": results}


def load_runtime(args, vq) -> tuple:
    """(device, model): threads, seed, device and the MotionLLM of --model-ckpt (the slow part)."""
    from utils.device import seed_everything
    from utils.threads import apply_threads
    apply_threads(args.threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    return device, load_model(args, device, vq)


def run(args) -> dict:
    prompts = read_prompts(args)
    if prompts and args.motion:
        raise DemoError("give either --text/--text-file (text -> motion) or --motion (motion -> caption), not both")
    if not prompts and not args.motion:
        raise DemoError("nothing to do: pass --text/--text-file (text -> motion) or --motion FILE.npy "
                        "(motion -> caption)")
    if args.max_new_tokens < 1:
        raise DemoError("--max-new-tokens must be >= 1")
    check_model_ckpt(args)  # every asset check before the (slow) model load
    save_dir = Path(args.save_dir)
    try:
        check_writable(save_dir, "--save-dir")
    except SystemExit as exc:
        raise DemoError(str(exc)) from None
    vq, mean, std = load_vq_assets(args)
    loaded = [load_motion_file(p, vq, mean, std, args.dataname) for p in args.motion]
    device, model = load_runtime(args, vq)
    if prompts:
        res = run_t2m(args, model, vq, mean, std, prompts, save_dir)
    else:
        res = run_m2t(args, model, vq, mean, std, args.motion, loaded)
    res.update(model_ckpt=str(args.eval_ckpt), vq_ckpt=str(args.vq_ckpt), dataname=args.dataname,
               device=str(device), generation={"max_new_tokens": args.max_new_tokens, "do_sample": args.do_sample,
                                               "temperature": args.temperature, "top_p": args.top_p,
                                               "seed": args.seed})
    if getattr(args, "gallery", 0) > 0:  # the first N results as a page (utils/gallery.py)
        from utils.gallery import demo_gallery
        try:
            res["gallery"] = str(demo_gallery(res, save_dir, args.gallery, args.gallery_render, args.body_model,
                                              args.body_model_dir))
            print(f"[demo] gallery: {res['gallery']}")
        except Exception as exc:  # noqa: BLE001 - the results are written all the same
            print(f"[demo] could not write the gallery: {one_line(exc)}")
    from utils.io import atomic_write_json
    atomic_write_json(save_dir / "results.json", res)
    print(f"\n[demo] results written to {save_dir / 'results.json'}")
    return res


def main(argv=None):
    from options.option_llm import get_demo_args
    args = get_demo_args(argv)
    try:
        if getattr(args, "web", False):  # the browser demo (utils/web_demo.py) over the same functions
            from utils.web_demo import serve
            return serve(args)
        return run(args)
    except DemoError as exc:
        print(f"demo.py: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
