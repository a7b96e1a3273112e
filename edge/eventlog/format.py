"""A record as one readable line, the way ``tail`` and the console sink both say it::

    23:59:01 face #3 appeared  happy 0.82
    23:59:04 face #3 sad -> happy 0.71
    23:59:13 face #3 left after 12.4 s
    00:00:00 summary 60 s: 4 faces  happy 45%  neutral 30%  sad 25%  dominant happy  14.8 fps
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from .schema import EventKind

_BASE_KEYS = {"v", "ts", "event", "track", "emotion", "score", "box"}
_USED_EXTRA = {
    EventKind.FACE_APPEARED: {"readable"},
    EventKind.FACE_LEFT: {"duration_s"},
    EventKind.EMOTION_CHANGED: {"previous"},
    EventKind.SUMMARY: {"interval_s", "faces_seen", "faces_unread", "emotion_share", "dominant",
                        "frames", "fps"},
}


def _hms(rec: dict[str, Any]) -> str:
    try:
        return datetime.fromisoformat(rec["ts"]).astimezone().strftime("%H:%M:%S")
    except (KeyError, TypeError, ValueError):
        return "--:--:--"


def count_faces(n: Any) -> str:
    """"1 face", "4 faces"."""
    return f"{n} face" if n == 1 else f"{n} faces"


def _num(x: Any, fmt: str) -> str:
    try:
        return format(float(x), fmt)
    except (TypeError, ValueError):
        return "?"


def format_record(rec: dict[str, Any]) -> str:
    """One log record (``Event.to_record()`` or a parsed log line) as one readable line."""
    kind = rec.get("event", "?")
    who = f"face #{rec.get('track', '?')}"
    emotion = rec.get("emotion", "?")
    score = f" {_num(rec['score'], '.2f')}" if "score" in rec else ""
    if kind == EventKind.FACE_APPEARED:
        text = f"{who} appeared  " + (f"{emotion}{score}" if rec.get("readable", True)
                                      else "too small to read")
    elif kind == EventKind.EMOTION_CHANGED:
        before = rec.get("previous", "?")
        text = f"{who} {'too small to read' if before is None else before} -> {emotion}{score}"
    elif kind == EventKind.FACE_LEFT:
        text = f"{who} left after {_num(rec.get('duration_s'), '.1f')} s"
    elif kind == EventKind.MICRO_EXPRESSION:
        text = f"{who} micro-expression {emotion}{score}"
    elif kind == EventKind.SUMMARY:
        share = rec.get("emotion_share") or {}
        seen = count_faces(rec.get("faces_seen", "?"))
        if rec.get("faces_unread"):
            seen += f" ({rec['faces_unread']} too small to read)"
        parts = [f"summary {_num(rec.get('interval_s'), 'g')} s: {seen}"]
        if isinstance(share, dict):
            parts += [f"{k} {_num(v, '.0%')}" for k, v in
                      sorted(share.items(), key=lambda kv: -_float(kv[1])) if _float(v) > 0]
        parts.append(f"dominant {rec.get('dominant') or 'none'}")
        if rec.get("fps") is not None:
            parts.append(f"{_num(rec['fps'], '.1f')} fps")
        text = "  ".join(parts)
    else:   # started, stopped, and kinds this version does not know yet
        text = str(kind)
        if "track" in rec:
            text += f" {who}"
        if "emotion" in rec:
            text += f" {emotion}{score}"
    used = _BASE_KEYS | _USED_EXTRA.get(kind, set())
    rest = "  ".join(f"{k}={_plain(v)}" for k, v in rec.items() if k not in used)
    return f"{_hms(rec)} {text}" + (f"  {rest}" if rest else "")


def _plain(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return ",".join(f"{k}:{x}" for k, x in v.items())
    return str(v)


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0
