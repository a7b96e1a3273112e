"""The model's input convention, shared by training, evaluation, quantization and the device.

A model takes float faces ``pixel * PIXEL_SCALE + PIXEL_OFFSET`` (gray 0..255 -> -1..1).
The sidecar JSON carries these two numbers, so the device never has to guess.
"""
from __future__ import annotations

import cv2
import numpy as np

PIXEL_SCALE = 1.0 / 127.5
PIXEL_OFFSET = -1.0


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) gray faces -> (N, size, size), as the device's crop resize does it."""
    if faces.shape[1:3] == (size, size):
        return faces
    interp = cv2.INTER_AREA if size < faces.shape[1] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in faces])


def to_model_input(faces: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) gray uint8 or float 0..255 -> (N, size, size, 1) float32 model input."""
    x = resize_faces(faces, size).astype(np.float32)
    x *= PIXEL_SCALE
    x += PIXEL_OFFSET
    return x[..., None]
