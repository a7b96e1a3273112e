"""The MEGC 2019 composite flow set: one 28x28 onset-to-apex flow image per clip, LOSO folds,
the challenge's metrics (UF1, UAR on pooled predictions) and the flip augmentation.

What the stored images are (measured on the file, see docs/micro-expressions.md):
channel 0 = horizontal flow u (+ = rightward), channel 1 = vertical flow v (+ = downward),
channel 2 = optical strain magnitude; every channel of every image is min-max normalized on
its own to exactly 0..255 at 28x28. The device reproduces that in ``edge.micro.flow``.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import DataError, shared_dir

CLASSES = ("negative", "positive", "surprise")
DATASETS = ("casme2", "samm", "smic")
SIZE = 28


def default_flow_npz() -> Path:
    return shared_dir() / "data" / "micro" / "megc2019_composite_flow28.npz"


@dataclass
class FlowSet:
    x: np.ndarray          # (N, 28, 28, 3) uint8: u, v, strain
    y: np.ndarray          # (N,) int64 class index into CLASSES
    subject: np.ndarray    # (N,) str, the LOSO unit
    dataset: np.ndarray    # (N,) str: casme2 | samm | smic
    sample: np.ndarray     # (N,) str clip id

    def __len__(self) -> int:
        return len(self.y)

    def subjects(self) -> list[str]:
        """Subjects in first-appearance order (stable fold numbering)."""
        _, first = np.unique(self.subject, return_index=True)
        return [str(self.subject[i]) for i in sorted(first)]


def load_flowset(path: str | Path | None = None) -> FlowSet:
    path = Path(path) if path else default_flow_npz()
    if not path.is_file():
        raise DataError(f"{path}: no such file (set EMOTION_SHARED_DIR to the shared data folder)")
    d = np.load(path, allow_pickle=False)
    missing = {"x", "y", "subject", "dataset", "sample"} - set(d.files)
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(sorted(missing))}")
    x = d["x"]
    if x.ndim != 4 or x.shape[1:] != (SIZE, SIZE, 3) or x.dtype != np.uint8:
        raise DataError(f"{path}: flow images are {x.shape} {x.dtype}, expected (N, 28, 28, 3) uint8")
    # Subjects are only unique within a dataset in principle; prefix them so they never merge.
    subject = np.char.add(np.char.add(d["dataset"].astype(str), "/"), d["subject"].astype(str))
    return FlowSet(x, d["y"].astype(np.int64), subject, d["dataset"].astype(str),
                   d["sample"].astype(str))


def loso_folds(subject: np.ndarray) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(subject, train indices, test indices) for each subject, leaving that subject out."""
    _, first = np.unique(subject, return_index=True)
    for s in subject[np.sort(first)]:
        test = subject == s
        yield str(s), np.flatnonzero(~test), np.flatnonzero(test)


def uf1_uar(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(CLASSES)) -> tuple[float, float]:
    """The MEGC 2019 metrics on pooled predictions: mean per-class F1 and mean per-class recall.

    A class absent from ``y_true`` (possible in a per-dataset slice) is left out of both
    means, as the challenge's scripts do.
    """
    f1s, recalls = [], []
    for c in range(n_classes):
        t, p = y_true == c, y_pred == c
        if not t.any():
            continue
        tp = float((t & p).sum())
        f1s.append(2 * tp / (t.sum() + p.sum()))
        recalls.append(tp / t.sum())
    return float(np.mean(f1s)), float(np.mean(recalls))


def flip(x: np.ndarray) -> np.ndarray:
    """Mirror flow images left-right. Horizontal flow changes sign under a mirror, and with
    per-image min-max normalization -u maps to 255 - u exactly."""
    out = x[:, :, ::-1].copy()
    out[..., 0] = 255 - out[..., 0]
    return out


PIXEL_SCALE = 1.0 / 127.5   # model input = pixel * scale + offset, 0..255 -> -1..1
PIXEL_OFFSET = -1.0


def to_input(x: np.ndarray) -> np.ndarray:
    """uint8 flow images -> float32 model input."""
    return x.astype(np.float32) * PIXEL_SCALE + PIXEL_OFFSET
