"""Known far faces looked for again between far passes, all in one small call: a crop
around each, scaled so the face is ``REFRESH_FACE`` px, side by side in ``REFRESH_CELL``
px cells of one picture. ``pack`` draws the cells and ``unpack`` takes each cell's face
back to the frame; short range (wide.py) runs its own input through them, and
``CellRefresher`` any detector (YuNet beside a YuNet far pass, so that a face is found
again on the scores that found it)."""
from __future__ import annotations

import math
from typing import Iterable

import cv2
import numpy as np

from .base import Detection, FaceDetector

# Each known face in a 64 px cell (a multiple of 16) at 24 px, with 2.7 face sides of room
# around it for the face to have moved.
REFRESH_CELL, REFRESH_FACE = 64, 24
REFRESH_SPAN = REFRESH_CELL / REFRESH_FACE

Place = tuple[int, int, float, float, float, int]   # cell x, y; crop x0, y0; scale; old side


def grid(n: int) -> tuple[int, int]:
    """Columns and rows of cells for ``n`` faces."""
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def pack(frame_bgr: np.ndarray, boxes: list, canvas: np.ndarray, cols: int) -> list[Place]:
    """Each of ``boxes`` cropped and scaled into its cell of ``canvas`` (cleared first)."""
    fh, fw = frame_bgr.shape[:2]
    cell = REFRESH_CELL
    canvas[:] = 0
    places = []
    for i, (x, y, w, h) in enumerate(boxes):
        side = REFRESH_SPAN * max(w, h)
        s = cell / side
        X0, Y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
        ix0, iy0 = max(0, int(X0)), max(0, int(Y0))
        ix1, iy1 = min(fw, int(X0 + side)), min(fh, int(Y0 + side))
        r, c = divmod(i, cols)
        places.append((c * cell, r * cell, X0, Y0, s, max(w, h)))
        if ix1 - ix0 < 2 or iy1 - iy0 < 2:
            continue
        ox, oy = int((ix0 - X0) * s), int((iy0 - Y0) * s)
        tw = max(1, min(cell - ox, round((ix1 - ix0) * s)))
        th = max(1, min(cell - oy, round((iy1 - iy0) * s)))
        cv2.resize(frame_bgr[iy0:iy1, ix0:ix1], (tw, th),
                   dst=canvas[r * cell + oy:r * cell + oy + th,
                              c * cell + ox:c * cell + ox + tw],
                   interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return places


def unpack(found: Iterable[tuple[float, float, float, float, float]], places: list[Place],
           cols: int, frame_shape: tuple[int, ...]) -> list[Detection | None]:
    """For each place, the face of ``found`` (x0, y0, x1, y1, score in canvas px) nearest
    its cell's centre, its side 0.5-2x the old one, in frame pixels; or None."""
    fh, fw = frame_shape[:2]
    cell = REFRESH_CELL
    out: list[Detection | None] = [None] * len(places)
    best = [float("inf")] * len(places)
    for b0, b1, b2, b3, score in found:
        ccx, ccy = (b0 + b2) / 2, (b1 + b3) / 2
        i = int(ccy // cell) * cols + int(ccx // cell)
        if i >= len(places):
            continue
        px, py, X0, Y0, s, old = places[i]
        d = math.hypot(ccx - px - cell / 2, ccy - py - cell / 2)
        side = max(b2 - b0, b3 - b1) / s
        if d >= best[i] or not 0.5 <= side / old <= 2.0:
            continue
        bx0, by0 = (b0 - px) / s + X0, (b1 - py) / s + Y0
        bw, bh = (b2 - b0) / s, (b3 - b1) / s
        cx0, cy0 = max(0, int(round(bx0))), max(0, int(round(by0)))
        cx1, cy1 = min(fw, int(round(bx0 + bw))), min(fh, int(round(by0 + bh)))
        if cx1 - cx0 < 2 or cy1 - cy0 < 2:
            continue
        best[i] = d
        out[i] = Detection((cx0, cy0, cx1 - cx0, cy1 - cy0), float(score))
    return out


class CellRefresher:
    """``refresh(frame, boxes)`` with any detector ``finder`` run on the cells."""

    def __init__(self, finder: FaceDetector):
        self.finder = finder
        self._canvas = np.zeros((REFRESH_CELL, REFRESH_CELL, 3), np.uint8)
        self._cells, self._cols = 1, 1

    def refresh(self, frame_bgr: np.ndarray, boxes: list) -> list[Detection | None]:
        if not boxes:
            return []
        if len(boxes) > self._cells:     # grow only: a new size re-plans the finder
            cols, rows = grid(len(boxes))
            self._canvas = np.zeros((rows * REFRESH_CELL, cols * REFRESH_CELL, 3), np.uint8)
            self._cells, self._cols = cols * rows, cols
        places = pack(frame_bgr, boxes, self._canvas, self._cols)
        found = ((x, y, x + w, y + h, d.score) for d in self.finder.detect(self._canvas)
                 for x, y, w, h in (d.box,))
        return unpack(found, places, self._cols, frame_bgr.shape)

    def close(self) -> None:
        self.finder.close()
