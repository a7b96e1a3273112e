"""OpenCV ``VideoCapture``: USB cameras (an index), video files, RTSP/HTTP streams."""
from __future__ import annotations

import logging
import os
import re
import time

import cv2
import numpy as np

from ..paths import file_problem
from .base import (MAX_SIDE, EndOfStream, FrameSource, SourceError, SourceUnavailable, display,
                   fit_size)

log = logging.getLogger(__name__)
# FFmpeg's own messages ("moov atom not found") repeat what the SourceError says, in
# another format, on every retry (see sources/base.py): OPENCV_FFMPEG_LOGLEVEL=16 shows them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# A stream that does not answer must not hold the capture (or a stop) for FFmpeg's
# default 30 s: opening and each read give up after this long and count as a failure.
STREAM_TIMEOUT_MS = 5000


def redact(uri: str) -> str:
    """A stream URL without its password (rtsp://user:secret@host -> rtsp://user:***@host):
    names go into the log."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", uri)


class OpenCVSource(FrameSource):
    """``realtime`` plays a file at its own frame rate, dropping frames when the pipeline
    falls behind, as a camera would (the config's default, for a person watching);
    without it a file gives every frame, whatever the load (what analysing a file needs)."""

    def __init__(self, uri: str, width: int = 0, height: int = 0, fps: float = 0,
                 loop: bool = False, realtime: bool = False):
        self.uri = uri
        self.is_camera = uri.isdigit() or uri.startswith("/dev/video")
        self.is_stream = "://" in uri
        self.live = self.is_camera or self.is_stream
        self.name = f"camera {uri}" if self.is_camera else display(redact(uri))
        self.width, self.height, self.req_fps = width, height, fps
        self.loop, self.realtime = loop, realtime and not self.live
        self.cap: cv2.VideoCapture | None = None
        self._fd: int | None = None   # a file opened by us, for names OpenCV cannot take
        # Frames are decoded into a ring of reused buffers: a returned frame stays intact
        # for as many more reads as ``keep_frames`` asked (the capture thread reads ahead).
        # Frames larger than MAX_SIDE are decoded into ``_full`` and downscaled into it.
        self._ring: list[np.ndarray | None] = [None]
        self._full: np.ndarray | None = None
        self._slot = 0
        self._pos = 0            # frames read from a file (for its timeline)
        self._pass_frames = 0    # frames read since the file was (re)opened
        self._t0 = 0.0

    # --- opening -------------------------------------------------------------------------
    def open(self) -> None:
        if self.is_stream:
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
            if not cap.isOpened():
                raise SourceUnavailable(f"cannot open stream {self.name} (not up yet, or "
                                        f"not reachable)")
        elif self.is_camera:
            cap = self._open_camera()
        else:
            cap = self._open_file()
        self.fps = cap.get(cv2.CAP_PROP_FPS) or self.req_fps or 0.0
        if not 0 < self.fps <= 1000:   # files declare nonsense rates too
            self.fps = self.req_fps or 30.0
        self.cap = cap
        self._t0 = time.time()
        self._pos = self._pass_frames = 0

    def _open_camera(self) -> cv2.VideoCapture:
        dev = f"/dev/video{self.uri}" if self.uri.isdigit() else self.uri
        if not os.path.exists(dev):
            raise SourceError(f"no camera at {dev} (ls /dev/video* lists the cameras; set "
                              f"[source] uri)")
        cap = cv2.VideoCapture(int(self.uri) if self.uri.isdigit() else self.uri)
        if not cap.isOpened():
            raise SourceUnavailable(f"cannot open camera {self.uri} (busy, or still starting)")
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.req_fps:
            cap.set(cv2.CAP_PROP_FPS, self.req_fps)
        return cap

    def _open_file(self) -> cv2.VideoCapture:
        problem = file_problem(self.uri)
        if problem is not None:
            raise SourceError(f"{self.name}: " + {
                "missing": "no such video file",
                "not a regular file": "not a regular file (a video file is needed)"}.get(
                    problem, problem))
        target = self.uri
        try:
            target.encode("utf-8")
        except UnicodeEncodeError:    # a name that is not UTF-8: hand OpenCV our own fd
            self._close_fd()
            self._fd = os.open(self.uri, os.O_RDONLY | os.O_CLOEXEC)
            target = f"/proc/self/fd/{self._fd}"
        # One decoding thread: FFmpeg's frame threads cost ~20% more CPU a frame in their
        # hand-offs (720p mp4v: 1.5-2.1 ms against 1.9-2.6) and a file is decoded ahead,
        # in the capture thread, far faster than it is analysed.
        cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        if not cap.isOpened():
            self._close_fd()
            raise SourceError(f"cannot open video file {self.name} (truncated, or not a "
                              f"video)")
        return cap

    # --- reading -------------------------------------------------------------------------
    def read(self) -> np.ndarray:
        if self.cap is None:
            raise SourceError("source is not open")
        ok = self.cap.grab()
        if not ok and not self.live:
            # A file's grab fails at its real end, whatever frame count it declares.
            if not self.loop or self._pass_frames == 0:
                if self._pass_frames == 0 and self._pos == 0:
                    log.warning("%s: no frame could be decoded", self.name)
                raise EndOfStream
            self._rewind()
            ok = self.cap.grab()
        if not ok:
            raise SourceError(f"{self.name}: no frame")
        self._pos += 1
        self._pass_frames += 1
        if self.realtime and self.fps:
            # Like a camera: wait when early, drop frames when the pipeline falls behind.
            delay = self._t0 + self._pos / self.fps - time.time()
            if delay > 0:
                time.sleep(delay)
            while delay < -1.0 / self.fps and self.cap.grab():
                self._pos += 1
                self._pass_frames += 1
                delay += 1.0 / self.fps
        return self._retrieve()

    def _retrieve(self) -> np.ndarray:
        i = self._slot
        ok, image = self.cap.retrieve(self._full if self._full is not None else self._ring[i])
        if not ok or image is None:
            raise SourceError(f"{self.name}: unreadable frame")
        if max(image.shape[:2]) > MAX_SIDE:
            # Larger than the pipeline needs: keep one full-size buffer, ring the small.
            self._full = image
            size = fit_size(image.shape[1], image.shape[0])
            slot = self._ring[i]
            dst = slot if slot is not None and slot.shape[:2] == (size[1], size[0]) else None
            image = cv2.resize(image, size, dst=dst, interpolation=cv2.INTER_AREA)
        self._ring[i] = image
        self._slot = (i + 1) % len(self._ring)
        return image

    def _rewind(self) -> None:
        """Start the file again: reopened, so a file whose index is wrong loops too."""
        self.cap.release()
        self.cap = self._open_file()
        self._pass_frames = 0

    def keep_frames(self, n: int) -> None:
        if n + 1 > len(self._ring):
            self._ring += [None] * (n + 1 - len(self._ring))

    def timestamp(self) -> float:
        # Files follow their own timeline, so durations in the log are the video's.
        if not self.live and self.fps:
            return self._t0 + (self._pos - 1) / self.fps
        return time.time()

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        self._close_fd()
