"""Per-interval room summary: faces seen, each emotion's share of face-time, the dominant one.

Faces too small to read count as faces seen but not in the shares; ``faces_unread`` says how
many of the interval's faces were never read in it.

Time without video (the source down) is not face-time: ``idle`` moves the clock on and counts
it as ``no_video_s``, so summaries keep their interval through an outage.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .eventlog import EventKind
from .events import Event, TrackedFace, UnreadFace


class Summary:
    def __init__(self, labels: tuple[str, ...], interval: float):
        self.labels = labels
        self.interval = interval
        self._index = {label: i for i, label in enumerate(labels)}
        self._start: float | None = None
        self._last: float | None = None
        self._reset()

    def _reset(self) -> None:
        self.face_time = np.zeros(len(self.labels))  # seconds of face-time per emotion
        self.tracks: set[int] = set()
        self.read: set[int] = set()
        self.frames = 0
        self.no_video_s = 0.0

    def add(self, t: float, faces: list[TrackedFace],
            unread: Sequence[UnreadFace] = ()) -> Event | None:
        """Account one frame; returns a summary event when an interval is complete."""
        if self._start is None:
            self._start = self._last = t
        dt = min(max(t - self._last, 0.0), 1.0)  # a stalled source must not count as face-time
        self._last = t
        self.frames += 1
        for f in faces:
            self.face_time[self._index[f.emotion]] += dt
            self.tracks.add(f.track_id)
            self.read.add(f.track_id)
        self.tracks.update(f.track_id for f in unread)
        if t - self._start >= self.interval:
            return self.flush(t)
        return None

    def idle(self, t: float) -> Event | None:
        """Time passes with no video up to ``t``; a summary when an interval is complete."""
        if self._start is None:
            self._start = self._last = t
        self.no_video_s += max(t - self._last, 0.0)
        self._last = max(self._last, t)
        if t - self._start >= self.interval:
            return self.flush(t)
        return None

    def flush(self, t: float) -> Event | None:
        """The summary of the interval so far (None if nothing was seen or missed)."""
        if self._start is None or (self.frames == 0 and self.no_video_s == 0):
            return None
        span = max(t - self._start, 1e-9)
        total = self.face_time.sum()
        share = {lab: round(float(v / total), 3) for lab, v in zip(self.labels, self.face_time)} \
            if total > 0 else {}
        dominant = self.labels[int(self.face_time.argmax())] if total > 0 else None
        ev = Event(EventKind.SUMMARY, t, emotion=dominant, extra={
            "interval_s": round(span, 1), "faces_seen": len(self.tracks),
            "faces_unread": len(self.tracks - self.read),
            "emotion_share": share, "dominant": dominant, "frames": self.frames,
            "fps": round(self.frames / span, 1),
            **({"no_video_s": round(min(self.no_video_s, span), 1)} if self.no_video_s else {})})
        self._start = t
        self._reset()
        return ev
