"""Frame sources: Pi camera, OpenCV (USB camera, file, stream), still images."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .base import EndOfStream, Frame, FrameSource, ResilientSource, SourceError
from .capture import CaptureThread

SAMPLE_CLIP = Path(__file__).resolve().parents[1] / "samples" / "demo_pexels_wolfgang_langer.mp4"


@dataclass
class SourceConfig:
    """Section ``[source]``."""
    uri: str = field(default="auto", metadata={
        "doc": "auto (Pi camera, else /dev/video0, else the bundled sample clip), picamera, "
               "a USB camera index (0), a video file, an rtsp:// or http:// URL, or an image "
               "file or folder"})
    width: int = field(default=640, metadata={"doc": "capture width (cameras)"})
    height: int = field(default=480, metadata={"doc": "capture height (cameras)"})
    fps: float = field(default=30.0, metadata={"doc": "capture frame rate (cameras)"})
    loop: bool = field(default=False, metadata={"doc": "start a video file or image folder "
                                                       "again at its end"})
    realtime: bool = field(default=True, metadata={
        "doc": "play video files at their own frame rate (false: as fast as possible)"})
    read_ahead: int = field(default=2, metadata={
        "doc": "frames a capture thread decodes ahead, so decoding overlaps inference (a "
               "live camera keeps only the newest); 0: capture in the frame loop"})

    def __post_init__(self):
        if self.width < 16 or self.height < 16:
            raise ValueError(f"width/height: {self.width}x{self.height} is too small")
        if not 0 < self.fps <= 240:
            raise ValueError(f"fps: {self.fps} is outside 0..240")
        if not 0 <= self.read_ahead <= 16:
            raise ValueError(f"read_ahead: {self.read_ahead} is outside 0..16")


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def resolve_auto() -> str:
    from . import picamera
    if picamera.available():
        return "picamera"
    if os.path.exists("/dev/video0"):
        return "0"
    return str(SAMPLE_CLIP)


def create_source(cfg: SourceConfig) -> FrameSource:
    uri = resolve_auto() if cfg.uri == "auto" else cfg.uri
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
           "ResilientSource", "SourceError", "EndOfStream", "SAMPLE_CLIP"]
