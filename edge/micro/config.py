"""Section ``[micro]``: the optional micro-expression stage (off by default)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..classifier import models_dir
from .flow import METHODS

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
        "doc": "longest onset-to-offset span that counts as a micro-expression, seconds"})
    min_fps: float = field(default=30.0, metadata={
        "doc": "below this frame rate the stage warns that its events are not meaningful"})
    threshold: float = field(default=4.0, metadata={
        "doc": "spotting: how far the apex must stand out from the window's start and end "
               "(mean absolute gray-level difference on 32x32 face thumbnails)"})
    max_return: float = field(default=2.5, metadata={
        "doc": "spotting: the face must come back to within this of where it started "
               "(larger: a lasting change, i.e. a macro-expression)"})
    max_motion: float = field(default=20.0, metadata={
        "doc": "spotting: apex differences above this are head movement or a macro-expression"})
    min_score: float = field(default=0.5, metadata={
        "doc": "emit an event only when the top class has at least this probability"})
    crop_size: int = field(default=96, metadata={"doc": "side of the face crops kept, pixels"})
    margin: float = field(default=0.1, metadata={
        "doc": "border added around the face box, as a fraction of its size"})
    max_shift: float = field(default=0.15, metadata={
        "doc": "a face box that moves more than this fraction of its size restarts the "
               "track's window (the crops would no longer line up)"})
    flow: str = field(default="dis", metadata={"doc": "optical flow: dis (fast) or farneback"})
    max_tracks: int = field(default=8, metadata={
        "doc": "faces followed at once (each keeps a preallocated ring of crops)"})
    threads: int = field(default=1, metadata={"doc": "LiteRT threads for the flow model"})

    def __post_init__(self):
        if not 0.1 <= self.window_s <= 2.0:
            raise ValueError(f"window_s: {self.window_s} is outside 0.1..2.0 seconds")
        if self.min_fps <= 0:
            raise ValueError(f"min_fps: must be positive, not {self.min_fps}")
        for name in ("threshold", "max_return", "max_motion"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, not {getattr(self, name)}")
        if self.max_motion <= self.threshold:
            raise ValueError(f"max_motion: {self.max_motion} must exceed threshold {self.threshold}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score: {self.min_score} is outside 0..1")
        if not 32 <= self.crop_size <= 256:
            raise ValueError(f"crop_size: {self.crop_size} is outside 32..256")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin: {self.margin} is outside 0..1")
        if not 0.0 < self.max_shift <= 1.0:
            raise ValueError(f"max_shift: {self.max_shift} is outside 0..1")
        if self.flow not in METHODS:
            raise ValueError(f"flow: {self.flow!r} is not one of {', '.join(METHODS)}")
        if self.max_tracks < 1:
            raise ValueError(f"max_tracks: must be at least 1, not {self.max_tracks}")
        if self.threads < 1:
            raise ValueError(f"threads: must be at least 1, not {self.threads}")

    def model_path(self) -> Path:
        return Path(self.model) if self.model else models_dir() / "micro_flow_int8.tflite"
