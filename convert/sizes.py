"""Faces far from the camera: accuracy against face size, and the low-resolution view
that teaches a model to read them.

A face N px across reaches the device as an N x N gray crop, which the classifier enlarges
to the model's 48x48 (``edge.classifier.resize_into``: bilinear). FER2013's faces are 48x48
crops of that kind (face plus a little margin), so a 48x48 face brought down to N px and
handed to the device's own code path is what a far camera delivers: ``at_size`` makes the
N px face, the model's usual input path (``predict_faces`` / ``to_model_input``) enlarges it.

"Size" here is the side of the crop the classifier gets. The crop is the detector's box
grown by the classifier's ``margin`` (0.1 a side by default), so a box of B px gives a crop
of about 1.2 B px.

How a camera brings a face down: the sensor (and binning) averages the light over each
pixel, which is area averaging, and the device's own resize shrinks with area averaging
too; an ISP or a cheap scaler often interpolates (bilinear) or drops pixels (nearest), which
aliases. The size curve uses area; training sees all three.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

SIZES = (12, 16, 20, 24, 32, 48)
DOWN = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def at_size(faces: np.ndarray, n: int, down: str = "area") -> np.ndarray:
    """(N, h, w) uint8 faces -> (N, n, n) uint8: the same faces as a camera n px away sees
    them. At the faces' own size they come back unchanged."""
    if faces.shape[1:3] == (n, n):
        return faces
    out = np.empty((len(faces), n, n), np.uint8)
    for face, o in zip(faces, out):
        cv2.resize(face, (n, n), dst=o, interpolation=DOWN[down])
    return out


@dataclass(frozen=True)
class LowRes:
    """Training-time view of a far face: a share of the faces brought down to a random size
    (log-uniform in ``low..high`` px, so the small sizes get as many faces as the large),
    by a random camera interpolation, rounded to 8 bits as a camera delivers them, and
    enlarged back with the device's own bilinear resize."""
    low: int = 12
    high: int = 48
    share: float = 0.7                       # faces degraded; the rest stay at 48 px
    downs: tuple[str, ...] = ("area", "area", "linear", "nearest")  # drawn uniformly

    def sizes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Each face's size in px; the full size where the face is left as it is."""
        s = np.exp(rng.uniform(np.log(self.low), np.log(self.high + 1), n)).astype(int)
        s = np.minimum(s, self.high)
        return np.where(rng.random(n) < self.share, s, -1)

    def __call__(self, faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``faces`` (N, H, W) float32 in 0..255 -> the same, some of them brought down and up."""
        n, h, w = faces.shape
        sizes = self.sizes(n, rng)
        kinds = rng.integers(0, len(self.downs), n)
        out = faces.copy()
        for i in np.flatnonzero((sizes > 0) & (sizes < min(h, w))):
            s = int(sizes[i])
            small = cv2.resize(faces[i], (s, s), interpolation=DOWN[self.downs[kinds[i]]])
            small = np.clip(np.rint(small), 0, 255).astype(np.uint8)
            interp = cv2.INTER_AREA if s > h else cv2.INTER_LINEAR  # edge.classifier.resize_into
            out[i] = cv2.resize(small, (w, h), interpolation=interp)
        return out

    @classmethod
    def parse(cls, spec: str, share: float) -> "LowRes":
        """``"12-48"`` -> LowRes(12, 48, share)."""
        try:
            low, high = (int(v) for v in spec.split("-"))
        except ValueError:
            raise ValueError(f"--low-res {spec!r}: give the sizes as LOW-HIGH px, e.g. 12-48") from None
        if not 4 <= low <= high:
            raise ValueError(f"--low-res {spec!r}: needs 4 <= LOW <= HIGH")
        if not 0.0 < share <= 1.0:
            raise ValueError(f"--low-res-share {share}: outside 0..1")
        return cls(low, high, share)


Predict = Callable[[np.ndarray], np.ndarray]


def size_curve(predict: Predict, faces: np.ndarray, labels: np.ndarray,
               sizes=SIZES, down: str = "area") -> dict[int, float]:
    """Accuracy at each face size: ``predict`` gets the faces at that size and enlarges
    them itself, as the device does."""
    return {n: float((predict(at_size(faces, n, down)).argmax(1) == labels).mean())
            for n in sizes}


def model_predictor(path: Path) -> tuple[Predict, str]:
    """A .tflite through the device's own code (``edge.classifier``), or a Keras model."""
    if path.suffix == ".tflite":
        from edge.classifier import EmotionModel
        m = EmotionModel(path, threads=2)
        dtype = np.dtype(m.interpreter.get_input_details()[0]["dtype"])
        return m.predict_faces, "int8" if dtype.kind == "i" else "float"
    import keras

    from .predict import predict_keras
    model = keras.models.load_model(path, compile=False)
    return (lambda faces: predict_keras(model, faces)), "float"


def markdown(rows: list[tuple[str, dict[int, float]]], n: int) -> str:
    sizes = list(rows[0][1])
    full = max(sizes)
    head = "| model | " + " | ".join(f"{s} px" for s in sizes) + " |"
    lines = [head, "|---" * (len(sizes) + 1) + "|"]
    for name, curve in rows:
        cells = []
        for s in sizes:
            d = 100 * (curve[s] - curve[full])
            cells.append(f"{curve[s]:.3f}" + ("" if s == full else f" ({d:+.1f})"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{n} val faces; in brackets: points against {full} px.\n"


def add_parser(sub) -> None:
    p = sub.add_parser("size-curve", help="accuracy against face size (far faces), per model")
    p.add_argument("models", type=Path, nargs="+", help=".tflite (device code path) or .keras")
    p.add_argument("--data", type=Path, help="npz (default: the shared FER2013 npz)")
    p.add_argument("--split", default="val")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="px, comma-separated")
    p.add_argument("--down", default="area", choices=tuple(DOWN),
                   help="how the camera brings a face down (default area: sensor averaging)")
    p.add_argument("--labels", default="ferplus", choices=("fer2013", "ferplus"))
    p.add_argument("--limit", type=int, default=0, help="only the first N faces")
    p.add_argument("--json", action="store_true", help="one JSON object per model")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from . import data as fer

    faces = fer.load_faces(args.data or fer.default_fer_npz(), args.split)
    if args.limit:
        faces = faces.subset(np.arange(min(args.limit, len(faces))))
    if args.labels == "ferplus":
        if faces.ferplus is None:
            raise fer.DataError(f"{faces.source}: no FER+ votes; use --labels fer2013")
        y = fer.ferplus_majority(faces.ferplus)
        faces = faces.subset(y >= 0)
        faces.y = y[y >= 0]
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",")})
    except ValueError:
        raise ValueError(f"--sizes {args.sizes!r}: give px as a comma-separated list") from None
    if not sizes or min(sizes) < 4 or max(sizes) > 1024:
        raise ValueError(f"--sizes {args.sizes!r}: each size must be 4..1024 px")
    rows = []
    for path in args.models:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        predict, kind = model_predictor(path)
        curve = size_curve(predict, faces.x, faces.y, sizes, args.down)
        if args.json:
            print(json.dumps({"model": str(path), "kind": kind, "n": len(faces), "down": args.down,
                              "accuracy": {str(k): round(v, 4) for k, v in curve.items()}}))
        rows.append((f"{path} ({kind})", curve))
    if not args.json:
        print(markdown(rows, len(faces)), end="")
    return 0
