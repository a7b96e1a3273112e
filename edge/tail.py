"""``emotion-edge tail [LOGFILE]``: follow the event log like ``tail -F``, readably.

``follow()`` yields whole lines and survives rotation: when ``events.jsonl`` is renamed to
``events.jsonl.1`` it first finishes the old file, then continues with the next newer one
(found by inode among ``events.jsonl.N``, so even several rotations between two polls lose
nothing), and it notices truncation by a copy-truncate rotator. ``main()`` prints each record
as a line and keeps a live summary: faces seen and each emotion's share of face-time.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import stat
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from .errors import EmotionEdgeError, describe, display
from .sinks.console import count_faces, format_record

log = logging.getLogger(__name__)

# Where the log is when no LOGFILE is given: the Pi install, then a run from the repo.
DEFAULT_LOGS = (Path("/var/log/emotion-edge/events.jsonl"), Path("logs/events.jsonl"))

_READ_SIZE = 64 * 1024


@dataclass
class FollowStats:
    """What ``follow`` went through (for the summary and for tests)."""
    lines: int = 0
    files: int = 0          # files opened (1 + rotations followed)
    truncations: int = 0    # the file was cut short in place (copy-truncate rotation)
    fell_behind: int = 0    # the file being read was deleted by rotation: lines may be missed


@dataclass
class _Open:
    fd: int
    ino: tuple[int, int]
    pos: int = 0


def follow(path: str | Path, *, from_start: bool = False, poll: float = 0.25,
           stop_at_eof: bool = False, max_lines: int | None = None,
           idle_timeout: float | None = None, on_idle: Callable[[], None] | None = None,
           stats: FollowStats | None = None) -> Iterator[str]:
    """Yield each complete line (without its newline) appended to ``path``, forever.

    from_start: begin with the first line of the current file instead of its end.
    stop_at_eof: stop at the end of the newest file instead of waiting for more.
    max_lines: stop after this many lines. idle_timeout: stop after that many seconds without
    a new line. on_idle: called at each poll that found nothing new (e.g. to print a summary).
    A trailing fragment without a newline is yielded only when its file is finished (rotated
    away) or at ``stop_at_eof``: it is a broken line left by a crash.
    """
    path = Path(path)
    stats = stats if stats is not None else FollowStats()
    cur: _Open | None = None
    buf = b""
    last_line = time.monotonic()

    def emit(chunk: bytes) -> Iterator[str]:
        nonlocal buf, last_line
        buf += chunk
        if b"\n" not in buf:
            return
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            stats.lines += 1
            last_line = time.monotonic()
            yield raw.decode("utf-8", errors="replace")
            if max_lines is not None and stats.lines >= max_lines:
                return

    def done() -> bool:
        return max_lines is not None and stats.lines >= max_lines

    def leftover() -> Iterator[str]:
        nonlocal buf
        if buf:
            rest, buf = buf, b""
            yield from emit(rest + b"\n")

    try:
        cur = _open_file(path)
        if cur is not None:
            stats.files += 1
            if not from_start:
                cur.pos = _end_of_last_line(cur.fd)
        while not done():
            if cur is None:
                cur = _open_file(path)
                if cur is not None:
                    stats.files += 1   # appeared after we started: read it from its start
            progressed = False
            if cur is not None:
                while not done():
                    chunk = os.pread(cur.fd, _READ_SIZE, cur.pos)
                    if not chunk:
                        break
                    cur.pos += len(chunk)
                    progressed = True
                    yield from emit(chunk)
                if done():
                    return
                st = os.fstat(cur.fd)
                if st.st_size < cur.pos:      # truncated in place: start again at its top
                    stats.truncations += 1
                    cur.pos, buf = 0, b""
                    continue
                if not progressed:
                    nxt = _successor(path, cur, stats)
                    if nxt is not None:       # the old file is finished: move on
                        yield from leftover()
                        os.close(cur.fd)
                        cur, progressed = nxt, True
                        stats.files += 1
                        continue
            if progressed:
                continue
            if stop_at_eof:
                yield from leftover()
                return
            if idle_timeout is not None and time.monotonic() - last_line > idle_timeout:
                return
            if on_idle is not None:
                on_idle()
            time.sleep(poll)
    finally:
        if cur is not None:
            os.close(cur.fd)


def _open_file(path: Path) -> _Open | None:
    try:   # O_NONBLOCK: a FIFO put where the log belongs must not hang the open
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise LogError(f"{display(path)}: not a regular file")
    return _Open(fd, (st.st_dev, st.st_ino))


def _end_of_last_line(fd: int) -> int:
    """Where to start when not reading from the start: after the last complete line."""
    size = os.fstat(fd).st_size
    start = max(0, size - _READ_SIZE)
    tail = os.pread(fd, size - start, start)
    cut = tail.rfind(b"\n")
    return start + cut + 1 if cut >= 0 else (0 if start == 0 else size)


def _chain(path: Path) -> list[tuple[int, tuple[int, int]]]:
    """(index, (dev, inode)) of path (index 0) and its rotated copies path.N, oldest first.

    Names are looked at in rising index order: rotation moves files up one name at a time,
    so a rotation during the scan can show a file twice (kept once) but never hide one."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    try:
        top = max((int(m.group(1)) for m in map(pattern.fullmatch, os.listdir(path.parent)) if m),
                  default=0)
    except OSError:
        return []
    found: list[tuple[int, tuple[int, int]]] = []
    seen: set[tuple[int, int]] = set()
    for i in range(top + 2):
        try:
            st = os.stat(path if i == 0 else path.with_name(f"{path.name}.{i}"))
        except OSError:
            continue
        ino = (st.st_dev, st.st_ino)
        if ino not in seen:
            seen.add(ino)
            found.append((i, ino))
    found.reverse()
    return found


def _successor(path: Path, cur: _Open, stats: FollowStats) -> _Open | None:
    """The file written after ``cur`` if ``cur`` was rotated away, else None (keep waiting).

    Rotation only shifts names upwards (path -> .1 -> .2 ...), so the order of the existing
    names is the order of writing; the successor is the next newer name. A rename can happen
    between looking and opening, hence the check that the opened file is the one we meant."""
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == cur.ino:
            return None                     # not rotated
    except FileNotFoundError:
        pass
    deleted = os.fstat(cur.fd).st_nlink == 0
    for _ in range(20):
        chain = _chain(path)
        ids = [ino for _, ino in chain]
        if cur.ino in ids and not deleted:
            i = ids.index(cur.ino)
            if i + 1 >= len(chain):
                return None                 # the new file is not created yet
            index, want = chain[i + 1]
        elif deleted and chain:
            # Our file was deleted (a rotation dropped it before we finished): everything left
            # is newer. Continue with the oldest.
            index, want = chain[0]
        elif deleted:
            return None                     # nothing newer yet: wait for the new file
        else:
            time.sleep(0.01)                # a rename is in progress; look again
            continue
        name = path if index == 0 else path.with_name(f"{path.name}.{index}")
        nxt = _open_file(name)
        if nxt is not None and nxt.ino == want:
            if deleted:
                stats.fell_behind += 1
                log.warning("%s was rotated away before it was read to the end; some lines "
                            "may be missing (read faster or raise log.keep)", path)
            return nxt
        if nxt is not None:
            os.close(nxt.fd)
    # Moved somewhere we do not look (another directory, another name): like tail -F, go on
    # with whatever file has the name now.
    nxt = _open_file(path)
    if nxt is not None and nxt.ino != cur.ino:
        return nxt
    if nxt is not None:
        os.close(nxt.fd)
    return None


# -- the live summary -------------------------------------------------------------------------

def parse_ts(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


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
        if kind in ("started", "stopped"):
            for tr in list(self._open):
                self._close(tr, t)       # a new run numbers tracks afresh
        elif kind == "face_appeared":
            self.faces_seen += 1
            self._close(track, t)
            if emotion:
                self._open[track] = (emotion, t)
        elif kind == "emotion_changed":
            self._close(track, t)
            if emotion:
                self._open[track] = (emotion, t)
        elif kind == "face_left":
            self._close(track, t)
        elif kind == "micro_expression" and emotion:
            self.micro[emotion] = self.micro.get(emotion, 0) + 1
        elif kind == "summary":
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
    "score": _is_num, "previous": _is_str, "duration_s": _is_num, "interval_s": _is_num,
    "faces_seen": _is_int, "frames": _is_int, "fps": _is_num, "gap_s": _is_num,
    "dominant": lambda v: v is None or isinstance(v, str),
    "box": lambda v: isinstance(v, list) and len(v) == 4 and all(map(_is_num, v)),
    "emotion_share": lambda v: isinstance(v, dict) and all(map(_is_num, v.values())),
}


# -- the command ------------------------------------------------------------------------------

def default_logfile() -> Path:
    for p in DEFAULT_LOGS:
        if p.exists():
            return p
    return DEFAULT_LOGS[-1]


class LogError(EmotionEdgeError, RuntimeError):
    """A log that cannot be followed (a folder, unreadable); one line for the user."""


DESCRIPTION = ("Follow the emotion event log like tail -F, as readable lines with a live "
               "summary. Survives log rotation.")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of ``emotion-edge tail`` (also ``python -m edge.tail``)."""
    ap.add_argument("logfile", nargs="?", type=Path,
                    help=f"the log (default: the configured one, else the first that exists "
                         f"of {', '.join(map(str, DEFAULT_LOGS))})")
    ap.add_argument("--from-start", action="store_true",
                    help="print the whole current file first, not only new lines")
    ap.add_argument("--json", action="store_true",
                    help="pass the JSON lines through unchanged (the summary goes to stderr)")
    ap.add_argument("-n", "--max-lines", type=int, metavar="N",
                    help="stop after N lines")
    ap.add_argument("--until-eof", action="store_true",
                    help="stop at the end of the log instead of waiting for more")
    ap.add_argument("--summary-every", type=float, default=10.0, metavar="S",
                    help="print the summary every S seconds while new lines arrive (0: only at exit)")
    ap.add_argument("--poll", type=float, default=0.25, metavar="S", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    ap = argparse.ArgumentParser(prog="emotion-edge tail", description=DESCRIPTION)
    add_arguments(ap)
    args = ap.parse_intermixed_args(argv)
    try:
        return run(args, out, err)
    except (LogError, OSError) as exc:
        print(f"emotion-edge tail: {describe(exc)}", file=err or sys.stderr)
        return 2


def check_logfile(path: Path) -> None:
    """A LogError unless ``path`` is a readable regular file or does not exist yet."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise LogError(f"{display(path)} is a folder; name the log file in it "
                       f"(e.g. {display(path / 'events.jsonl')})")
    if not stat.S_ISREG(st.st_mode):
        raise LogError(f"{display(path)}: not a regular file")
    if not os.access(path, os.R_OK):
        raise LogError(f"{display(path)}: cannot read it (permission denied; the service's "
                       f"log is readable by root and the emotion-edge group)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``emotion-edge tail`` with parsed ``args``; raises LogError for a log it cannot read."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.max_lines is not None and args.max_lines < 1:
        raise LogError("-n/--max-lines: must be at least 1")
    path = args.logfile or default_logfile()
    check_logfile(path)
    summary = LiveSummary()
    stats = FollowStats()
    info = err if args.json else out
    shown_at = [time.monotonic(), 0]   # when the summary was last shown, records at the time

    def show_summary(force: bool = False) -> None:
        if not force and (args.summary_every <= 0 or summary.records == shown_at[1]
                          or time.monotonic() - shown_at[0] < args.summary_every):
            return
        shown_at[0], shown_at[1] = time.monotonic(), summary.records
        print(summary.line(), file=info, flush=True)

    if not path.exists():
        print(f"waiting for {display(path)} to appear ...", file=err, flush=True)
    try:
        for line in follow(path, from_start=args.from_start, poll=args.poll,
                           stop_at_eof=args.until_eof, max_lines=args.max_lines,
                           on_idle=show_summary, stats=stats):
            rec = parse_line(line)
            if rec is None:
                summary.malformed += 1
                print(f"tail: skipped a malformed line: {line[:80]!r}", file=err, flush=True)
                continue
            summary.add(rec)
            print(line if args.json else format_record(rec), file=out, flush=True)
            show_summary()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:      # e.g. piped into head
        _quiet_stdout()
        return 0
    show_summary(force=True)
    return 0


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
