"""Stable anonymous track ids across frames, and a smoothed emotion per track.

Detections are matched to tracks greedily by IoU. Between detector runs (``detect_every``)
tracks coast on a constant-velocity guess of their box and keep their emotion. Each track
keeps an exponential moving average of the classifier's probabilities (fresh detections
only); its emotion changes only when a new label has led the average for ``hold_frames``
classifications in a row, so outputs do not flicker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .events import Box, Event, TrackedFace


@dataclass
class TrackerConfig:
    """Section ``[tracker]``."""
    iou: float = field(default=0.3, metadata={
        "doc": "minimum overlap (IoU) for a detection to continue a track"})
    max_missed: int = field(default=15, metadata={
        "doc": "frames a track may go undetected before it counts as left (15: half a "
               "second at 30 fps, so a face hidden for a moment, in hands or turned "
               "down, keeps its id)"})
    min_hits: int = field(default=5, metadata={
        "doc": "frames' worth of detections before a track counts as a face (at least 2 "
               "detector runs); filters brief false positives such as a cartoon face"})
    smoothing: float = field(default=0.3, metadata={
        "doc": "weight of the newest classification in the moving average of "
               "probabilities (0..1]"})
    hold_frames: int = field(default=3, metadata={
        "doc": "classifications a new emotion must lead before the track's emotion changes"})
    detect_every: int = field(default=3, metadata={
        "doc": "run the face detector and the classifier every k-th frame; tracks coast "
               "and keep their emotion in between (3 triples the frame rate on a Pi)"})

    def __post_init__(self):
        if not 0 < self.iou < 1:
            raise ValueError(f"iou: {self.iou} is outside 0..1")
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing: {self.smoothing} is outside (0, 1]")
        for name in ("max_missed", "min_hits", "hold_frames", "detect_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4 xywh) with every box in ``b`` (M, 4)."""
    ax0, ay0, ax1, ay1 = a[:, 0, None], a[:, 1, None], (a[:, 0] + a[:, 2])[:, None], (a[:, 1] + a[:, 3])[:, None]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass
class Track:
    id: int
    box: np.ndarray                  # float xywh
    first_seen: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    missed: int = 0
    probs: np.ndarray | None = None  # moving average
    emotion: str | None = None
    candidate: str | None = None
    candidate_frames: int = 0
    announced: bool = False          # face_appeared sent

    def int_box(self) -> Box:
        x, y, w, h = self.box
        return int(round(x)), int(round(y)), int(round(w)), int(round(h))


class Tracker:
    def __init__(self, cfg: TrackerConfig, labels: tuple[str, ...]):
        self.cfg = cfg
        self.labels = labels
        self.tracks: list[Track] = []
        self._next_id = 1
        # Both limits are meant in frames; the detector runs every k-th frame, so they count
        # k times fewer runs. A face stays confirmed by two runs at least.
        k = cfg.detect_every
        self.min_hits = max(min(2, cfg.min_hits), math.ceil(cfg.min_hits / k))
        self.max_missed = max(1, math.ceil(cfg.max_missed / k))

    def predict(self) -> None:
        """Coast every track one frame on its velocity (frames without detection)."""
        for t in self.tracks:
            t.box = t.box + t.velocity

    def update(self, boxes: list[Box], now: float, weak_boxes: list[Box] = ()) -> list[Event]:
        """Match one detector run's boxes to tracks; returns face_left events.

        ``weak_boxes`` scored just below the detector's threshold. As in ByteTrack, they
        may continue a confirmed track that no full-score box continued, but never start
        or confirm one: a face's identity then does not hang on one borderline score (a
        decoder that rounds differently, a hand over the face), and a cartoon that scores
        low stays no face."""
        det = np.array(boxes, dtype=float).reshape(-1, 4)
        unmatched = set(range(len(det)))
        matched: set[int] = set()
        self._match(det, range(len(self.tracks)), unmatched, matched, now)
        if len(weak_boxes):
            confirmed = [ti for ti, t in enumerate(self.tracks)
                         if ti not in matched and t.hits >= self.min_hits]
            weak = np.array(weak_boxes, dtype=float).reshape(-1, 4)
            self._match(weak, confirmed, set(range(len(weak))), matched, now)
        events: list[Event] = []
        for ti, t in enumerate(self.tracks):
            if ti not in matched:
                t.missed += 1
                t.velocity *= 0.5
        # A track not yet confirmed that misses a run was a chance detection (ByteTrack
        # drops such tentative tracks at once): a cartoon scoring over the threshold now
        # and then never adds up to a face.
        for t in [t for t in self.tracks
                  if t.missed > self.max_missed or (t.missed and t.hits < self.min_hits)]:
            self.tracks.remove(t)
            if t.announced:
                events.append(Event("face_left", now, t.id, t.emotion, box=t.int_box(),
                                    extra={"duration_s": round(t.last_seen - t.first_seen, 2)}))
        for di in sorted(unmatched):
            self.tracks.append(Track(self._next_id, det[di], now, now))
            self._next_id += 1
        return events

    def _match(self, det: np.ndarray, candidates, unmatched: set[int], matched: set[int],
               now: float) -> None:
        """Greedy IoU matching of boxes ``det`` to the tracks indexed by ``candidates``;
        updates the matched tracks, removes the used boxes from ``unmatched``."""
        candidates = list(candidates)
        if not candidates or not len(det):
            return
        ious = iou_matrix(np.array([self.tracks[ti].box for ti in candidates]), det)
        for ci, di in sorted(np.argwhere(ious >= self.cfg.iou).tolist(),
                             key=lambda p: -ious[p[0], p[1]]):
            ti = candidates[ci]
            t = self.tracks[ti]
            if di not in unmatched or ti in matched:
                continue
            unmatched.discard(di)
            matched.add(ti)
            frames = self.cfg.detect_every
            t.velocity = (det[di] - t.box) / frames * 0.5  # damped: boxes jitter
            t.box, t.last_seen, t.hits, t.missed = det[di], now, t.hits + 1, 0

    def visible(self) -> list[Track]:
        """Tracks confirmed as faces and found by the latest detector run: the ones to
        classify (a coasting track that the detector lost may be looking at background)."""
        return [t for t in self.tracks if t.hits >= self.min_hits and t.missed == 0]

    def observe(self, tracks: list[Track], probs: np.ndarray, now: float) -> list[Event]:
        """Fold this frame's probabilities into each track; appeared/changed events."""
        a = self.cfg.smoothing
        events: list[Event] = []
        for t, p in zip(tracks, probs):
            t.probs = p.copy() if t.probs is None else t.probs * (1 - a) + p * a
            top = self.labels[int(t.probs.argmax())]
            if t.emotion is None:
                t.emotion = top
            elif top != t.emotion:
                if top == t.candidate:
                    t.candidate_frames += 1
                else:
                    t.candidate, t.candidate_frames = top, 1
                if t.candidate_frames >= self.cfg.hold_frames:
                    events.append(Event("emotion_changed", now, t.id, top,
                                        float(t.probs.max()), t.int_box(),
                                        extra={"previous": t.emotion}))
                    t.emotion, t.candidate, t.candidate_frames = top, None, 0
            else:
                t.candidate, t.candidate_frames = None, 0
            if not t.announced:
                t.announced = True
                events.append(Event("face_appeared", now, t.id, t.emotion,
                                    float(t.probs[self.labels.index(t.emotion)]), t.int_box()))
        return events

    def faces(self, tracks: list[Track]) -> list[TrackedFace]:
        return [TrackedFace(t.id, t.int_box(), t.emotion,
                            float(t.probs[self.labels.index(t.emotion)]), t.probs)
                for t in tracks if t.probs is not None]

    def close(self, now: float) -> list[Event]:
        """Every announced track leaves (shutdown)."""
        events = [Event("face_left", now, t.id, t.emotion, box=t.int_box(),
                        extra={"duration_s": round(t.last_seen - t.first_seen, 2)})
                  for t in self.tracks if t.announced]
        self.tracks.clear()
        return events
