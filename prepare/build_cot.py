#!/usr/bin/env python
"""CoT data engine: MoGen-CoT (t2m) and MoUnd-CoT (m2t) JSONL from a dataset + VQ-VAE.

    # offline, deterministic (template reasoner)
    python prepare/build_cot.py --vq-ckpt experiments/vq/net_last.pth --data-root data/synthetic_h3d \\
        --out-dir experiments/cot --split train val
    # from an existing tokens JSONL (prepare/tokenize_dataset.py); --data-root gives the motion facts
    python prepare/build_cot.py --tokens-jsonl experiments/vq/tokens_train.jsonl --nb-code 512 \\
        --data-root data/synthetic_h3d --out-dir experiments/cot --split train
    # any OpenAI-compatible chat-completions endpoint (key from $OPENAI_API_KEY by default)
    python prepare/build_cot.py ... --reasoner openai --api-base https://api.openai.com/v1 \\
        --model gpt-4o-mini --concurrency 8

Outputs in ``--out-dir`` per split: ``t2m_<split>.jsonl``, ``m2t_<split>.jsonl`` and one
``summary.json``. One plain record per (item, caption) (``--captions-per-item K`` keeps K captions per
item, chosen with the seed; 0 = all)::

    {"task": "t2m", "id": "000123", "caption_index": 0, "caption": "a person walks forward.",
     "motion_tokens": [12, 7, ...], "reasoning": "Plan: walking forward. ..."}
    {"task": "m2t", "id": "000123", "caption_index": 0, "caption": "...", "motion_tokens": [...],
     "reasoning": "The clip lasts 4.2 s. ...", "answer": "a person walks forward."}

Refine records (``--refine-per-record K``, default 1; 0 = none) follow the plain records in the same
files: K per plain record, each a copy of it with a ``plan`` (and an informational ``plan_source``),
so that SFT (``--refine-ratio``) trains the prompt of Chain-of-Motion's rounds >= 2 ("Refine the
motion plan using this prior reasoning: <plan>"); the target stays the gold reasoning and answer.
The plan is plausible but never the target's reasoning: the reasoning of another caption of the same
item (``caption:<k>``), or the template reasoner's text for the same caption with another phrasing
stream (``variant``) or with perturbed measurements (``jitter``); see ``prepare/cot/refine.py``::

    {"task": "t2m", "id": "000123", "caption_index": 0, "caption": "a person walks forward.",
     "motion_tokens": [12, 7, ...], "reasoning": "Plan: walking forward. ...",
     "plan": "Main action: walking forward. Travel about 2.1 m in total. ...", "plan_source": "jitter"}

RLVR ignores refine records (its prompts are the plain records); readers that take every line of a
file as one (caption, motion) sample should skip records with a ``plan``.

Every record is validated with ``dataset.dataset_cot.validate_record`` before it is written
(docs/method.md §5.1). ``(task, id, caption_index)`` identifies a record (plus ``"refine"`` for a
refine record).

Reasoners:

* ``template`` (default): offline and deterministic for a ``--seed`` (each record has its own
  RNG derived from seed, task, id and caption index, so the text does not depend on the order or
  on ``--max-records``). t2m: a plan built from the caption (actions and their order, side/limb,
  direction, repetitions, speed) and from the measured target quantities (turn angle, distance,
  jumps, crouch, duration); it never contains motion tokens or tags. m2t: the observed facts
  (duration, travel, heading change, speed, most active limbs, jumps/contacts/crouch), then a
  conclusion drawn from the caption. About 30-80 words. The output is written atomically.
* ``openai``: POST ``<api-base>/chat/completions`` (standard library HTTP, no SDK), prompts from
  the caption and the facts (m2t: nothing beyond facts and caption), ``--concurrency`` worker
  threads, retries with exponential back-off (and ``Retry-After``) on 429 / 5xx / timeouts /
  connection errors, an on-disk cache keyed by the SHA-256 of (model, messages, temperature,
  max_tokens) in ``--cache-dir``, and resumable output: records already in the output file are
  skipped, new ones are appended (one ``write`` + ``flush`` per record) as they complete; a
  partial last line left by a crash is cut off on the next run. Records that fail (non-retryable
  HTTP error, retries exhausted, unusable completion) are counted in the summary and left out, so
  a rerun fills them in; the exit status is 1 when any failed.

Motion facts come from ``utils.motion_facts`` on the raw features of the item
(``<data-root>/new_joint_vecs/<clip_id>.npy``, the item's segment). Without ``--data-root``
(only possible with ``--tokens-jsonl``) reasoning uses the caption and the token count only.
"""
# The engine lives in the package prepare/cot/ (captions, template, openai_client, records, builder);
# this file is its command line.
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

from dataset.dataset_cot import TASKS  # noqa: E402
from prepare.cot.builder import build  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_argument_group("source")
    src.add_argument("--vq-ckpt", default=None, help="VQ-VAE checkpoint (tokenises --data-root with tokenize_split)")
    src.add_argument("--meta-dir", default=None, help="VQ normalisation statistics (default <ckpt dir>/meta)")
    src.add_argument("--tokens-jsonl", default=None, help="existing tokens JSONL (prepare/tokenize_dataset.py)")
    src.add_argument("--nb-code", type=int, default=None, help="codebook size (needed with --tokens-jsonl)")
    src.add_argument("--data-root", default=None, help="dataset folder (motions for the facts)")
    src.add_argument("--dataname", default="t2m", choices=["t2m", "kit"])
    src.add_argument("--split", nargs="+", default=["train"], help="split name(s), e.g. train val")
    src.add_argument("--with-val", action="store_true", help="also build the val split")
    src.add_argument("--batch-size", type=int, default=64, help="VQ encoding batch size")
    src.add_argument("--device", default="auto", help="device for the VQ encoding (auto/cpu/cuda)")
    out = ap.add_argument_group("output")
    out.add_argument("--out-dir", required=True)
    out.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    out.add_argument("--captions-per-item", type=int, default=0, help="captions kept per item (0 = all)")
    out.add_argument("--max-records", type=int, default=None, help="at most this many (item, caption) units per split")
    out.add_argument("--with-facts", action="store_true", help="store the measured facts in each record")
    out.add_argument("--refine-per-record", type=int, default=1,
                     help="refine records per record, written after the plain records of the same file: a copy "
                          "whose prompt carries a plan (prior reasoning) to refine, as in Chain-of-Motion rounds "
                          ">= 2; the target stays the gold reasoning and answer (0 = none)")
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--no-progress", action="store_true")
    rs = ap.add_argument_group("reasoner")
    rs.add_argument("--reasoner", choices=["template", "openai"], default="template")
    rs.add_argument("--max-words", type=int, default=80, help="template: longest reasoning (optional sentences dropped)")
    rs.add_argument("--api-base", default="https://api.openai.com/v1")
    rs.add_argument("--model", default=None)
    rs.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    rs.add_argument("--concurrency", type=int, default=4)
    rs.add_argument("--temperature", type=float, default=0.7)
    rs.add_argument("--max-tokens", type=int, default=200)
    rs.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    rs.add_argument("--max-retries", type=int, default=6)
    rs.add_argument("--retry-base", type=float, default=1.0, help="first back-off delay (s), doubled per retry")
    rs.add_argument("--retry-max", type=float, default=60.0, help="longest back-off delay (s)")
    rs.add_argument("--cache-dir", default=None, help="completion cache (default <out-dir>/.cot_cache)")
    args = ap.parse_args(argv)
    if not args.tokens_jsonl and not (args.vq_ckpt and args.data_root):
        ap.error("give --vq-ckpt and --data-root, or --tokens-jsonl")
    if args.captions_per_item < 0:
        ap.error("--captions-per-item must be >= 0")
    if args.refine_per_record < 0:
        ap.error("--refine-per-record must be >= 0")
    if args.max_records is not None and args.max_records <= 0:
        ap.error("--max-records must be positive")
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    summary = build(args)
    brief = {s: {"records": v["records"], "refine_records": v.get("refine_records", {}),
                 "skipped_existing": v["skipped_existing"], "errors": v["errors"],
                 "seconds": v["seconds"]["total"]} for s, v in summary["splits"].items()}
    print(json.dumps({"out_dir": args.out_dir, "splits": brief}))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
