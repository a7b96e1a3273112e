"""OpenCV ``VideoCapture``: USB cameras (an index), video files, RTSP/HTTP streams."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from .base import EndOfStream, FrameSource, SourceError


class OpenCVSource(FrameSource):
    def __init__(self, uri: str, width: int = 0, height: int = 0, fps: float = 0,
                 loop: bool = False, realtime: bool = True):
        self.uri = uri
        self.is_camera = uri.isdigit() or uri.startswith("/dev/video")
        self.is_stream = "://" in uri
        self.live = self.is_camera or self.is_stream
        self.name = f"camera {uri}" if self.is_camera else uri
        self.width, self.height, self.req_fps = width, height, fps
        self.loop, self.realtime = loop, realtime and not self.live
        self.cap: cv2.VideoCapture | None = None
        # Frames are decoded into a ring of reused buffers: a returned frame stays intact
        # for as many more reads as ``keep_frames`` asked (the capture thread reads ahead).
        self._ring: list[np.ndarray | None] = [None]
        self._slot = 0
        self._pos = 0            # frames read from a file (for its timeline)
        self._t0 = 0.0

    def open(self) -> None:
        if not self.live and not Path(self.uri).is_file():
            raise SourceError(f"{self.uri}: no such video file")
        target = int(self.uri) if self.uri.isdigit() else self.uri
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            what = "camera" if self.is_camera else "stream" if self.is_stream else "video file"
            raise SourceError(f"cannot open {what} {self.uri}")
        if self.is_camera:
            if self.width and self.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.req_fps:
                cap.set(cv2.CAP_PROP_FPS, self.req_fps)
        self.fps = cap.get(cv2.CAP_PROP_FPS) or self.req_fps or 0.0
        self.cap = cap
        self._t0 = time.time()
        self._pos = 0

    def read(self) -> np.ndarray:
        if self.cap is None:
            raise SourceError("source is not open")
        ok = self.cap.grab()
        if not ok and not self.live:
            if self._at_end():
                if not self.loop:
                    raise EndOfStream
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok = self.cap.grab()
        if not ok:
            raise SourceError(f"{self.name}: no frame")
        self._pos += 1
        if self.realtime and self.fps:
            # Like a camera: wait when early, drop frames when the pipeline falls behind.
            delay = self._t0 + self._pos / self.fps - time.time()
            if delay > 0:
                time.sleep(delay)
            while delay < -1.0 / self.fps and not self._at_end() and self.cap.grab():
                self._pos += 1
                delay += 1.0 / self.fps
        i = self._slot
        ok, image = self.cap.retrieve(self._ring[i])
        if not ok or image is None:
            raise SourceError(f"{self.name}: unreadable frame")
        self._ring[i] = image
        self._slot = (i + 1) % len(self._ring)
        return image

    def keep_frames(self, n: int) -> None:
        if n + 1 > len(self._ring):
            self._ring += [None] * (n + 1 - len(self._ring))

    def _at_end(self) -> bool:
        total = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return total <= 0 or self.cap.get(cv2.CAP_PROP_POS_FRAMES) >= total - 1

    def timestamp(self) -> float:
        # Files follow their own timeline, so durations in the log are the video's.
        if not self.live and self.fps:
            return self._t0 + (self._pos - 1) / self.fps
        return time.time()

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
