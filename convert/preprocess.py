"""The model's input convention, shared by training, evaluation, quantization and the device.

A model takes float faces ``pixel * PIXEL_SCALE + PIXEL_OFFSET`` (gray 0..255 -> -1..1).
The sidecar JSON carries these two numbers, so the device never has to guess.
"""
from __future__ import annotations

import numpy as np

from edge.classifier import resize_into

PIXEL_SCALE = 1.0 / 127.5
PIXEL_OFFSET = -1.0


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) gray faces -> (N, size, size), with the device's own crop resize."""
    if faces.shape[1:3] == (size, size):
        return faces
    out = np.empty((len(faces), size, size), faces.dtype)
    for face, o in zip(faces, out):
        resize_into(face, o)
    return out


def to_model_input(faces: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) gray uint8 or float 0..255 -> (N, size, size, 1) float32 model input."""
    x = resize_faces(faces, size).astype(np.float32)
    x *= PIXEL_SCALE
    x += PIXEL_OFFSET
    return x[..., None]
