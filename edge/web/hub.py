"""The bridge between the frame loop (and the JPEG thread) and the web server's event loop.

The loop's side (``frame``, ``events``) only builds small plain objects and, when someone
is subscribed, schedules them onto the server's asyncio loop; JSON is made there. Each
subscriber has a bounded queue: a viewer that cannot keep up loses its oldest messages,
the monitor loses nothing.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from datetime import datetime
from collections.abc import Sequence
from typing import Any

from ..eventlog import EventKind
from ..events import Event, FrameResult
from .encoder import JpegEncoder

RECENT_S = 3600.0            # the page's "last hour"
QUEUE = 64                   # messages a slow page may fall behind before it loses some


class LiveHub:
    def __init__(self, max_width: int, quality: int):
        self.encoder = JpegEncoder(max_width, quality, self._jpeg_done)
        self.video_viewers = 0          # open MJPEG streams
        self.state_viewers = 0          # open event streams (the page)
        self.summaries: deque[dict] = deque()   # the last hour's summary records
        self.last_frame: dict[str, Any] | None = None
        self.jpeg: tuple[int, bytes, float, int] = (0, b"", 0.0, 0)  # seq, bytes, wall, index
        self.dropped_messages = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: set[asyncio.Queue] = set()
        self._jpeg_waiters: asyncio.Event | None = None
        self.closed = False

    @property
    def watching(self) -> bool:
        return (self.video_viewers or self.state_viewers) > 0

    # --- the frame loop's side --------------------------------------------------------------
    def frame(self, result: FrameResult, w: int, h: int) -> None:
        faces = [{"id": f.track_id, "box": list(f.box), "emotion": f.emotion,
                  "score": round(f.score, 3), "scores": [round(float(p), 3) for p in f.scores]}
                 for f in result.faces]
        msg = {"type": "frame", "i": result.index, "t": result.time, "wall": time.time(),
               "w": w, "h": h,
               "faces": faces, "dominant": result.dominant,
               "unread": [{"id": f.track_id, "box": list(f.box)} for f in result.unread]}
        self.last_frame = msg
        self._send(msg)

    def events(self, events: Sequence[Event]) -> None:
        for e in events:
            if e.kind != EventKind.SUMMARY and not self._subs:
                continue                  # nobody to tell; only summaries are kept
            rec = e.to_record()
            if e.kind == EventKind.SUMMARY:
                self.summaries.append(rec)
                while self.summaries and e.time - _unix(self.summaries[0]) > RECENT_S:
                    self.summaries.popleft()
            self._send({"type": "event", "record": rec})

    def _send(self, msg: dict) -> None:
        loop = self._loop
        if loop is not None and self._subs:
            try:
                loop.call_soon_threadsafe(self._fanout, msg)
            except RuntimeError:      # the server's loop has just closed
                pass

    def _jpeg_done(self, jpeg: bytes, wall: float, index: int) -> None:
        """JPEG thread: the newest picture; wakes the streams on the server's loop."""
        self.jpeg = (self.jpeg[0] + 1, jpeg, wall, index)
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake_streams)
            except RuntimeError:
                pass

    # --- the server's side (its event loop thread) ------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jpeg_waiters = asyncio.Event()

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(QUEUE)
        self._subs.add(q)
        self.state_viewers = len(self._subs)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self._subs.discard(q)
        self.state_viewers = len(self._subs)

    def _fanout(self, msg: dict) -> None:
        data = json.dumps(msg, separators=(",", ":"))
        for q in self._subs:
            if q.full():
                q.get_nowait()
                self.dropped_messages += 1
            q.put_nowait(data)

    def _wake_streams(self) -> None:
        waiters, self._jpeg_waiters = self._jpeg_waiters, asyncio.Event()
        waiters.set()

    async def next_jpeg(self, after: int, timeout: float = 1.0) -> tuple[int, bytes, float, int] | None:
        """The newest picture newer than ``after`` (None on timeout or when closing)."""
        while self.jpeg[0] <= after and not self.closed:
            try:
                await asyncio.wait_for(self._jpeg_waiters.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        return None if self.closed else self.jpeg

    def close(self) -> None:
        self.closed = True
        self.encoder.close()


def _unix(rec: dict) -> float:
    return datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")).timestamp()
