"""YuNet through OpenCV's ``cv2.FaceDetectorYN``: small and turned faces in one pass.

The model is opencv_zoo's ``face_detection_yunet_2023mar.onnx`` (232,589 bytes, shipped in
models/; its origin, sha256 and licence are in registry.py and NOTICE). It is used the way
opencv_zoo's yunet.py/demo.py use it: ``FaceDetectorYN.create(model, "", (w, h), score,
nms, top_k)``, then ``setInputSize`` to the image's size and ``detect``; each row of the
result is x, y, w, h, five landmarks (x, y) and the score, in input pixels.

Here the frame's ROI is first scaled by ``[detector.yunet] scale`` (YuNet finds faces from
~10-16 px of its input, so 2/3 keeps a 24 px face) and, where that is still more than
``max_pixels``, scaled down further: OpenCV's network allocates its buffers for the input
size, so a 4K frame or a 12 MP photo at full size would cost hundreds of MB; capped, the
input (and the memory) stays that of a 720p frame. Tiling would keep a 4K frame's smallest
faces, at a cost that grows with the frame; a cap keeps the cost fixed, which a Pi needs.

Boxes: YuNet's box (brow to chin, taller than wide) is turned into the square box that
BlazeFace and the annotations use (see CENTRE_DOWN): with its own box, ``min_face = 20``
dropped most faces of 24 px (their YuNet width is ~21 px): 49 of 86 found at 720p instead
of 85 (bench/results/classroom.md, YuNet).

Threads: OpenCV's DNN runs in OpenCV's own thread pool (all cores unless the process says
otherwise). ``cv2.setNumThreads`` is global to the process: it would also change every other
OpenCV call (the capture thread's resizing, the classifier's crops, the page's JPEG
encoding) and the last detector built would win over the others. So a detector does not
call it; ``[detector] threads`` stays LiteRT's, and the benchmark sets OpenCV's threads
for its whole process when it compares CPU costs.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np

from ..errors import one_line
from .base import Detection, FaceDetector, frame_region
from .errors import DetectorModelError
from .roi import WHOLE_FRAME, Roi, check_roi
from .yunet_config import YuNetConfig

# YuNet's box runs from the brow to the chin: a median 13% narrower and 15% taller than
# BlazeFace's and than this project's hand-checked boxes (tests/data/scene_faces.json, 23
# faces; BlazeFace full range matches them 1.00 / 1.00), its centre 5% of the side higher.
# min_face, the tracker and the classifier's crop all take that square box, so a YuNet box
# becomes a square of side sqrt(w * h) (the same area) around its centre moved down 5%.
CENTRE_DOWN = 0.05
HINT = ("it ships in the repository's models/ (clone again, or run `python -m "
        "edge.detectors.fetch_models` to copy it)")
TOP_K = 5000          # opencv_zoo's default: candidates kept before NMS


def input_size(width: int, height: int, cfg: YuNetConfig) -> tuple[int, int, float]:
    """YuNet's input (w, h) for a region of ``width`` x ``height``, and its scale: the
    configured one, or less where that would exceed ``max_pixels``."""
    scale = cfg.scale
    if width * height * scale * scale > cfg.max_pixels:
        scale = math.sqrt(cfg.max_pixels / (width * height))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    return w, h, scale


def load(path: Path, score: float, nms_iou: float):
    """A FaceDetectorYN for ``path``, or a one-line DetectorModelError."""
    if not path.is_file():
        raise DetectorModelError(f"{path}: YuNet model not found; {HINT}")
    try:
        return cv2.FaceDetectorYN.create(str(path), "", (320, 320), score, nms_iou, TOP_K)
    except cv2.error as exc:   # a long multi-line text from OpenCV's ONNX importer
        m = re.search(r"error: \([^)]*\) ([^\n]*)", str(exc))
        why = (m.group(1) if m else one_line(exc)).split(": /")[0][:120]
        raise DetectorModelError(f"{path}: not a usable YuNet ONNX model ({why}); "
                                 f"{HINT}") from None


class YuNetDetector(FaceDetector):
    """Faces in BGR frames with YuNet; boxes in frame pixels, best first."""
    name = "yunet"

    def __init__(self, model_path: Path | str, cfg: YuNetConfig | None = None, *,
                 min_score: float = 0.65, continue_score: float | None = None,
                 nms_iou: float = 0.3, min_face: int = 0, roi: Roi = WHOLE_FRAME):
        self.cfg = cfg or YuNetConfig()
        self.min_score = float(min_score)
        self.continue_score = float(min_score if continue_score is None else continue_score)
        self.min_face = int(min_face)
        self.roi = check_roi(roi)
        self.path = Path(model_path)
        # One threshold for the network (the weak tier's); the tiers are split here. Its
        # NMS sees strong and weak boxes together, so a weak box never doubles a face.
        self._net = load(self.path, min(self.continue_score, self.min_score), nms_iou)
        self._size: tuple[int, int] | None = None    # the input size the network has now
        self._buffer: np.ndarray | None = None        # the scaled region, reused

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        return self.detect_tiers(frame_bgr)[0]

    def detect_tiers(self, frame_bgr: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        region = frame_region(frame_bgr, self.roi)
        if region is None:
            return [], []
        x0, y0, x1, y1 = region
        img = frame_bgr[y0:y1, x0:x1]
        w, h, _ = input_size(x1 - x0, y1 - y0, self.cfg)
        if (w, h) != (x1 - x0, y1 - y0):
            if self._buffer is None or self._buffer.shape[:2] != (h, w):
                self._buffer = np.empty((h, w, 3), np.uint8)
            cv2.resize(img, (w, h), dst=self._buffer, interpolation=cv2.INTER_AREA)
            img = self._buffer
        elif not img.flags.c_contiguous:
            img = np.ascontiguousarray(img)
        if self._size != (w, h):       # re-plans the network's buffers: only on a new size
            self._net.setInputSize((w, h))
            self._size = (w, h)
        _, rows = self._net.detect(img)
        if rows is None:
            return [], []
        fh, fw = frame_bgr.shape[:2]
        sx, sy = (x1 - x0) / w, (y1 - y0) / h     # exact per axis (int() above rounds)
        strong, weak = [], []
        for r in rows[np.argsort(-rows[:, 14])]:
            # YuNet's box -> the square box of the other detectors (module docstring).
            side = math.sqrt(r[2] * sx * r[3] * sy)
            if side < self.min_face:               # the face's size, before clipping
                continue
            cx = (r[0] + r[2] / 2) * sx + x0
            cy = (r[1] + r[3] / 2) * sy + y0 + CENTRE_DOWN * side
            bx, by, bw, bh = cx - side / 2, cy - side / 2, side, side
            cx0, cy0 = max(0, int(round(bx))), max(0, int(round(by)))
            cx1, cy1 = min(fw, int(round(bx + bw))), min(fh, int(round(by + bh)))
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:     # (almost) all outside the frame
                continue
            d = Detection((cx0, cy0, cx1 - cx0, cy1 - cy0), float(r[14]))
            (strong if d.score >= self.min_score else weak).append(d)
        return strong, weak

    def close(self) -> None:
        self._net = None
        self._buffer = None
