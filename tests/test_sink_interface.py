"""What the frame loop gives its sinks: the picture (read-only), this frame's events, the
pipeline handle; face crops as a sink of their own; switching models while running."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import MODELS
from edge.classifier import ModelError
from edge.pipeline import Monitor, build_sinks
from edge.sinks.base import Sink, SinkError
from edge.sinks.faces import FaceCropSink
from test_pipeline import make_config, read_log

CLIP = "pyfeat_single_face.mp4"


class Recorder(Sink):
    """Keeps what a sink is shown: per-frame picture facts and events."""

    def __init__(self):
        self.pipeline = None
        self.frames: list[tuple[tuple, bool, float]] = []
        self.frame_events: list[str] = []
        self.handled: list[str] = []

    def start(self, pipeline):
        self.pipeline = pipeline

    def update(self, result):
        img = result.image
        self.frames.append((img.shape, img.flags.writeable, float(img.mean())))
        self.frame_events += [e.kind for e in result.events]

    def handle(self, events):
        self.handled += [e.kind for e in events]


def test_sinks_see_the_picture_read_only_and_the_frame_events(tmp_path, videos):
    rec = Recorder()
    monitor = Monitor(make_config(tmp_path, videos / CLIP))
    monitor.sinks.append(rec)
    stats = monitor.run()
    # Sinks get a narrow handle: facts and a model switch, never the monitor or its config.
    handle = rec.pipeline
    assert handle is not monitor and not hasattr(handle, "cfg")
    assert handle.labels == monitor.labels and handle.model_path == monitor.model_path
    assert handle.log_path == tmp_path / "logs" / "events.jsonl"
    assert "emotion_int8.tflite" in {e.path.name for e in handle.catalogue.entries()}
    assert len(rec.frames) == stats.frames > 30
    assert {shape for shape, _, _ in rec.frames} == {(360, 640, 3)}
    assert not any(writeable for _, writeable, _ in rec.frames)
    assert len({round(m, 1) for _, _, m in rec.frames}) > 10     # a moving picture, real frames
    # update() carries each frame's events; handle() also gets started/stopped and closing ones
    assert "face_appeared" in rec.frame_events
    assert set(rec.frame_events) <= set(rec.handled)
    assert rec.handled[0] == "started" and rec.handled[-1] == "stopped"
    health = monitor.health()
    assert health["frames"] == stats.frames and health["source"]["name"]
    log = health["outputs"]["log"]                 # each output reports its own counters
    assert log["lines written"] == len(read_log(tmp_path)) and log["dropped"] == 0
    info = monitor.model_info()
    assert info["labels"] == list(monitor.labels) and info["val"]["int8_accuracy"] > 0.8


def test_face_crops_are_a_sink_and_off_by_default(tmp_path, videos):
    assert not any(isinstance(s, FaceCropSink) for s in build_sinks(make_config(tmp_path, "x")))
    faces = tmp_path / "crops"
    cfg = make_config(tmp_path, videos / CLIP,
                      monitor={"save_faces": True, "faces_dir": str(faces)})
    Monitor(cfg).run()
    crops = sorted(faces.glob("track*.jpg"))
    appeared = [r for r in read_log(tmp_path) if r["event"] == "face_appeared"]
    assert len(crops) == len(appeared) == 1
    img = cv2.imread(str(crops[0]))
    x, y, w, h = appeared[0]["box"]
    assert img.shape[0] >= h and img.shape[1] >= w         # the box plus the margin


def test_a_faces_dir_that_is_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="faces_dir .*cannot create"):
        FaceCropSink(blocker / "sub", 0.1)


def test_switching_models_while_running(tmp_path, videos):
    """A broken model is refused with its one line and the old one stays; a good one is
    used from the next frame, and the log says so."""
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\0" * 1000)
    shutil.copy(MODELS / "emotion_int8.json", broken.with_suffix(".json"))
    copy = tmp_path / "copy_int8.tflite"
    shutil.copy(MODELS / "emotion_int8.tflite", copy)
    shutil.copy(MODELS / "emotion_int8.json", copy.with_suffix(".json"))

    class Switcher(Sink):
        def __init__(self):
            self.errors = []

        def start(self, pipeline):
            self.pipeline = pipeline

        def update(self, result):
            if result.index == 10:
                try:
                    self.pipeline.switch_model(broken)
                except ModelError as exc:
                    self.errors.append(str(exc))
                self.pipeline.switch_model(copy)

        def handle(self, events):
            pass

    monitor = Monitor(make_config(tmp_path, videos / CLIP))
    sw = Switcher()
    monitor.sinks.append(sw)
    monitor.run()
    assert len(sw.errors) == 1 and "broken.tflite" in sw.errors[0] and "\n" not in sw.errors[0]
    assert monitor.model_path == copy
    changed = [r for r in read_log(tmp_path) if r["event"] == "model_changed"]
    assert [(c["model"], c["previous"]) for c in changed] == [("copy_int8.tflite",
                                                                 "emotion_int8.tflite")]
    # Same labels: the track goes on (one face in the clip, one track)
    assert len({r["track"] for r in read_log(tmp_path) if r["event"] == "face_appeared"}) == 1
