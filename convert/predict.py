"""Keras inference on gray faces: a leaf module that evaluation and distillation share."""
from __future__ import annotations

import numpy as np

from .preprocess import to_model_input


def predict_keras(model, faces: np.ndarray, flip: bool = False) -> np.ndarray:
    """(N, h, w) gray faces -> (N, classes) probabilities; ``flip`` averages in the mirror."""
    x = to_model_input(faces, int(model.input_shape[1]))
    p = model.predict(x, batch_size=256, verbose=0)
    if flip:
        p = (p + model.predict(x[:, :, ::-1], batch_size=256, verbose=0)) / 2
    return p
