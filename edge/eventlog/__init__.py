"""The event log, in one place: what a record is, how the files are named and rotated, how
to follow them as they grow, and how a record reads as a line.

- ``schema``:  ``SCHEMA_VERSION``, ``EventKind`` (the kinds of event), ``parse_line`` (what a
  reader accepts)
- ``files``:   ``events.jsonl`` and its rotated copies: ``rotate``, ``chain``, ``log_files``
- ``follow``:  ``follow()`` across rotation and truncation (``tail -F``), ``LogError``
- ``format``:  ``format_record``: one readable line per record
- ``summary``: ``LiveSummary``: faces seen and emotion shares as records pass

The writer is the sink (``edge.sinks.jsonlog``); the readers are ``emotion-edge tail``
(``edge.tail``), the page's day view (``edge.web.history``) and ``report``. The format is
documented in docs/log-format.md.
"""
from __future__ import annotations

from .files import chain, log_files, rotate, rotated
from .follow import FollowStats, LogError, check_logfile, follow
from .format import count_faces, format_record
from .schema import SCHEMA_VERSION, EventKind, parse_line, parse_ts
from .summary import LiveSummary

__all__ = ["SCHEMA_VERSION", "EventKind", "FollowStats", "LiveSummary", "LogError", "chain",
           "check_logfile", "count_faces", "follow", "format_record", "log_files",
           "parse_line", "parse_ts", "rotate", "rotated"]
