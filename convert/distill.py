"""Knowledge distillation: training targets blended with trained models' answers.

``train --teacher a.keras,b.keras`` averages the teachers' probabilities for every training
face (each face and its mirror image, as flip averaging does at test time) and trains on
``(1 - w) * target + w * teacher`` with ``w = --teacher-weight``. An ensemble of several
models is more accurate than any one of them but too slow for a Pi; its soft answers carry
what it learned (which faces look like two things at once) into one small model
(Hinton et al. 2015, "Distilling the knowledge in a neural network").

The teachers run once per run folder: their answers are cached in ``teacher.npz``, keyed by
the teacher files and the training faces, so a resumed run does not recompute them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def teacher_key(paths: list[str], faces: np.ndarray) -> str:
    """What the cached answers depend on: each teacher file's bytes and the faces."""
    h = hashlib.sha256()
    for p in paths:
        h.update(hashlib.sha256(Path(p).read_bytes()).digest())
    h.update(np.ascontiguousarray(faces).tobytes())
    return h.hexdigest()


def teacher_probs(paths: list[str], faces: np.ndarray, cache: Path | None = None) -> np.ndarray:
    """(N, classes) float32: the teachers' flip-averaged probabilities, averaged."""
    import keras

    from .predict import predict_keras

    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"--teacher {missing[0]}: no such model file")
    key = teacher_key(paths, faces)
    if cache is not None and cache.is_file():
        with np.load(cache) as saved:
            if str(saved["key"]) == key:
                return saved["probs"]
    probs = sum(predict_keras(keras.models.load_model(p, compile=False), faces, flip=True)
                for p in paths) / len(paths)
    probs = probs.astype(np.float32)
    if cache is not None:
        tmp = cache.with_name(cache.stem + ".partial.npz")
        np.savez(tmp, key=key, probs=probs)
        tmp.replace(cache)
    return probs


def distilled_targets(targets: np.ndarray, paths: list[str], faces: np.ndarray, weight: float,
                      cache: Path | None = None) -> np.ndarray:
    """The run's training targets blended with the teachers' answers for ``faces``."""
    if not 0.0 <= weight <= 1.0:  # checked before the teachers' minutes of work
        raise ValueError(f"--teacher-weight {weight} is outside 0..1")
    return blend(targets, teacher_probs(paths, faces, cache), weight)


def blend(targets: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * targets + weight * teacher``: both rows sum to 1, so the blend does."""
    if targets.shape != teacher.shape:
        raise ValueError(f"--teacher gives {teacher.shape[1]} classes; this run trains "
                         f"{targets.shape[1]}")
    return ((1.0 - weight) * targets + weight * teacher).astype(np.float32)
