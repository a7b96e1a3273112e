"""Section ``[micro]``: the optional micro-expression stage (off by default)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..classifier import models_dir
from .flow import METHODS
from ..settings import check

# Micro-expressions last 1/25 to 1/2 s (onset to offset). Spotting needs a few frames between
# onset and apex: at 60 fps a 1/25 s event still spans ~2-3 frames; at 30 fps only events of
# ~1/10 s and longer are seen at all, and below that the stage is guessing.
RECOMMENDED_FPS = 60.0


@dataclass
class MicroConfig:
    enabled: bool = field(default=False, metadata={
        "doc": "run the micro-expression stage (needs a >= 30 fps camera, ideally >= 60)"})
    model: str = field(default="", metadata={
        "doc": "the int8 flow model (.json sidecar beside it); empty: micro_flow_int8.tflite "
               "in $EMOTION_EDGE_MODELS or the repo's models/"})
    window_s: float = field(default=0.5, metadata={
        "doc": "longest onset-to-offset span that counts as a micro-expression, seconds",
        "range": "0.1..2.0", "unit": "seconds"})
    min_fps: float = field(default=30.0, metadata={
        "doc": "below this frame rate the stage warns that its events are not meaningful",
        "range": "> 0"})
    threshold: float = field(default=4.0, metadata={
        "doc": "spotting: how far the apex must stand out from the window's start and end "
               "(mean absolute gray-level difference on 32x32 face thumbnails)",
        "range": "> 0"})
    max_return: float = field(default=2.5, metadata={
        "doc": "spotting: the face must come back to within this of where it started "
               "(larger: a lasting change, i.e. a macro-expression)",
        "range": "> 0"})
    max_motion: float = field(default=20.0, metadata={
        "doc": "spotting: apex differences above this are head movement or a macro-expression",
        "range": "> 0"})
    min_score: float = field(default=0.5, metadata={
        "doc": "emit an event only when the top class has at least this probability",
        "range": "0..1"})
    crop_size: int = field(default=96, metadata={"doc": "side of the face crops kept, pixels",
        "range": "32..256"})
    margin: float = field(default=0.1, metadata={
        "doc": "border added around the face box, as a fraction of its size",
        "range": "0..1"})
    max_shift: float = field(default=0.15, metadata={
        "doc": "a face box that moves more than this fraction of its size restarts the "
               "track's window (the crops would no longer line up)",
        "range": "(0, 1]"})
    flow: str = field(default="dis", metadata={"doc": "optical flow: dis (fast) or farneback",
        "choices": METHODS})
    max_tracks: int = field(default=8, metadata={
        "doc": "faces followed at once (each keeps a preallocated ring of crops)",
        "range": ">= 1"})
    threads: int = field(default=1, metadata={"doc": "LiteRT threads for the flow model",
        "range": ">= 1"})

    def __post_init__(self):
        check(self)   # the ranges and choices in the fields' metadata
        if self.max_motion <= self.threshold:
            raise ValueError(f"max_motion: {self.max_motion} must exceed threshold {self.threshold}")

    def model_path(self) -> Path:
        return Path(self.model) if self.model else models_dir() / "micro_flow_int8.tflite"
