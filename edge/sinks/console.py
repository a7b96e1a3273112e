"""Events as readable lines on stdout (journald keeps them), e.g.::

    23:59:01 face #3 appeared  happy 0.82
    23:59:04 face #3 sad -> happy 0.71
    23:59:13 face #3 left after 12.4 s
    00:00:00 summary 60 s: 4 faces  happy 45%  neutral 30%  sad 25%  dominant happy  14.8 fps

``format_record`` is shared with ``emotion-edge tail`` so both speak the same way.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from ..events import Event, FrameResult
from .base import Sink
from ..settings import check

log = logging.getLogger(__name__)

_BASE_KEYS = {"v", "ts", "event", "track", "emotion", "score", "box"}
_USED_EXTRA = {
    "face_left": {"duration_s"},
    "emotion_changed": {"previous"},
    "summary": {"interval_s", "faces_seen", "emotion_share", "dominant", "frames", "fps"},
}


@dataclass
class ConsoleConfig:
    """The ``[console]`` section."""
    enabled: bool = field(default=True, metadata={
        "doc": "print one readable line per event to stdout (journald keeps them)"})
    status_interval: float = field(default=60.0, metadata={
        "doc": "seconds between status lines (faces in view, fps); 0 turns them off",
        "range": ">= 0", "unit": "seconds"})

    def __post_init__(self) -> None:
        check(self)   # the ranges and choices in the fields' metadata


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
    if kind == "face_appeared":
        text = f"{who} appeared  {emotion}{score}"
    elif kind == "emotion_changed":
        text = f"{who} {rec.get('previous', '?')} -> {emotion}{score}"
    elif kind == "face_left":
        text = f"{who} left after {_num(rec.get('duration_s'), '.1f')} s"
    elif kind == "micro_expression":
        text = f"{who} micro-expression {emotion}{score}"
    elif kind == "summary":
        share = rec.get("emotion_share") or {}
        seen = count_faces(rec.get("faces_seen", "?"))
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


class ConsoleSink(Sink):
    """Prints events as they happen and, every ``status_interval`` s, a status line."""

    name = "console"

    def __init__(self, config: ConsoleConfig | None = None, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or ConsoleConfig()
        self.stream = stream
        self._clock = clock
        self._last_status = clock()
        self._last_index: int | None = None
        self._last_time: float | None = None
        self.write_errors = 0

    def handle(self, events: Sequence[Event]) -> None:
        self._write("".join(format_record(e.to_record()) + "\n" for e in events))

    def update(self, result: FrameResult) -> None:
        interval = self.config.status_interval
        if interval <= 0:
            return
        now = self._clock()
        if now - self._last_status < interval:
            return
        self._last_status = now
        self._write(self.status_line(result) + "\n")

    def status_line(self, result: FrameResult) -> str:
        fps = ""
        if self._last_index is not None and result.time > self._last_time:
            rate = (result.index - self._last_index) / (result.time - self._last_time)
            fps = f"  {rate:.1f} fps"
        self._last_index, self._last_time = result.index, result.time
        hms = datetime.fromtimestamp(result.time).strftime("%H:%M:%S")
        n = len(result.faces)
        faces = f"{n} face{'s' if n != 1 else ''}"
        if n:
            faces += " (" + ", ".join(f"#{f.track_id} {f.emotion}" for f in result.faces) + ")"
        return f"{hms} status  {faces}  dominant {result.dominant or 'none'}  frame {result.index}{fps}"

    def flush(self) -> None:
        self._write("")

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout   # looked up late: tests and daemons swap stdout
        try:
            if text:
                stream.write(text)
            stream.flush()
        except (OSError, ValueError) as exc:   # closed or broken stdout: never stop the pipeline
            self.write_errors += 1
            if self.write_errors == 1:
                log.warning("console: cannot write to stdout (%s); further errors are only "
                            "counted", exc)
