"""Stable anonymous track ids across frames, and a smoothed emotion per track.

Detections are matched to tracks greedily by IoU. Between detector runs (``detect_every``)
tracks coast on a constant-velocity guess of their box and keep their emotion. Each track
keeps an exponential moving average of the classifier's probabilities (fresh detections
only); its emotion changes only when a new label has led the average for ``hold_frames``
classifications in a row, so outputs do not flicker.

Every limit is in seconds of the source's own timeline (a video file's clock, a camera's
capture time), never in frames: a Pi that falls behind a live camera drops frames, and a
face must neither leave nor appear because of that. A track becomes a face once it has
been detected for ``min_seen_s`` in at least two detector runs in a row, and leaves once it
has gone undetected for longer than ``max_missed_s``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .eventlog import EventKind
from .events import Box, Event, TrackedFace, UnreadFace
from .settings import check

log = logging.getLogger(__name__)

# Config keys that counted frames, read as seconds at the camera's [source] fps.
LEGACY_FRAME_KEYS = {"max_missed": "max_missed_s", "min_hits": "min_seen_s"}


@dataclass
class TrackerConfig:
    """Section ``[tracker]``."""
    iou: float = field(default=0.3, metadata={
        "doc": "minimum overlap (IoU) for a detection to continue a track",
        "range": "(0, 1)"})
    jump: float = field(default=0.75, metadata={
        "doc": "a confirmed track that no detection overlapped may continue with one of "
               "about its size (2/3-3/2) whose centre is within this many of its sides: a "
               "small far face found again after it moved between far passes, which no "
               "longer overlaps its old box (0: overlap only)",
        "range": "0..2"})
    max_missed_s: float = field(default=0.5, metadata={
        "doc": "seconds (of the source's own timeline) a track may go undetected before it "
               "counts as left: a face hidden for a moment, in hands or turned down, keeps "
               "its id, and so does one whose frames were dropped under load (replaces "
               "max_missed, which counted frames)",
        "range": "(0, 3600]", "unit": "seconds"})
    min_seen_s: float = field(default=0.25, metadata={
        "doc": "seconds a new track must be detected, in at least 2 detector runs in a row, "
               "before it counts as a face; filters brief false positives such as a cartoon "
               "face (a false face in pyfeat_no_face.mp4 lasts 0.13 s) (replaces min_hits, "
               "which counted frames)",
        "range": "0..60", "unit": "seconds"})
    smoothing: float = field(default=0.3, metadata={
        "doc": "weight of the newest classification in the moving average of "
               "probabilities (0..1]",
        "range": "(0, 1]"})
    hold_frames: int = field(default=3, metadata={
        "doc": "classifications a new emotion must lead before the track's emotion changes",
        "range": ">= 1"})
    detect_every: int = field(default=3, metadata={
        "doc": "run the face detector and the classifier every k-th frame; tracks coast "
               "and keep their emotion in between (3 triples the frame rate on a Pi)",
        "range": ">= 1"})

    def __post_init__(self):
        check(self)   # the ranges and choices in the fields' metadata


def upgrade_legacy_keys(values: dict, fps: float, where: str) -> dict:
    """``[tracker]`` values with the old frame-counting keys (``max_missed``, ``min_hits``)
    converted to their seconds at ``fps`` frames a second, each with one warning. Both an
    old key and its new one is a mistake the caller reports."""
    out = dict(values)
    for old, new in LEGACY_FRAME_KEYS.items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"{old}: set {new} only ({old} is its old name, in frames)")
        frames = out.pop(old)
        if isinstance(frames, bool) or not isinstance(frames, int):
            raise ValueError(f"{old}: expected a whole number of frames, got {frames!r}")
        out[new] = frames / fps
        log.warning("%s %s = %d (frames) is read as %s = %.3g (seconds at %g fps); "
                    "please write %s", where, old, frames, new, out[new], fps, new)
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4 xywh) with every box in ``b`` (M, 4)."""
    ax0, ay0, ax1, ay1 = a[:, 0, None], a[:, 1, None], (a[:, 0] + a[:, 2])[:, None], (a[:, 1] + a[:, 3])[:, None]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass(eq=False)    # one face is one object: ``in`` and ``remove`` compare identities
class Track:
    id: int
    box: np.ndarray                  # float xywh, coasted to ``box_time``
    first_seen: float                # source time of the first detection
    last_seen: float                 # source time of the latest detection
    box_time: float = 0.0
    det_box: np.ndarray | None = None   # the latest detected box (``box`` before coasting)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))   # per second
    hits: int = 1                    # detector runs that found it
    missed: int = 0                  # detector runs in a row that did not
    confirmed: bool = False          # seen long enough to be a face
    probs: np.ndarray | None = None  # moving average
    emotion: str | None = None
    candidate: str | None = None
    candidate_frames: int = 0
    announced: bool = False          # face_appeared sent
    readable: bool = True            # large enough to read at the latest detector run
    last_read: float = float("-inf")  # source time of the latest classification

    def int_box(self) -> Box:
        x, y, w, h = self.box.tolist()    # Python floats: 10x faster to round than numpy's
        return round(x), round(y), round(w), round(h)


class Tracker:
    def __init__(self, cfg: TrackerConfig, labels: tuple[str, ...]):
        self.cfg = cfg
        self.labels = labels
        self.tracks: list[Track] = []
        self._next_id = 1

    def predict(self, now: float) -> None:
        """Coast every track to ``now`` on its velocity (frames without detection)."""
        for t in self.tracks:
            dt = now - t.box_time
            if dt > 0:
                t.box = t.box + t.velocity * dt
                t.box_time = now

    def update(self, boxes: list[Box], now: float, weak_boxes: list[Box] = ()) -> list[Event]:
        """Match one detector run's boxes (of the frame at source time ``now``) to tracks;
        returns face_left events.

        ``weak_boxes`` scored just below the detector's threshold. As in ByteTrack, they
        may continue a confirmed track that no full-score box continued, but never start
        or confirm one: a face's identity then does not hang on one borderline score (a
        decoder that rounds differently, a hand over the face), and a cartoon that scores
        low stays no face."""
        self.predict(now)
        det = np.array(boxes, dtype=float).reshape(-1, 4)
        unmatched = set(range(len(det)))
        matched: set[int] = set()
        self._match(det, range(len(self.tracks)), unmatched, matched, now)
        if unmatched and self.cfg.jump > 0:
            self._match_jumps(det, [ti for ti, t in enumerate(self.tracks)
                                    if ti not in matched and t.confirmed], unmatched, matched,
                              now)
        if len(weak_boxes):
            confirmed = [ti for ti, t in enumerate(self.tracks)
                         if ti not in matched and t.confirmed]
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
        limit = self.cfg.max_missed_s
        for t in [t for t in self.tracks
                  if now - t.last_seen > limit or (t.missed and not t.confirmed)]:
            self.tracks.remove(t)
            if t.announced:
                events.append(self._left(t, now))
        for di in sorted(unmatched):
            self.tracks.append(Track(self._next_id, det[di], now, now, box_time=now,
                                     det_box=det[di]))
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
            self._continue(candidates[ci], di, det, unmatched, matched, now)

    def _match_jumps(self, det: np.ndarray, candidates: list[int], unmatched: set[int],
                     matched: set[int], now: float) -> None:
        """Greedy, nearest first: confirmed tracks no box overlapped, and left-over boxes
        of about their size within ``jump`` of their side (TrackerConfig.jump)."""
        pairs = []
        for ti in candidates:
            x, y, w, h = self.tracks[ti].box
            side = max(w, h, 1.0)
            for di in unmatched:
                dx, dy, dw, dh = det[di]
                if 2 / 3 <= max(dw, dh) / side <= 3 / 2:
                    dist = float(np.hypot(x + w / 2 - dx - dw / 2, y + h / 2 - dy - dh / 2))
                    if dist <= self.cfg.jump * side:
                        pairs.append((dist, ti, di))
        for _, ti, di in sorted(pairs):
            self._continue(ti, di, det, unmatched, matched, now)

    def _continue(self, ti: int, di: int, det: np.ndarray, unmatched: set[int],
                  matched: set[int], now: float) -> None:
        """Track ``ti`` continues with box ``di``, unless either is taken already."""
        t = self.tracks[ti]
        if di not in unmatched or ti in matched:
            return
        unmatched.discard(di)
        matched.add(ti)
        dt = now - t.last_seen
        if dt > 0:   # damped: boxes jitter from one run to the next
            t.velocity = (det[di] - t.det_box) / dt * 0.5
        t.box = t.det_box = det[di]
        t.box_time, t.last_seen, t.hits, t.missed = now, now, t.hits + 1, 0
        if not t.confirmed and now - t.first_seen >= self.cfg.min_seen_s - 1e-9:
            t.confirmed = True

    def visible(self) -> list[Track]:
        """Tracks confirmed as faces and found by the latest detector run: the ones to
        classify (a coasting track that the detector lost may be looking at background)."""
        return [t for t in self.tracks if t.confirmed and t.missed == 0]

    def observe(self, tracks: list[Track], probs: np.ndarray, now: float) -> list[Event]:
        """Fold this frame's probabilities into each track; appeared/changed events."""
        a = self.cfg.smoothing
        events: list[Event] = []
        for t, p in zip(tracks, probs):
            t.readable, t.last_read = True, now
            t.probs = p.copy() if t.probs is None else t.probs * (1 - a) + p * a
            top = self.labels[int(t.probs.argmax())]
            if t.emotion is None:
                t.emotion = top
                if t.announced:   # it appeared too small to read: now it is read
                    events.append(Event(EventKind.EMOTION_CHANGED, now, t.id, top,
                                        float(t.probs.max()), t.int_box(),
                                        extra={"previous": None}))
            elif top != t.emotion:
                if top == t.candidate:
                    t.candidate_frames += 1
                else:
                    t.candidate, t.candidate_frames = top, 1
                if t.candidate_frames >= self.cfg.hold_frames:
                    events.append(Event(EventKind.EMOTION_CHANGED, now, t.id, top,
                                        float(t.probs.max()), t.int_box(),
                                        extra={"previous": t.emotion}))
                    t.emotion, t.candidate, t.candidate_frames = top, None, 0
            else:
                t.candidate, t.candidate_frames = None, 0
            if not t.announced:
                t.announced = True
                events.append(Event(EventKind.FACE_APPEARED, now, t.id, t.emotion,
                                    float(t.probs[self.labels.index(t.emotion)]), t.int_box()))
        return events

    def unread(self, tracks: list[Track], now: float) -> list[Event]:
        """Faces found but too small to read: counted, never given an emotion. A new one
        appears with ``"readable": false`` and no emotion (docs/log-format.md)."""
        events: list[Event] = []
        for t in tracks:
            t.readable = False
            if not t.announced:
                t.announced = True
                events.append(Event(EventKind.FACE_APPEARED, now, t.id, box=t.int_box(),
                                    extra={"readable": False}))
        return events

    def faces(self, tracks: list[Track]) -> list[TrackedFace]:
        """The read faces among ``tracks`` (too small to read: ``unread_faces``)."""
        return [TrackedFace(t.id, t.int_box(), t.emotion,
                            float(t.probs[self.labels.index(t.emotion)]), t.probs)
                for t in tracks if t.probs is not None and t.readable]

    @staticmethod
    def unread_faces(tracks: list[Track]) -> list[UnreadFace]:
        return [UnreadFace(t.id, t.int_box()) for t in tracks if not t.readable]

    def close(self, now: float) -> list[Event]:
        """Every announced track leaves (shutdown)."""
        events = [self._left(t, now) for t in self.tracks if t.announced]
        self.tracks.clear()
        return events

    @staticmethod
    def _left(t: Track, now: float) -> Event:
        return Event(EventKind.FACE_LEFT, now, t.id, t.emotion, box=t.int_box(),
                     extra={"duration_s": round(t.last_seen - t.first_seen, 2)})
