"""``convert evaluate``: accuracy, per-class recall/precision, macro F1, confusion matrix and
training curves, for a Keras model or an int8 ``.tflite`` (run as the device runs it).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from . import data as fer
from .binary import BINARY_LABELS, BINARY_OF_CLASS
from .predict import predict_keras


def labels_for(n_classes: int) -> tuple[str, ...]:
    if n_classes == len(fer.CLASSES):
        return fer.CLASSES
    if n_classes == 2:
        return BINARY_LABELS
    raise ValueError(f"a model with {n_classes} outputs is not an expression model")


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels) -> dict:
    """The figures, as plain JSON-able data."""
    k = len(labels)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    recall = np.divide(tp, cm.sum(1), out=np.zeros(k), where=cm.sum(1) > 0)
    precision = np.divide(tp, cm.sum(0), out=np.zeros(k), where=cm.sum(0) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k),
                   where=(precision + recall) > 0)
    return {"n": int(len(y_true)), "accuracy": float(tp.sum() / max(1, len(y_true))),
            "per_class_recall": dict(zip(labels, recall.round(4).tolist())),
            "per_class_precision": dict(zip(labels, precision.round(4).tolist())),
            "macro_f1": float(f1.mean()), "confusion": cm.tolist(), "labels": list(labels)}


def _truths(faces: fer.FaceSet, n_classes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Ground truths available for these faces: name -> (row mask, labels)."""
    out = {}
    y = faces.y if n_classes == 7 else BINARY_OF_CLASS[faces.y]
    out["fer2013"] = (y >= 0, y[y >= 0])
    if faces.ferplus is not None:
        m = fer.ferplus_majority(faces.ferplus)
        if n_classes == 2:
            m = np.where(m >= 0, BINARY_OF_CLASS[np.maximum(m, 0)], -1)
        out["ferplus"] = (m >= 0, m[m >= 0])
    return out


def _report(probs: np.ndarray, faces: fer.FaceSet, target: str) -> dict:
    labels = labels_for(probs.shape[1])
    pred = probs.argmax(1)
    truths = _truths(faces, len(labels))
    primary = "ferplus" if target.startswith("ferplus") and "ferplus" in truths else "fer2013"
    mask, y = truths[primary]
    rep = scores(y, pred[mask], labels)
    rep["scored_against"] = "FER+ majority labels" if primary == "ferplus" else "FER2013 labels"
    rep["predictions"] = pred[mask]
    for name, (m, yy) in truths.items():
        if name != primary:
            other = scores(yy, pred[m], labels)
            rep[name] = {k: other[k] for k in ("n", "accuracy", "per_class_recall", "macro_f1")}
    return rep


def evaluate_keras(model, faces: fer.FaceSet, target: str = "fer2013", flip: bool = False) -> dict:
    return _report(predict_keras(model, faces.x, flip), faces, target)


def evaluate_tflite(path: Path, faces: fer.FaceSet, target: str = "fer2013",
                    sidecar: Path | None = None, flip: bool = False) -> dict:
    from edge.classifier import EmotionModel  # the device's own code path

    model = EmotionModel(path, threads=2, sidecar=sidecar)
    return _report(model.predict_faces(faces.x, flip=flip), faces, target)


def plot_confusion(rep: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(rep["confusion"], float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    labels = rep["labels"]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel(f"true ({rep['scored_against']})")
    ax.set_title(f"{title}\naccuracy {rep['accuracy']:.3f}, macro F1 {rep['macro_f1']:.3f}, "
                 f"n={rep['n']}", fontsize=9)
    fig.colorbar(im, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(log_csv: Path, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log_csv.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise fer.DataError(f"{log_csv}: no epochs logged yet")
    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", a), ("accuracy", b)):
        ax.plot(ep, [float(r[key]) for r in rows], label=f"train {key}")
        ax.plot(ep, [float(r["val_" + key]) for r in rows], label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(log_csv.parent.name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a .keras or .tflite model on a split")
    p.add_argument("model", type=Path)
    p.add_argument("--data", type=Path, help="npz, fer2013 csv or image folder (default: shared npz)")
    p.add_argument("--split", default="val")
    p.add_argument("--labels", default="fer2013", choices=("fer2013", "ferplus"),
                   help="primary ground truth (FER+ majority needs ferplus votes)")
    p.add_argument("--limit", type=int, default=0, help="only the first N faces")
    p.add_argument("--flip", action="store_true", help="average with the mirrored face")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--plots", type=Path, help="folder for confusion.png (and curves.png when "
                                              "the model sits in a run folder with log.csv)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    path: Path = args.model
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix == ".keras" and args.data and Path(args.data).is_dir():
        import keras
        if len(keras.models.load_model(path, compile=False).input_shape) == 5:
            from .micro.sequence_train import evaluate_sequences  # a clip model
            rep = evaluate_sequences(path, args.data)
            print(json.dumps(rep) if args.json else
                  f"{path}: {rep['n']} clips, accuracy {rep['accuracy']:.4f}, "
                  f"UF1 {rep['uf1']:.4f}, UAR {rep['uar']:.4f}")
            return 0
    faces = fer.load_faces(args.data or fer.default_fer_npz(), args.split)
    if args.limit:
        faces = faces.subset(np.arange(min(args.limit, len(faces))))
    target = "ferplus-majority" if args.labels == "ferplus" else "fer2013"
    if path.suffix == ".tflite":
        rep = evaluate_tflite(path, faces, target, flip=args.flip)
    else:
        import keras
        rep = evaluate_keras(keras.models.load_model(path), faces, target, flip=args.flip)
    rep.pop("predictions")
    rep["model"], rep["data"] = str(path), faces.source
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        plot_confusion(rep, args.plots / "confusion.png", path.name)
        log = path.parent / "log.csv"
        if log.exists():
            plot_curves(log, args.plots / "curves.png")
    if args.json:
        json.dump(rep, sys.stdout)
        print()
        return 0
    print(f"{path} on {faces.source}, {rep['n']} faces, scored against {rep['scored_against']}")
    print(f"accuracy {rep['accuracy']:.4f}   macro F1 {rep['macro_f1']:.4f}")
    if "ferplus" in rep:
        print(f"against FER+ majority labels: accuracy {rep['ferplus']['accuracy']:.4f} "
              f"(n={rep['ferplus']['n']})")
    if "fer2013" in rep:
        print(f"against FER2013 labels: accuracy {rep['fer2013']['accuracy']:.4f} "
              f"(n={rep['fer2013']['n']})")
    print(f"{'class':10s} {'recall':>7s} {'precision':>9s}")
    for lab in rep["labels"]:
        print(f"{lab:10s} {rep['per_class_recall'][lab]:7.3f} {rep['per_class_precision'][lab]:9.3f}")
    return 0
