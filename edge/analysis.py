"""One frame's analysis: detector -> classifier -> tracker (-> face stages) -> summary.

``Analyzer.step(frame)`` is the whole per-frame work between the source and the sinks, as
data in, data out: it reads nothing but the frame and returns a ``FrameResult`` with the
frame's events. The frame loop (``pipeline.Monitor``) feeds it frames and hands its results
to the sinks. Face stages (the optional micro-expression stage) follow the tracker behind
one small interface, ``FaceStage``.
"""
from __future__ import annotations

import time
from typing import Protocol

import cv2
import numpy as np

from .eventlog import EventKind
from .classifier import FaceClassifier
from .detectors.base import FaceDetector
from .events import Event, FrameResult, TrackedFace
from .reading import FaceReader
from .sources.base import Frame
from .summary import Summary
from .tracker import Track, Tracker, TrackerConfig

STAGES = ("capture", "detect", "classify", "track", "sinks")


class FaceStage(Protocol):
    """An optional stage after the tracker that follows each tracked face over time."""

    def update(self, gray: np.ndarray, faces: list[TrackedFace], now: float) -> list[Event]:
        """This frame's events for ``faces`` (the gray frame is read, never kept)."""

    def forget(self, track_id: int) -> None:
        """The track has left: drop what is kept for it."""


class Analyzer:
    """Holds what outlives a frame (tracks, the summary's interval) and analyses frames one
    at a time. ``timings`` holds the last step's seconds per stage (detect, classify,
    track), for ``run --profile`` and the benchmarks."""

    def __init__(self, detector: FaceDetector, classifier: FaceClassifier,
                 tracker_cfg: TrackerConfig, summary_interval: float,
                 face_stages: list[FaceStage] = ()):
        self.detector, self.classifier = detector, classifier
        self.tracker_cfg, self.summary_interval = tracker_cfg, summary_interval
        self.labels = classifier.labels
        self.tracker = Tracker(tracker_cfg, self.labels)
        self.summary = Summary(self.labels, summary_interval)
        self.face_stages = list(face_stages)
        self.reader = FaceReader(classifier)
        self.timings = {"detect": 0.0, "classify": 0.0, "track": 0.0}
        self._gray: np.ndarray | None = None

    def step(self, frame: Frame, events: list[Event]) -> FrameResult:
        """Analyse ``frame``; ``events`` (e.g. the source's) come first in its result."""
        clock = time.perf_counter
        t1 = clock()
        image, now = frame.image, frame.time
        detecting = frame.index % self.tracker_cfg.detect_every == 0
        gray = self._gray_of(image) if self.face_stages else None   # else crops turn gray
        if detecting:
            found, weak = self.detector.detect_tiers(image)
            t2 = clock()
            events += self.tracker.update([d.box for d in found], now, [d.box for d in weak])
            events += self._fold_reads(now)     # the last run's, read while this one detected
            visible = self.tracker.visible()
            # Faces below min_readable are counted, never read (the model is guessing
            # there: bench/results/small_faces.md).
            small = self.classifier.cfg.min_readable
            readable, unreadable = [], []
            for t in visible:
                (readable if min(t.box[2], t.box[3]) >= small else unreadable).append(t)
            t3 = clock()
            self.reader.start(image if gray is None else gray, self._read_now(readable))
            if self.reader.read_at_once:    # new faces appear with their first emotion
                events += self._fold_reads(now)
            t4 = clock()
            events += self.tracker.unread(unreadable, now)
        else:
            # Between detector runs the boxes are guesses: classify only fresh
            # detections, and let tracks carry their emotion until the next run.
            t2 = clock()
            self.tracker.predict(now)
            t3 = t4 = clock()
        shown = [t for t in self.tracker.tracks if t.announced]
        faces, unread = self.tracker.faces(shown), self.tracker.unread_faces(shown)
        for stage in self.face_stages:
            events += stage.update(gray, faces, now)
        self._forget_left(events)
        summary = self.summary.add(now, faces, unread)
        if summary is not None:
            events.append(summary)
        t5 = clock()
        self.timings["detect"], self.timings["classify"] = t2 - t1, t4 - t3
        self.timings["track"] = (t3 - t2) + (t5 - t4)
        view = image.view()
        view.flags.writeable = False      # sinks look; they copy what they keep
        return FrameResult(frame.index, now, faces, dominant(faces, self.labels), events, view,
                           unread)

    def _read_now(self, readable: list[Track]) -> list[Track]:
        """The faces to classify on this run: all of them, or in a room of more than
        ``faces_per_run``, the ones read longest ago (never read: first). The others keep
        their emotion until their turn."""
        most = self.classifier.cfg.faces_per_run
        if not most or len(readable) <= most:
            return readable
        return sorted(readable, key=lambda t: t.last_read)[:most]

    def _fold_reads(self, now: float) -> list[Event]:
        """The reads started last (waiting for them), into the tracks still here."""
        done = self.reader.collect()
        if done is None:
            return []
        here = {id(t) for t in self.tracker.tracks}
        kept = [(t, p) for t, p in zip(*done) if id(t) in here]
        return self.tracker.observe([t for t, _ in kept], [p for _, p in kept], now)

    def _gray_of(self, image: np.ndarray) -> np.ndarray:
        """The frame in gray, into a buffer kept across frames (the classifier's and the
        face stages' input)."""
        if self._gray is None or self._gray.shape != image.shape[:2]:
            self._gray = np.empty(image.shape[:2], np.uint8)
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=self._gray)

    def _forget_left(self, events: list[Event]) -> None:
        if self.face_stages:
            for e in events:
                if e.kind == EventKind.FACE_LEFT:
                    for stage in self.face_stages:
                        stage.forget(e.track_id)

    # --- time without frames, and endings ------------------------------------------------------
    def idle(self, now: float) -> list[Event]:
        """No video up to ``now`` (the source is down): the summary keeps its interval."""
        summary = self.summary.idle(now)
        return [summary] if summary is not None else []

    def end_tracks(self, now: float) -> list[Event]:
        """Every track leaves (a long outage, a model with other labels, the end)."""
        self.reader.collect()          # reads of faces that are leaving: dropped
        left = self.tracker.close(now)
        self._forget_left(left)
        return left

    def close(self) -> None:
        """Stop the reading thread (what it was reading is dropped)."""
        self.reader.close()

    def finish(self, now: float) -> list[Event]:
        """The end of the run: every face leaves, and the last summary."""
        events = self.end_tracks(now)   # the last run's reads, never shown, are dropped
        last = self.summary.flush(now)
        if last is not None:
            events.append(last)
        return events

    def use_classifier(self, new: FaceClassifier, now: float) -> list[Event]:
        """Classify with ``new`` from the next frame. New labels mean new tracks: the old
        ones end (``face_left``) and the summary so far is written under the old labels."""
        if new.labels != self.labels:
            events = self.finish(now)
            self.tracker = Tracker(self.tracker_cfg, new.labels)
            self.summary = Summary(new.labels, self.summary_interval)
        else:
            events = self._fold_reads(now)   # the old model's last reads: the tracks go on
        self.reader.close()
        self.reader = FaceReader(new)
        old, self.classifier, self.labels = self.classifier, new, new.labels
        events.append(Event(EventKind.MODEL_CHANGED, now, extra={
            "model": new.model.path.name, "previous": old.model.path.name,
            "labels": list(new.labels)}))
        return events


def dominant(faces: list[TrackedFace], labels: tuple[str, ...]) -> str | None:
    """The room's emotion now: the label with the largest summed smoothed probability."""
    if not faces:
        return None
    if len(faces) == 1:
        return faces[0].emotion
    return labels[int(np.sum([f.scores for f in faces], axis=0).argmax())]
