"""``convert interpolate``: a fine-tuned model's weights blended back toward the model it
started from (WiSE-FT, Wortsman et al. 2022, "Robust fine-tuning of zero-shot models").

A fine-tune that teaches a model a new view of its faces (far, blurred faces) gains there
and loses a little on what the model already read well (sharp faces). The straight line
between the two sets of weights usually keeps most of the gain and gives back most of the
loss: ``(1 - alpha) x start + alpha x tuned``, alpha picked on val. The blend has the same
layers and the same cost per face.

BatchNorm statistics cannot be blended (the statistics of a blended network are not the
blend of the statistics), so both models must carry the same BatchNorm layers: a fine-tune
run with ``train --freeze-bn``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def interpolate(start, tuned, alpha: float):
    """A copy of ``start`` carrying ``(1 - alpha) x start + alpha x tuned`` weights."""
    from .swa import batch_norm_layers

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"--alpha {alpha}: outside 0..1")
    if [w.shape for w in start.get_weights()] != [w.shape for w in tuned.get_weights()]:
        raise ValueError(f"{tuned.name} and {start.name} do not have the same layers")
    for a, b in zip(batch_norm_layers(start), batch_norm_layers(tuned)):
        if any(not np.array_equal(wa, wb) for wa, wb in zip(a.get_weights(), b.get_weights())):
            raise ValueError(f"BatchNorm layer {b.name} differs between the two models: "
                             "blended weights would have no statistics of their own "
                             "(fine-tune with `train --freeze-bn`)")
    out = start.__class__.from_config(start.get_config())
    out.set_weights([(1 - alpha) * a + alpha * b
                     for a, b in zip(start.get_weights(), tuned.get_weights())])
    return out


def add_parser(sub) -> None:
    p = sub.add_parser("interpolate", help="blend a fine-tuned model's weights back toward "
                                           "its starting model (WiSE-FT)")
    p.add_argument("start", type=Path, help="the model the fine-tune started from (--init)")
    p.add_argument("tuned", type=Path, help="the fine-tuned model (trained with --freeze-bn)")
    p.add_argument("--alpha", type=float, required=True,
                   help="share of the fine-tuned weights: 0 = start, 1 = tuned")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .keras to write")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import keras

    for path in (args.start, args.tuned):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
    start = keras.models.load_model(args.start, compile=False)
    tuned = keras.models.load_model(args.tuned, compile=False)
    out = interpolate(start, tuned, args.alpha)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out.save(args.output)
    print(f"{args.output}: {1 - args.alpha:.2f} x {args.start} + {args.alpha:.2f} x {args.tuned}")
    return 0
