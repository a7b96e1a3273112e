"""The log's files: ``events.jsonl``, rotated by size to ``events.jsonl.1`` ... ``.<keep>``.

Rotation only shifts names upwards (the live file becomes ``.1``, ``.1`` becomes ``.2``, the
oldest is dropped), so the order of the names is the order of writing. The sink rotates
(``rotate``), ``follow`` moves along the chain (``chain``), the day view and the report read
every file there is (``log_files``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..paths import fsync_dir


def rotated(path: Path, index: int) -> Path:
    """The live file for 0, else its ``index``-th rotated copy (``events.jsonl.3``)."""
    return path if index == 0 else path.with_name(f"{path.name}.{index}")


def rotate(path: Path, keep: int) -> None:
    """events.jsonl -> .1 -> .2 ... -> .<keep> (dropped), like logrotate; ``keep`` 0 deletes
    the live file. The caller has closed it, between whole lines."""
    if keep == 0:
        os.unlink(path)
    else:
        try:
            os.unlink(rotated(path, keep))
        except FileNotFoundError:
            pass
        for i in range(keep - 1, 0, -1):
            try:
                os.rename(rotated(path, i), rotated(path, i + 1))
            except FileNotFoundError:
                pass
        os.rename(path, rotated(path, 1))
    try:                           # make the renames survive a power cut
        fsync_dir(path.parent)
    except OSError:                # best effort: the lines themselves are fsynced
        pass


def log_files(folder: Path, name: str = "events.jsonl") -> list[Path]:
    """The live file and every rotated one that exists, newest first."""
    pattern = re.compile(re.escape(name) + r"\.(\d+)")
    try:
        entries = os.listdir(folder)
    except OSError:
        entries = []
    numbered = sorted((int(m.group(1)), e) for e in entries if (m := pattern.fullmatch(e)))
    live = folder / name
    return ([live] if live.is_file() else []) + [folder / e for _, e in numbered]


def chain(path: Path, attempts: int = 20) -> list[tuple[int, tuple[int, int]]] | None:
    """(index, (dev, inode)) of path (index 0) and its rotated copies path.N, oldest first;
    None if rotations kept coming during every look.

    A scan is not atomic: a writer that rotates during it (a busy machine, a small max_bytes)
    can move a file past the scan's end, or put newer files where older ones were already
    seen. Two scans in a row that agree saw no rename between them, so they show a real state
    of the directory, and in any such state the order of the names is the order of writing."""
    last = None
    for _ in range(attempts):
        now = _scan(path)
        if now == last:
            return now
        last = now
    return None


def _scan(path: Path) -> list[tuple[int, tuple[int, int]]]:
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    try:
        top = max((int(m.group(1)) for m in map(pattern.fullmatch, os.listdir(path.parent)) if m),
                  default=0)
    except OSError:
        return []
    found: list[tuple[int, tuple[int, int]]] = []
    for i in range(top + 2):       # one past the listing: a rename may have landed there
        try:
            st = os.stat(rotated(path, i))
        except OSError:
            continue
        found.append((i, (st.st_dev, st.st_ino)))
    found.reverse()
    return found
