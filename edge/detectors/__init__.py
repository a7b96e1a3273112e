"""Face detectors: section ``[detector]`` of the config, and the factory that builds one.

Kinds:

- ``haar``: OpenCV's frontal-face Haar cascade. Nothing to download, but frontal faces only.
- ``blazeface-short``: MediaPipe BlazeFace short range (128x128), faces within ~2 m.
- ``blazeface-full``: MediaPipe BlazeFace full range (192x192, sparse), faces up to ~5 m.

Why the defaults (measured with ``bench/detectors.py`` on shared/data: 22 scenes with 23
faces, 8 videos; table in bench/results/detectors.md):

- ``kind = "blazeface-full"``: the only detector that finds all 23 scene faces (profile,
  tilted, cut-off, small and group faces included) and the small walking faces in the
  videos, at ~8 ms CPU per frame on the host. Short range is 2x faster but misses faces
  smaller than ~1/8 of the frame (0 of 3 walking faces, 15/23 scenes): a classroom or
  kiosk camera sees people 1-4 m away. Haar finds 17/23, misses turned heads (5/56 frames
  of the two-person head-pose video) and costs 13-100 ms CPU.
- ``min_score = 0.65``: full range at 0.5 fires on the cartoon (71 detections on 192
  cartoon frames), 0.6 still 16; 0.65 leaves 5 (3 of 95 frames of pyfeat_no_face.mp4) with
  scene recall 23/23 and 97% of face frames found; 0.75 silences the cartoon but loses a
  scene face and drops the close-up video from 95% to 82% of frames.
- ``continue_score = 0.5``: the demo clip decoded on aarch64 (OpenCV's FFmpeg rounds
  1-2 grey levels differently) scores the woman hiding her face below 0.65 where x86
  scores 0.66; with 0.65 as the only threshold that one frame split her into two faces. Scores
  from 0.5 keep tracks going (tests/test_track_identity.py: every clip keeps its count
  under noise and score jitter) and start none, so the cartoon stays no face.
- ``min_face = 32``: removes only false detections on these data (an 11 px "face" on
  the cartoon scene) and faces below ~32 px are too blurred for the 48x48 emotion model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..paths import models_dir
from .base import Detection, FaceDetector
from .errors import DetectorModelError
from .roi import WHOLE_FRAME, check_roi
from ..settings import check

KINDS = ("haar", "blazeface-short", "blazeface-full")

__all__ = ["KINDS", "Detection", "DetectorConfig", "DetectorModelError", "FaceDetector",
           "create_detector", "default_models_dir"]


def default_models_dir() -> Path:
    """$EMOTION_EDGE_MODELS if set, else the repo's models/ folder (next to edge/)."""
    return models_dir()


@dataclass
class DetectorConfig:
    """Section ``[detector]``."""
    kind: str = field(default="blazeface-full", metadata={
        "doc": "face detector: blazeface-full (default, best recall), blazeface-short "
               "(faster, faces within ~2 m) or haar (frontal only, no model files)",
        "choices": KINDS})
    min_score: float = field(default=0.65, metadata={
        "doc": "BlazeFace confidence threshold, 0..1 (ignored by haar)",
        "range": "(0, 1)"})
    continue_score: float = field(default=0.5, metadata={
        "doc": "BlazeFace: a face scored between this and min_score may continue a face "
               "already tracked, never start one, so a track survives a borderline frame "
               "(a hand over the face, another decoder); min_score turns this off"})
    min_face: int = field(default=32, metadata={
        "doc": "smallest face side in pixels to report; smaller faces are too blurred to "
               "classify",
        "range": ">= 0", "unit": "pixels"})
    roi: tuple[float, float, float, float] = field(default=WHOLE_FRAME, metadata={
        "doc": "region to look for faces in, [x, y, w, h] as fractions of the frame"})
    nms_iou: float = field(default=0.3, metadata={
        "doc": "BlazeFace: boxes overlapping more than this (IoU) are merged into one face",
        "range": "(0, 1]"})
    models_dir: str = field(default="", metadata={
        "doc": "folder with the BlazeFace .tflite files; empty: $EMOTION_EDGE_MODELS or the "
               "repo's models/ (e.g. /opt/emotion-edge/models on a Pi)"})
    threads: int = field(default=1, metadata={"doc": "LiteRT threads for BlazeFace",
        "range": ">= 1"})

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
    if cfg.kind == "haar":
        from .haar import HaarDetector
        return HaarDetector(min_face=cfg.min_face, roi=cfg.roi)
    from .blazeface import FULL_RANGE, SHORT_RANGE, BlazeFaceDetector
    model = SHORT_RANGE if cfg.kind == "blazeface-short" else FULL_RANGE
    return BlazeFaceDetector(model, cfg.model_dir() / model.filename, min_score=cfg.min_score,
                             continue_score=cfg.continue_score, nms_iou=cfg.nms_iou,
                             min_face=cfg.min_face, roi=cfg.roi,
                             threads=cfg.threads)
