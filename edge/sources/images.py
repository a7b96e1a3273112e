"""Still images: a list of files or a folder of them, one frame each."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from .base import EndOfStream, FrameSource, SourceError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def image_files(paths: list[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            out.append(p)
        else:
            raise SourceError(f"{p}: no such image or folder")
    return out


class ImageSource(FrameSource):
    live = False

    def __init__(self, paths: list[str | Path], loop: bool = False):
        self.paths = image_files(paths)
        self.name = str(paths[0]) if len(paths) == 1 else f"{len(self.paths)} images"
        self.loop = loop
        self.current: Path | None = None
        self._i = 0

    def open(self) -> None:
        if not self.paths:
            raise SourceError(f"{self.name}: no images")

    def read(self) -> np.ndarray:
        if self._i >= len(self.paths):
            if not self.loop:
                raise EndOfStream
            self._i = 0
        self.current = self.paths[self._i]
        self._i += 1
        img = cv2.imread(str(self.current), cv2.IMREAD_COLOR)
        if img is None:
            raise SourceError(f"{self.current}: not a readable image")
        return img

    def timestamp(self) -> float:
        return time.time()
