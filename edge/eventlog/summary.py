"""A live summary of the records as they pass: faces seen, each emotion's share of face-time."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .format import count_faces
from .schema import EventKind, parse_ts


@dataclass
class LiveSummary:
    """Faces seen and face-time per emotion, counted from the events as they pass."""
    faces_seen: int = 0
    records: int = 0
    malformed: int = 0
    face_time: dict[str, float] = field(default_factory=dict)
    micro: dict[str, int] = field(default_factory=dict)
    last_summary: dict[str, Any] | None = None
    _open: dict[int, tuple[str, float]] = field(default_factory=dict)  # track -> (emotion, since)
    _now: float = 0.0

    def add(self, rec: dict[str, Any]) -> None:
        self.records += 1
        kind, track, emotion = rec.get("event"), rec.get("track"), rec.get("emotion")
        try:
            t = parse_ts(rec["ts"])
        except (KeyError, TypeError, ValueError):
            return
        self._now = max(self._now, t)
        if kind in (EventKind.STARTED, EventKind.STOPPED):
            for tr in list(self._open):
                self._close(tr, t)       # a new run numbers tracks afresh
        elif kind == EventKind.FACE_APPEARED:
            self.faces_seen += 1
            self._close(track, t)
            if emotion:
                self._open[track] = (emotion, t)
        elif kind == EventKind.EMOTION_CHANGED:
            self._close(track, t)
            if emotion:
                self._open[track] = (emotion, t)
        elif kind == EventKind.FACE_LEFT:
            self._close(track, t)
        elif kind == EventKind.MICRO_EXPRESSION and emotion:
            self.micro[emotion] = self.micro.get(emotion, 0) + 1
        elif kind == EventKind.SUMMARY:
            self.last_summary = rec

    def _close(self, track: Any, t: float) -> None:
        seg = self._open.pop(track, None)
        if seg is not None:
            self.face_time[seg[0]] = self.face_time.get(seg[0], 0.0) + max(0.0, t - seg[1])

    def share(self) -> dict[str, float]:
        """Each emotion's share of face-time so far (faces still in view count up to now);
        from the last ``summary`` record when no face events were seen."""
        totals = dict(self.face_time)
        for emotion, since in self._open.values():
            totals[emotion] = totals.get(emotion, 0.0) + max(0.0, self._now - since)
        total = sum(totals.values())
        if total > 0:
            return {k: v / total for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
        if self.last_summary and isinstance(self.last_summary.get("emotion_share"), dict):
            return dict(self.last_summary["emotion_share"])
        return {}

    def line(self) -> str:
        shares = "  ".join(f"{k} {v:.0%}" for k, v in self.share().items()) or "no face-time yet"
        seen = count_faces(self.faces_seen)
        text = f"-- summary: {seen} seen, {len(self._open)} in view | {shares}"
        if self.last_summary and self.last_summary.get("fps") is not None:
            text += f" | {self.last_summary['fps']} fps"
        if self.malformed:
            text += f" | {self.malformed} malformed line(s) skipped"
        return text
