"""The event log's record: its schema version, the kinds of event, and what a reader accepts.

Every line is one JSON object: ``{"v": 1, "ts": "...Z", "event": KIND, ...}`` (the fields
of each kind: docs/log-format.md). ``EventKind`` names the kinds; its members are strings,
so ``EventKind.SUMMARY == "summary"`` and they are written to JSON as they are.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class EventKind(StrEnum):
    STARTED = "started"
    STOPPED = "stopped"
    FACE_APPEARED = "face_appeared"
    EMOTION_CHANGED = "emotion_changed"
    FACE_LEFT = "face_left"
    SUMMARY = "summary"
    SOURCE_DOWN = "source_down"
    SOURCE_UP = "source_up"
    MICRO_EXPRESSION = "micro_expression"
    MODEL_CHANGED = "model_changed"


def parse_ts(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def parse_line(line: str) -> dict[str, Any] | None:
    """A record, or None for a line that is not a JSON object with an ``event`` and a ``ts``,
    or whose known fields have the wrong types (written by something else, or damaged)."""
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(rec, dict) or "event" not in rec or "ts" not in rec:
        return None
    return rec if all(check(rec[k]) for k, check in _FIELDS.items() if k in rec) else None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_ts(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        parse_ts(v)
    except (ValueError, OverflowError, OSError):
        return False
    return True


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


# The fields this reader uses, and what each must be (docs/log-format.md); others pass.
_FIELDS: dict[str, Callable[[Any], bool]] = {
    "ts": _is_ts, "event": _is_str, "track": _is_int, "emotion": _is_str,
    "score": _is_num, "duration_s": _is_num, "interval_s": _is_num,
    # previous null: the face was too small to read until then
    "previous": lambda v: v is None or isinstance(v, str),
    "faces_seen": _is_int, "faces_unread": _is_int, "frames": _is_int, "fps": _is_num,
    "gap_s": _is_num, "readable": lambda v: isinstance(v, bool),
    "dominant": lambda v: v is None or isinstance(v, str),
    "box": lambda v: isinstance(v, list) and len(v) == 4 and all(map(_is_num, v)),
    "emotion_share": lambda v: isinstance(v, dict) and all(map(_is_num, v.values())),
}
