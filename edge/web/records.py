"""What the day view and the report accept from a log line: a ``summary`` whose every field
has the type and range the log format gives it (docs/log-format.md), copied field by field.
Anything else (a foreign line, a string ``faces_seen``, HTML in ``interval_s``) is skipped
like a torn line, so nothing the page or the report shows comes from outside that shape."""
from __future__ import annotations
from ..eventlog import EventKind

import math
from datetime import datetime
from typing import Any

MAX_LABELS = 64
MAX_LABEL_CHARS = 64


def clean_summary(rec: Any) -> dict[str, Any] | None:
    """The summary's known fields, checked; None when it is not a summary this can show."""
    if not isinstance(rec, dict) or rec.get("event") != EventKind.SUMMARY:
        return None
    ts = rec.get("ts")
    if not isinstance(ts, str) or len(ts) > 40:
        return None
    try:
        datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    out: dict[str, Any] = {"event": EventKind.SUMMARY, "ts": ts}
    interval, faces = rec.get("interval_s"), rec.get("faces_seen")
    if not (_number(interval) and 0 <= interval < 1e7 and _whole(faces) and 0 <= faces < 1e9):
        return None
    out.update(interval_s=interval, faces_seen=faces)
    share = rec.get("emotion_share", {})
    if not (isinstance(share, dict) and len(share) <= MAX_LABELS
            and all(_label(k) and _number(v) and 0 <= v <= 1.0001 for k, v in share.items())):
        return None
    out["emotion_share"] = dict(share)
    for key in ("dominant", "emotion"):
        value = rec.get(key)
        if value is not None and not _label(value):
            return None
        if key in rec:
            out[key] = value
    for key, check in (("frames", _whole), ("fps", _number), ("no_video_s", _number)):
        if key in rec:
            if not (check(rec[key]) and rec[key] >= 0):
                return None
            out[key] = rec[key]
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _label(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_LABEL_CHARS and v.isprintable()
