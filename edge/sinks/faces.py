"""Face crops on disk, one JPEG per face as it appears (``[monitor] save_faces``).

Off by default: a stored face is personal data. The crop is the one the classifier sees
(the box grown by ``[classifier] margin``), so a saved image shows what was judged.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2

from ..eventlog import EventKind
from ..classifier import crop_box
from ..events import Event, FrameResult
from .base import Sink, SinkError

log = logging.getLogger(__name__)


class FaceCropSink(Sink):
    name = "faces"

    def __init__(self, folder: str | Path, margin: float):
        self.folder = Path(folder)
        self.margin = margin
        self.saved = 0
        self.failed = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"[monitor] faces_dir {self.folder}: cannot create the folder "
                          f"({exc.strerror or exc})") from None
        log.warning("save_faces is on: face crops are stored in %s", self.folder)

    def handle(self, events: Sequence[Event]) -> None:
        """Nothing: crops need the picture, which comes with ``update``."""

    def update(self, result: FrameResult) -> None:
        if result.image is None:
            return
        for e in result.events:
            if e.kind == EventKind.FACE_APPEARED and e.box is not None:
                self._save(result.image, e)

    def _save(self, image, e: Event) -> None:
        x, y, w, h = crop_box(e.box, image.shape, self.margin)
        path = self.folder / f"track{e.track_id}_{int(e.time * 1000)}.jpg"
        try:
            ok = w > 0 and h > 0 and cv2.imwrite(str(path), image[y:y + h, x:x + w])
        except cv2.error:
            ok = False
        if ok:
            self.saved += 1
            return
        self.failed += 1
        if self.failed == 1 or self.failed % 100 == 0:  # disk full: say so, not per face
            log.error("could not save a face crop to %s (%d failed so far)", path, self.failed)
