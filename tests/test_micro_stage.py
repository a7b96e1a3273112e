"""The device's micro-expression stage on real video with the shipped flow model."""
from __future__ import annotations

import json
import logging
from datetime import datetime

import cv2
import numpy as np
import pytest

from edge.events import TrackedFace
from edge.micro import MicroConfig, MicroStage
from edge.micro.model import FlowModel

FPS = 30.0
T0 = 1_700_000_000.0
# A still stretch of pyfeat_single_face.mp4 (frame-to-frame change < 1 gray level), played
# forth and back, and a brief real movement: 7 frames (0.23 s) towards frame 2 and back.
STILL = list(range(7, 16)) + list(range(15, 6, -1))
EXCURSION = [7, 5, 3, 2, 3, 5, 7]


@pytest.fixture(scope="module")
def video(videos):
    from edge.detectors.haar import HaarDetector

    cap = cv2.VideoCapture(str(videos / "pyfeat_single_face.mp4"))
    det = HaarDetector(min_face=40)
    grays, boxes = [], []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        grays.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
        d = det.detect(f)
        boxes.append(d[0].box if d else None)
    return grays, boxes


@pytest.fixture(scope="module")
def model(shipped_micro_model):
    return FlowModel(shipped_micro_model)


@pytest.fixture(scope="module")
def shipped_micro_model():
    from edge.classifier import models_dir

    path = models_dir() / "micro_flow_int8.tflite"
    assert path.is_file(), f"{path} is missing: the shipped micro model is part of the repo"
    return path


def _run(stage: MicroStage, video, order, track_id: int = 1):
    grays, boxes = video
    events = []
    for i, j in enumerate(order):
        faces = [TrackedFace(track_id, boxes[j], "neutral", 1.0, np.zeros(7, np.float32))] \
            if boxes[j] else []
        events += stage.update(grays[j], faces, T0 + i / FPS)
    return events


def _check_event(ev, cfg: MicroConfig, labels):
    assert ev.kind == "micro_expression" and ev.track_id == 1
    assert ev.emotion in labels and cfg.min_score <= ev.score <= 1.0
    onset = datetime.fromisoformat(ev.extra["onset"].replace("Z", "+00:00")).timestamp()
    apex = datetime.fromisoformat(ev.extra["apex"].replace("Z", "+00:00")).timestamp()
    assert onset < apex <= ev.time
    assert 0 < ev.extra["duration_s"] <= cfg.window_s + 2 / FPS
    json.dumps(ev.to_record())                         # a sink can write it
    return onset, apex


def test_a_slow_real_smile_is_no_micro_expression(video, model):
    # min_score 0: any movement the spotter took for a micro-expression would be an event
    stage = MicroStage(MicroConfig(enabled=True, min_score=0.0), FPS, model=model)
    events = _run(stage, video, range(len(video[0])))
    assert events == [], [e.to_record() for e in events]
    assert stage._tracks[1].count == len(video[0])     # the face was followed in every frame


def test_spots_a_brief_real_movement(video, model):
    cfg = MicroConfig(enabled=True, min_score=0.0)
    stage = MicroStage(cfg, FPS, model=model)
    order = STILL + EXCURSION + STILL
    events = _run(stage, video, order)
    assert len(events) == 1, [e.to_record() for e in events]
    onset, apex = _check_event(events[0], cfg, model.labels)
    apex_index = round((apex - T0) * FPS)
    assert abs(apex_index - (len(STILL) + EXCURSION.index(2))) <= 1


def test_still_face_gives_no_event(video, model):
    stage = MicroStage(MicroConfig(enabled=True, min_score=0.0), FPS, model=model)
    assert _run(stage, video, STILL * 3) == []


def test_warns_once_when_the_source_is_too_slow(video, model, caplog):
    with caplog.at_level(logging.WARNING, logger="edge.micro.stage"):
        stage = MicroStage(MicroConfig(enabled=True), 15.0, model=model)
        _run(stage, video, list(range(40)))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "15.0 fps" in warnings[0].getMessage() and "60 fps" in warnings[0].getMessage()


def test_warns_when_frames_arrive_slower_than_announced(video, model, caplog):
    grays, boxes = video
    with caplog.at_level(logging.WARNING, logger="edge.micro.stage"):
        stage = MicroStage(MicroConfig(enabled=True), 60.0, model=model)   # says 60 fps...
        assert not caplog.records
        face = [TrackedFace(1, boxes[0], "neutral", 1.0, np.zeros(7, np.float32))]
        for i in range(40):
            stage.update(grays[0], face, T0 + i / 10.0)                   # ...delivers 10
    assert len(caplog.records) == 1 and "frames arrive at 10.0 fps" in caplog.records[0].getMessage()


def test_tracks_are_bounded_and_forget_frees_them(video, model):
    grays, boxes = video
    stage = MicroStage(MicroConfig(enabled=True, max_tracks=1), FPS, model=model)
    faces = [TrackedFace(t, boxes[0], "neutral", 1.0, np.zeros(7, np.float32)) for t in (1, 2)]
    stage.update(grays[0], faces, T0)
    assert set(stage._tracks) == {1}
    stage.forget(1)
    stage.update(grays[0], faces[1:], T0 + 0.1)
    assert set(stage._tracks) == {2}


def test_config_is_validated():
    assert MicroConfig().enabled is False
    with pytest.raises(ValueError, match="window_s"):
        MicroConfig(window_s=5)
    with pytest.raises(ValueError, match="flow"):
        MicroConfig(flow="tvl1")
    with pytest.raises(ValueError, match="max_motion"):
        MicroConfig(threshold=30, max_motion=20)
