"""A day's summaries read back from the event log, rotated files included.

The log rotates by size (``events.jsonl``, ``events.jsonl.1`` ... ``.<keep>``), so a day
can span several files; each is read line by line and only ``summary`` lines are parsed.
Days are the device's local calendar days: what a teacher means by "Tuesday".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from ..eventlog import log_files
from .records import clean_summary


@dataclass(frozen=True)
class LogFiles:
    folder: Path
    name: str = "events.jsonl"

    def files(self) -> list[Path]:
        """The live file and every rotated one that exists, newest first."""
        return log_files(self.folder, self.name)

    def summaries(self, day: date | None = None) -> list[dict]:
        """Every summary record (of ``day`` only, if given), oldest first, without repeats."""
        seen: dict[str, dict] = {}
        for path in self.files():
            for rec in _summary_lines(path):
                if day is None or local_day(rec) == day:
                    seen.setdefault(rec["ts"], rec)
        return [seen[k] for k in sorted(seen, key=lambda ts: _parse(ts))]

    def days(self) -> list[str]:
        """The days (YYYY-MM-DD) that have at least one summary, newest first."""
        return sorted({local_day(r).isoformat() for p in self.files() for r in _summary_lines(p)},
                      reverse=True)


def local_day(rec: dict) -> date:
    return _parse(rec["ts"]).astimezone().date()


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _summary_lines(path: Path):
    try:
        with path.open("rb") as f:
            for raw in f:
                if b'"summary"' not in raw:       # cheap filter before parsing
                    continue
                try:
                    rec = clean_summary(json.loads(raw))
                except (ValueError, RecursionError):
                    rec = None
                if rec is not None:               # else a torn or foreign line: skip it
                    yield rec
    except OSError:
        return
