"""The frame-source interface, and the wrapper that keeps a flaky source going."""
from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import EmotionEdgeError, display  # noqa: F401  (display: also for the sources)
from ..events import Event

log = logging.getLogger(__name__)
# OpenCV's own log lines ("can't open camera by index", "imdecode_: can't read data")
# repeat what our one-line errors say, in another format, at every retry or bad file; an
# OPENCV_LOG_LEVEL set by the user (e.g. WARNING, to debug a camera) is kept.
if "OPENCV_LOG_LEVEL" not in os.environ:
    if hasattr(cv2.utils, "logging"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    else:  # OpenCV 4.11, the Pi's pin (numpy 1.x), has only the old call; 0 is silent
        cv2.setLogLevel(0)

# Frames are analysed at most this size (longest side, pixels); larger ones are downscaled
# as they are read. BlazeFace sees the whole frame at 128 or 192 px and the classifier a
# face at 48-64 px, so at 1920 px the smallest face the detector can find (about 1/40 of
# the frame) is still as large as the classifier's training faces; more pixels only cost
# memory (a 4K frame is 25 MB, and a source keeps several).
MAX_SIDE = 1920
# What a still picture may be called: an image folder's files, `run --source photo.jpg`,
# `classify --annotate`'s outputs.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Smaller frames cannot hold a face the detector finds; they are skipped as unreadable.
MIN_SIDE = 16


class SourceError(EmotionEdgeError, RuntimeError):
    """A source that cannot be opened or read; the message is meant for the user.
    At start-up it is a misconfiguration (no such file, a typo'd device): the run stops."""


class SourceUnavailable(SourceError):
    """A camera or stream that is not there yet (an IP camera still booting, no camera
    plugged in): retried with backoff, at start-up as mid-run."""


class EndOfStream(Exception):
    """A finite source (file, image folder) has no more frames."""


class _NoFrame:
    def __repr__(self) -> str:
        return "NO_FRAME"


# Returned by ``next()`` while the source is down: no frame, but time passes (summaries,
# tracks ending); ask again.
NO_FRAME = _NoFrame()


@dataclass(slots=True)
class Frame:
    image: np.ndarray   # BGR uint8 (H, W, 3)
    index: int          # frames delivered so far by this source, from 0
    time: float         # unix seconds: capture time, or the video's own timeline for files


def fit_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(width, height) scaled down so that neither exceeds ``max_side``."""
    side = max(width, height)
    if side <= max_side:
        return width, height
    s = max_side / side
    return max(1, round(width * s)), max(1, round(height * s))


def frame_problem(image) -> str | None:
    """Why ``image`` cannot be analysed (None: it can). Checked before OpenCV or LiteRT
    see it: odd arrays there end in assertion failures, not messages."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        what = getattr(image, "shape", type(image).__name__)
        return f"not an 8-bit BGR picture ({what})"
    if min(image.shape[:2]) < MIN_SIDE:
        return f"{image.shape[1]}x{image.shape[0]} is too small to hold a face"
    return None


class FrameSource(ABC):
    name = "source"
    fps: float = 0.0          # nominal frame rate, 0 when unknown
    live = True               # a camera or stream (vs a file that can end)

    @abstractmethod
    def open(self) -> None:
        """Open the device or file; raise SourceError with a clear message on failure
        (SourceUnavailable when it may come up by itself)."""

    @abstractmethod
    def read(self) -> np.ndarray:
        """The next BGR frame. Raise EndOfStream at the end, SourceError on a failure."""

    def keep_frames(self, n: int) -> None:
        """Keep each returned frame intact for ``n`` more reads (the capture thread reads
        ahead). Sources that return a fresh array every time have nothing to do."""

    def timestamp(self) -> float:
        """Time of the frame just read (default: now)."""
        return time.time()

    def close(self) -> None:
        """Release the device or file."""


def downscale(image: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """``image`` fitted within ``MAX_SIDE`` (into ``dst`` when it has the right shape)."""
    h, w = image.shape[:2]
    size = fit_size(w, h)
    if size == (w, h):
        return image
    if dst is None or dst.shape[:2] != (size[1], size[0]):
        dst = None
    return cv2.resize(image, size, dst=dst, interpolation=cv2.INTER_AREA)


class ResilientSource:
    """Wraps a source: reopens it with exponential backoff after failures, counts them,
    and reports its state as data.

    ``state`` is "live" (frames arrive), "reconnecting" (it failed; reopening) or "down"
    (reopening failed too); ``down_since`` is the unix time it stopped delivering (None
    while live). Each outage is one ``source_down`` event when it starts and one
    ``source_up`` (with the gap) when frames return, collected by ``take_events()``.

    ``next()`` blocks until a frame arrives or ``should_stop()`` says so (returns None);
    while the source is down it returns ``NO_FRAME`` every ``idle_s`` seconds, so the frame
    loop can keep time. A single unreadable frame of a file is skipped and counted.
    """

    def __init__(self, source: FrameSource, *, backoff: float = 0.5, max_backoff: float = 30.0,
                 max_bad_frames: int = 30, idle_s: float = 0.5):
        self.source = source
        self.backoff0, self.max_backoff, self.max_bad_frames = backoff, max_backoff, max_bad_frames
        self.idle_s = idle_s
        self.failures = 0        # times the source failed and had to be reopened
        self.bad_frames = 0      # unreadable frames of a file skipped
        self.index = 0
        self.state = "live"
        self.down_since: float | None = None
        self.reason: str | None = None
        self._attempts = 0       # failed opens in this outage
        self._events: deque[Event] = deque()
        self._delay = backoff
        self._retry_at = 0.0     # monotonic time of the next reopen
        self._open = False

    def open(self) -> None:
        """Open at start-up. A misconfiguration raises ``SourceError``; a camera or stream
        that is not up yet leaves the source down, to be retried by ``next()``."""
        try:
            self.source.open()
            self._open = True
        except SourceUnavailable as exc:
            self._went_down(str(exc), "down")
            self._schedule_retry()

    def take_events(self) -> list[Event]:
        """The source_down / source_up events since the last call (any thread)."""
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def next(self, should_stop=lambda: False, alive=lambda: None) -> Frame | None:
        """The next frame; ``alive()`` is called while waiting to reconnect, so the
        systemd watchdog sees a daemon that is waiting, not hung."""
        bad_in_a_row = 0
        while not should_stop():
            if not self._open:
                wait = self._retry_at - time.monotonic()
                if wait > 0:
                    self._sleep(min(wait, self.idle_s), should_stop, alive)
                    return NO_FRAME
                try:
                    self.source.open()
                    self._open = True
                    log.warning("source %s: reopened after %d failure(s)", self.name,
                                self.failures + self._attempts)
                except SourceError as exc:
                    self._attempts += 1
                    self._went_down(str(exc), "down")
                    log.warning("source %s: still failing (%s); retrying in %.1f s",
                                self.name, exc, self._delay)
                    self._schedule_retry()
                    continue
            try:
                image = self.source.read()
            except EndOfStream:
                return None
            except SourceError as exc:
                if not self.source.live:  # one unreadable frame in a file: skip it
                    bad_in_a_row += 1
                    if self._skip(str(exc), bad_in_a_row):
                        return None
                    continue
                self.failures += 1
                log.warning("source %s failed (%s): reopening in %.1f s", self.name,
                            exc, self._delay)
                self._went_down(str(exc), "reconnecting")
                self._close_quietly()
                self._schedule_retry()   # a camera that opens but gives no frames must
                continue                 # not spin the CPU
            problem = frame_problem(image)
            if problem is not None:
                bad_in_a_row += 1
                if self._skip(problem, bad_in_a_row):
                    return None
                continue
            if self.state != "live":
                self._came_up()
            frame = Frame(image, self.index, self.source.timestamp())
            self.index += 1
            return frame
        return None

    @property
    def name(self) -> str:
        return display(self.source.name)

    def _skip(self, why: str, in_a_row: int) -> bool:
        """Count an unusable frame; True when a file has had too many in a row (ended)."""
        self.bad_frames += 1
        if self.bad_frames == 1 or self.bad_frames % 100 == 0:
            log.warning("source %s: skipped an unusable frame (%s; %d so far)", self.name,
                        display(why), self.bad_frames)
        if not self.source.live and in_a_row >= self.max_bad_frames:
            log.warning("source %s: %d unusable frames in a row; treating it as ended",
                        self.name, in_a_row)
            return True
        return False

    def _went_down(self, reason: str, state: str) -> None:
        self.reason = reason
        if self.state == "live":
            self.down_since, self._delay = time.time(), self.backoff0
            self._events.append(Event("source_down", self.down_since, extra={
                "source": self.name, "reason": display(reason)}))
            if state == "down":
                log.warning("source %s is not available (%s); retrying with backoff",
                            self.name, reason)
        self.state = state if self.state == "live" or state == "down" else self.state

    def _came_up(self) -> None:
        now = time.time()
        gap = now - (self.down_since or now)
        self._events.append(Event("source_up", now, extra={
            "source": self.name, "gap_s": round(gap, 2),
            "attempts": self._attempts + 1}))
        log.warning("source %s: frames again after %.1f s", self.name, gap)
        self.state, self.down_since, self.reason = "live", None, None
        self._attempts, self._delay = 0, self.backoff0

    def _schedule_retry(self) -> None:
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.max_backoff)

    @staticmethod
    def _sleep(seconds: float, should_stop, alive) -> None:
        end = time.monotonic() + seconds
        while not should_stop() and time.monotonic() < end:
            alive()
            time.sleep(max(0.0, min(0.1, end - time.monotonic())))

    def _close_quietly(self) -> None:
        try:
            self.source.close()
        except Exception:  # a dead device may fail to close; it is being replaced anyway
            pass
        self._open = False

    def close(self) -> None:
        if self._open:
            self._close_quietly()
