"""Events as readable lines on stdout (journald keeps them), e.g.::

    23:59:01 face #3 appeared  happy 0.82
    23:59:04 face #3 sad -> happy 0.71
    23:59:13 face #3 left after 12.4 s
    00:00:00 summary 60 s: 4 faces  happy 45%  neutral 30%  sad 25%  dominant happy  14.8 fps

The line is ``edge.eventlog.format_record``'s, as ``emotion-edge tail`` prints it.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from ..eventlog import format_record
from ..events import Event, FrameResult
from ..settings import check
from .base import Sink

log = logging.getLogger(__name__)




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
