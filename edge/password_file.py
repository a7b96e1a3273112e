"""The one way this project reads a password from a file (``[web] password_file``,
``[mqtt] password_file``, ``fleet --password-file``).

The password is the file's first line exactly, without its line ending. Whatever would
make it anything else is refused in one line rather than guessed at: a file that yields
no password (empty, an empty first line, only spaces), spaces round it (trimming them
silently would make a password other than the one the person typed), a control
character, text that is not UTF-8, a file anyone on the device may read (OpenSSH refuses
such a key file too: "UNPROTECTED PRIVATE KEY FILE"), or one that is not a small regular
file.
"""
from __future__ import annotations

import os
import stat
import unicodedata

from .errors import EmotionEdgeError

MAX_BYTES = 4096


class PasswordFileError(EmotionEdgeError, ValueError):
    """A password file that yields no usable password; one line naming the file."""


def read_password_file(path: str | os.PathLike, what: str) -> str:
    """The password in ``path``; ``what`` names the setting in errors, e.g.
    ``[web] password_file``."""
    where = f"{what} {os.fspath(path)}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)   # a FIFO: no hang
    except OSError as exc:
        raise PasswordFileError(f"{where}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PasswordFileError(f"{where}: not a regular file")
        if st.st_mode & stat.S_IROTH:
            raise PasswordFileError(
                f"{where}: every user on this device may read it (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); chmod 600 it, or 640 with the service's "
                f"group")
        if st.st_size > MAX_BYTES:
            raise PasswordFileError(f"{where}: {st.st_size} bytes is too large for a "
                                    f"password file")
        data = os.read(fd, MAX_BYTES + 1)
    except OSError as exc:
        raise PasswordFileError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PasswordFileError(f"{where}: not UTF-8 text (byte {exc.start + 1} is "
                                f"{data[exc.start]:#04x}); write the password as UTF-8") from None
    line = text.split("\n", 1)[0].removesuffix("\r")
    if not line.strip():
        raise PasswordFileError(f"{where}: the first line is {'empty' if not line else 'only spaces'}"
                                f", so there is no password")
    return check_password(line, where)


def check_password(password: str, where: str) -> str:
    """``password`` if it is usable; else one line naming ``where`` it came from."""
    if not password.strip():
        raise PasswordFileError(f"{where}: the password is {'empty' if not password else 'only spaces'}")
    if password != password.strip():
        raise PasswordFileError(f"{where}: the password begins or ends with spaces; remove "
                                f"them (they are not trimmed for you)")
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise PasswordFileError(f"{where}: the password holds a control character")
    return password
