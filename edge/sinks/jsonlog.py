"""The event log: one JSON object per line, rotated by size, safe against crashes and full disks.

Why it is built this way:

* Each line goes to disk with a single ``os.write`` on an ``O_APPEND`` descriptor, so a reader
  (``emotion-edge tail``, ``jq``, a log shipper) never has to piece lines together and a killed
  process leaves only whole lines behind.
* Lines are buffered in memory and written + ``fsync``-ed by a small background thread at least
  every ``flush_interval`` seconds: a crash or power cut loses at most that last moment, and the
  SD card's fsync latency stays off the frame loop.
* When writing fails (disk full, directory gone or unwritable, file deleted) nothing is raised
  into the pipeline: lines wait in a bounded queue, one warning is logged per fault episode, and
  the queue is written as soon as writing works again.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import stat
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..eventlog import rotate
from ..events import Event
from ..settings import check
from .base import Sink

log = logging.getLogger(__name__)


@dataclass
class JsonLogConfig:
    """The ``[log]`` section."""
    enabled: bool = field(default=True, metadata={"doc": "write events to a JSON-lines log file"})
    dir: str = field(default="logs", metadata={
        "doc": "log directory, relative to the working directory (the Pi install uses "
               "/var/log/emotion-edge)"})
    file: str = field(default="events.jsonl", metadata={"doc": "log file name inside dir"})
    max_bytes: int = field(default=10_000_000, metadata={
        "doc": "rotate when the file would grow beyond this many bytes (0: never rotate)",
        "range": ">= 0"})
    keep: int = field(default=5, metadata={
        "doc": "rotated files kept: events.jsonl.1 (newest) ... events.jsonl.<keep>",
        "range": ">= 0"})
    flush_interval: float = field(default=1.0, metadata={
        "doc": "seconds between writes to disk (with fsync): the most a power cut can lose",
        "range": "> 0", "unit": "seconds"})
    queue_lines: int = field(default=10_000, metadata={
        "doc": "lines held in memory while the disk is unwritable; beyond it the oldest are dropped",
        "range": ">= 1"})

    def __post_init__(self) -> None:
        check(self)   # the ranges and choices in the fields' metadata
        if not str(self.dir).strip():
            raise ValueError("dir: must not be empty (use \".\" for the working directory)")
        if not self.file or "/" in self.file or self.file in (".", ".."):
            raise ValueError(f"file: {self.file!r} must be a plain file name, without '/'")

    @property
    def path(self) -> Path:
        return Path(self.dir) / self.file


def encode(event: Event) -> bytes:
    """One log line: compact JSON of ``Event.to_record()`` plus the newline."""
    return (json.dumps(event.to_record(), separators=(",", ":"), ensure_ascii=False)
            + "\n").encode("utf-8")


class JsonLogSink(Sink):
    """Appends events to ``<dir>/<file>`` as JSON lines; see the module docstring."""

    name = "log"

    def __init__(self, config: JsonLogConfig | None = None) -> None:
        self.config = config or JsonLogConfig()
        self.path = self.config.path
        self._pending: deque[bytes] = deque()
        self._lock = threading.Lock()      # guards _pending and the counters
        self._io_lock = threading.Lock()   # one writer at a time (flusher thread or flush())
        self._fd: int | None = None
        self._id: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._size = 0
        self._rotatable = True
        self._reopen = False
        self._closed = False
        self._fault: str | None = None     # the current fault episode's error, None when healthy
        self._fault_errors = 0
        self._queue_full = False
        self._dropped = 0
        self._write_errors = 0
        self._lines_written = 0
        self._wake = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="jsonlog-flush",
                                         daemon=True)
        self._flusher.start()

    # -- what the pipeline calls ---------------------------------------------------------

    def handle(self, events: Sequence[Event]) -> None:
        lines = [encode(e) for e in events]
        with self._lock:
            if self._closed:
                self._dropped += len(lines)
                return
            self._pending.extend(lines)
            self._trim_locked()

    def flush(self) -> None:
        """Write and fsync everything handled so far (or queue it if writing fails)."""
        with self._io_lock:
            self._write_pending()

    def reopen(self) -> None:
        """Close the file and open it again by path within flush_interval (for an outside
        rotator, on SIGHUP), whether or not an event is waiting.

        Only sets a flag, so it is safe to call from a signal handler."""
        self._reopen = True

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._flusher.join(timeout=10)
        with self._io_lock:
            self._write_pending()
            if self._pending:
                log.warning("event log %s: %d line(s) could not be written before exit",
                            self.path, len(self._pending))
            self._close_fd()

    # -- counters ------------------------------------------------------------------------

    @property
    def dropped_lines(self) -> int:
        """Lines lost because the queue overflowed while the log was unwritable."""
        return self._dropped

    @property
    def write_errors(self) -> int:
        """Failed attempts to open, write, rotate or fsync the log."""
        return self._write_errors

    @property
    def queued_lines(self) -> int:
        """Lines handled but not yet on disk."""
        return len(self._pending)

    @property
    def lines_written(self) -> int:
        return self._lines_written

    @property
    def healthy(self) -> bool:
        """False while in a fault episode (the last write attempt failed)."""
        return self._fault is None

    def health(self) -> dict:
        return {"file": str(self.path), "state": "writing" if self.healthy else "cannot write",
                "lines written": self.lines_written, "waiting": self.queued_lines,
                "dropped": self.dropped_lines, "write errors": self.write_errors}

    # -- internals -----------------------------------------------------------------------

    def _trim_locked(self) -> None:
        excess = len(self._pending) - self.config.queue_lines
        if excess <= 0:
            return
        for _ in range(excess):
            self._pending.popleft()
        self._dropped += excess
        if not self._queue_full:
            self._queue_full = True
            log.warning("event log %s: %d lines waiting to be written; dropping the oldest "
                        "(see dropped_lines)", self.path, self.config.queue_lines)

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.config.flush_interval)
            if self._closed:
                break
            if self._pending or self._reopen:
                try:
                    self.flush()
                except Exception:  # never let the flusher die silently
                    log.exception("event log %s: unexpected error while flushing", self.path)

    def _write_pending(self) -> None:
        """Write the queue line by line; on failure put the rest back and start a fault episode."""
        with self._lock:
            batch, self._pending = self._pending, deque()
        written = 0
        reopen, self._reopen = self._reopen, False
        if reopen:
            self._close_fd()
        if not batch and not reopen:
            return
        try:
            # After a reopen the new file is made at once, not with the next event (which may
            # be minutes away): whoever moved the log sees it, and an error shows now.
            if self._fd is None or self._file_replaced():
                self._open()
            for line in batch:
                if self._needs_rotation(len(line)):
                    self._rotate()
                self._write_line(line)
                written += 1
            if batch:
                os.fsync(self._fd)
        except OSError as exc:
            self._on_error(exc)
            rest = list(batch)[written:]
            with self._lock:
                self._pending.extendleft(reversed(rest))
                self._trim_locked()
        else:
            self._on_success()
        finally:
            self._lines_written += written

    def _write_line(self, line: bytes) -> None:
        n = os.write(self._fd, line)
        if n != len(line):
            # A short write (disk filled up mid-line): cut the fragment off again so the file
            # holds only whole lines, and report it like ENOSPC.
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise OSError(errno.ENOSPC, "short write (disk full?)")
        self._size += n

    def _needs_rotation(self, incoming: int) -> bool:
        limit = self.config.max_bytes
        return (limit > 0 and self._rotatable and self._size > 0
                and self._size + incoming > limit)

    def _open(self) -> None:
        self._close_fd()
        os.makedirs(self.path.parent, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        st = os.fstat(fd)
        self._fd, self._id, self._size = fd, (st.st_dev, st.st_ino), st.st_size
        self._rotatable = stat.S_ISREG(st.st_mode)   # never rename a device such as /dev/full

    def _file_replaced(self) -> bool:
        """The file was deleted or moved away by someone else: write to a new one."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._id

    def _rotate(self) -> None:
        """events.jsonl -> .1 -> .2 ... (edge.eventlog.rotate), between whole lines."""
        os.fsync(self._fd)
        self._close_fd()
        rotate(self.path, self.config.keep)
        self._open()

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def _on_error(self, exc: OSError) -> None:
        self._write_errors += 1
        self._fault_errors += 1
        self._close_fd()   # reopen from scratch next time: the file may be gone or replaced
        if self._fault is None:
            self._fault = exc.strerror or str(exc)
            log.warning("event log %s: cannot write (%s); keeping up to %d lines in memory and "
                        "retrying every %g s", self.path, self._fault, self.config.queue_lines,
                        self.config.flush_interval)

    def _on_success(self) -> None:
        self._queue_full = False
        if self._fault is not None:
            log.info("event log %s: writable again after %d failed attempt(s) (%s); "
                        "%d line(s) dropped so far", self.path, self._fault_errors, self._fault,
                        self._dropped)
            self._fault, self._fault_errors = None, 0
