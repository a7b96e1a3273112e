"""What the person at the device must fix, and how any error is said in one line.

Every error whose message is meant for the user (a config key, a model that does not fit its
sidecar, a missing file, a port in use) derives from ``EmotionEdgeError``; the CLI catches
that one class and prints ``emotion-edge COMMAND: message`` with exit code 2. Anything else
that reaches it is a bug (exit code 1). Each subclass keeps the built-in base it always had
(``ValueError``, ``RuntimeError``, ``OSError``), so older ``except`` clauses still match.

A leaf module: it imports nothing of the project.
"""
from __future__ import annotations


class EmotionEdgeError(Exception):
    """A problem the user must fix; its message names what and why, in one line."""


def display(text: object) -> str:
    """``text`` printable anywhere: bytes of a file name that are not UTF-8 (kept by Python
    as surrogates) become ``\\xNN``."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def one_line(exc: BaseException | str) -> str:
    """The first line of an error's message (its class name when it has none), printable:
    native libraries raise texts of many lines, a log line or a page shows one."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return display(first)


def describe(exc: BaseException) -> str:
    """One line for any error: an ``OSError`` from the system as ``file: reason``
    (``logs/events.jsonl: Permission denied``), anything else its first line."""
    if isinstance(exc, OSError) and (exc.strerror or exc.filename):
        where = f"{display(exc.filename)}: " if exc.filename else ""
        return f"{where}{exc.strerror or one_line(exc)}"
    return one_line(exc)
