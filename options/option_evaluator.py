"""Options of train_evaluator.py: the T2M text-motion evaluator (movement autoencoder, then the
contrastive text/motion encoders) in the official checkpoint layout."""
from __future__ import annotations

import argparse
import json

from options.common import add_data_args, add_performance_args, add_run_args, fill_data_root

DESCRIPTION = "Train the T2M text-motion evaluator (official layout: <checkpoints-dir>/<dataname>/<exp-name>/)"
SMALL = {"dim_movement_enc_hidden": 128, "dim_movement_latent": 128, "dim_text_hidden": 128,
         "dim_motion_hidden": 256, "dim_coemb_hidden": 128}


def get_args(argv=None):
    p = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = add_run_args(p, exp_name="text_mot_match",
                     exp_help="run name for logging; the folder is always <checkpoints-dir>/<dataname>/text_mot_match "
                              "(the official layout)")
    add_data_args(p, g)
    g.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    add_performance_args(p)
    p.add_argument("--checkpoints-dir", default="./checkpoints", help="root of the official evaluator layout")
    p.add_argument("--glove-dir", default="./glove", help="our_vab_{data.npy,words.pkl,idx.pkl}")
    p.add_argument("--feat-bias", type=float, default=25.0, help="root/foot-contact std divisor of the meta statistics")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-epoch", type=int, default=300, help="contrastive training epochs")
    p.add_argument("--negative-margin", type=float, default=10.0)
    p.add_argument("--grad-clip", type=float, default=0.5)
    p.add_argument("--movement-iters", type=int, default=20000, help="movement-autoencoder iterations (0: skip; "
                   "the movement encoder then stays at its initialisation)")
    p.add_argument("--movement-window", type=int, default=24)
    p.add_argument("--movement-lr", type=float, default=1e-4)
    p.add_argument("--movement-batch-size", type=int, default=128)
    p.add_argument("--lambda-sparsity", type=float, default=0.001)
    p.add_argument("--lambda-smooth", type=float, default=0.001)
    for k, v in {"dim_movement_enc_hidden": 512, "dim_movement_latent": 512, "dim_text_hidden": 512,
                 "dim_motion_hidden": 1024, "dim_coemb_hidden": 512}.items():
        p.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    p.add_argument("--small", action="store_true", help="CPU-sized dimensions " + json.dumps(SMALL))
    p.add_argument("--resume", action="store_true", help="continue from model/latest.tar")
    p.add_argument("--eval-split", default="test", help="split for the final real-motion R-precision report")
    p.add_argument("--val-split", default="val",
                   help="split that picks the best epoch (a critic trained apart from the judge uses 'train': it "
                        "then never sees the validation or test motions)")
    args = p.parse_args(argv)
    fill_data_root(args)
    if args.small:
        for k, v in SMALL.items():
            setattr(args, k, v)
    return args
