"""OpenCV's Haar cascade (frontal face, default): no model download, frontal faces only.

Grayscale + histogram equalisation (evens out backlight and dim rooms, which the cascade's
fixed thresholds are sensitive to), then ``detectMultiScale``. The cascade has no
confidence score: every detection gets 1.0, and ``min_neighbors`` plays the part of the
threshold (how many overlapping raw hits a face needs). The defaults below were chosen
with ``bench/detectors.py``; see bench/results/detectors.md.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .base import Detection, FaceDetector, frame_region
from .errors import DetectorModelError
from .roi import WHOLE_FRAME, Roi, check_roi, roi_pixels

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Tuned on the scenes and videos (bench/detectors.py, min_face 32): scale step 1.2 with
# 5 neighbours has the same scene recall as step 1.1 (17/23) at about half the CPU time
# (53 vs 88 ms CPU at 960x540), and no detections on the 192 cartoon frames (1.1/5: 6);
# 3 neighbours finds one face more (18/23) but adds 10 false ones; 1.2/8 loses two (15/23).
SCALE_FACTOR = 1.2
MIN_NEIGHBORS = 5
CASCADE_MIN_SIDE = 24  # the cascade's own window: nothing smaller can be found


def cascade_path() -> Path:
    return Path(cv2.data.haarcascades) / CASCADE_FILE


class HaarDetector(FaceDetector):
    """Frontal faces with OpenCV's default Haar cascade; boxes in frame pixels."""

    name = "haar"

    def __init__(self, *, min_face: int = 40, roi: Roi = WHOLE_FRAME,
                 scale_factor: float = SCALE_FACTOR, min_neighbors: int = MIN_NEIGHBORS):
        path = cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorModelError(f"{path}: OpenCV could not load its Haar cascade "
                                     "(opencv-python-headless < 5 ships it)")
        self.min_face = max(CASCADE_MIN_SIDE, int(min_face))
        self.roi = check_roi(roi)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self._gray: np.ndarray | None = None  # reused while the ROI size stays the same

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        region = frame_region(frame_bgr, self.roi)
        if region is None:
            return []
        x0, y0, x1, y1 = region
        img = frame_bgr[y0:y1, x0:x1]
        if self._gray is None or self._gray.shape != img.shape[:2]:
            self._gray = np.empty(img.shape[:2], np.uint8)
        cv2.cvtColor(img, cv2.COLOR_BGR2GRAY, dst=self._gray)
        cv2.equalizeHist(self._gray, dst=self._gray)
        found = self._cascade.detectMultiScale(
            self._gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face))
        # Largest first: with no scores, the biggest face is the most reliable one.
        boxes = sorted((tuple(int(v) for v in b) for b in found), key=lambda b: -b[2] * b[3])
        return [Detection((x + x0, y + y0, w, h), 1.0) for x, y, w, h in boxes]
