"""The face-detector interface: each detector is a small plugin behind it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..events import Box


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box        # x, y, w, h in the frame's pixels, clipped to the frame
    score: float    # detector confidence, 0..1 (Haar: 1.0)


class FaceDetector(ABC):
    name = "detector"

    @abstractmethod
    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Faces in one BGR uint8 frame (H, W, 3), best first."""

    def detect_tiers(self, frame_bgr: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """``detect``'s faces, and weak ones (scored between the detector's
        ``continue_score`` and its threshold) that may continue a track but never start
        one. Detectors without scores have no weak tier."""
        return self.detect(frame_bgr), []

    def close(self) -> None:
        """Release resources."""
