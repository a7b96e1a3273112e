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
from .refresh import REFRESH_CELL, grid, pack, unpack
from .roi import WHOLE_FRAME, Roi, check_roi

_ALIGN = 16  # the coarsest stride: input sides must be multiples of it
# A large picture is run in overlapping tiles of at most TILE_AREA input pixels: LiteRT's
# activations grow with the input (864x480, a 720p frame at 2/3: +95 MB; 1280x720 at
# 1080p: +166 MB; a 4K camera's or a 12 MP photo's: +650 MB to +1 GB), a tile's stay
# under ~100 MB whatever the picture. Tiles overlap by TILE_OVERLAP, more than the largest
# face the far pass keeps (the near pass sees faces over ~71 input px), so each face lies
# whole in the tile that owns it. 720p stays one call: in 2x2 tiles (160,000 px, +40 MB)
# the tiles' narrower context moved scores enough that the classroom video's 15 people
# became 17 tracks (2x1 tiles of 480x480: 16; one call: 15); 1080p runs in 3 strips of 496x720 (+75 MB, 1.2x the
# pixels of one call).
TILE_AREA, TILE_OVERLAP = 450_000, 96


def tile_grid(width: int, height: int) -> tuple[int, int, int, int]:
    """(cols, rows, tile width, tile height) covering a ``width`` x ``height`` input with
    tiles of at most TILE_AREA pixels (multiples of 16), the fewest pixels in all."""
    if width * height <= TILE_AREA:
        return 1, 1, width, height
    best = None
    for cols in range(1, 17):
        for rows in range(1, 17):
            tw = math.ceil((width + (cols - 1) * TILE_OVERLAP) / cols / _ALIGN) * _ALIGN
            th = math.ceil((height + (rows - 1) * TILE_OVERLAP) / rows / _ALIGN) * _ALIGN
            if tw * th > TILE_AREA or tw <= TILE_OVERLAP or th <= TILE_OVERLAP:
                continue
            cost = cols * rows * tw * th
            if best is None or cost < best[0]:
                best = (cost, cols, rows, min(tw, width), min(th, height))
    if best is None:
        raise ValueError(f"{width}x{height}: too large to tile")
    return best[1:]


def _cuts(starts: list[int], size: int) -> list[float]:
    """Where each tile's part of the picture begins and the last one ends: the middle of
    each overlap."""
    inner = [(a + size + b) / 2 for a, b in zip(starts, starts[1:])]
    return [-math.inf, *inner, math.inf]


def _starts(total: int, size: int, n: int) -> list[int]:
    """``n`` tile origins from 0 to ``total - size``, evenly spread."""
    if n == 1:
        return [0]
    return [round(i * (total - size) / (n - 1)) for i in range(n)]


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
        self._cells, self._cols = 0, 1   # refresh()'s layout
        self._tiles: list[tuple[int, int, float, float, float, float]] = []
        self._scaled: np.ndarray | None = None   # the scaled picture, when tiled

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The model input (w, h) for a region of ``width`` x ``height`` frame pixels."""
        return (max(_ALIGN, math.ceil(width * self.scale / _ALIGN) * _ALIGN),
                max(_ALIGN, math.ceil(height * self.scale / _ALIGN) * _ALIGN))

    def _resize_input(self, iw: int, ih: int) -> None:
        self._interp.resize_tensor_input(self._input_index, [1, ih, iw, 3])
        self._interp.allocate_tensors()
        outs = {int(d["shape"][-1]): d["index"] for d in self._interp.get_output_details()}
        if set(outs) != {16, 1}:
            raise DetectorModelError(f"{self.path}: outputs do not match {SHORT_RANGE.name}")
        self._boxes_index, self._scores_index = outs[16], outs[1]
        self._anchors = ssd_anchor_centers((iw, ih), SHORT_RANGE.strides,
                                           SHORT_RANGE.interpolated_scale_aspect_ratio)
        self._input = (iw, ih)
        self._canvas = np.zeros((ih, iw, 3), np.uint8)   # right/bottom border stays black

    def _layout(self, h: int, w: int) -> None:
        iw, ih = self.input_size(w, h)
        rw, rh = max(1, round(w * self.scale)), max(1, round(h * self.scale))
        cols, rows, tw, th = tile_grid(iw, ih)
        if cols * rows == 1:
            self._tiles, self._scaled = [(0, 0, False, False, False, False)], None
        else:   # the scaled picture is cut into the tiles: each inside it, none padded
            tw, th = min(tw, rw // _ALIGN * _ALIGN), min(th, rh // _ALIGN * _ALIGN)
            xs, ys = _starts(rw, tw, cols), _starts(rh, th, rows)
            # Each tile owns the faces centred in its part of the picture: up to the middle
            # of its overlaps with the next tiles. A face of at most the overlap lies whole
            # in the tile that owns it; a cut one is centred in the other tile's part.
            cx, cy = _cuts(xs, tw), _cuts(ys, th)
            self._tiles = [(x, y, cx[i], cy[j], cx[i + 1], cy[j + 1])
                           for j, y in enumerate(ys) for i, x in enumerate(xs)]
            self._scaled = np.empty((rh, rw, 3), np.uint8)
        self._resize_input(tw, th)
        self._resized = (rw, rh)
        self._layout_for = (h, w)
        self._cells = 0

    def _infer(self) -> tuple[np.ndarray, np.ndarray]:
        """The model on ``self._canvas``: boxes (x0, y0, x1, y1 in input px) and scores."""
        tensor = self._interp.tensor(self._input_index)()[0]
        np.multiply(self._canvas[:, :, ::-1], np.float32(2.0 / 255.0), out=tensor,
                    dtype=np.float32, casting="unsafe")
        np.subtract(tensor, 1.0, out=tensor)
        del tensor  # LiteRT refuses to invoke while a view of its buffers is alive
        self._interp.invoke()
        logits = self._interp.get_tensor(self._scores_index)[0, :, 0]
        hits = np.flatnonzero(logits > self._min_logit)
        if hits.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        iw, ih = self._input
        raw = self._interp.get_tensor(self._boxes_index)[0, hits, :4]
        centers = self._anchors[hits]
        cx = raw[:, 0] / iw + centers[:, 0]
        cy = raw[:, 1] / ih + centers[:, 1]
        half_w, half_h = raw[:, 2] / (2 * iw), raw[:, 3] / (2 * ih)
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[hits], -100.0, 100.0)))
        boxes, scores = weighted_nms(boxes, scores, self.nms_iou)
        return boxes * np.array([iw, ih, iw, ih], np.float32), scores

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
        if self._scaled is None:
            self._canvas[:] = 0
            cv2.resize(img, (rw, rh), dst=self._canvas[:rh, :rw], interpolation=interp)
            boxes, scores = self._infer()
        else:
            boxes, scores = self._tiled(cv2.resize(img, (rw, rh), dst=self._scaled,
                                                   interpolation=interp))
        # input px -> region px (the scaled region sits top-left) -> frame px.
        sx, sy = rw / (x1 - x0), rh / (y1 - y0)
        out = []
        for (b0, b1, b2, b3), score in zip(boxes, scores):
            bx0, by0 = b0 / sx + x0, b1 / sy + y0
            bw, bh = (b2 - b0) / sx, (b3 - b1) / sy
            if min(bw, bh) < self.min_face:
                continue
            cx0, cy0 = max(0, int(round(bx0))), max(0, int(round(by0)))
            cx1, cy1 = min(fw, int(round(bx0 + bw))), min(fh, int(round(by0 + bh)))
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue
            out.append(Detection((cx0, cy0, cx1 - cx0, cy1 - cy0), float(score)))
        return out

    def _tiled(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model on each tile of ``scaled``; boxes (in its pixels) merged across tiles,
        less those cut by a tile's inner edge."""
        tw, th = self._input
        all_boxes, all_scores = [], []
        for x, y, x0, y0, x1, y1 in self._tiles:
            self._canvas[:] = scaled[y:y + th, x:x + tw]
            boxes, scores = self._infer()
            boxes += np.array([x, y, x, y], np.float32)
            cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
            mine = (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)
            all_boxes.append(boxes[mine])
            all_scores.append(scores[mine])
        return np.concatenate(all_boxes), np.concatenate(all_scores)

    def refresh(self, frame_bgr: np.ndarray, boxes: list) -> list[Detection | None]:
        """Each of ``boxes`` (faces found before) looked for again, all in one call
        (refresh.py: ``REFRESH_FACE`` px faces in ``REFRESH_CELL`` px cells): the face
        nearest each crop's centre (its side 0.5-2x the old one), or None."""
        if not boxes:
            return []
        if len(boxes) > self._cells:     # grow only: resizing the input costs a re-plan
            cols, rows = grid(len(boxes))
            self._resize_input(cols * REFRESH_CELL, rows * REFRESH_CELL)
            self._cells, self._cols = cols * rows, cols
            self._layout_for = None      # the whole-frame layout must be made again
        places = pack(frame_bgr, boxes, self._canvas, self._cols)
        found, scores = self._infer()
        return unpack(((*b, sc) for b, sc in zip(found, scores)), places, self._cols,
                      frame_bgr.shape)

    def close(self) -> None:
        self._interp = None
