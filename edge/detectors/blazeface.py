"""MediaPipe BlazeFace (short range 128x128, full range 192x192) run in LiteRT.

Everything MediaPipe's face-detection graph does around the model is done here, with the
options its graphs configure (mediapipe/modules/face_detection/*.pbtxt):

- ImageToTensor: keep the aspect ratio (letterbox, centred, black border), RGB, -1..1;
- SsdAnchors: see ``anchors.py``;
- TensorsToDetections: 16 numbers per anchor (box cx, cy, w, h, then 6 keypoints), in
  input pixels relative to the anchor, scaled by the input size; scores are logits,
  clipped to +-100 and squashed by a sigmoid;
- NonMaxSuppression: weighted, IoU threshold 0.3;
- then the boxes are mapped back through the letterbox to frame pixels.

The 6 keypoints (eyes, nose, mouth, ears) are not decoded: ``Detection`` has no use for them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import litert
from .anchors import ssd_anchor_centers
from .base import Detection, FaceDetector, frame_region
from .errors import DetectorModelError
from .nms import weighted_nms
from ..tracker import iou_matrix
from .roi import WHOLE_FRAME, Roi, check_roi

FETCH_HINT = "run `python -m edge.detectors.fetch_models` (or install.sh) to fetch it"


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace variant: its file and the graph options that go with it."""
    name: str
    filename: str
    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    graph_min_score: float  # MediaPipe's own threshold, for reference


SHORT_RANGE = BlazeFaceModel("blazeface-short", "face_detection_short_range.tflite",
                             128, (8, 16, 16, 16), 1.0, 0.5)
FULL_RANGE = BlazeFaceModel("blazeface-full", "face_detection_full_range_sparse.tflite",
                            192, (4,), 0.0, 0.6)

_SCORE_CLIP = 100.0  # score_clipping_thresh of the graph


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def load_interpreter(path: Path, threads: int):
    """A ready LiteRT interpreter, or a one-line DetectorModelError."""
    if not path.is_file():
        raise DetectorModelError(f"{path}: BlazeFace model not found; {FETCH_HINT}")
    try:
        interp = litert.interpreter(path=path, threads=threads)
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError with multi-line texts
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DetectorModelError(
            f"{path}: not a usable TFLite model ({first}); {FETCH_HINT} again") from None
    return interp


class BlazeFaceDetector(FaceDetector):
    """Faces in BGR frames with a BlazeFace model; boxes in frame pixels, best first."""

    def __init__(self, model: BlazeFaceModel, model_path: Path | str, *,
                 min_score: float = 0.5, continue_score: float | None = None, nms_iou: float = 0.3, min_face: int = 0,
                 roi: Roi = WHOLE_FRAME, threads: int = 1):
        self.model = model
        self.name = model.name
        self.min_score = float(min_score)
        self.continue_score = float(min_score if continue_score is None else continue_score)
        self.nms_iou = float(nms_iou)
        self.min_face = int(min_face)
        self.roi = check_roi(roi)
        self.path = Path(model_path)
        self._interp = load_interpreter(self.path, threads)

        s = model.input_size
        self._anchors = ssd_anchor_centers(s, model.strides, model.interpolated_scale_aspect_ratio)
        n = len(self._anchors)
        inp = self._interp.get_input_details()
        if len(inp) != 1 or tuple(inp[0]["shape"]) != (1, s, s, 3) \
                or inp[0]["dtype"] != np.float32:
            raise DetectorModelError(f"{self.path}: expected a float32 input of 1x{s}x{s}x3 "
                                     f"for {model.name}, got {inp[0]['shape'].tolist()}")
        self._input_index = inp[0]["index"]
        outs = {int(d["shape"][-1]): d for d in self._interp.get_output_details()
                if len(d["shape"]) == 3 and d["shape"][1] == n}
        if set(outs) != {16, 1}:
            raise DetectorModelError(f"{self.path}: outputs do not match {model.name} "
                                     f"({n} anchors x 16 box values and x 1 score)")
        self._boxes_index = outs[16]["index"]
        self._scores_index = outs[1]["index"]
        # Scores are compared as logits: no sigmoid over all anchors, only over the hits.
        self._min_logit = _logit(self.min_score)
        self._weak_logit = _logit(min(self.continue_score, self.min_score))

        # Letterbox canvas (uint8 BGR, black border) reused across frames; its layout is
        # recomputed only when the frame (ROI) size changes.
        self._canvas = np.zeros((s, s, 3), np.uint8)
        self._layout_for: tuple[int, int] | None = None
        self._scale = (1.0, 1.0)  # x, y: tensor px per frame px (nearly equal; rounding)
        self._pad = (0, 0)
        self._resized = (s, s)
        self._factor = 1          # integer pre-shrink, see _letterbox
        self._half: np.ndarray | None = None

    # -- per frame ----------------------------------------------------------------------
    def _letterbox(self, img: np.ndarray) -> None:
        h, w = img.shape[:2]
        s = self.model.input_size
        f = self._factor
        if self._layout_for != (h, w):
            # A camera frame shrinks 3-10x here. Linear alone would alias and INTER_AREA at a
            # fractional ratio costs ~1 ms, so: INTER_AREA by a whole factor (OpenCV's fast
            # block average) to between 1x and 2x the input size, then linear.
            f = self._factor = max(1, max(h, w) // s)
            h, w = h // f * f, w // f * f   # the whole-factor region (drops < f px)
            self._half = np.empty((h // f, w // f, 3), np.uint8) if f > 1 else None
            scale = s / max(h, w)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            self._scale, self._resized = (nw / w, nh / h), (nw, nh)
            self._pad = ((s - nw) // 2, (s - nh) // 2)
            self._canvas[:] = 0
            self._layout_for = img.shape[:2]
        nw, nh = self._resized
        px, py = self._pad
        if f > 1:
            hh, hw = self._half.shape[:2]
            cv2.resize(img[:hh * f, :hw * f], (hw, hh), dst=self._half,
                       interpolation=cv2.INTER_AREA)
            img = self._half
        cv2.resize(img, (nw, nh), dst=self._canvas[py:py + nh, px:px + nw],
                   interpolation=cv2.INTER_LINEAR)
        # BGR uint8 -> RGB float -1..1, straight into the interpreter's input tensor.
        tensor = self._interp.tensor(self._input_index)()[0]
        np.multiply(self._canvas[:, :, ::-1], np.float32(2.0 / 255.0), out=tensor,
                    dtype=np.float32, casting="unsafe")
        np.subtract(tensor, 1.0, out=tensor)
        del tensor  # LiteRT refuses to invoke while a view of its buffers is alive

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        return self._run(frame_bgr, weak=False)[0]

    def detect_whole(self, image_bgr: np.ndarray) -> list[Detection]:
        """Faces scored at least ``continue_score`` in all of ``image_bgr`` (a crop of a
        frame, looked at again), whatever the ROI."""
        strong, faint = self._run(image_bgr, weak=self._weak_logit < self._min_logit,
                                  roi=WHOLE_FRAME)
        return strong + faint

    def detect_tiers(self, frame_bgr: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        return self._run(frame_bgr, weak=self._weak_logit < self._min_logit)

    def _run(self, frame_bgr: np.ndarray, weak: bool,
             roi: Roi | None = None) -> tuple[list[Detection], list[Detection]]:
        region = frame_region(frame_bgr, self.roi if roi is None else roi)
        if region is None:
            return [], []
        x0, y0, x1, y1 = region
        fh, fw = frame_bgr.shape[:2]
        self._letterbox(frame_bgr[y0:y1, x0:x1])
        self._interp.invoke()
        logits = self._interp.get_tensor(self._scores_index)[0, :, 0]
        origin = (x0, y0, fw, fh)
        strong = self._decode(np.flatnonzero(logits > self._min_logit), logits, origin)
        if not weak:
            return strong, []
        # The weak tier gets its own NMS, so it never shifts a full-score box (weighted
        # NMS averages overlapping boxes); a weak box on a face already found is dropped.
        low = np.flatnonzero((logits > self._weak_logit) & (logits <= self._min_logit))
        faint = self._decode(low, logits, origin)
        if strong and faint:
            keep = iou_matrix(np.array([d.box for d in faint], float),
                              np.array([d.box for d in strong], float)).max(axis=1) <= self.nms_iou
            faint = [d for d, k in zip(faint, keep) if k]
        return strong, faint

    def _decode(self, hits: np.ndarray, logits: np.ndarray,
                origin: tuple[int, int, int, int]) -> list[Detection]:
        """Boxes of the anchors ``hits``, merged by NMS, in frame pixels, best first."""
        if hits.size == 0:
            return []
        x0, y0, fw, fh = origin
        raw = self._interp.get_tensor(self._boxes_index)[0, hits, :4]
        s = float(self.model.input_size)
        centers = self._anchors[hits]                       # anchors are 1x1: no w/h scaling
        cx = raw[:, 0] / s + centers[:, 0]
        cy = raw[:, 1] / s + centers[:, 1]
        half_w, half_h = raw[:, 2] / (2 * s), raw[:, 3] / (2 * s)
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[hits], -_SCORE_CLIP, _SCORE_CLIP)))
        boxes, scores = weighted_nms(boxes, scores, self.nms_iou)

        # Tensor (0..1 of the letterbox) -> ROI pixels -> frame pixels.
        px, py = self._pad
        sx, sy = self._scale
        bx0 = (boxes[:, 0] * s - px) / sx + x0
        by0 = (boxes[:, 1] * s - py) / sy + y0
        bw = (boxes[:, 2] - boxes[:, 0]) * (s / sx)
        bh = (boxes[:, 3] - boxes[:, 1]) * (s / sy)
        out = []
        for i in range(len(scores)):
            if min(bw[i], bh[i]) < self.min_face:   # the face's size, before clipping
                continue
            cx0, cy0 = max(0, int(round(bx0[i]))), max(0, int(round(by0[i])))
            cx1 = min(fw, int(round(bx0[i] + bw[i])))
            cy1 = min(fh, int(round(by0[i] + bh[i])))
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:           # (almost) all outside the frame
                continue
            out.append(Detection((cx0, cy0, cx1 - cx0, cy1 - cy0), float(scores[i])))
        return out

    def close(self) -> None:
        self._interp = None
