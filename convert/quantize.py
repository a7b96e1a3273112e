"""``convert quantize``: Keras model -> full-integer int8 TFLite + the device's JSON sidecar.

Calibrated on real training faces; then float and int8 are evaluated on val side by side,
and the conversion is refused when int8 loses more than ``--max-drop`` accuracy points.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import data as fer
from .preprocess import PIXEL_OFFSET, PIXEL_SCALE, to_model_input


class QuantizationRefused(RuntimeError):
    """int8 lost too much accuracy against float."""


def to_int8_tflite(model, representative: np.ndarray, full_int8: bool = True) -> bytes:
    """Convert a Keras model to TFLite with int8 weights and activations.

    ``representative``: float model inputs (already scaled) used to calibrate activations.
    ``full_int8``: every op int8 with int8 input/output; if False, ops the int8 kernels lack
    stay float (for LSTMs) and input/output stay float.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        # Keras 3 -> SavedModel -> converter is the path TF documents for Keras 3 models.
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        rep = representative.astype(np.float32)

        def samples():
            for i in range(len(rep)):
                yield [rep[i:i + 1]]

        converter.representative_dataset = samples
        if full_int8:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        else:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def op_types(tflite: bytes) -> dict[str, list[str]]:
    """Op names in the model, split by whether they compute in int8 (inputs' dtype)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    int8, other = set(), set()
    for op in interp._get_ops_details():
        dtypes = {details[i]["dtype"] for i in op["inputs"] if i in details}
        (int8 if dtypes and dtypes <= {np.int8, np.int32, np.int16} else other).add(op["op_name"])
    return {"int8": sorted(int8), "float": sorted(other - int8)}


def calibration_faces(n: int, seed: int = 0, path: Path | None = None) -> np.ndarray:
    """``n`` real faces from the cleaned training split, spread over the classes."""
    train = fer.load_faces(path or fer.default_fer_npz(), "train")
    train = fer.clean_training_set(train, target="fer2013")
    rng = np.random.default_rng(seed)
    per_class = max(1, n // len(fer.CLASSES))
    idx = np.concatenate([rng.permutation(np.flatnonzero(train.y == c))[:per_class]
                          for c in range(len(fer.CLASSES))])
    return train.x[idx]


@dataclass
class Comparison:
    float_accuracy: float
    int8_accuracy: float
    agreement: float          # share of faces where float and int8 argmax agree
    n: int

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.float_accuracy - self.int8_accuracy)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sidecar(tflite_path: Path, *, labels, input_size: int, extra: dict,
                  face_size: int | None = None) -> Path:
    """The JSON sidecar the device reads; see edge.classifier.Sidecar.

    ``face_size``: the size of the training faces, when the model was trained on them
    resized to ``input_size``."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite_path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    sidecar = {
        "labels": list(labels),
        "input_size": [input_size, input_size],
        **({"face_size": [face_size, face_size]} if face_size else {}),
        "grayscale": True,
        "pixel_scale": PIXEL_SCALE,
        "pixel_offset": PIXEL_OFFSET,
        "input_quantization": {"dtype": np.dtype(inp["dtype"]).name,
                               "scale": float(inp["quantization"][0]),
                               "zero_point": int(inp["quantization"][1])},
        "output_quantization": {"dtype": np.dtype(out["dtype"]).name,
                                "scale": float(out["quantization"][0]),
                                "zero_point": int(out["quantization"][1])},
        **extra,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha256(tflite_path),
    }
    path = tflite_path.with_suffix(".json")
    path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def quantize(keras_path: Path, out_path: Path, *, data: Path | None = None, calib: int = 500,
             max_drop: float = 1.0, val_split: str = "val", extra: dict | None = None,
             sizes: tuple[int, ...] = ()) -> Comparison:
    """``sizes``: also score float and int8 on val faces brought down to each of these sizes
    (``convert/sizes.py``), refuse when int8 loses more than ``max_drop`` at any of them, and
    write both curves into the sidecar (``val.by_face_size``)."""
    import keras

    from .evaluate import evaluate_keras, evaluate_tflite, labels_for

    model = keras.models.load_model(keras_path)
    size = int(model.input_shape[1])
    n_classes = int(model.output_shape[-1])
    labels = labels_for(n_classes)
    rep = to_model_input(calibration_faces(calib, path=data), size)
    tflite = to_int8_tflite(model, rep)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tflite.tmp")
    tmp.write_bytes(tflite)

    val = fer.load_faces(data or fer.default_fer_npz(), val_split)
    target = (extra or {}).get("target", "fer2013")
    f = evaluate_keras(model, val, target=target)
    # The sidecar must exist for the device code path; write it for the temp file first.
    write_sidecar(tmp, labels=labels, input_size=size, extra={}, face_size=fer.FACE_SIZE)
    q = evaluate_tflite(tmp, val, target=target, sidecar=tmp.with_suffix(".json"))
    comp = Comparison(f["accuracy"], q["accuracy"],
                      float((f["predictions"] == q["predictions"]).mean()), f["n"])
    curves = size_curves(model, tmp, val, target, sizes) if sizes else None
    tmp.with_suffix(".json").unlink()
    if comp.drop_points > max_drop:
        tmp.unlink()
        raise QuantizationRefused(
            f"int8 accuracy {q['accuracy']:.4f} is {comp.drop_points:.2f} points below float "
            f"{f['accuracy']:.4f} (limit {max_drop}); not written")
    for n, acc in (curves or {}).get("float", {}).items():
        drop = 100 * (acc - curves["int8"][n])
        if drop > max_drop:
            tmp.unlink()
            raise QuantizationRefused(f"int8 loses {drop:.2f} points against float on {n} px "
                                      f"faces (limit {max_drop}); not written")
    tmp.replace(out_path)
    info = {"model": model.name, "keras_file": keras_path.name, "parameters": model.count_params(),
            "calibration": f"{len(rep)} faces from the cleaned FER2013 training split",
            "val": {"split": val_split, "n": comp.n, "scored_against": target_name(target),
                    "float_accuracy": round(comp.float_accuracy, 4),
                    "int8_accuracy": round(comp.int8_accuracy, 4),
                    "argmax_agreement": round(comp.agreement, 4),
                    **({"by_face_size": curves} if curves else {})},
            "ops": op_types(tflite), **(extra or {})}
    write_sidecar(out_path, labels=labels, input_size=size, extra=info, face_size=fer.FACE_SIZE)
    return comp


def size_curves(model, tflite: Path, val: fer.FaceSet, target: str, sizes) -> dict:
    """Float and int8 accuracy at each face size, on the val faces the target scores."""
    from edge.classifier import EmotionModel

    from .predict import predict_keras
    from .sizes import size_curve

    if target.startswith("ferplus") and val.ferplus is not None:
        y = fer.ferplus_majority(val.ferplus)
        faces, y = val.x[y >= 0], y[y >= 0]
    else:
        faces, y = val.x, val.y
    int8 = EmotionModel(tflite, threads=2, sidecar=tflite.with_suffix(".json"))
    curves = {"float": size_curve(lambda f: predict_keras(model, f), faces, y, sizes),
              "int8": size_curve(int8.predict_faces, faces, y, sizes)}
    return {"down": "area", **{k: {str(n): round(a, 4) for n, a in c.items()}
                               for k, c in curves.items()}}


def target_name(target: str) -> str:
    return "FER+ majority labels" if target.startswith("ferplus") else "FER2013 labels"


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="Keras model -> full-int8 TFLite + sidecar, checked on val")
    p.add_argument("model", type=Path, help="a .keras model (e.g. runs/<run>/best.keras)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .tflite to write")
    p.add_argument("--data", type=Path, help="npz with train (calibration) and val splits")
    p.add_argument("--calib", type=int, default=500, help="calibration faces (default 500)")
    p.add_argument("--max-drop", type=float, default=1.0,
                   help="refuse when int8 loses more accuracy points than this (default 1.0)")
    p.add_argument("--target", default="fer2013", choices=fer.TARGETS,
                   help="labels the val check scores against (FER+ targets: FER+ majority)")
    p.add_argument("--sizes", default="", metavar="12,16,...",
                   help="also check int8 against float on val faces of these sizes in px "
                        "(far faces; the gate applies at each) and record both curves")
    p.add_argument("--note", action="append", default=[], metavar="KEY=VALUE",
                   help="extra sidecar fields, e.g. trained_on=...")
    p.set_defaults(func=_run)


def _run(args) -> int:
    extra = {"target": args.target, **dict(n.split("=", 1) for n in args.note)}
    try:
        sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else ()
    except ValueError:
        raise ValueError(f"--sizes {args.sizes!r}: give px as a comma-separated list") from None
    try:
        c = quantize(args.model, args.output, data=args.data, calib=args.calib,
                     max_drop=args.max_drop, extra=extra, sizes=sizes)
    except QuantizationRefused as exc:
        print(f"emotion-convert quantize: refused: {exc}")
        return 1
    print(f"{args.output}: float {c.float_accuracy:.4f}, int8 {c.int8_accuracy:.4f} "
          f"({-c.drop_points:+.2f} points), argmax agreement {c.agreement:.4f} on {c.n} val faces")
    return 0
