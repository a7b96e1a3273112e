"""``convert micro-loso`` / ``micro-train`` / ``micro-quantize``: the flow model (B) and the
sequence model's (A) quantization. Register with ``add_parser(sub)`` in convert/cli.py."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from .flow_train import FlowTrainConfig

DEFAULT_CACHE = Path("bench/.cache/micro")
DEFAULT_SEEDS = "0,1,2"


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"seeds: {text!r} is not a comma-separated list of integers") from None


def _add_recipe(p) -> None:
    for f in fields(FlowTrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            p.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"),
                           default=f.default, help=f"{f.metadata['doc']} (default {f.default})")
        else:
            p.add_argument(flag, type=type(f.default), default=f.default,
                           help=f"{f.metadata['doc']} (default {f.default!r})")
    p.add_argument("--data", type=Path, help="the flow npz (default: shared megc2019_composite_flow28.npz)")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default 1)")


def _recipe(args) -> FlowTrainConfig:
    return FlowTrainConfig(**{f.name: getattr(args, f.name) for f in fields(FlowTrainConfig)})


def _threads(n: int) -> None:
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def add_parser(sub) -> None:
    p = sub.add_parser("micro-loso", help="leave-one-subject-out UF1/UAR of the flow model "
                                          "and the logistic-regression floor")
    _add_recipe(p)
    p.add_argument("--seeds", default=DEFAULT_SEEDS, help=f"(default {DEFAULT_SEEDS})")
    p.add_argument("--int8-seeds", default="0", help="seeds whose 68 fold models are also "
                                                     "quantized and run in LiteRT (default 0)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help=f"per-seed predictions, reused on reruns (default {DEFAULT_CACHE})")
    p.add_argument("--figures", type=Path, help="write the figures as JSON here "
                                                "(micro-train --loso puts them in the sidecar)")
    p.set_defaults(func=_loso)

    p = sub.add_parser("micro-train", help="train the flow model on every subject, save .keras "
                                           "and the int8 .tflite + sidecar")
    _add_recipe(p)
    p.add_argument("--seeds", default="0",
                   help="one model per seed; several are shipped as their average. The LOSO "
                        "ensemble did not beat single seeds, so the default is one (0)")
    p.add_argument("-o", "--output", type=Path, default=Path("models/micro_flow_int8.tflite"))
    p.add_argument("--loso", type=Path, help="JSON of LOSO figures to put in the sidecar "
                                             "(written by micro-loso --figures)")
    p.add_argument("--from-keras", type=Path, help="skip training: quantize this .keras "
                                                   "(a previous micro-train's) again")
    p.set_defaults(func=_train)

    p = sub.add_parser("micro-quantize", help="model A (.keras) -> int8 where possible; "
                                              "reports ops left in float and the accuracy change")
    p.add_argument("model", type=Path)
    p.add_argument("--data", type=Path, required=True, help="CASME II / SAMM style folder")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(func=_quantize_a)


def _loso(args) -> int:
    from . import flowset, loso
    _threads(args.threads)
    fs = flowset.load_flowset(args.data)
    seeds, seeds8 = _seeds(args.seeds), _seeds(args.int8_seeds)
    res = loso.run_flow_net(fs, _recipe(args), seeds, args.cache, seeds8)
    md, figs = loso.report(fs, res, loso.run_logreg(fs, args.cache), seeds, seeds8)
    print(md)
    print(json.dumps(figs.get("nested_choices", {})))
    if args.figures:
        args.figures.parent.mkdir(parents=True, exist_ok=True)
        args.figures.write_text(json.dumps(figs, indent=2) + "\n")
    return 0


def _train(args) -> int:
    from . import flowset
    from .flow_train import train_final
    from .quantize_micro import ensemble, quantize_flow
    _threads(args.threads)
    fs = flowset.load_flowset(args.data)
    cfg = _recipe(args)
    keras_path = args.output.with_name(args.output.stem.replace("_int8", "") + ".keras")
    if args.from_keras:
        import keras
        model = keras.models.load_model(args.from_keras)
        keras_path = args.from_keras
    else:
        models, choices = train_final(fs.x, fs.y, cfg, _seeds(args.seeds), groups=fs.subject,
                                      dataset=fs.dataset)
        model = ensemble(models)
        keras_path.parent.mkdir(parents=True, exist_ok=True)
        model.save(keras_path)
    extra = {"keras_file": keras_path.name, "recipe": cfg.key(), "seeds": list(_seeds(args.seeds)),
             "trained_on": f"all {len(fs)} clips of {len(set(fs.subject))} subjects"}
    if not args.from_keras:
        how = ("chosen by 2-fold grouped CV over the subjects (nested)" if cfg.nested else
               "the fixed recipe: last epoch, plain mean")
        extra["epoch_and_cnn_weight"] = {"how": how, "per_seed": [[e, w] for e, w in choices]}
        print(f"epoch, CNN weight ({how}): {choices}")
    if args.loso:
        extra["loso"] = json.loads(args.loso.read_text())
    check = quantize_flow(model, args.output, fs, extra=extra)
    print(f"{keras_path}, {args.output}: int8 vs float argmax agreement "
          f"{check['argmax_agreement']:.4f} on {check['n']} clips")
    return 0


def _quantize_a(args) -> int:
    from .quantize_micro import quantize_sequence_model
    r = quantize_sequence_model(args.model, args.output, args.data)
    print(f"{args.output}: {r['bytes']} bytes; int8 ops: {', '.join(r['ops']['int8'])}; "
          f"float ops: {', '.join(r['ops']['float']) or 'none'}")
    for k in ("float", "int8"):
        print(f"  {k}: accuracy {r[k]['accuracy']:.4f}, UF1 {r[k]['uf1']:.4f}, "
              f"UAR {r[k]['uar']:.4f} on {r[k]['n']} clips")
    return 0
