"""YuNet in LiteRT: small and turned faces in one pass.

The model is opencv_zoo's ``face_detection_yunet_2023mar.onnx`` (models/; its origin,
sha256 and licence are in registry.py and NOTICE), turned into
``face_detection_yunet_2023mar.tflite`` by ``python -m convert yunet-tflite``: the same
weights and layers (its outputs equal OpenCV's to ~1e-6, checked when it is made and in
tests/test_yunet.py), with each cell's score ``sqrt(cls * obj)`` computed in the model and
the landmarks left out. ``YuNetNet`` runs it as ``cv2.FaceDetectorYN`` runs the ONNX file
(OpenCV's objdetect/src/face_detect.cpp), so the faces are the same: the image padded with
black to a multiple of 32 on the right and bottom, BGR 0..255 in; a box per cell over the
score; OpenCV's NMS over the boxes cut to whole pixels.

Why LiteRT and not OpenCV's DNN (bench/results/classroom.md, YuNet in LiteRT): on an
853x480 input (a 720p frame at 2/3) one XNNPACK thread takes 14-18 ms of CPU a call
against OpenCV's 35 on one thread (57 on two, one spinning), for the same memory; and the
device's other models already run in LiteRT.

Here the frame's ROI is first scaled by ``[detector.yunet] scale`` (YuNet finds faces from
~10-16 px of its input, so 2/3 keeps a 24 px face) and, where that is still more than
``max_pixels``, scaled down further: the network's buffers grow with its input, so a 4K
frame or a 12 MP photo at full size would cost hundreds of MB; capped, the input (and the
memory) stays that of a 720p frame. Tiling would keep a 4K frame's smallest faces, at a
cost that grows with the frame; a cap keeps the cost fixed, which a Pi needs. An input
taller than 320 rows goes through as two overlapping bands (``YuNetNet``): the 30-face
720p clip's peak RSS 150 MB instead of 162, for 1.3x the far pass's CPU; the mosaics' faces
the same (bench/results/classroom.md).

Boxes: YuNet's box (brow to chin, taller than wide) is turned into the square box that
BlazeFace and the annotations use (see CENTRE_DOWN): with its own box, ``min_face = 20``
dropped most faces of 24 px (their YuNet width is ~21 px): 49 of 86 found at 720p instead
of 85 (bench/results/classroom.md, YuNet).
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .. import litert
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
STRIDES = (8, 16, 32)
DIVISOR = 32          # the input is padded to a multiple of this (FaceDetectorYN's divisor)
# An input taller than SPLIT_ABOVE rows is run as two bands, top and bottom, overlapping
# by at least BAND_OVERLAP rows (YuNetNet): a 720p frame's 853x480 as two of 320 rows. The
# overlap holds any face the far pass keeps whole (the largest: 24/192 of a 1280 px frame,
# 160 px, 107 at 2/3).
SPLIT_ABOVE, BAND_OVERLAP = 320, 128


def input_size(width: int, height: int, cfg: YuNetConfig) -> tuple[int, int, float]:
    """YuNet's input (w, h) for a region of ``width`` x ``height``, and its scale: the
    configured one, or less where that would exceed ``max_pixels``."""
    scale = cfg.scale
    if width * height * scale * scale > cfg.max_pixels:
        scale = math.sqrt(cfg.max_pixels / (width * height))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    return w, h, scale


def load(path: Path, threads: int = 1):
    """A LiteRT interpreter for YuNet's .tflite at ``path``, or a one-line
    DetectorModelError."""
    if not path.is_file():
        raise DetectorModelError(f"{path}: YuNet model not found; {HINT}")
    if path.suffix.lower() != ".tflite":
        raise DetectorModelError(f"{path}: YuNet runs from a .tflite file (`python -m convert "
                                 f"yunet-tflite` makes one from opencv_zoo's .onnx); {HINT}")
    try:
        interp = litert.interpreter(path=path, threads=threads)
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError with multi-line texts
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise DetectorModelError(f"{path}: not a usable TFLite model ({first}); "
                                 f"{HINT}") from None
    inp, outs = interp.get_input_details(), interp.get_output_details()
    if (len(inp) != 1 or inp[0]["dtype"] != np.float32
            or list(inp[0]["shape_signature"]) != [1, -1, -1, 3]
            or len(outs) != len(STRIDES) or any(o["shape"][-1] != 5 for o in outs)):
        raise DetectorModelError(f"{path}: not YuNet as `python -m convert yunet-tflite` makes "
                                 f"it (one 1xHxWx3 float input, a score and a box per cell "
                                 f"at 3 strides); {HINT}")
    return interp


class YuNetNet:
    """YuNet's network on a BGR uint8 image of the size last set: rows of x, y, w, h and
    score in input pixels, best first, as ``cv2.FaceDetectorYN.detect`` gives them (without
    the landmarks).

    An image taller than ``split_above`` rows goes through as two overlapping bands, top
    and bottom: XNNPACK's buffers grow with the input's pixels (+35 MB for 864x480 in one
    call, +25 for 864x320), and each band keeps the faces centred in its half, so a face
    of up to ``BAND_OVERLAP`` rows is found whole in the band that keeps it. Bands start
    on multiples of 32 rows, so away from a band's edges its cells are the whole image's.
    Two, not more: at 1080p (1280x720) four bands of 320 rows held 7 MB less than two of
    448 but cost 1.6x one call's CPU, two 1.1x (bench/results/yunet_runtime.md)."""

    def __init__(self, path: Path, score: float, nms_iou: float, threads: int = 1,
                 split_above: int = SPLIT_ABOVE):
        self._interp = load(Path(path), threads)
        self.score, self.nms_iou = float(score), float(nms_iou)
        self.split_above = int(split_above)
        self._input = self._interp.get_input_details()[0]["index"]
        self._size: tuple[int, int] | None = None    # the image size set last
        self._outputs: list[tuple[int, int]] = []    # (stride, tensor index)
        self._bands: list[tuple[int, float, float]] = []  # first row; centres kept: lo..hi
        self._rows = 0                                     # rows of a band

    def set_input_size(self, w: int, h: int) -> None:
        """Re-plans the network's buffers for a ``w`` x ``h`` image: only on a new size."""
        if self._size == (w, h):
            return
        pw, ph = -(-w // DIVISOR) * DIVISOR, -(-h // DIVISOR) * DIVISOR
        split = ph > max(self.split_above, BAND_OVERLAP)
        rows = -(-(ph + BAND_OVERLAP) // (2 * DIVISOR)) * DIVISOR if split else ph
        self._interp.resize_tensor_input(self._input, [1, rows, pw, 3], strict=False)
        self._interp.allocate_tensors()
        self._interp.tensor(self._input)()[:] = 0       # the padding stays black
        by_rows = {int(o["shape"][1]): o["index"] for o in self._interp.get_output_details()}
        self._outputs = [(s, by_rows[rows // s]) for s in STRIDES]
        self._rows = rows
        self._bands = [(0, 0.0, ph / 2), (ph - rows, ph / 2, ph)] if split else [(0, 0.0, ph)]
        self._size = (w, h)

    def detect(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if self._size != (w, h):
            raise ValueError(f"image is {w}x{h}, the network was set for {self._size}")
        found = []
        for top, lo, hi in self._bands:
            tensor = self._interp.tensor(self._input)
            band = img[top:top + self._rows]
            tensor()[0, :len(band), :w] = band
            tensor()[0, len(band):] = 0          # below the image (the last band's padding)
            del tensor    # LiteRT refuses to invoke while a view of its buffers is alive
            self._interp.invoke()
            found += self._decode(top, lo, hi)
        if not found:
            return np.zeros((0, 5), np.float32)
        faces = np.concatenate(found).astype(np.float32)
        if len(faces) == 1:
            return faces
        keep = cv2.dnn.NMSBoxes(faces[:, :4].astype(np.int32).tolist(), faces[:, 4].tolist(),
                                self.score, self.nms_iou, 1.0, TOP_K)
        return faces[np.asarray(keep, int).reshape(-1)]

    def _decode(self, top: int, lo: float, hi: float) -> list[np.ndarray]:
        """The cells over the score of the band starting at row ``top``, as boxes in the
        image, those centred in rows lo..hi."""
        rows = []
        for stride, index in self._outputs:
            out = self._interp.get_tensor(index)[0]             # (rows, cols, 5)
            r, c = np.nonzero(out[:, :, 0] >= self.score)
            if not r.size:
                continue
            hit = out[r, c]
            cx = (c + hit[:, 1]) * np.float32(stride)
            cy = (r + top // stride + hit[:, 2]) * np.float32(stride)
            bw = np.exp(hit[:, 3]) * np.float32(stride)
            bh = np.exp(hit[:, 4]) * np.float32(stride)
            mine = (cy >= lo) & (cy < hi)
            rows.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh, hit[:, 0]], axis=1)[mine])
        return rows

    def close(self) -> None:
        self._interp = None


class YuNetDetector(FaceDetector):
    """Faces in BGR frames with YuNet; boxes in frame pixels, best first."""
    name = "yunet"

    def __init__(self, model_path: Path | str, cfg: YuNetConfig | None = None, *,
                 min_score: float = 0.65, continue_score: float | None = None,
                 nms_iou: float = 0.3, min_face: int = 0, roi: Roi = WHOLE_FRAME,
                 threads: int = 1):
        self.cfg = cfg or YuNetConfig()
        self.min_score = float(min_score)
        self.continue_score = float(min_score if continue_score is None else continue_score)
        self.min_face = int(min_face)
        self.roi = check_roi(roi)
        self.path = Path(model_path)
        # One threshold for the network (the weak tier's); the tiers are split here. Its
        # NMS sees strong and weak boxes together, so a weak box never doubles a face.
        self._net = YuNetNet(self.path, min(self.continue_score, self.min_score), nms_iou,
                             threads)
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
        self._net.set_input_size(w, h)
        rows = self._net.detect(img)
        fh, fw = frame_bgr.shape[:2]
        sx, sy = (x1 - x0) / w, (y1 - y0) / h     # exact per axis (int() above rounds)
        strong, weak = [], []
        for r in rows[np.argsort(-rows[:, 4], kind="stable")]:
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
            d = Detection((cx0, cy0, cx1 - cx0, cy1 - cy0), float(r[4]))
            (strong if d.score >= self.min_score else weak).append(d)
        return strong, weak

    def close(self) -> None:
        if self._net is not None:
            self._net.close()
        self._net = None
        self._buffer = None
