"""The frame-source interface, and the wrapper that keeps a flaky source going."""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message is meant for the user."""


class EndOfStream(Exception):
    """A finite source (file, image folder) has no more frames."""


@dataclass(slots=True)
class Frame:
    image: np.ndarray   # BGR uint8 (H, W, 3)
    index: int          # frames delivered so far by this source, from 0
    time: float         # unix seconds: capture time, or the video's own timeline for files


class FrameSource(ABC):
    name = "source"
    fps: float = 0.0          # nominal frame rate, 0 when unknown
    live = True               # a camera or stream (vs a file that can end)

    @abstractmethod
    def open(self) -> None:
        """Open the device or file; raise SourceError with a clear message on failure."""

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


class ResilientSource:
    """Wraps a source: reopens it with exponential backoff after failures, counts them.

    ``next()`` blocks until a frame arrives or ``should_stop()`` says so (returns None), so
    the pipeline's loop stays simple. A single unreadable frame is skipped and counted.
    """

    def __init__(self, source: FrameSource, *, backoff: float = 0.5, max_backoff: float = 30.0,
                 max_bad_frames: int = 30):
        self.source = source
        self.backoff0, self.max_backoff, self.max_bad_frames = backoff, max_backoff, max_bad_frames
        self.failures = 0        # times the source failed and had to be reopened
        self.bad_frames = 0      # unreadable frames of a file skipped
        self.index = 0
        self._open = False

    def open(self) -> None:
        self.source.open()
        self._open = True

    def next(self, should_stop=lambda: False, alive=lambda: None) -> Frame | None:
        """The next frame; ``alive()`` is called while waiting to reconnect, so the
        systemd watchdog sees a daemon that is waiting, not hung."""
        delay, bad_in_a_row = self.backoff0, 0
        while not should_stop():
            if not self._open:
                try:
                    self.source.open()
                    self._open = True
                    log.warning("source %s: reopened after %d failure(s)", self.source.name,
                                self.failures)
                except SourceError as exc:
                    log.warning("source %s: still failing (%s); retrying in %.1f s",
                                self.source.name, exc, delay)
                    self._sleep(delay, should_stop, alive)
                    delay = min(delay * 2, self.max_backoff)
                    continue
            try:
                image = self.source.read()
            except EndOfStream:
                return None
            except SourceError as exc:
                if not self.source.live:
                    self.bad_frames += 1
                    bad_in_a_row += 1
                    if bad_in_a_row >= self.max_bad_frames:
                        log.warning("source %s: %d unreadable frames in a row; treating it "
                                    "as ended", self.source.name, bad_in_a_row)
                        return None
                    continue  # one unreadable frame in a file: skip it
                self.failures += 1
                log.warning("source %s failed (%s): reopening in %.1f s", self.source.name,
                            exc, delay)
                self._close_quietly()
                self._sleep(delay, should_stop, alive)  # a camera that opens but gives no
                delay = min(delay * 2, self.max_backoff)  # frames must not spin the CPU
                continue
            frame = Frame(image, self.index, self.source.timestamp())
            self.index += 1
            return frame
        return None

    @staticmethod
    def _sleep(seconds: float, should_stop, alive) -> None:
        end = time.monotonic() + seconds
        while not should_stop() and time.monotonic() < end:
            alive()
            time.sleep(min(0.1, end - time.monotonic()))

    def _close_quietly(self) -> None:
        try:
            self.source.close()
        except Exception:  # a dead device may fail to close; it is being replaced anyway
            pass
        self._open = False

    def close(self) -> None:
        if self._open:
            self._close_quietly()
