"""``emotion-convert`` / ``python -m convert``: train, evaluate, quantize."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from .data import TARGETS, DataError


def _add_train(sub) -> None:
    from .train import TrainConfig

    p = sub.add_parser("train", help="train a zoo model on FER2013-format faces (resumable)")
    p.add_argument("--run", type=Path, help="run folder (default runs/<model>-<target>)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):  # a switch
            p.add_argument(flag, action="store_true", help=f"(default {f.default!r})")
            continue
        kind = {int: int, float: float}.get(type(f.default), str)
        extra = {"choices": TARGETS} if f.name == "target" else \
            {"choices": ("seven", "binary")} if f.name == "classes" else {}
        p.add_argument(flag, type=kind, default=f.default, help=f"(default {f.default!r})", **extra)


# TensorFlow 2.21's oneDNN kernels crash the process on the AMD EPYC machines here: training
# mini_xception ("free(): invalid next size", twice) and the BlazeFace rebuild's first
# predict (a segfault, on an AVX-512 EPYC). The commands that remake a published model file
# run without them: they only run the network, and their bytes are then the same on every
# x86 CPU, so the shipped file's sha256 can be made again anywhere. Training keeps them
# (vgg_bn: 196 against 457 ms a step without, measured here). Set before TensorFlow loads.
WITHOUT_ONEDNN = {"blazeface-int8", "yunet-tflite"}
ONEDNN_CRASHES = {"mini_xception"}


def _train(args) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    if cfg.model in ONEDNN_CRASHES:  # before the zoo imports TensorFlow
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    from . import zoo

    run = args.run or Path("runs") / f"{cfg.model}-{cfg.target}"
    verbose = 1 if sys.stdout.isatty() else 2
    kind = getattr(zoo.get(cfg.model).module, "KIND", "face")
    if kind != "face" and cfg.swa:
        raise ValueError(f"--swa: weight averaging trains face models only, not {cfg.model}")
    if kind == "sequence":  # micro-expression clips: cfg.data is the dataset folder
        from .micro.sequence_train import train_sequences
        state = train_sequences(cfg, run, resume=not args.fresh, verbose=verbose)
    elif kind == "flow":
        raise ValueError(f"{cfg.model} trains with `micro-train` (leave-one-subject-out data)")
    else:
        state = train(cfg, run, resume=not args.fresh, verbose=verbose)
    print(f"{run}: best val accuracy {state['best']:.4f} at epoch {state.get('best_epoch', -1) + 1}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="emotion-convert", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_train(sub)
    from . import blazeface_int8, evaluate, interpolate, quantize, sizes, yunet_tflite
    from .micro import cli as micro_cli
    blazeface_int8.add_parser(sub)
    evaluate.add_parser(sub)
    interpolate.add_parser(sub)
    quantize.add_parser(sub)
    sizes.add_parser(sub)
    yunet_tflite.add_parser(sub)
    micro_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.cmd in WITHOUT_ONEDNN:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        if args.cmd == "train":
            return _train(args)
        return args.func(args)
    except (DataError, FileNotFoundError, ValueError) as exc:
        print(f"emotion-convert {args.cmd}: {exc}", file=sys.stderr)
        return 2
