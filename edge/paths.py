"""Where the device finds its files."""
from __future__ import annotations

import os
from pathlib import Path


def models_dir() -> Path:
    """Model files: $EMOTION_EDGE_MODELS (set by the systemd unit), else the repo's models/."""
    env = os.environ.get("EMOTION_EDGE_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "models"


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as a file, or None: "missing", "cannot read it (...)" or
    "not a regular file" (a FIFO or a device would block the read)."""
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "cannot read it (permission denied)"
    return None


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a folder's entries (a file made, renamed or removed in it) survive a power cut;
    an ``OSError`` if the folder cannot be opened or synced (the caller says what it costs)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
