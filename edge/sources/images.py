"""Still images: a list of files or a folder of them, one frame each.

``read_image`` is the one way this project reads a picture (``run`` on a folder, and
``classify``): any file name, only regular files, and never a decoded bitmap larger than
the pipeline needs, so a huge still does not take the device's memory.
"""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import cv2
import numpy as np

from .base import (IMAGE_SUFFIXES, MAX_SIDE, EndOfStream, FrameSource, SourceError, display,
                   fit_size, frame_problem)
from .image_header import MAX_DECODE_BYTES, HeaderError, Reader, decode_bytes, read_header

MAX_FILE_BYTES = 256 * 1024 * 1024
# A colour bitmap larger than this is decoded in gray (a third of the memory): OpenCV can
# shrink only JPEGs while decoding them.
MAX_COLOR_PIXELS = 24_000_000
_JPEG_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}


def image_files(paths: list[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            try:
                out += sorted(f for f in p.iterdir()
                              if f.suffix.lower() in IMAGE_SUFFIXES and not f.is_dir())
            except OSError as exc:
                raise SourceError(f"{display(str(p))}: cannot list the folder "
                                  f"({exc.strerror})") from None
        elif p.exists():
            out.append(p)
        else:
            raise SourceError(f"{display(str(p))}: no such image or folder")
    return out


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a picture's header, without decoding; None if unreadable."""
    try:
        h = read_header(lambda offset, count: data[offset:offset + count])
    except HeaderError:
        return None
    return h.width, h.height


def read_image(path: str | Path) -> np.ndarray:
    """A BGR uint8 picture fitted within ``MAX_SIDE``; ``SourceError`` with one line when
    it cannot be one."""
    name = display(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)   # a FIFO: no hang
    except OSError as exc:
        raise SourceError(f"{name}: cannot read it ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(f"{name}: not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise SourceError(f"{name}: {st.st_size / 1e6:.0f} MB is too large for an image")
        try:
            flags = _decode_flags(lambda offset, count: os.pread(fd, min(count, 1 << 20), offset),
                                  name)
        except OSError as exc:
            raise SourceError(f"{name}: cannot read it ({exc.strerror})") from None
        try:   # OpenCV reads the file itself (no copy of it here), by our descriptor
            image = cv2.imread(f"/proc/self/fd/{fd}", flags)
        except cv2.error:
            image = None
    finally:
        os.close(fd)
    return _finish(image, name)


def decode_image(data: bytes, name: str = "the image") -> np.ndarray:
    """``read_image`` for bytes already in memory (an upload): the same decoding, size
    limits and one-line errors."""
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(f"{name}: {len(data) / 1e6:.0f} MB is too large for an image")
    if not data:
        raise SourceError(f"{name}: not a readable image (empty)")
    flags = _decode_flags(lambda offset, count: data[offset:offset + count], name)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        image = None
    return _finish(image, name)


def _finish(image: np.ndarray | None, name: str) -> np.ndarray:
    if image is None:
        raise SourceError(f"{name}: not a readable image")
    if image.ndim == 2:
        image = cv2.cvtColor(_fit(image), cv2.COLOR_GRAY2BGR)
    image = _fit(image)
    problem = frame_problem(image)
    if problem is not None:
        raise SourceError(f"{name}: {problem}")
    return image


def _decode_flags(read: Reader, name: str) -> int:
    """How to decode so that no bitmap larger than needed is ever made; a picture of
    another format, or one whose decoding would not fit MAX_DECODE_BYTES, is refused
    here, from its header."""
    try:
        header = read_header(read)
    except HeaderError as exc:
        raise SourceError(f"{name}: {exc}") from None
    size = (header.width, header.height)
    gray, reduce, flags = False, 1, cv2.IMREAD_COLOR
    if max(size) > MAX_SIDE:
        if header.format == "JPEG":    # libjpeg decodes at 1/2, 1/4 or 1/8 directly
            reduce = max((f for f in _JPEG_REDUCED if max(size) / f >= MAX_SIDE), default=1)
            flags = _JPEG_REDUCED.get(reduce, cv2.IMREAD_COLOR)
        elif header.pixels > MAX_COLOR_PIXELS or decode_bytes(header, False) > MAX_DECODE_BYTES:
            gray, flags = True, cv2.IMREAD_GRAYSCALE     # a third of the memory
    need = decode_bytes(header, gray, reduce)
    if need > MAX_DECODE_BYTES:
        kind = "progressive JPEG" if header.progressive else header.format
        raise SourceError(f"{name}: a {kind} of {header.width} x {header.height} pixels would "
                          f"take {need / 2**20:.0f} MB to decode; the most this decodes is "
                          f"{MAX_DECODE_BYTES / 2**20:.0f} MB")
    return flags


def _fit(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    size = fit_size(w, h)
    return image if size == (w, h) else cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class ImageSource(FrameSource):
    live = False

    def __init__(self, paths: list[str | Path], loop: bool = False):
        self.paths = image_files(paths)
        self.name = display(str(paths[0])) if len(paths) == 1 else f"{len(self.paths)} images"
        self.loop = loop
        self.current: Path | None = None
        self._i = 0

    def open(self) -> None:
        if not self.paths:
            raise SourceError(f"{self.name}: no images")
        if len(self.paths) == 1 and not self.loop:   # one picture: unusable is an error
            read_image(self.paths[0])

    def read(self) -> np.ndarray:
        if self._i >= len(self.paths):
            if not self.loop:
                raise EndOfStream
            self._i = 0
        self.current = self.paths[self._i]
        self._i += 1
        return read_image(self.current)

    def timestamp(self) -> float:
        return time.time()
