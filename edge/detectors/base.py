"""The face-detector interface: each detector is a small plugin behind it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..events import Box
from .roi import Roi, roi_pixels


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box        # x, y, w, h in the frame's pixels, clipped to the frame
    score: float    # detector confidence, 0..1 (Haar: 1.0)


def frame_region(frame_bgr: np.ndarray, roi: Roi) -> tuple[int, int, int, int] | None:
    """The ROI's pixels (x0, y0, x1, y1) in a valid BGR uint8 frame; None when the region
    is empty (a tiny frame). A frame of another kind is a ValueError here, not an
    assertion failure inside OpenCV or LiteRT."""
    if not isinstance(frame_bgr, np.ndarray) or frame_bgr.dtype != np.uint8 \
            or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"a detector takes BGR uint8 frames (H, W, 3), not "
                         f"{getattr(frame_bgr, 'dtype', type(frame_bgr).__name__)} "
                         f"{getattr(frame_bgr, 'shape', '')}")
    fh, fw = frame_bgr.shape[:2]
    if fh < 1 or fw < 1:
        return None
    x0, y0, x1, y1 = roi_pixels(roi, fw, fh)
    return (x0, y0, x1, y1) if x1 - x0 >= 1 and y1 - y0 >= 1 else None


class FaceDetector(ABC):
    name = "detector"

    @abstractmethod
    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Faces in one BGR uint8 frame (H, W, 3), best first."""

    def close(self) -> None:
        """Release resources."""
