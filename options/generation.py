"""Decoding and Chain-of-Motion flags of eval_mllm.py, demo.py and (CoM rollouts) train_mllm.py."""
from __future__ import annotations

import argparse


def add_generation_args(parser: argparse.ArgumentParser, sample_by_default: bool | None):
    """``--do-sample`` / ``--greedy`` set one value, ``args.do_sample``; scripts differ only in the default
    (eval_mllm.py: ``None``, resolved per task by :func:`resolve_decoding` — t2m samples as the original did,
    m2t decodes greedily as the published caption tables; demo.py decodes greedily)."""
    g = parser.add_argument_group("generation")
    g.add_argument("--max-new-tokens", type=int, default=256, help="generated tokens per output (>= 1)")
    per_task = sample_by_default is None
    g.add_argument("--do-sample", dest="do_sample", action="store_true",
                   help="sample" + (" (the t2m default)" if per_task else " (the default)" if sample_by_default
                                    else " instead of greedy decoding"))
    g.add_argument("--greedy", dest="do_sample", action="store_false",
                   help="greedy decoding" + (" (the m2t default)" if per_task else "" if sample_by_default
                                             else " (the default)"))
    g.add_argument("--num-beams", type=int, default=1,
                   help="beam search with this many beams (TM2T-style m2t captions; implies --greedy)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    g.add_argument("--top-k", type=int, default=0, help="top-k filter when sampling (0: off)")
    add_format_mask_arg(g)
    parser.set_defaults(do_sample=sample_by_default)
    return g


def add_format_mask_arg(group):
    group.add_argument("--no-format-mask", dest="format_mask", action="store_false",
                       help="let motion-code tokens be generated anywhere (default: only inside <Motion> ... </Motion>; "
                            "GRPO's log-probs use the same mask as its rollouts; a vLLM engine samples without it)")
    group.set_defaults(format_mask=True)


def resolve_decoding(args, task: str):
    """Fill ``args.do_sample`` when the script left it to the task (t2m: sample; m2t: greedy) and check the
    beam settings."""
    if args.do_sample is None:
        args.do_sample = task == "t2m" and args.num_beams <= 1
    if args.num_beams < 1:
        raise SystemExit(f"--num-beams {args.num_beams}: must be at least 1")
    if args.num_beams > 1 and args.do_sample:
        raise SystemExit("--num-beams > 1 is beam search: drop --do-sample")
    return args


def add_com_args(parser: argparse.ArgumentParser, training: bool = False):
    """Chain-of-Motion: K candidates, T rounds; rounds 2..T re-prompt with the best plan, ranked by a
    critic that sees only the model inputs. In training (GRPO rollouts) K = --rl-group-size."""
    g = parser.add_argument_group("Chain-of-Motion")
    if training:
        g.add_argument("--com-refine-steps", type=int, default=0,
                       help="Chain-of-Motion rollouts: T rounds of --rl-group-size samples (group = G*T), rounds 2..T "
                            "refine the best plan ranked by the CoM scorer (the original default 2; here opt-in, 0/1 = "
                            "plain GRPO)")
        g.add_argument("--com-candidates", type=int, default=8,
                       help="CoM candidates K of eval/demo; accepted here, in training K = --rl-group-size")
        return g
    g.add_argument("--use-com", action="store_true", help="Chain-of-Motion decoding")
    g.add_argument("--com-include-greedy", action="store_true",
                   help="the greedy decode joins the first round's candidates: CoM then only replaces it with a "
                        "candidate the critic prefers")
    g.add_argument("--com-candidates", type=int, default=8, help="CoM candidates K per round")
    g.add_argument("--com-refine-steps", type=int, default=2, help="CoM rounds T")
    g.add_argument("--com-evaluator-dir", type=str, default=None,
                   help="the critic of the CoM scorer, a separately trained evaluator (default: "
                        "--reward-dataset-opt-path); never the judge (--evaluator-dir) unless --allow-judge-as-critic")
    return g
