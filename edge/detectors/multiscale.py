"""The default detector: a kiosk's close-up and a classroom's small faces, with no mode to pick.

Two passes, composed around detectors the project already has (BlazeFace full range for
the near pass, YuNet for the far one, BlazeFace short range for the check):

- near: BlazeFace full range on the whole frame, exactly as the ``blazeface-full`` kind
  (so a kiosk camera behaves as before), on every call while it finds someone; after
  ``NEAR_IDLE`` calls in a row that find nobody (an empty kiosk, a class seen from the
  front), on every other call until it finds someone again: a face walking up is found
  at most one run later;
- far: YuNet (``[detector.far] model``; or BlazeFace short range) on the frame scaled so
  that a face of ``smallest_face`` pixels is 16 pixels of its input, on every
  ``every``-th call. Between far passes
  its faces are kept and returned again, each moved on as it moved since the pass before
  (a classroom moves slowly; a walking face's box keeps up, so the tracker's IoU matching
  still holds), so the far pass's cost is spread over ``every`` calls; when far passes find
  nobody (a kiosk), they come 2x, then 4x less often, and when one finds just the faces of
  the one before (a seated class), 2x less often. A photo on its own (``detect``) gets
  both passes. In a video the far pass (or the refresh) runs on a second thread while
  the near pass runs: both let go of Python's lock (OpenCV, LiteRT), so a run takes the
  longer of the two, not their sum; both are joined within the call, so the faces found
  never depend on which finished first.
- refresh: between far passes the far faces are looked for again around where they were,
  side by side in one small call, at most ``REFRESH_MOST`` (8) a run, in turns.
  A far face that overlaps a near one is dropped: near boxes win. So is a far face that
  the near pass would have seen (a side above 24 of its 192 input pixels: 80 px of a
  640 px frame): the far pass is for what the near pass cannot see, and on the kiosk clip
  a far "face" on the hands hiding a face split one person into two tracks.
- check: a far face not seen in the previous far pass must be found again by short range
  on a crop of 3x its side around it (the face is then ~40 px of the 128 px input, the
  scale the model was made for), scoring at least ``verify_score`` (0.72). On the cartoon clip
  (pyfeat_no_face.mp4) the far pass alone fires 48 times in 95 frames at 0.5; its false
  faces score 0-0.71 there (all but one below 0.64), while all 136 real faces it finds on
  the 24-48 px mosaics score 0.74-0.97. One 128x128 call per new face, ~1 ms.

Why this one won (bench/classroom.py, bench/results/classroom.md; on the 720p mosaics of
the scenes' real faces, recall at 24 / 32 / 40 / 48 px and CPU ms per call on this host):

- short range at 2/3 scale, one call:  0.77 / 1.00 / 1.00 / 1.00, 1 false face in 6
  mosaics, ~60 ms;
- full range over a 4x3 grid of overlapping tiles (12 calls): 0.43 / 0.72 / 0.77 / 1.00,
  ~60 ms; over 3x2 tiles: 0.07 / 0.46 / 0.66 / 0.83, ~35 ms;
- full range on the whole frame (the old default): 0 up to 48 px; Haar: 0.16 / 0.39 /
  0.60 / 0.74 at ~360 ms;
- the far pass and refresh on an int8-activation copy of short range (``[detector.far]
  model``, made by ``python -m convert blazeface-int8``): the same recall (0.79 / 0.96 /
  1.00 / 1.00), 28 MB less memory (peak RSS 178 MB against 209 on the 30-face 720p
  clip), but the classroom video's 15 people became 17 tracks and on this x86 host it
  ran at 0.96x the fps (bench/results/classroom.md);
- YuNet (opencv_zoo's face_detection_yunet_2023mar.onnx, shipped in models/, run by
  OpenCV's cv2.FaceDetectorYN until 2026-12-07 evening, since then as the .tflite made
  from it, in LiteRT: the same faces, 2-4x less CPU a call; yunet.py) as the far pass and
  its refresh, the default since 2026-12-07
  (bench/far_pass.py, bench/results/far_pass.md, one run, short range's figures second):
  24 px recall 0.89 against 0.76 (0.94-0.97 against 0.97-1.00 from 32 px); the 30-face
  720p clip at 88-108 fps against 72-90, peak RSS 165 MB against 208; the kiosk clip
  at the same CPU per frame (5.3 ms against 5.4); the classroom video's 15 people 15
  tracks (short range 14: one walker never found); every real clip's people count the
  same, no false face on the no-face clips. It costs more at 1080p: 242 MB against 233
  (the network's buffers for its 1280x720 input; tiles of 480x480 held less but cost
  ~1.5x the CPU in a per-call overhead, so the input is capped instead).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import Detection, FaceDetector
from .far import FarConfig  # noqa: F401  (the kind's sub-section, re-exported)

# The near pass (full range, 192x192) finds 5 of 5 faces of the group photo from 16 to 24
# input pixels (bench/results/classroom.md): far faces larger than 24 are its job.
NEAR_INPUT, NEAR_FACE_INPUT = 192, 24
# Far faces looked for again on one run between far passes, at most: a 3x3 grid of 64 px
# cells, ~7 ms. All 30 of a class would cost ~25 ms on every run and ~20 MB; in turns of 8,
# the classroom video keeps its 15 people as 15 tracks (4 a run: 19; all: 15).
REFRESH_MOST = 8
# Near passes in a row that find nobody before the near pass skips every other run. On the
# 30-face 720p clip (36-47 px faces) it finds nobody on 95% of runs; its ~4.5 ms a run (a
# 192x192 call and the frame shrunk to it) was a third of the frame loop's CPU there.
# 16 runs are 0.53 s even at 30 runs a second (a 30 fps camera, detect_every 1), longer
# than the tracker keeps a face it lost ([tracker] max_missed_s, 0.5): a skipped run never
# delays the face a track is waiting for (at 2 runs, the kiosk clip's woman hiding her
# face became two people with half the frames dropped).
NEAR_IDLE = 16

# ``cfg`` below is an edge.detectors.DetectorConfig (not imported: no import cycle).
DetectorConfig = Any


def _overlaps(box, others: list[Detection], iou: float, inside: bool = False) -> bool:
    """``box`` overlaps one of ``others`` by more than ``iou``, or (``inside``) its centre
    lies within one (a far "face" on a close-up's mouth is part of that face)."""
    x, y, w, h = box
    for d in others:
        ox, oy, ow, oh = d.box
        if inside and ox <= x + w / 2 <= ox + ow and oy <= y + h / 2 <= oy + oh:
            return True
        iw = min(x + w, ox + ow) - max(x, ox)
        ih = min(y + h, oy + oh) - max(y, oy)
        if iw > 0 and ih > 0:
            inter = iw * ih
            if inter / (w * h + ow * oh - inter) > iou:
                return True
    return False


def _centre(d: Detection) -> tuple[float, float]:
    x, y, w, h = d.box
    return x + w / 2, y + h / 2


@dataclass(eq=False)    # one face is one object: ``in`` compares identities
class _FarFace:
    """A face of the far pass, kept between far passes."""
    det: Detection                       # where it was last found
    v: tuple[float, float] = (0.0, 0.0)  # its centre's motion, pixels per call
    age: int = 0                         # calls since it was last found
    held: bool = False                   # missed by the latest far pass, kept one more
    looked: int = -1                     # the call that last looked for it again

    def now(self, fw: int, fh: int) -> Detection:
        """Where it should be now: moved on as it was moving (at most a third of its side), so a
        walking face's box keeps up with it and the tracker's IoU still matches."""
        if not self.age or self.v == (0.0, 0.0):
            return self.det
        x, y, w, h = self.det.box
        limit = max(w, h) / 3
        dx = max(-limit, min(limit, self.v[0] * self.age))
        dy = max(-limit, min(limit, self.v[1] * self.age))
        nx = int(round(min(max(0, x + dx), fw - w)))
        ny = int(round(min(max(0, y + dy), fh - h)))
        return Detection((nx, ny, w, h), self.det.score)

    def found_at(self, d: Detection) -> None:
        if self.age:
            (ox, oy), (nx, ny) = _centre(self.det), _centre(d)
            # damped, as the tracker does: boxes jitter, and a walk can turn back
            self.v = (0.5 * (nx - ox) / self.age, 0.5 * (ny - oy) / self.age)
        self.det, self.age, self.held = d, 0, False


def _nearest(d: Detection, faces: list[tuple[_FarFace, tuple[float, float]]]
             ) -> _FarFace | None:
    """The kept face within one face side of ``d`` (``faces``: each with its centre where
    it should be now), nearest."""
    cx, cy = _centre(d)
    best, dist = None, float(max(d.box[2:]))
    for f, (fx, fy) in faces:
        dd = ((fx - cx) ** 2 + (fy - cy) ** 2) ** 0.5
        if dd < dist:
            best, dist = f, dd
    return best


class MultiScaleDetector(FaceDetector):
    """``near`` on every call (every other while it finds nobody), ``far`` on every
    ``every``-th; in between, the far faces are looked for again around where they were
    (``refresh``, one small call for all)."""

    name = "blazeface-multiscale"

    def __init__(self, near: FaceDetector, far: FaceDetector, check: FaceDetector | None = None,
                 refresh: FaceDetector | None = None, *, every: int = 4, nms_iou: float = 0.3):
        self.near, self.far, self.check, self.refresher = near, far, check, refresh
        self.every = int(every)
        self.nms_iou = float(nms_iou)
        self._calls = 0
        self._until_far = 0      # detector runs to the next far pass
        self._empty = 0          # far passes in a row that found nobody
        self._still = 0          # far passes in a row that found the faces of the one before
        self._far_faces: list[_FarFace] = []
        self._far_shape: tuple[int, ...] | None = None
        self._near_empty = 0     # near passes in a row that found nobody
        self._near_skipped = False
        self.near_runs = 0  # counters, for the benchmark and the tests
        self.far_runs = 0
        self.checks = 0
        self.refreshes = 0
        self._beside = ThreadPoolExecutor(1, thread_name_prefix="far")

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """One picture on its own (a photo): both passes, nothing kept from other calls."""
        strong = self.near.detect(frame_bgr)
        return self._merge(strong, [], self._far(frame_bgr, [], self.far.detect(frame_bgr)))[0]

    def detect_tiers(self, frame_bgr: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """A frame of a video: the far pass on every ``every``-th call, its faces kept."""
        fh, fw = frame_bgr.shape[:2]
        for f in self._far_faces:
            f.age += 1
        # A new frame size (another source) makes the kept faces meaningless: run again.
        self._until_far -= 1
        far_run = self._until_far <= 0 or self._far_shape != frame_bgr.shape
        turn: list[_FarFace] = []
        if far_run:
            if self._far_shape != frame_bgr.shape:
                self._far_faces = []
            beside: Future = self._beside.submit(self.far.detect, frame_bgr)
        elif self.refresher is not None and self._far_faces:
            turn = self._to_refresh()
            for f in turn:
                f.looked = self._calls
            beside = self._beside.submit(self.refresher.refresh, frame_bgr,
                                         [f.now(fw, fh).box for f in turn])
        near_run = self._near_empty < NEAR_IDLE or self._near_skipped
        try:
            strong, weak = self.near.detect_tiers(frame_bgr) if near_run else ([], [])
        finally:   # the frame is not let go while the other thread still reads it
            far_found = beside.result() if far_run or turn else None
        if near_run:
            self.near_runs += 1
            self._near_empty = 0 if strong or weak else self._near_empty + 1
        self._near_skipped = not near_run
        if far_run:
            known = self._far_faces
            known_now = [f.now(fw, fh) for f in known]
            found = self._far(frame_bgr, known_now, far_found)
            centres = [(f, _centre(k)) for f, k in zip(known, known_now)]
            kept: list[_FarFace] = []
            new = 0
            for d in found:
                f = _nearest(d, centres)
                if f is None or f in kept:
                    f, new = _FarFace(d), new + 1
                else:
                    f.found_at(d)
                kept.append(f)
            still = bool(known) and not new and len(kept) == len(known)
            # A face the pass before found and this one misses (a head turned away for a
            # moment) is kept, where it was heading, one more pass: a far pass comes only
            # every ``every`` runs, and the tracker would lose it.
            for f in known:
                if f not in kept and not f.held and not _overlaps(
                        f.now(fw, fh).box, found, self.nms_iou, inside=True):
                    f.held = True
                    kept.append(f)
            self._far_faces = kept
            self._far_shape = frame_bgr.shape
            self.far_runs += 1
            # Nobody far away (a kiosk): look again less often, up to 4x the interval,
            # so the kiosk close-up pays little for the classroom's pass. The same faces
            # as the pass before, nobody new, nobody gone (a seated class): 2x.
            self._empty = 0 if kept else self._empty + 1
            self._still = self._still + 1 if still else 0
            self._until_far = self.every * 2 ** max(min(self._empty, 2), min(self._still, 1))
        elif turn:
            for f, d in zip(turn, far_found):
                if d is not None:
                    f.found_at(d)
            self.refreshes += 1
        self._calls += 1
        return self._merge(strong, weak, [f.now(fw, fh) for f in self._far_faces])

    def _to_refresh(self) -> list[_FarFace]:
        """The far faces to look for again on this run: all of a few, or in turns the
        ``REFRESH_MOST`` looked for longest ago (one call's cost stays bounded)."""
        faces = self._far_faces
        if len(faces) <= REFRESH_MOST:
            return faces
        return sorted(faces, key=lambda f: f.looked)[:REFRESH_MOST]

    def _far(self, frame: np.ndarray, known: list[Detection],
             found: list[Detection]) -> list[Detection]:
        """The far pass's faces ``found`` that the near pass could not see, confirmed."""
        reach = NEAR_FACE_INPUT * max(frame.shape[:2]) / NEAR_INPUT
        return [d for d in found if max(d.box[2:]) <= reach and self._confirmed(frame, d, known)]

    def _merge(self, strong: list[Detection], weak: list[Detection],
               far: list[Detection]) -> tuple[list[Detection], list[Detection]]:
        # Far faces on a near face are dropped (near boxes win); a weak near box on a far
        # face gives way to it (the far pass is sure of that face).
        extra = [d for d in far if not _overlaps(d.box, strong, self.nms_iou, inside=True)]
        if not extra:
            return strong, weak
        weak = [d for d in weak if not _overlaps(d.box, extra, self.nms_iou)]
        return sorted(strong + extra, key=lambda d: -d.score), weak

    def _confirmed(self, frame: np.ndarray, d: Detection, known: list[Detection]) -> bool:
        """Seen in the previous far pass (``known``), or found again on a crop around it."""
        if self.check is None or _overlaps(d.box, known, self.nms_iou):
            return True
        x, y, w, h = d.box
        cx, cy, half = x + w / 2, y + h / 2, 1.5 * max(w, h)
        fh, fw = frame.shape[:2]
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(fw, cx + half)), int(min(fh, cy + half))
        self.checks += 1
        crop = frame[y0:y1, x0:x1]

        def same_face(found: list[Detection]) -> bool:   # not a face it is part of
            return any(abs(qx + qw / 2 + x0 - cx) < w / 2 and abs(qy + qh / 2 + y0 - cy) < h / 2
                       and 0.5 <= qw / w <= 2.0 for qx, qy, qw, qh in (c.box for c in found))
        # Then full range, a model with errors of its own, at its continue_score: short
        # range's check alone passed a coat's button (0.79) that full range scores 0.43,
        # while 99% of the mosaics' real 24-48 px faces score over 0.59 there.
        return same_face(self.check.detect(crop)) and (
            not hasattr(self.near, "detect_whole") or same_face(self.near.detect_whole(crop)))

    def close(self) -> None:
        self._beside.shutdown(wait=True)
        for d in (self.near, self.far, self.check, self.refresher):
            if d is not None:
                d.close()


def build_multiscale(cfg: DetectorConfig, short_range: Path, near: FaceDetector,
                     far_model: Path | None = None, yunet: Path | None = None) -> FaceDetector:
    """``near`` plus the far pass, its refresh and its check. The far pass is YuNet
    (``yunet``) when given, else short range on ``far_model`` (default ``short_range``;
    [detector.far] model); the refresh is short range on the far pass's .tflite (or
    ``short_range`` beside YuNet); the check stays on ``short_range``: its
    ``verify_score`` was set on its scores, and at 128x128 it holds ~2 MB."""
    from .blazeface import SHORT_RANGE, BlazeFaceDetector
    from .wide import WideShortRange
    wide = far_model or short_range
    if yunet is not None:
        from .yunet import YuNetDetector
        from .yunet_config import YuNetConfig
        from .refresh import CellRefresher
        far: FaceDetector = YuNetDetector(
            yunet, YuNetConfig(scale=cfg.far.scale, max_pixels=cfg.yunet.max_pixels),
            min_score=cfg.min_score, nms_iou=cfg.nms_iou, min_face=cfg.min_face, roi=cfg.roi,
            threads=cfg.threads)
        # A known face is re-found at the weak tier's score, on YuNet's own scores.
        refresh = CellRefresher(YuNetDetector(
            yunet, YuNetConfig(scale=1.0), min_score=cfg.continue_score, nms_iou=cfg.nms_iou,
            threads=cfg.threads))
    else:
        far = WideShortRange(wide, scale=cfg.far.scale, min_score=cfg.far.min_score,
                             nms_iou=cfg.nms_iou, min_face=cfg.min_face, roi=cfg.roi,
                             threads=cfg.threads)
        refresh = WideShortRange(wide, scale=1.0, min_score=cfg.far.min_score,
                                 nms_iou=cfg.nms_iou, threads=cfg.threads)
    check = BlazeFaceDetector(SHORT_RANGE, short_range, min_score=cfg.far.verify_score,
                              nms_iou=cfg.nms_iou, threads=cfg.threads) \
        if cfg.far.verify_score > 0 else None
    return MultiScaleDetector(near, far, check, refresh, every=cfg.far.every,
                              nms_iou=cfg.nms_iou)
