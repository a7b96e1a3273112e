"""Frame sources: Pi camera, OpenCV (USB camera, file, stream), still images."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import (IMAGE_SUFFIXES, NO_FRAME, EndOfStream, Frame, FrameSource, ResilientSource,
                   SourceError, SourceUnavailable)
from .capture import CaptureThread
from ..settings import check

SAMPLE_CLIP = Path(__file__).resolve().parents[1] / "samples" / "demo_pexels_wolfgang_langer.mp4"


@dataclass
class SourceConfig:
    """Section ``[source]``."""
    uri: str = field(default="auto", metadata={
        "doc": "auto (the Pi camera, else /dev/video0; with neither, a service waits for one, "
               "and only `run` on a terminal with no config plays the bundled sample clip), "
               "picamera, a USB camera index (0), a video file, an rtsp:// or http:// URL, or "
               "an image file or folder"})
    width: int = field(default=640, metadata={"doc": "capture width (cameras)"})
    height: int = field(default=480, metadata={"doc": "capture height (cameras)"})
    fps: float = field(default=30.0, metadata={"doc": "capture frame rate (cameras)",
        "range": "(0, 240]"})
    loop: bool = field(default=False, metadata={"doc": "start a video file or image folder "
                                                       "again at its end"})
    realtime: bool = field(default=True, metadata={
        "doc": "play video files at their own frame rate (false: as fast as possible)"})
    read_ahead: int = field(default=2, metadata={
        "doc": "frames a capture thread decodes ahead, so decoding overlaps inference (a "
               "live camera keeps only the newest); 0: capture in the frame loop",
        "range": "0..16"})

    def __post_init__(self):
        check(self)   # the ranges and choices in the fields' metadata
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"width/height: {self.width}x{self.height} is outside 16..8192")



def find_camera() -> str | None:
    """The camera ``auto`` means: the Pi camera, else /dev/video0 (None: neither)."""
    from . import picamera
    if picamera.available():
        return "picamera"
    if os.path.exists("/dev/video0"):
        return "0"
    return None


def resolve_auto(demo: bool = True) -> str:
    """The camera, else the sample clip when ``demo`` allows it, else "camera" (wait)."""
    return find_camera() or (str(SAMPLE_CLIP) if demo else "camera")


class AutoCamera(FrameSource):
    """``auto`` with no camera yet: looks for one at each (re)open, so a service started
    before its camera is plugged in (or detected) waits for it instead of inventing data."""
    name = "camera (auto)"
    live = True

    def __init__(self, cfg: SourceConfig):
        self.cfg = cfg
        self.inner: FrameSource | None = None
        self._keep = 0

    def open(self) -> None:
        uri = find_camera()
        if uri is None:
            raise SourceUnavailable("no camera found (no Pi camera, no /dev/video0)")
        inner = _create(uri, self.cfg)
        inner.keep_frames(self._keep)
        inner.open()
        self.inner, self.name, self.fps = inner, inner.name, inner.fps

    def read(self) -> np.ndarray:
        if self.inner is None:
            raise SourceUnavailable("no camera found")
        return self.inner.read()

    def keep_frames(self, n: int) -> None:
        self._keep = n

    def close(self) -> None:
        if self.inner is not None:
            inner, self.inner = self.inner, None
            inner.close()


def create_source(cfg: SourceConfig, *, demo: bool = True) -> FrameSource:
    """The source ``cfg`` names. ``demo``: may ``auto`` with no camera play the bundled
    sample clip (only for a person trying it out: ``cli.demo_allowed``)? If not, it waits
    for a camera."""
    if cfg.uri != "auto":
        return _create(cfg.uri, cfg)
    uri = resolve_auto(demo)
    if uri == "camera":
        return AutoCamera(cfg)
    src = _create(uri, cfg)
    if uri == str(SAMPLE_CLIP):
        src.name = f"sample clip {SAMPLE_CLIP.name} (not a camera)"
    return src


def _create(uri: str, cfg: SourceConfig) -> FrameSource:
    if uri == "picamera":
        from .picamera import PiCameraSource
        return PiCameraSource(cfg.width, cfg.height, cfg.fps)
    p = Path(uri)
    if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES:
        from .images import ImageSource
        return ImageSource([p], loop=cfg.loop)
    from .opencv import OpenCVSource
    return OpenCVSource(uri, cfg.width, cfg.height, cfg.fps, loop=cfg.loop,
                        realtime=cfg.realtime)


__all__ = ["SourceConfig", "create_source", "CaptureThread", "Frame", "FrameSource",
           "ResilientSource", "SourceError", "SourceUnavailable", "EndOfStream", "NO_FRAME",
           "SAMPLE_CLIP", "AutoCamera", "find_camera"]
