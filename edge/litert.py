"""LiteRT interpreters, made ready, without LiteRT's start-up chatter on stderr.

LiteRT's native code writes ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` to
file descriptor 2 when it first applies its default delegate; no Python or environment
setting turns it off. In the journal and in install.sh's output it reads like a message
for the operator, so it is dropped here. Everything else LiteRT (or another thread)
writes meanwhile is passed on at once, line by line, so a crash loses nothing.
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import EmotionEdgeError

CHATTER = (b"INFO: Created TensorFlow Lite XNNPACK delegate",)
# The models here are under 2 MB; a file far larger is not one of them, and LiteRT would
# hold all of it in memory (a 400 MB file in the models folder was loaded and kept).
MAX_MODEL_BYTES = 64 * 1024 * 1024


class ModelTooLarge(EmotionEdgeError, ValueError):
    """A model file larger than MAX_MODEL_BYTES; refused before a byte of it is read."""


def check_model_size(size: int, name: str) -> None:
    if size > MAX_MODEL_BYTES:
        raise ModelTooLarge(f"{name}: {size / 2**20:.0f} MB is larger than any model this "
                            f"loads (at most {MAX_MODEL_BYTES / 2**20:.0f} MB)")
_window = threading.RLock()   # one redirect of fd 2 at a time (a nested one relays to it)


def interpreter(*, path: Path | str | None = None, content: bytes | None = None,
                threads: int = 1):
    """An allocated LiteRT interpreter for a model file or its bytes.

    Raises what LiteRT raises (ValueError/RuntimeError); callers turn it into their own
    one-line error."""
    from ai_edge_litert.interpreter import Interpreter

    if path is not None:
        check_model_size(os.stat(path).st_size, str(path))
    with quiet_native_stderr():
        interp = (Interpreter(model_path=str(path), num_threads=threads) if content is None
                  else Interpreter(model_content=content, num_threads=threads))
        interp.allocate_tensors()   # the default delegate is applied here
    return interp


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Route fd 2 through a pipe that drops CHATTER lines and passes the rest on."""
    with _window:
        sys.stderr.flush()
        try:
            real = os.dup(2)
        except OSError:   # no stderr at all: nothing to filter
            yield
            return
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        relay = threading.Thread(target=_relay, args=(read_end, real), daemon=True,
                                 name="litert-stderr")
        relay.start()
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(real, 2)       # closes the pipe's last write end: the relay sees EOF
            relay.join(timeout=2)
            os.close(real)


def _relay(read_end: int, real: int) -> None:
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(4096):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            _write(real, b"".join(x + b"\n" for x in lines if not x.startswith(CHATTER)))
        if pending and not pending.startswith(CHATTER):
            _write(real, pending)


def _write(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:
            return
