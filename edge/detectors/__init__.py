"""Face detectors: section ``[detector]`` of the config, and the factory that builds one.

The kinds, their model files and factories are in ``registry.py`` (one table that install.sh,
fetch_models, ``check``, the web page and the CLI read):

- ``blazeface-multiscale`` (default): full range on the whole frame for close-ups, plus
  short range on a larger picture every few runs for a classroom's faces down to 24 px
  (``multiscale.py``, section ``[detector.far]``).
- ``blazeface-full``: MediaPipe BlazeFace full range (192x192, sparse), faces larger than
  ~1/12 of the frame.
- ``blazeface-short``: MediaPipe BlazeFace short range (128x128), faces within ~2 m.
- ``yunet``: YuNet (opencv_zoo's face_detection_yunet_2023mar.onnx, shipped in models/
  with the .tflite made from it) in LiteRT on the frame scaled by ``[detector.yunet] scale``
  (``yunet.py``): small and turned faces, not the default (bench/results/classroom.md, YuNet).
- ``haar``: OpenCV's frontal-face Haar cascade. Nothing to download, but frontal faces only.

Why the defaults (measured with ``bench/detectors.py`` on shared/data: 22 scenes with 23
faces, 8 videos, bench/results/detectors.md; and ``bench/classroom.py`` on mosaics of
those faces at 24-96 px, bench/results/classroom.md):

- ``kind = "blazeface-multiscale"``: full range alone finds all 23 scene faces (profile,
  tilted, cut-off, small and group faces included) at ~8 ms CPU per frame, but sees the
  whole frame at 192x192, where a classroom's 40 px face of a 1280 px frame is 6 px: it
  finds none of 30 such faces. The far pass finds them (multiscale.py says why it beat a
  tiled pass and Haar). Short range alone is 2x faster but misses faces smaller than ~1/8
  of the frame (0 of 3 walking faces, 15/23 scenes). Haar finds 17/23, misses turned heads
  (5/56 frames of the two-person head-pose video) and costs 13-100 ms CPU.
- ``min_score = 0.65``: full range at 0.5 fires on the cartoon (71 detections on 192
  cartoon frames), 0.6 still 16; 0.65 leaves 5 (3 of 95 frames of pyfeat_no_face.mp4) with
  scene recall 23/23 and 97% of face frames found; 0.75 silences the cartoon but loses a
  scene face and drops the close-up video from 95% to 82% of frames.
- ``continue_score = 0.5``: the demo clip decoded on aarch64 (OpenCV's FFmpeg rounds
  1-2 grey levels differently) scores the woman hiding her face below 0.65 where x86
  scores 0.66; with 0.65 as the only threshold that one frame split her into two faces. Scores
  from 0.5 keep tracks going (tests/test_track_identity.py: every clip keeps its count
  under noise and score jitter) and start none, so the cartoon stays no face.
- ``min_face = 20``: a classroom's far faces are counted from 20 px (the far pass sees
  a 20 px face as 13 px of its input, where it still finds some); it still removes the 11 px
  "face" on the cartoon scene. Faces of 20-26 px are counted but too small to read:
  ``[classifier] min_readable = 27`` (bench/results/small_faces.md: the model loses 7.2
  points of FER+ accuracy on a 24 px crop, 1.9 on a 32 px one, i.e. a 27 px face).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..paths import models_dir
from .base import Detection, FaceDetector
from .errors import DetectorModelError
from .far import FarConfig
from .yunet_config import YuNetConfig
from .registry import KINDS as _REGISTRY
from .roi import WHOLE_FRAME, check_roi
from ..settings import check

KINDS = tuple(_REGISTRY)

__all__ = ["KINDS", "Detection", "DetectorConfig", "DetectorModelError", "FaceDetector",
           "create_detector", "default_models_dir"]


def default_models_dir() -> Path:
    """$EMOTION_EDGE_MODELS if set, else the repo's models/ folder (next to edge/)."""
    return models_dir()


@dataclass
class DetectorConfig:
    """Section ``[detector]``."""
    kind: str = field(default="blazeface-multiscale", metadata={
        "doc": "face detector: " + "; ".join(f"{k.name}: {k.doc}"
                                             for k in _REGISTRY.values()),
        "choices": KINDS})
    min_score: float = field(default=0.65, metadata={
        "doc": "BlazeFace and YuNet confidence threshold, 0..1 (ignored by haar)",
        "range": "(0, 1)"})
    continue_score: float = field(default=0.5, metadata={
        "doc": "BlazeFace, YuNet: a face scored between this and min_score may continue a face "
               "already tracked, never start one, so a track survives a borderline frame "
               "(a hand over the face, another decoder); min_score turns this off"})
    min_face: int = field(default=20, metadata={
        "doc": "smallest face side in pixels to report (and count); the far pass finds few "
               "faces below it, and none of them could be read ([classifier] min_readable)",
        "range": ">= 0", "unit": "pixels"})
    roi: tuple[float, float, float, float] = field(default=WHOLE_FRAME, metadata={
        "doc": "region to look for faces in, [x, y, w, h] as fractions of the frame"})
    nms_iou: float = field(default=0.3, metadata={
        "doc": "BlazeFace, YuNet: boxes overlapping more than this (IoU) are merged into one face",
        "range": "(0, 1]"})
    models_dir: str = field(default="", metadata={
        "doc": "folder with the detector model files (.tflite, .onnx); empty: $EMOTION_EDGE_MODELS or the "
               "repo's models/ (e.g. /opt/emotion-edge/models on a Pi)"})
    threads: int = field(default=1, metadata={"doc": "LiteRT threads for BlazeFace (yunet runs in OpenCV's own thread pool: yunet.py says why)",
        "range": ">= 1"})
    far: FarConfig = field(default_factory=FarConfig, metadata={
        "doc": "the small-face pass of blazeface-multiscale"})
    yunet: YuNetConfig = field(default_factory=YuNetConfig, metadata={
        "doc": "the yunet kind's own options"})

    def __post_init__(self):
        check(self)   # the ranges and choices in the fields' metadata
        if not 0.0 < self.continue_score <= self.min_score:
            raise ValueError(f"continue_score: {self.continue_score} must be above 0 and "
                             f"at most min_score ({self.min_score})")
        self.roi = check_roi(self.roi)

    def model_dir(self) -> Path:
        return Path(self.models_dir).expanduser() if self.models_dir else default_models_dir()


def create_detector(cfg: DetectorConfig) -> FaceDetector:
    """The detector ``cfg`` asks for; DetectorModelError (one line) if its model is missing."""
    return _REGISTRY[cfg.kind].build(cfg, cfg.model_dir())
