"""Following the log like ``tail -F``: whole lines, across rotation and truncation.

``follow()`` yields whole lines and survives rotation: when ``events.jsonl`` is renamed to
``events.jsonl.1`` it first finishes the old file, then continues with the next newer one
(found by inode among ``events.jsonl.N``, so even several rotations between two polls lose
nothing), and it notices truncation by a copy-truncate rotator.
"""
from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import EmotionEdgeError, display
from .files import chain, rotated

log = logging.getLogger(__name__)


class LogError(EmotionEdgeError, RuntimeError):
    """A log that cannot be followed (a folder, unreadable); one line for the user."""


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

    def drain(f: _Open) -> Generator[str, None, bool]:
        """Every line appended to ``f`` since the last read; whether there was any."""
        got = False
        while not done():
            chunk = os.pread(f.fd, _READ_SIZE, f.pos)
            if not chunk:
                break
            f.pos += len(chunk)
            got = True
            yield from emit(chunk)
        return got

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
                progressed = yield from drain(cur)
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
                        # ... after what was appended to it since our last read: the writer
                        # may have added lines just before it rotated, while we looked.
                        yield from drain(cur)
                        if done():
                            os.close(nxt.fd)
                            return
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
    for _ in range(20):
        found = chain(path)
        if found is None:
            return None                     # still rotating: look again at the next poll
        deleted = os.fstat(cur.fd).st_nlink == 0   # after the look: rotation goes on meanwhile
        ids = [ino for _, ino in found]
        if cur.ino in ids and not deleted:
            i = ids.index(cur.ino)
            if i + 1 >= len(found):
                return None                 # the new file is not created yet
            index, want = found[i + 1]
        elif deleted and found:
            # Our file was deleted (a rotation dropped it before we finished): everything left
            # is newer. Continue with the oldest.
            index, want = found[0]
        elif deleted:
            return None                     # nothing newer yet: wait for the new file
        else:
            time.sleep(0.01)                # a rename is in progress; look again
            continue
        name = rotated(path, index)
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
