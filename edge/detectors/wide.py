"""BlazeFace short range run on a large picture, for the small faces of a classroom.

Short range is fully convolutional: LiteRT resizes its 128x128 input to any size that is a
multiple of 16, and each 8 and 16 px cell of the picture then carries its anchors as at
128x128. The model finds faces of about 14-100 input pixels wherever they are, so a whole
1280x720 frame shrunk by 2/3 to 864x480 finds its 24 px faces (16 px there) in one call.
(Full range cannot be resized: one of its reshapes is fixed at 192x192.)

The decoding is blazeface.py's, with the anchors of a width x height grid and box offsets
scaled by the input's width and height.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .anchors import ssd_anchor_centers
from .base import Detection, FaceDetector, frame_region
from .blazeface import SHORT_RANGE, _logit, load_interpreter
from .errors import DetectorModelError
from .far import SMALLEST_INPUT_FACE  # noqa: F401  (why 16: see far.py)
from .nms import weighted_nms
from .roi import WHOLE_FRAME, Roi, check_roi

_ALIGN = 16  # the coarsest stride: input sides must be multiples of it


class WideShortRange(FaceDetector):
    """Short range on the frame (its ROI) scaled by ``scale``; boxes in frame pixels."""

    name = "blazeface-wide"

    def __init__(self, model_path: Path | str, *, scale: float, min_score: float = 0.5,
                 nms_iou: float = 0.3, min_face: int = 0, roi: Roi = WHOLE_FRAME,
                 threads: int = 1):
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"scale: {scale} must be in (0, 1]")
        self.path = Path(model_path)
        self.scale = float(scale)
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.min_face = int(min_face)
        self.roi = check_roi(roi)
        self._interp = load_interpreter(self.path, threads)
        inp = self._interp.get_input_details()
        if len(inp) != 1 or inp[0]["dtype"] != np.float32 or inp[0]["shape"][-1] != 3:
            raise DetectorModelError(f"{self.path}: expected one float32 RGB input for "
                                     f"{SHORT_RANGE.name}")
        self._input_index = inp[0]["index"]
        self._min_logit = _logit(self.min_score)
        self._layout_for: tuple[int, int] | None = None
        self._input = (0, 0)           # model input width, height
        self._resized = (0, 0)         # the scaled region inside it (top-left)
        self._canvas = np.zeros((1, 1, 3), np.uint8)
        self._anchors = np.zeros((0, 2), np.float32)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The model input (w, h) for a region of ``width`` x ``height`` frame pixels."""
        return (max(_ALIGN, math.ceil(width * self.scale / _ALIGN) * _ALIGN),
                max(_ALIGN, math.ceil(height * self.scale / _ALIGN) * _ALIGN))

    def _layout(self, h: int, w: int) -> None:
        iw, ih = self.input_size(w, h)
        self._interp.resize_tensor_input(self._input_index, [1, ih, iw, 3])
        self._interp.allocate_tensors()
        outs = {int(d["shape"][-1]): d["index"] for d in self._interp.get_output_details()}
        if set(outs) != {16, 1}:
            raise DetectorModelError(f"{self.path}: outputs do not match {SHORT_RANGE.name}")
        self._boxes_index, self._scores_index = outs[16], outs[1]
        self._anchors = ssd_anchor_centers((iw, ih), SHORT_RANGE.strides,
                                           SHORT_RANGE.interpolated_scale_aspect_ratio)
        self._input = (iw, ih)
        self._resized = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        self._canvas = np.zeros((ih, iw, 3), np.uint8)   # right/bottom border stays black
        self._layout_for = (h, w)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        region = frame_region(frame_bgr, self.roi)
        if region is None:
            return []
        x0, y0, x1, y1 = region
        fh, fw = frame_bgr.shape[:2]
        img = frame_bgr[y0:y1, x0:x1]
        if self._layout_for != img.shape[:2]:
            self._layout(*img.shape[:2])
        rw, rh = self._resized
        interp = cv2.INTER_AREA if self.scale < 1.0 else cv2.INTER_LINEAR
        cv2.resize(img, (rw, rh), dst=self._canvas[:rh, :rw], interpolation=interp)
        tensor = self._interp.tensor(self._input_index)()[0]
        np.multiply(self._canvas[:, :, ::-1], np.float32(2.0 / 255.0), out=tensor,
                    dtype=np.float32, casting="unsafe")
        np.subtract(tensor, 1.0, out=tensor)
        del tensor  # LiteRT refuses to invoke while a view of its buffers is alive
        self._interp.invoke()
        logits = self._interp.get_tensor(self._scores_index)[0, :, 0]
        hits = np.flatnonzero(logits > self._min_logit)
        if hits.size == 0:
            return []
        iw, ih = self._input
        raw = self._interp.get_tensor(self._boxes_index)[0, hits, :4]
        centers = self._anchors[hits]
        cx = raw[:, 0] / iw + centers[:, 0]
        cy = raw[:, 1] / ih + centers[:, 1]
        half_w, half_h = raw[:, 2] / (2 * iw), raw[:, 3] / (2 * ih)
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[hits], -100.0, 100.0)))
        boxes, scores = weighted_nms(boxes, scores, self.nms_iou)
        # 0..1 of the input -> input px -> region px (the scaled region sits top-left).
        sx, sy = rw / (x1 - x0), rh / (y1 - y0)
        out = []
        for (b0, b1, b2, b3), score in zip(boxes, scores):
            bx0, by0 = b0 * iw / sx + x0, b1 * ih / sy + y0
            bw, bh = (b2 - b0) * iw / sx, (b3 - b1) * ih / sy
            if min(bw, bh) < self.min_face:
                continue
            cx0, cy0 = max(0, int(round(bx0))), max(0, int(round(by0)))
            cx1, cy1 = min(fw, int(round(bx0 + bw))), min(fh, int(round(by0 + bh)))
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue
            out.append(Detection((cx0, cy0, cx1 - cx0, cy1 - cy0), float(score)))
        return out

    def close(self) -> None:
        self._interp = None
