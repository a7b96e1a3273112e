"""Training-time augmentation of 48x48 grayscale faces, in NumPy/OpenCV (backend-agnostic).

One random affine warp per face (flip, shift, rotation, zoom) and a brightness/contrast
jitter: the variations a camera in a room produces, and cheap next to a training step.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augment:
    flip: bool = True
    shift: float = 0.1        # fraction of the side
    rotation: float = 10.0    # degrees
    zoom: float = 0.1         # +- fraction
    brightness: float = 0.2   # +- fraction of full scale
    contrast: float = 0.3     # +- fraction

    def __call__(self, faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``faces`` (N, H, W) uint8 -> augmented float32 (N, H, W) in 0..255."""
        n, h, w = faces.shape
        out = np.empty((n, h, w), np.float32)
        angles = rng.uniform(-self.rotation, self.rotation, n)
        scales = 1.0 + rng.uniform(-self.zoom, self.zoom, n)
        shifts = rng.uniform(-self.shift, self.shift, (n, 2)) * (w, h)
        flips = rng.random(n) < 0.5 if self.flip else np.zeros(n, bool)
        centre = (w / 2 - 0.5, h / 2 - 0.5)
        for i in range(n):
            m = cv2.getRotationMatrix2D(centre, angles[i], scales[i])
            m[:, 2] += shifts[i]
            if flips[i]:  # mirror the x output: x' = (w-1) - x'
                m[0] = -m[0]
                m[0, 2] += w - 1
            out[i] = cv2.warpAffine(faces[i], m, (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT_101)
        mean = out.mean(axis=(1, 2), keepdims=True)
        c = 1.0 + rng.uniform(-self.contrast, self.contrast, (n, 1, 1))
        b = rng.uniform(-self.brightness, self.brightness, (n, 1, 1)) * 255.0
        np.clip((out - mean) * c + mean + b, 0.0, 255.0, out=out)
        return out
