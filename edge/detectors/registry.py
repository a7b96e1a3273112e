"""Every face-detector kind, in one place: its name, what it is for, its model files
(where they come from, sha256, licence) and the factory that builds it from the config.

install.sh, ``python -m edge.detectors.fetch_models``, ``emotion-edge check``, the web
page's model list, the CLI and the config reference all read this table. A new detector is
its own module plus one ``DetectorKind`` entry below (and, if it has options of its own, a
dataclass for its ``[detector.<section>]`` sub-section, one field in ``DetectorConfig``).

Factories import their module only when called, so reading the table costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .base import FaceDetector

# ``cfg`` below is an edge.detectors.DetectorConfig, which reads this module: it is not
# imported here, not even for type checking, so that there is no import cycle.
DetectorConfig = Any


@dataclass(frozen=True)
class ModelFile:
    """One model file a detector needs, checked against its recorded sha256. It comes
    either from a wheel on PyPI (the only registry the device may download from) or, with
    ``package`` empty, from this repository's models/ folder (tracked in git, so a clone
    has it and install.sh copies it; nothing is downloaded)."""
    name: str          # file name in the models folder
    sha256: str        # recorded from the first fetch; equal to what its publisher pins
    licence: str
    package: str       # the pinned wheel it is extracted from, e.g. "mediapipe==0.10.14";
                       # "" (IN_REPOSITORY): shipped in this repository's models/
    member: str        # its path inside that wheel; for a shipped file, in the repository
    origin: str        # who made it and where it is published, for NOTICE and `check`

    @property
    def in_repository(self) -> bool:
        return self.package == IN_REPOSITORY


IN_REPOSITORY = ""   # ModelFile.package of a file tracked in this repository's models/


@dataclass(frozen=True)
class DetectorKind:
    name: str
    doc: str                                          # one line: what it finds, its cost
    build: Callable[[DetectorConfig, Path], "FaceDetector"]  # (config, models folder)
    models: tuple[ModelFile, ...] = ()


_MEDIAPIPE = "mediapipe==0.10.14"
_FACE_DETECTION = "mediapipe/modules/face_detection/"
_BLAZEFACE_ORIGIN = ("MediaPipe face detection (BlazeFace), Google LLC; "
                     "github.com/google-ai-edge/mediapipe")

SHORT_RANGE_FILE = ModelFile(
    "face_detection_short_range.tflite",
    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "Apache-2.0", _MEDIAPIPE, _FACE_DETECTION + "face_detection_short_range.tflite",
    _BLAZEFACE_ORIGIN)
FULL_RANGE_FILE = ModelFile(
    "face_detection_full_range_sparse.tflite",
    "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    "Apache-2.0", _MEDIAPIPE, _FACE_DETECTION + "face_detection_full_range_sparse.tflite",
    _BLAZEFACE_ORIGIN)
# opencv_zoo's YuNet: the bytes of libfacedetection.train's onnx/yunet_s_640_640.onnx
# (Apache-2.0, commit 2b5e61de, 2022-12-23), which opencv_zoo publishes under MIT as
# models/face_detection_yunet/face_detection_yunet_2023mar.onnx (its Git LFS pointer's oid
# is this sha256, size 232589). Shipped in models/ (NOTICE): no wheel carries it.
YUNET_FILE = ModelFile(
    "face_detection_yunet_2023mar.onnx",
    "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    "MIT", IN_REPOSITORY, "models/face_detection_yunet_2023mar.onnx",
    "YuNet (Shiqi Yu et al.), opencv_zoo models/face_detection_yunet "
    "(github.com/opencv/opencv_zoo, MIT; trained in github.com/ShiqiYu/"
    "libfacedetection.train, Apache-2.0)")
# The same network for LiteRT, made from YUNET_FILE by `python -m convert yunet-tflite`
# (convert/yunet_tflite.py: it checks the .onnx's sha256 first and the result's outputs
# against OpenCV's run of the .onnx after). What the device runs (edge/detectors/yunet.py).
YUNET_TFLITE_FILE = ModelFile(
    "face_detection_yunet_2023mar.tflite",
    "0dc4798dcfd5a8cb24c1408043c8530d05aa702c71ba0bcfd17f510903aefee8",
    "MIT", IN_REPOSITORY, "models/face_detection_yunet_2023mar.tflite",
    "YuNet as above, converted to TFLite in this repository by `python -m convert "
    "yunet-tflite` from face_detection_yunet_2023mar.onnx (sha256 8f2383e4...)")


def _haar(cfg: DetectorConfig, models: Path) -> "FaceDetector":
    from .haar import HaarDetector
    return HaarDetector(min_face=cfg.min_face, roi=cfg.roi)


def _blazeface(model_name: str):
    def build(cfg: DetectorConfig, models: Path) -> "FaceDetector":
        from .blazeface import FULL_RANGE, SHORT_RANGE, BlazeFaceDetector
        model = {m.name: m for m in (SHORT_RANGE, FULL_RANGE)}[model_name]
        return BlazeFaceDetector(model, models / model.filename, min_score=cfg.min_score,
                                 continue_score=cfg.continue_score, nms_iou=cfg.nms_iou,
                                 min_face=cfg.min_face, roi=cfg.roi, threads=cfg.threads)
    return build


def _yunet(cfg: DetectorConfig, models: Path) -> "FaceDetector":
    from .yunet import YuNetDetector
    return YuNetDetector(models / YUNET_TFLITE_FILE.name, cfg.yunet, min_score=cfg.min_score,
                         continue_score=cfg.continue_score, nms_iou=cfg.nms_iou,
                         min_face=cfg.min_face, roi=cfg.roi, threads=cfg.threads)


def _multiscale(cfg: DetectorConfig, models: Path) -> "FaceDetector":
    from .multiscale import build_multiscale
    # [detector.far] model: YuNet's .tflite (or a copy of it), or a short range .tflite
    far = cfg.far.model or YUNET_TFLITE_FILE.name
    yunet = "yunet" in Path(far).name.lower() or far.lower().endswith(".onnx")
    return build_multiscale(cfg, models / SHORT_RANGE_FILE.name,
                            _blazeface("blazeface-full")(cfg, models),
                            far_model=None if yunet else models / far,
                            yunet=models / far if yunet else None)


KINDS: dict[str, DetectorKind] = {k.name: k for k in (
    DetectorKind("blazeface-multiscale",
                 "close-ups and a classroom's small faces: BlazeFace full range on the whole "
                 "frame, and YuNet (or short range: [detector.far] model) on a larger "
                 "picture every few runs for faces down to [detector.far] smallest_face",
                 _multiscale, (FULL_RANGE_FILE, SHORT_RANGE_FILE, YUNET_TFLITE_FILE)),
    DetectorKind("blazeface-full",
                 "BlazeFace full range on the whole frame: faces larger than ~1/12 of it",
                 _blazeface("blazeface-full"), (FULL_RANGE_FILE,)),
    DetectorKind("blazeface-short",
                 "BlazeFace short range: faster, faces larger than ~1/8 of the frame",
                 _blazeface("blazeface-short"), (SHORT_RANGE_FILE,)),
    DetectorKind("yunet",
                 "YuNet (opencv_zoo's, in LiteRT) on the frame scaled by [detector.yunet] "
                 "scale: faces from ~24 px at 0.67 (turned heads too), no false face on "
                 "the cartoon clip; ~15-18 ms CPU a 720p frame at 0.67, one thread "
                 "(bench/results/classroom.md, YuNet)",
                 _yunet, (YUNET_TFLITE_FILE,)),
    DetectorKind("haar", "OpenCV's Haar cascade: frontal faces only, no model files",
                 _haar),
)}


def model_files() -> dict[str, ModelFile]:
    """Every detector model file of every kind, by file name (each once)."""
    return {m.name: m for kind in KINDS.values() for m in kind.models}
