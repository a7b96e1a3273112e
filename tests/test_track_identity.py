"""A face's track must not hang on one borderline detection.

On aarch64 OpenCV's FFmpeg decodes the demo clip 1-2 grey levels differently from x86, and
the one frame where the woman hides her face dropped from 0.66 to below ``min_score``: she
became two faces. Scores just below the threshold now continue a confirmed track (never
start one), so every clip keeps its people count whatever the decoder's rounding: here
under the x86 decode, under +-2 grey levels of noise on every frame and under +-0.05 on
every detector score, at detect_every 1 and 3; the cartoons stay no face.

A Pi that falls behind a live camera drops frames, and a busy test machine would too if a
file were played in real time: files here give every frame (``realtime`` off), and the
tracker's limits are seconds of the source's own timeline, so the people counts also hold
with 30% and 50% of the frames dropped at random.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from edge.detectors import create_detector
from edge.detectors.base import Detection, FaceDetector
from edge.pipeline import Monitor
from edge.sources.opencv import OpenCVSource
from test_pipeline import make_config, read_log, tracks_in  # noqa: E402

# People in each clip (../shared/README.md). The two-person head-pose clip may switch one
# id while a head turns fully away (as in test_pipeline.py); nothing else may.
PEOPLE = {
    "intel_face-demographics-walking-and-pause.mp4": {3},
    "intel_head-pose-face-detection-female-and-male.mp4": {2, 3},
    "intel_head-pose-face-detection-female.mp4": {1},
    "intel_head-pose-face-detection-male.mp4": {1},
    "pyfeat_WolfgangLanger_Pexels.mp4": {1},
    "pyfeat_face_noface.mov": {1},
    "pyfeat_no_face.mp4": {0},
    "pyfeat_single_face.mp4": {1},
}
SEEDS = (0, 1, 2)


class NoisySource(OpenCVSource):
    """The clip with +-``amplitude`` grey levels of uniform noise on every pixel: another
    decoder's rounding, exaggerated."""

    def __init__(self, uri: str, amplitude: int, seed: int):
        super().__init__(uri, realtime=False)   # every frame, whatever the load
        self.amplitude, self.rng = amplitude, np.random.default_rng(seed)

    def read(self) -> np.ndarray:
        frame = super().read()
        noise = self.rng.integers(-self.amplitude, self.amplitude + 1, frame.shape, np.int16)
        return np.clip(frame + noise, 0, 255).astype(np.uint8)


class DroppingSource(OpenCVSource):
    """The clip with each frame dropped with probability ``p`` (seeded): a pipeline that
    falls behind a live camera. Frames keep their time on the video's own timeline."""

    def __init__(self, uri: str, p: float, seed: int, loop: bool = False):
        super().__init__(uri, realtime=False, loop=loop)
        self.p, self.rng = p, np.random.default_rng(seed)
        self.delivered = self.dropped = 0

    def read(self) -> np.ndarray:
        while True:
            frame = super().read()
            if self.rng.random() >= self.p:
                self.delivered += 1
                return frame
            self.dropped += 1


class JitteredScores(FaceDetector):
    """The configured BlazeFace with every score moved by up to +-``jitter`` before the
    thresholds apply (the inner detector looks ``jitter`` lower to see what may rise)."""

    def __init__(self, cfg, jitter: float, seed: int):
        self.min_score, self.continue_score = cfg.min_score, cfg.continue_score
        self.inner = create_detector(dataclasses.replace(
            cfg, min_score=cfg.min_score - jitter, continue_score=cfg.continue_score - jitter))
        self.name, self.jitter = self.inner.name, jitter
        self.rng = np.random.default_rng(seed)

    def detect_tiers(self, frame):
        strong, weak = self.inner.detect_tiers(frame)
        moved = [Detection(d.box, d.score + self.rng.uniform(-self.jitter, self.jitter))
                 for d in strong + weak]
        return ([d for d in moved if d.score >= self.min_score],
                [d for d in moved if self.continue_score <= d.score < self.min_score])

    def detect(self, frame):
        return self.detect_tiers(frame)[0]


def people(tmp_path, clip, detect_every, *, noise=0, jitter=0.0, drop=0.0, seed=0) -> int:
    cfg = make_config(tmp_path, clip, tracker={"detect_every": detect_every},
                      source={"read_ahead": 0})
    source = NoisySource(str(clip), noise, seed) if noise else \
        DroppingSource(str(clip), drop, seed) if drop else None
    detector = JitteredScores(cfg.detector, jitter, seed) if jitter else None
    Monitor(cfg, source=source, detector=detector).run()
    records = read_log(tmp_path)
    appeared = tracks_in(records)
    assert appeared == {r["track"] for r in records if r["event"] == "face_left"}
    return len(appeared)


@pytest.mark.parametrize("detect_every", [1, 3])
@pytest.mark.parametrize("clip", sorted(PEOPLE))
def test_people_count_under_the_x86_decode(tmp_path, videos, clip, detect_every):
    assert people(tmp_path, videos / clip, detect_every) in PEOPLE[clip]


@pytest.mark.parametrize("detect_every", [1, 3])
@pytest.mark.parametrize("clip", sorted(PEOPLE))
def test_people_count_under_two_grey_levels_of_noise(tmp_path, videos, clip, detect_every):
    counts = [people(tmp_path / str(s), videos / clip, detect_every, noise=2, seed=s)
              for s in SEEDS]
    assert all(n in PEOPLE[clip] for n in counts), counts


@pytest.mark.parametrize("detect_every", [1, 3])
@pytest.mark.parametrize("clip", sorted(PEOPLE))
def test_people_count_under_score_jitter(tmp_path, videos, clip, detect_every):
    counts = [people(tmp_path / str(s), videos / clip, detect_every, jitter=0.05, seed=s)
              for s in SEEDS]
    assert all(n in PEOPLE[clip] for n in counts), counts


@pytest.mark.parametrize("drop", [0.3, 0.5])
@pytest.mark.parametrize("detect_every", [1, 3])
@pytest.mark.parametrize("clip", sorted(PEOPLE))
def test_people_count_with_frames_dropped(tmp_path, videos, clip, detect_every, drop):
    counts = [people(tmp_path / str(s), videos / clip, detect_every, drop=drop, seed=s)
              for s in SEEDS[:1]]
    assert all(n in PEOPLE[clip] for n in counts), counts


@pytest.mark.parametrize("drop", [0.0, 0.3])
@pytest.mark.parametrize("detect_every", [1, 3])
def test_no_face_clip_looped_never_fills_a_summary(tmp_path, videos, detect_every, drop):
    """The cartoon clip's 0.13 s false face (frames 86-89) comes back on every loop, each
    time at another detector phase: it must never count as a face in view."""
    clip = videos / "pyfeat_no_face.mp4"
    loops = 10
    frames = loops * cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT)
    cfg = make_config(tmp_path, clip, tracker={"detect_every": detect_every},
                      source={"read_ahead": 0, "loop": True},
                      monitor={"summary_interval": 1.0,
                               "max_frames": int(frames * (1 - drop) * 0.98)})
    source = DroppingSource(str(clip), drop, seed=7, loop=True)
    Monitor(cfg, source=source).run()
    records = read_log(tmp_path)
    summaries = [r for r in records if r["event"] == "summary"]
    assert len(summaries) >= 3 * loops, len(summaries)          # ~4 s of video a loop
    assert [r for r in records if r["event"] == "face_appeared"] == []
    assert {r["faces_seen"] for r in summaries} == {0}
    assert {r["dominant"] for r in summaries} == {None}


def test_weak_detections_continue_a_track_but_never_start_one():
    from edge.tracker import Tracker, TrackerConfig
    tracker = Tracker(TrackerConfig(detect_every=1, min_seen_s=0.1, max_missed_s=0.15),
                      ("happy",))
    face = (100, 100, 80, 80)
    tracker.update([], 0.0, [face])             # weak only: no track
    assert tracker.tracks == []
    tracker.update([face], 0.1)                 # tentative
    tracker.update([], 0.2, [face])             # a weak box does not keep a tentative track
    assert tracker.tracks == []
    tracker.update([face], 0.3)
    tracker.update([face], 0.4)                 # confirmed (2 hits, 0.1 s)
    for i in range(5):                          # weak boxes alone keep it, well past 0.15 s
        tracker.update([], 0.5 + i / 10, [face])
    assert [t.id for t in tracker.tracks] == [2] and tracker.tracks[0].missed == 0
    tracker.update([], 1.0)
    tracker.update([], 1.1)                     # nothing at all: it leaves as before
    assert tracker.tracks == []


@pytest.mark.parametrize("jump, same", [(0.75, True), (0.0, False)])
def test_a_small_face_found_again_after_it_moved_keeps_its_track(jump, same):
    """A far face is found again only at the next far pass, after it moved 2/3 of its side
    (a walk): its box no longer overlaps the old one enough (IoU 0.2 < 0.3), but it is the
    same face. [tracker] jump = 0 keeps the overlap rule alone (a new track)."""
    from edge.tracker import Tracker, TrackerConfig
    tracker = Tracker(TrackerConfig(detect_every=1, min_seen_s=0.1, max_missed_s=2.0,
                                    jump=jump), ("happy",))
    tracker.update([(300, 570, 48, 48)], 0.0)
    tracker.update([(300, 570, 48, 48)], 0.2)          # confirmed
    tracker.update([], 0.4)                            # missed between far passes
    tracker.update([(268, 572, 48, 48), (600, 100, 48, 48)], 1.0)   # moved 32 px; a newcomer
    moved = [t.id for t in tracker.tracks if t.missed == 0 and t.box[0] < 400]
    assert moved == ([1] if same else [2]), [(t.id, t.box, t.missed) for t in tracker.tracks]
    # a box of another size nearby is another face, not the same one moved
    other = Tracker(TrackerConfig(detect_every=1, min_seen_s=0.1, jump=jump), ("happy",))
    other.update([(300, 570, 48, 48)], 0.0)
    other.update([(300, 570, 48, 48)], 0.2)
    other.update([(270, 560, 100, 100)], 0.3)
    assert sorted(t.id for t in other.tracks) == [1, 2]
