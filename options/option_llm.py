"""Options of eval_mllm.py and demo.py (the original release's ``option_llm.py`` names).

Every flag of the original is accepted. The LoRA/backbone flags are read from the checkpoint
(``--llm-backbone`` overrides where the backbone lives), the VQ-VAE architecture from ``--vq-ckpt``,
and the original's VQ training/visualisation leftovers do nothing; ``--help`` says which is which.
"""
from __future__ import annotations

import argparse

from options.common import add_compat_args, add_data_args, add_run_args, fill_data_root
from options.generation import add_com_args, add_generation_args, resolve_decoding
from options.llm import add_llm_args, add_reasoning_args
from options.option_vq import VQ_TRAIN_COMPAT, add_vq_arch_args
from options.rewards import add_reward_args


def _base_parser(description: str, sample_by_default: bool | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = add_run_args(p, exp_name=None, exp_help="results folder under --out-dir (default: the checkpoint's folder)",
                     wandb=False, overwrite=False)
    g.add_argument("--print-iter", type=int, default=200, help="accepted for compatibility; no effect")
    g.add_argument("--eval-iter", type=int, default=1000, help="accepted for compatibility; no effect")
    g.add_argument("--eval-ckpt", type=str, default="ckpt/motionllm.pth", help="MotionLLM checkpoint to evaluate")
    g.add_argument("--model-ckpt", type=str, default=None, help="alias of --eval-ckpt (the original demo's flag)")
    g.add_argument("--save-dir", type=str, default="./demo", help="demo.py output folder (no effect in eval_mllm.py)")
    add_llm_args(p, from_checkpoint=True)
    add_reasoning_args(p, training=False)
    add_generation_args(p, sample_by_default=sample_by_default)
    add_com_args(p)
    add_reward_args(p)
    add_data_args(p)
    add_vq_arch_args(p, from_checkpoint=True)
    add_compat_args(p, "original option_llm.py leftovers (VQ training, visualisation)", VQ_TRAIN_COMPAT)
    return p


def add_eval_args(p: argparse.ArgumentParser, demo: bool = False):
    g = p.add_argument_group("evaluation" + (" (eval_mllm.py; shared by the original option_llm.py, no effect in "
                                              "the demo)" if demo else ""))
    g.add_argument("--eval-task", type=str, default="t2m", choices=["t2m", "m2t"])
    g.add_argument("--split", type=str, default="test")
    g.add_argument("--m2t-eval-split", type=str, default=None, help="alias of --split for m2t")
    g.add_argument("--evaluator-dir", type=str, default="checkpoints/t2m/Comp_v6_KLD005",
                   help="T2M evaluator for the metrics (opt.txt or its folder)")
    g.add_argument("--glove-dir", type=str, default="./glove")
    g.add_argument("--replications", type=int, default=20)
    g.add_argument("--batch-size", type=int, default=32, help="R-precision batch (32 in the protocol)")
    g.add_argument("--gen-batch-size", type=int, default=32, help="inputs per generate call")
    g.add_argument("--m2t-eval-batch-size", type=int, default=None, help="alias of --gen-batch-size for m2t")
    g.add_argument("--m2t-eval-num-workers", type=int, default=0, help="accepted for compatibility; no effect")
    g.add_argument("--gen-engine", type=str, default="hf", choices=["hf", "vllm"],
                   help="generation backend: Hugging Face generate or vLLM (pip install vllm; merged adapter)")
    g.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.5)
    g.add_argument("--mm-num-samples", type=int, default=100, help="captions for multimodality (0 = skip)")
    g.add_argument("--mm-num-repeats", type=int, default=30)
    g.add_argument("--mm-num-times", type=int, default=10)
    g.add_argument("--diversity-times", type=int, default=300)
    g.add_argument("--max-items", type=int, default=0, help="evaluate at most N items (0 = all; quick checks)")
    g.add_argument("--m2t-convention", type=str, default="tm2t", choices=["tm2t", "motiongpt"])
    g.add_argument("--bertscore-model", type=str, default=None,
                   help="BERTScore model (hub id or path); default: the packaged MiniLM offline; 'roberta-large' = official")
    g.add_argument("--no-bertscore", action="store_true")
    return g


def add_demo_args(p: argparse.ArgumentParser):
    g = p.add_argument_group("demo inputs and outputs")
    g.add_argument("--meta-dir", default=None, help="folder with the VQ normalisation mean.npy/std.npy "
                   "(default: <vq run>/meta)")
    g.add_argument("--text", action="append", default=[], help="text prompt (repeatable) -> motion")
    g.add_argument("--text-file", default=None, help="file with one prompt per line (# comments skipped)")
    g.add_argument("--motion", action="append", default=[], help=".npy features (T, 263) or joints (T, 22, 3) "
                   "-> caption (repeatable)")
    g.add_argument("--mp4", action="store_true", help="write .mp4 instead of .gif (needs ffmpeg)")
    g.add_argument("--no-render", action="store_true", help="skip the animation")
    g.add_argument("--no-bvh", action="store_true", help="skip the BVH export")
    g.add_argument("--render-max-frames", type=int, default=None, help="cap the frames of the animation")
    g.add_argument("--render", default="skeleton", choices=["skeleton", "mesh"],
                   help="animation: matplotlib stick figure, or the shaded skinned body of utils/mesh_render.py "
                        "(the bundled mannequin, or --body-model)")
    return g


def add_gallery_args(p: argparse.ArgumentParser, demo: bool = False):
    """The results gallery (utils/gallery.py) and the body the mesh renderer draws."""
    g = p.add_argument_group("results gallery and mesh rendering")
    g.add_argument("--gallery", type=int, default=0, metavar="N",
                   help=("write <save-dir>/gallery/index.html with the first N results" if demo else
                         "write <run folder>/gallery/index.html with N test items (caption, reasoning, GT and "
                         "generated motion, judge score, physics terms; m2t: motion, caption, references); "
                         "0 = none"))
    g.add_argument("--gallery-render", default="skeleton", choices=["skeleton", "mesh"],
                   help="how the gallery animates motions (skeleton: fast; mesh: utils/mesh_render.py)")
    g.add_argument("--body-model", default="mannequin", choices=["mannequin", "smpl", "smplh", "smplx"],
                   help="body of the mesh renderer: the bundled mannequin-x mannequin, or a SMPL-family model "
                        "file from --body-model-dir")
    g.add_argument("--body-model-dir", default=None,
                   help="folder with the SMPL / SMPL+H / SMPL-X model files (smplx.create layout)")
    return g


def add_web_args(p: argparse.ArgumentParser):
    """demo.py --web: the Gradio browser demo (utils/web_demo.py)."""
    g = p.add_argument_group("web demo (demo.py --web; utils/web_demo.py)")
    g.add_argument("--web", action="store_true", help="serve the browser demo (Gradio, offline) instead of the CLI run; "
                   "without --model-ckpt it loads the quickstart's checkpoints")
    g.add_argument("--host", default="127.0.0.1", help="address the web demo listens on (0.0.0.0: every interface)")
    g.add_argument("--port", type=int, default=7860, help="web demo port (0: the first free one from 7860)")
    g.add_argument("--share", action="store_true", help="also open a public gradio.live link (never implied; needs "
                   "internet)")
    g.add_argument("--m2t-model-ckpt", default=None, help="web demo: checkpoint for motion -> caption (default: "
                   "--model-ckpt; without --model-ckpt: the quickstart's RLVR m2t checkpoint)")
    g.add_argument("--web-max-frames", type=int, default=600, help="web demo: longest motion upload accepted, in "
                   "frames (20 fps for t2m)")
    g.add_argument("--bvh-mapping", default=None, help="web demo: joint mapping JSON for .bvh uploads (see "
                   "prepare/convert_mocap.py; default: the t2m joint names demo.py's BVH export writes)")
    return g


def get_args_parser() -> argparse.ArgumentParser:
    p = _base_parser("Evaluate MotionLLM (t2m / m2t), optionally with Chain-of-Motion", sample_by_default=None)
    add_eval_args(p)
    add_gallery_args(p)
    return p


def get_demo_parser() -> argparse.ArgumentParser:
    p = _base_parser("MoRL demo: text -> motion, motion -> caption", sample_by_default=False)
    add_demo_args(p)
    add_eval_args(p, demo=True)
    add_gallery_args(p, demo=True)
    add_web_args(p)
    return p


def _finish(args):
    if args.model_ckpt:
        args.eval_ckpt = args.model_ckpt
    return fill_data_root(args)


def get_args(argv=None):
    args = _finish(get_args_parser().parse_args(argv))
    if args.m2t_eval_split and args.eval_task == "m2t":
        args.split = args.m2t_eval_split
    if args.m2t_eval_batch_size and args.eval_task == "m2t":
        args.gen_batch_size = args.m2t_eval_batch_size
    return resolve_decoding(args, args.eval_task)


def get_demo_args(argv=None):
    args = _finish(get_demo_parser().parse_args(argv))
    return resolve_decoding(args, "m2t" if args.motion else "t2m")
