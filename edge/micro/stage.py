"""The micro-expression stage: per tracked face, spot a brief movement and classify it.

Per frame (the hot path, no allocation): each face is cut out with a box held still while
the face stays put, resized into a preallocated ring of crops, and a 32x32 thumbnail of it
into a ring of thumbnails. With a window of 2k+1 frames, the frame k back is scored as a
candidate apex the way MEGC spotting baselines do (Li et al. 2018, "feature difference"):

    spot = mean|apex - (start + end) / 2|,  back = mean|start - end|

A micro-expression is a peak of ``spot`` above ``threshold`` while ``back`` stays small (the
face returned: not a lasting macro-expression) and ``spot`` stays below ``max_motion`` (not
a head turn). Only then (rarely) does the stage compute onset-to-apex flow and strain and run
the flow model, and emit a ``micro_expression`` event.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from ..eventlog import EventKind
from ..classifier import ModelError, crop_box
from ..events import Box, Event, TrackedFace, iso_utc
from .config import RECOMMENDED_FPS, MicroConfig
from .flow import FlowImager
from .model import FlowModel

log = logging.getLogger(__name__)

THUMB = 32
MIN_FACE = 24          # pixels; smaller faces carry no usable micro-motion


class _Track:
    """One face's rings. Slots are preallocated and reused (``reset`` on reuse)."""

    def __init__(self, n: int, crop: int):
        self.crops = np.zeros((n, crop, crop), np.uint8)
        self.thumbs = np.zeros((n, THUMB, THUMB), np.float32)
        self.times = np.zeros(n, np.float64)
        self.reset(None, None)

    def reset(self, box: Box | None, seen: Box | None) -> None:
        self.count = 0                      # frames written since the last reset
        self.box = box                      # the held crop box (frame pixels, clipped)
        self.seen = seen                    # the detector's box the crop box was made from
        self.prev_spot = self.prev2_spot = 0.0
        self.prev_back = 0.0
        self.quiet_until = 0                # frame count before which no new event starts


class MicroStage:
    """``update`` once per frame with the gray frame and the tracked faces."""

    def __init__(self, cfg: MicroConfig, fps: float, model: FlowModel | None = None):
        if fps <= 0:
            raise ValueError(f"fps: must be positive, not {fps}")
        self.cfg, self.fps = cfg, fps
        self.k = max(1, round(cfg.window_s * fps / 2))      # frames from start to apex
        self.n = 2 * self.k + 2                              # window + the frame before it
        self.model = model or FlowModel(cfg.model_path(), threads=cfg.threads)
        h, w = self.model.sidecar.input_size
        if (h, w) != (28, 28):
            raise ModelError(f"{cfg.model_path()}: a micro model takes 28x28 flow, not {h}x{w}")
        self.imager = FlowImager(cfg.crop_size, cfg.flow)
        self._free = [_Track(self.n, cfg.crop_size) for _ in range(cfg.max_tracks)]
        self._tracks: dict[int, _Track] = {}
        self._mix = np.empty((THUMB, THUMB), np.float32)
        self._thumb = np.empty((THUMB, THUMB), np.uint8)
        self._flow = np.empty((28, 28, 3), np.uint8)
        self._warned = False
        self._last_t: float | None = None
        self._dt = 0.0
        self._frames = 0
        self._check_rate(fps, "the source reports")

    # --- frame rate --------------------------------------------------------------------------

    def _check_rate(self, fps: float, how: str) -> None:
        if self._warned or fps >= self.cfg.min_fps:
            return
        self._warned = True
        log.warning(
            "micro-expressions: %s %.1f fps, below the %.0f fps this stage needs. They last "
            "1/25 to 1/2 s, so spotting one needs several frames between onset and apex: "
            "%.0f fps or more catches even 1/25 s events, %.0f fps is the minimum (events of "
            "~1/10 s and longer); at this rate most are missed and the rest are guesses.",
            how, fps, self.cfg.min_fps, RECOMMENDED_FPS, self.cfg.min_fps)

    def _measure_rate(self, t: float) -> None:
        if self._last_t is not None and t > self._last_t:
            dt = t - self._last_t
            self._dt = dt if self._dt == 0 else 0.9 * self._dt + 0.1 * dt
            self._frames += 1
            if self._frames == 30 or (self._frames > 30 and self._frames % 300 == 0):
                self._check_rate(1.0 / self._dt, "frames arrive at")
        self._last_t = t

    # --- per frame ---------------------------------------------------------------------------

    def update(self, gray_frame: np.ndarray, faces: list[TrackedFace], t: float) -> list[Event]:
        """Feed one gray frame (H, W) uint8 and its tracked faces; events spotted now."""
        self._measure_rate(t)
        events: list[Event] = []
        for face in faces:
            if face.box[2] < MIN_FACE or face.box[3] < MIN_FACE:
                continue
            tr = self._tracks.get(face.track_id)
            if tr is None:
                if not self._free:
                    continue                        # max_tracks faces already followed
                tr = self._tracks[face.track_id] = self._free.pop()
                tr.reset(self._crop_box(face.box, gray_frame.shape), face.box)
            elif self._moved(tr.seen, face.box):
                tr.reset(self._crop_box(face.box, gray_frame.shape), face.box)
            ev = self._step(tr, gray_frame, face, t)
            if ev is not None:
                events.append(ev)
        return events

    def forget(self, track_id: int) -> None:
        """The track ended: free its buffers for the next face."""
        tr = self._tracks.pop(track_id, None)
        if tr is not None:
            self._free.append(tr)

    def _crop_box(self, box: Box, shape: tuple[int, ...]) -> Box:
        x0, y0, w, h = crop_box(box, shape, self.cfg.margin)   # the classifier's crop
        return x0, y0, max(1, w), max(1, h)    # never empty: every frame is resized into it

    def _moved(self, held: Box, box: Box) -> bool:
        """Has the face moved or scaled away from the box the crops are cut with?"""
        hx, hy, hw, hh = held
        x, y, w, h = box
        size = max(w, h)
        dx = abs((x + w / 2) - (hx + hw / 2))
        dy = abs((y + h / 2) - (hy + hh / 2))
        return max(dx, dy, abs(size - max(hw, hh))) > self.cfg.max_shift * size

    def _step(self, tr: _Track, gray: np.ndarray, face: TrackedFace, t: float) -> Event | None:
        n, k = self.n, self.k
        i = tr.count % n
        x, y, w, h = tr.box
        crop = tr.crops[i]
        cv2.resize(gray[y:y + h, x:x + w], crop.shape[::-1], dst=crop,
                   interpolation=cv2.INTER_AREA)
        cv2.resize(crop, (THUMB, THUMB), dst=self._thumb, interpolation=cv2.INTER_AREA)
        np.copyto(tr.thumbs[i], self._thumb)   # (resize writes only into a same-type dst)
        tr.times[i] = t
        tr.count += 1
        if tr.count < 2 * k + 1:
            return None
        # Score the frame k back as an apex between the window's start and its end (now).
        start, apex = (tr.count - 1 - 2 * k) % n, (tr.count - 1 - k) % n
        mix = self._mix
        np.add(tr.thumbs[start], tr.thumbs[i], out=mix)
        mix *= 0.5
        np.subtract(tr.thumbs[apex], mix, out=mix)
        np.abs(mix, out=mix)
        spot = float(mix.mean())
        np.subtract(tr.thumbs[start], tr.thumbs[i], out=mix)
        np.abs(mix, out=mix)
        back = float(mix.mean())
        # The previous candidate is an event if it is a peak of the spotting score.
        peak = tr.prev_spot > self.cfg.threshold and tr.prev_spot >= tr.prev2_spot and \
            tr.prev_spot > spot and tr.prev_back <= self.cfg.max_return and \
            tr.prev_spot <= self.cfg.max_motion and tr.count - 1 >= tr.quiet_until
        score, prev_back = tr.prev_spot, tr.prev_back
        tr.prev2_spot, tr.prev_spot, tr.prev_back = tr.prev_spot, spot, back
        if not peak:
            return None
        tr.quiet_until = tr.count + k        # the same movement must not count twice
        onset, apex, offset = (tr.count - 2 - 2 * k) % n, (tr.count - 2 - k) % n, (tr.count - 2) % n
        return self._classify(tr, face, t, onset, apex, offset, score, prev_back)

    def _classify(self, tr: _Track, face: TrackedFace, t: float, onset: int, apex: int,
                  offset: int, spot: float, back: float) -> Event | None:
        flow = self.imager(tr.crops[onset], tr.crops[apex], self._flow)
        probs = self.model.predict(flow)
        top = int(probs.argmax())
        if probs[top] < self.cfg.min_score:
            return None
        t_on, t_apex, t_off = tr.times[onset], tr.times[apex], tr.times[offset]
        return Event(EventKind.MICRO_EXPRESSION, t, face.track_id, self.model.labels[top],
                     float(probs[top]), face.box,
                     {"onset": iso_utc(t_on), "apex": iso_utc(t_apex),
                      "duration_s": round(t_off - t_on, 3),
                      "spot": round(spot, 2), "return": round(back, 2)})
