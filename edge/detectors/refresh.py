"""Known far faces looked for again between far passes, all in one small call: a crop
around each, scaled so the face is ``REFRESH_FACE`` px, side by side in ``REFRESH_CELL``
px cells of one picture, and any detector run on that picture (composed, not configured:
YuNet beside a YuNet far pass, so that a face is re-found on the scores that found it)."""
from __future__ import annotations

import math

import cv2
import numpy as np

from .base import Detection, FaceDetector
from .wide import REFRESH_CELL, REFRESH_FACE, REFRESH_SPAN


class CellRefresher:
    """``refresh(frame, boxes)``: for each box, the face ``finder`` finds nearest its
    crop's centre (its side 0.5-2x the old one), or None."""

    def __init__(self, finder: FaceDetector):
        self.finder = finder
        self._canvas = np.zeros((REFRESH_CELL, REFRESH_CELL, 3), np.uint8)
        self._cells, self._cols = 1, 1

    def refresh(self, frame_bgr: np.ndarray, boxes: list) -> list[Detection | None]:
        if not boxes:
            return []
        fh, fw = frame_bgr.shape[:2]
        cell = REFRESH_CELL
        if len(boxes) > self._cells:     # grow only: a new size re-plans the finder
            cols = math.ceil(math.sqrt(len(boxes)))
            rows = math.ceil(len(boxes) / cols)
            self._canvas = np.zeros((rows * cell, cols * cell, 3), np.uint8)
            self._cells, self._cols = cols * rows, cols
        self._canvas[:] = 0
        places = []
        for i, (x, y, w, h) in enumerate(boxes):
            side = REFRESH_SPAN * max(w, h)
            s = cell / side
            X0, Y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
            ix0, iy0 = max(0, int(X0)), max(0, int(Y0))
            ix1, iy1 = min(fw, int(X0 + side)), min(fh, int(Y0 + side))
            r, c = divmod(i, self._cols)
            places.append((c * cell, r * cell, X0, Y0, s, max(w, h)))
            if ix1 - ix0 < 2 or iy1 - iy0 < 2:
                continue
            ox, oy = int((ix0 - X0) * s), int((iy0 - Y0) * s)
            tw = max(1, min(cell - ox, round((ix1 - ix0) * s)))
            th = max(1, min(cell - oy, round((iy1 - iy0) * s)))
            cv2.resize(frame_bgr[iy0:iy1, ix0:ix1], (tw, th),
                       dst=self._canvas[r * cell + oy:r * cell + oy + th,
                                        c * cell + ox:c * cell + ox + tw],
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        out: list[Detection | None] = [None] * len(boxes)
        best = [float("inf")] * len(boxes)
        for d in self.finder.detect(self._canvas):
            b0, b1, bw, bh = d.box
            ccx, ccy = b0 + bw / 2, b1 + bh / 2
            i = int(ccy // cell) * self._cols + int(ccx // cell)
            if i >= len(boxes):
                continue
            px, py, X0, Y0, s, old = places[i]
            dist = math.hypot(ccx - px - cell / 2, ccy - py - cell / 2)
            if dist >= best[i] or not 0.5 <= max(bw, bh) / s / old <= 2.0:
                continue
            bx0, by0 = (b0 - px) / s + X0, (b1 - py) / s + Y0
            cx0, cy0 = max(0, int(round(bx0))), max(0, int(round(by0)))
            cx1, cy1 = min(fw, int(round(bx0 + bw / s))), min(fh, int(round(by0 + bh / s)))
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue
            best[i] = dist
            out[i] = Detection((cx0, cy0, cx1 - cx0, cy1 - cy0), d.score)
        return out

    def close(self) -> None:
        self.finder.close()
