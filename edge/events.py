"""What the pipeline tells its sinks: per-frame state, and events as plain data.

Events are what gets logged (a face appears, changes its smoothed emotion, leaves; a summary
per interval). ``FrameResult`` is the per-frame state for live outputs (LEDs, the web page,
face crops): the tracked faces, this frame's events and a read-only view of the picture.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .eventlog.schema import SCHEMA_VERSION, EventKind  # noqa: F401  (re-exported)

Box = tuple[int, int, int, int]  # x, y, width, height in frame pixels


def iso_utc(t: float) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2026-11-21T23:59:01.123Z."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    kind: str                    # an EventKind (edge/eventlog/schema.py), a str
    time: float                  # unix seconds (wall clock)
    track_id: int | None = None  # anonymous, per run; never an identity
    emotion: str | None = None
    score: float | None = None
    box: Box | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The JSON-lines record: schema version and timestamp first, no None fields."""
        rec: dict[str, Any] = {"v": SCHEMA_VERSION, "ts": iso_utc(self.time), "event": self.kind}
        if self.track_id is not None:
            rec["track"] = self.track_id
        if self.emotion is not None:
            rec["emotion"] = self.emotion
        if self.score is not None:
            rec["score"] = round(float(self.score), 3)
        if self.box is not None:
            rec["box"] = [int(v) for v in self.box]
        rec.update(self.extra)
        return rec


@dataclass(slots=True)
class TrackedFace:
    track_id: int
    box: Box
    emotion: str            # smoothed label
    score: float            # smoothed probability of that label
    scores: np.ndarray      # smoothed probabilities, in the model's label order


@dataclass(frozen=True, slots=True)
class UnreadFace:
    """A face found and tracked but too small to read ([classifier] min_readable): it
    counts as a face in view and gets no emotion."""
    track_id: int
    box: Box


@dataclass(slots=True)
class FrameResult:
    index: int
    time: float
    faces: list[TrackedFace]
    dominant: str | None    # the room's dominant smoothed emotion now (None: no faces)
    # This frame's events (the same ones ``Sink.handle`` gets).
    events: Sequence[Event] = ()
    # The BGR picture, read-only and valid only during ``Sink.update``: the source may reuse
    # its buffer for the next frame, so a sink copies (or downscales) what it keeps.
    image: np.ndarray | None = None
    # Faces in view too small to read (not in ``faces``, not in ``dominant``).
    unread: Sequence[UnreadFace] = ()
