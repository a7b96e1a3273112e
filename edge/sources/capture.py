"""The capture stage in its own thread, so the next frame decodes while this one is inferred.

OpenCV's decoder and LiteRT's ``invoke`` both release the GIL, so on a Pi's four cores
decoding overlaps face detection instead of adding to it. The thread owns the
``ResilientSource`` (its retries, backoff and counts are unchanged) and hands frames over
through a small queue:

- a file is read ahead by at most ``depth`` frames and loses none;
- a live camera or stream keeps only the newest ``depth`` frames: a pipeline that falls
  behind sees the present, not a growing backlog (dropped frames are counted).

The systemd watchdog is fed by the frame loop, never by this thread: while the loop waits,
it pings only when the capture thread shows signs of life (a frame, or a tick of its
reconnect backoff), so a wedged camera driver still stops the pings. While the source is
down it returns ``NO_FRAME`` every ``idle_s`` (see ``ResilientSource``).
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from .base import NO_FRAME, Frame, ResilientSource

_END = object()       # the source ended (or was stopped)
_POLL_S = 0.1         # how often a waiting frame loop looks at should_stop / liveness


class CaptureThread:
    """Reads ``source`` in a thread, up to ``depth`` frames ahead of the frame loop."""

    def __init__(self, source: ResilientSource, depth: int = 2):
        if depth < 1:
            raise ValueError(f"depth: must be at least 1, not {depth}")
        self.source = source
        self.depth = depth
        self.dropped = 0          # live frames discarded because the loop was behind
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._beats = 0           # ticks of the reconnect backoff: alive, though frameless
        self._seen_beats = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Frames in flight: the queue's, the loop's current one, and the one being decoded.
        self.source.source.keep_frames(self.depth + 2)
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    # --- the capture thread ---------------------------------------------------------------
    def _beat(self) -> None:
        self._beats += 1

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.next(self._stop.is_set, self._beat)
                if frame is None:
                    break
                if frame is NO_FRAME:        # down: the frame loop keeps time on its own
                    self._beat()
                    continue
                self._put(frame)
        except BaseException as exc:  # handed to the frame loop, which raises it
            self._put(exc)
        self._put(_END)

    def _put(self, item) -> None:
        drop_oldest = self.source.source.live and isinstance(item, Frame)
        while not self._stop.is_set():
            try:
                if drop_oldest:
                    self._queue.put_nowait(item)
                else:
                    self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if drop_oldest:
                    try:                       # make room: the oldest frame goes
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass

    # --- the frame loop's side --------------------------------------------------------------
    def next(self, should_stop: Callable[[], bool] = lambda: False,
             alive: Callable[[], None] = lambda: None) -> Frame | None:
        """The next frame, or None at the end of the source or once ``should_stop()``.
        Errors raised in the capture thread are raised here."""
        waited_since = time.monotonic()
        while not should_stop():
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if self._beats != self._seen_beats:   # no frame, but capture is alive
                    self._seen_beats = self._beats
                    alive()
                if self.source.state != "live" and \
                        time.monotonic() - waited_since >= self.source.idle_s:
                    return NO_FRAME
                continue
            if item is _END:
                self._queue.put_nowait(_END)          # later calls end too
                return None
            if isinstance(item, BaseException):
                raise item
            return item
        return None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread. The source is closed only once the thread has let go of it."""
        self._stop.set()
        if self._thread is None:
            return
        while self._thread.is_alive() and timeout > 0:
            try:                                      # unblock a put() on a full queue
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(_POLL_S)
            timeout -= _POLL_S
        if self._thread.is_alive():
            raise TimeoutError("the capture thread is stuck in the source (a wedged camera "
                               "driver?); not closing it")
