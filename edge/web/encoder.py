"""JPEG encoding off the frame loop: the loop offers a frame, this thread encodes it.

A frame is taken only while the thread is idle, into a buffer allocated once, so the loop
never waits and never allocates; a viewer that is slower than the camera skips frames.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np


class JpegEncoder:
    def __init__(self, max_width: int, quality: int, deliver: Callable[[bytes, float, int], None]):
        self.max_width = max_width
        self.params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        self.deliver = deliver          # (jpeg, wall time of the frame, frame index)
        self.encoded = 0
        self.skipped = 0                # offered while the previous one was still encoding
        self._buf: np.ndarray | None = None
        self._meta = (0.0, 0)
        self._busy = False
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="web-jpeg", daemon=True)
        self._thread.start()

    def offer(self, image: np.ndarray, index: int = 0) -> bool:
        """Frame loop side: take a downscaled copy if idle (True), else skip it (False)."""
        if self._busy:
            self.skipped += 1
            return False
        h, w = image.shape[:2]
        if w > self.max_width:
            size = (self.max_width, max(1, round(h * self.max_width / w)))
        else:
            size = (w, h)
        if self._buf is None or self._buf.shape[:2] != (size[1], size[0]):
            self._buf = np.empty((size[1], size[0], 3), np.uint8)
        if size == (w, h):
            np.copyto(self._buf, image)
        else:
            cv2.resize(image, size, dst=self._buf, interpolation=cv2.INTER_AREA)
        self._meta = (time.time(), index)
        self._busy = True
        self._wake.set()
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            ok, jpeg = cv2.imencode(".jpg", self._buf, self.params)
            t, index = self._meta
            self._busy = False
            if ok:
                self.encoded += 1
                self.deliver(jpeg.tobytes(), t, index)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(2.0)
