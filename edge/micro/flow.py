"""Onset-to-apex optical flow and optical strain, as the model's training images were made.

What the training set holds (measured on megc2019_composite_flow28.npz, 442 clips):
channel 0 = horizontal flow u (mirror-antisymmetric; higher = rightward: the mouth corners
of smiles move apart), channel 1 = vertical flow v (mirror-symmetric; higher = downward:
brows rise in surprise clips, i.e. low values at the top), channel 2 = optical strain
magnitude (skewed: median ~13 of 255). Each channel of every image spans exactly 0..255: a
per-image min-max normalization done *after* resizing to 28x28 (an area resize of a
normalized larger image would not keep exact 0 and 255 everywhere). So the "centre near 128"
is not a fixed zero: zero flow lands wherever the normalization puts it.

We compute the same three maps with OpenCV (DIS or Farneback; the source used TV-L1, which
needs opencv-contrib), remove the median flow (head translation, which the aligned
training crops did not have), resize with INTER_AREA and min-max normalize each channel.
"""
from __future__ import annotations

import cv2
import numpy as np

SIZE = 28
METHODS = ("dis", "farneback")


class FlowImager:
    """Reusable buffers for one crop size; ``__call__`` is not thread-safe."""

    def __init__(self, crop_size: int, method: str = "dis"):
        if method not in METHODS:
            raise ValueError(f"flow method {method!r}: use {' or '.join(METHODS)}")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) \
            if method == "dis" else None
        self._flow = np.zeros((crop_size, crop_size, 2), np.float32)
        self._grad = np.empty((crop_size, crop_size), np.float32)
        self._strain = np.empty((crop_size, crop_size), np.float32)
        self._small = np.empty((SIZE, SIZE, 3), np.float32)

    def flow(self, onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
        """Dense flow (H, W, 2) float32 from ``onset`` to ``apex`` (same-size gray uint8)."""
        if self._dis is not None:
            return self._dis.calc(onset, apex, self._flow)
        return cv2.calcOpticalFlowFarneback(onset, apex, self._flow, 0.5, 3, 9, 3, 5, 1.1, 0)

    def __call__(self, onset: np.ndarray, apex: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
        """(28, 28, 3) uint8 image: u, v, strain, each min-max normalized to 0..255."""
        f = self.flow(onset, apex)
        f -= np.median(f.reshape(-1, 2), axis=0)            # rigid head shift is not expression
        # (runs only on a spotted event, not per frame: its few temporaries do not matter)
        u, v = f[..., 0], f[..., 1]
        s, g = self._strain, self._grad
        # strain magnitude sqrt(ux^2 + vy^2 + 0.5 (uy + vx)^2), central differences
        cv2.Sobel(u, cv2.CV_32F, 1, 0, dst=g, ksize=1, scale=0.5)
        np.multiply(g, g, out=s)
        cv2.Sobel(v, cv2.CV_32F, 0, 1, dst=g, ksize=1, scale=0.5)
        s += g * g
        shear = cv2.Sobel(u, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
        shear += cv2.Sobel(v, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
        s += 0.5 * shear * shear
        np.sqrt(s, out=s)
        small = self._small
        small[..., :2] = cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        small[..., 2] = cv2.resize(s, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        return minmax_uint8(small, out)


def minmax_uint8(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Per-channel min-max to 0..255 uint8; a flat channel becomes 0."""
    out = np.empty(x.shape, np.uint8) if out is None else out
    lo = x.min(axis=(0, 1))
    span = x.max(axis=(0, 1)) - lo
    scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 1e-12)
    np.rint((x - lo) * scale, out=x)
    np.copyto(out, x, casting="unsafe")
    return out
