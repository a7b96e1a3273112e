"""Reading faces beside finding them: crops cut in the frame loop, read on a worker thread.

Finding faces (BlazeFace, YuNet) and reading them (the emotion model: ~3 ms a face on this
machine, three a run in a room of 30) each take one core's time. LiteRT lets go of
Python's lock while it computes, so a worker thread reads run r's faces while the frame
loop decodes, tracks and detects up to run r+1, where the reads are folded into the tracks.
Always there, whatever the machine's speed: the same frames give the same events.

A face never read before is read at once, so it appears with its first emotion; later
reads of a face arrive one detector run (3 frames) after its crop was cut. Reads of faces
that left meanwhile, and the last run's at the end, are dropped: no frame would show them.
``[classifier] background = false`` reads every face at once, in the frame loop.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from .classifier import FaceClassifier
from .tracker import Track


class FaceReader:
    """One detector run's reads at a time: ``start`` them, ``collect`` them a run later."""

    def __init__(self, classifier: FaceClassifier):
        self.classifier = classifier
        self._worker = (ThreadPoolExecutor(1, thread_name_prefix="read")
                        if classifier.cfg.background else None)
        self._pending: tuple[list[Track], Future | np.ndarray] | None = None

    def start(self, frame: np.ndarray, tracks: list[Track]) -> None:
        """Cut ``tracks``' faces out of ``frame`` (gray or BGR) now, and read them.
        The previous reads must have been collected: one batch is in flight at most."""
        if self._pending is not None:
            raise RuntimeError("FaceReader.start: the previous reads were not collected")
        if not tracks:
            return
        faces = self.classifier.prepare(frame, [t.int_box() for t in tracks])
        if self._worker is None or any(t.probs is None for t in tracks):
            self._pending = (tracks, self.classifier.predict(faces))
        else:    # ``faces`` is the classifier's buffer: untouched until collected
            self._pending = (tracks, self._worker.submit(self.classifier.predict, faces))

    @property
    def read_at_once(self) -> bool:
        """The reads last started are done already (a new face among them, or no worker)."""
        return self._pending is not None and not isinstance(self._pending[1], Future)

    def collect(self) -> tuple[list[Track], np.ndarray] | None:
        """The tracks last started and their probabilities (waiting for them), or None."""
        if self._pending is None:
            return None
        tracks, probs = self._pending
        self._pending = None
        return tracks, probs.result() if isinstance(probs, Future) else probs

    def close(self) -> None:
        """Drop what is in flight and stop the worker."""
        try:
            self.collect()
        finally:
            if self._worker is not None:
                self._worker.shutdown(wait=True)
