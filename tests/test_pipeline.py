"""The whole daemon on real videos: tracks, LEDs on mock pins, the log, faults, signals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from conftest import MODELS, ROOT
from edge import config
from edge.classifier import ModelError
from edge.events import FrameResult
from edge.pipeline import Monitor
from edge.sinks.base import Sink
from edge.sinks.gpio import GpioSink
from edge.sources import EndOfStream, SourceError
from edge.sources.opencv import OpenCVSource

EMOTION_EDGE = [sys.executable, "-m", "edge"]


def make_config(tmp_path: Path, video: Path | str, **sections) -> config.Config:
    raw = {"source": {"uri": str(video), "realtime": False},
           "log": {"dir": str(tmp_path / "logs")},
           "console": {"enabled": False}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config.from_dict(raw)


def read_log(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "logs" / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def tracks_in(records: list[dict]) -> set[int]:
    return {r["track"] for r in records if r["event"] == "face_appeared"}


# --- tracks on real clips --------------------------------------------------------------------

@pytest.mark.parametrize("clip, expected", [
    ("pyfeat_single_face.mp4", {1}),
    ("pyfeat_WolfgangLanger_Pexels.mp4", {1}),
    ("intel_head-pose-face-detection-female-and-male.mp4", {2, 3}),
    ("pyfeat_no_face.mp4", {0}),
])
@pytest.mark.parametrize("detect_every", [1, 3])
def test_track_count_on_real_clips(tmp_path, videos, clip, expected, detect_every):
    """One man; one woman who hides her face for half a second while she cries (the demo
    clip: still one face); two people (one ID switch allowed when a head turns away); a
    cartoon."""
    stats = Monitor(make_config(tmp_path, videos / clip,
                                tracker={"detect_every": detect_every})).run()
    records = read_log(tmp_path)
    assert records[0]["event"] == "started" and records[-1]["event"] == "stopped"
    assert len(tracks_in(records)) in expected, [r for r in records if "track" in r][:10]
    appeared = tracks_in(records)
    left = {r["track"] for r in records if r["event"] == "face_left"}
    assert appeared == left  # every face that appeared also left, by the end
    assert stats.frames > 20


def test_the_capture_thread_changes_nothing_in_the_log_of_a_file(tmp_path, videos):
    """Decoding ahead in a thread must give exactly the events of decoding in the loop."""
    clip = videos / "intel_head-pose-face-detection-female-and-male.mp4"
    logs = {}
    for ahead in (0, 2):
        Monitor(make_config(tmp_path / str(ahead), clip, source={"read_ahead": ahead})).run()
        records = read_log(tmp_path / str(ahead))
        assert records[-1]["frames"] > 50 and records[-1]["dropped_frames"] == 0
        logs[ahead] = [{k: v for k, v in r.items() if k not in ("ts", "fps")} for r in records]
    assert len(logs[2]) > 5 and logs[2] == logs[0]


def test_detect_every_third_frame_keeps_the_tracks(tmp_path, videos):
    """Detector and classifier run on every third frame only; the two people are still
    tracked, and every frame in between still reports their (carried) emotions."""
    cfg = make_config(tmp_path, videos / "intel_head-pose-face-detection-female-and-male.mp4",
                      tracker={"detect_every": 3})
    monitor = Monitor(cfg)
    calls = {"detect": 0, "classify": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monitor.detector.detect_tiers = counted("detect", monitor.detector.detect_tiers)
    monitor.classifier.prepare = counted("classify", monitor.classifier.prepare)  # the crops
    faces_per_frame = []

    class Count(Sink):
        def update(self, result):
            faces_per_frame.append(len(result.faces))

        def handle(self, events):
            pass

    monitor.sinks.append(Count())
    stats = monitor.run()
    assert calls["detect"] == -(-stats.frames // 3)
    assert 1 <= calls["classify"] <= calls["detect"]
    assert len(tracks_in(read_log(tmp_path))) in {2, 3}
    # Between detector runs faces are carried, not dropped: 2 faces on most frames.
    assert sum(n == 2 for n in faces_per_frame) > 0.5 * stats.frames


def test_several_small_walking_faces_are_tracked(tmp_path, videos):
    Monitor(make_config(tmp_path, videos / "intel_face-demographics-walking-and-pause.mp4",
                        detector={"min_face": 16})).run()
    records = read_log(tmp_path)
    summaries = [r for r in records if r["event"] == "summary"]
    assert len(tracks_in(records)) >= 3
    assert max(s["faces_seen"] for s in summaries) >= 3


# --- LEDs follow the emotions ------------------------------------------------------------

class Recorder(Sink):
    """Checks, after every frame, that the LEDs show what the faces show."""

    def __init__(self, gpio: GpioSink, factory):
        self.gpio, self.factory, self.mismatches, self.frames = gpio, factory, [], 0
        self.shown: set[str] = set()

    def update(self, result: FrameResult) -> None:
        self.frames += 1
        want = {f.emotion for f in result.faces}
        on_pins = {label for label, pin in self.gpio.config.pins.items()
                   if self.factory.pin(pin).state}
        if self.gpio.lit != want or on_pins != want:
            self.mismatches.append((result.index, want, self.gpio.lit, on_pins))
        self.shown |= want

    def handle(self, events):
        pass


def test_led_pins_follow_the_logged_emotions(tmp_path, videos):
    from edge.sinks.gpio import make_pin_factory

    cfg = make_config(tmp_path, videos / "pyfeat_WolfgangLanger_Pexels.mp4",
                      gpio={"enabled": True, "pin_factory": "mock", "mode": "per-emotion"},
                      monitor={"max_frames": 240})
    factory = make_pin_factory("mock")
    gpio = GpioSink(cfg.gpio, pin_factory=factory)
    recorder = Recorder(gpio, factory)
    from edge.sinks.jsonlog import JsonLogSink
    Monitor(cfg, sinks=[gpio, recorder, JsonLogSink(cfg.log)]).run()
    assert recorder.frames == 240 and not recorder.mismatches, recorder.mismatches[:5]
    logged = {r["emotion"] for r in read_log(tmp_path)
              if r["event"] in ("face_appeared", "emotion_changed")}
    assert logged and logged == recorder.shown
    assert all(not factory.pin(p).state for p in cfg.gpio.pins.values()) or gpio.closed


# --- faults ----------------------------------------------------------------------------------

class UnpluggedCamera(OpenCVSource):
    """A real video that behaves like a USB camera pulled out twice and plugged back in.
    Every frame is delivered (no real-time pacing), so the counts do not depend on how
    busy the machine is."""

    def __init__(self, path: Path, fail_at: set[int]):
        super().__init__(str(path), realtime=False)
        self.live, self.fail_at, self.reads, self.opens = True, fail_at, 0, 0

    def open(self):
        self.opens += 1
        if self.opens in (2, 4):  # the first reopen after each unplug also fails
            raise SourceError("camera not found")
        if self.cap is None:
            super().open()

    def read(self):
        self.reads += 1
        if self.reads in self.fail_at:
            raise SourceError("device disconnected")
        if self.cap.get(cv2.CAP_PROP_POS_FRAMES) >= self.cap.get(cv2.CAP_PROP_FRAME_COUNT):
            raise EndOfStream  # the clip is over: so is the "camera"
        return super().read()

    def close(self):
        pass  # keep the file position: the "camera" continues where it was


def test_source_that_fails_and_recovers_loses_no_log_lines(tmp_path, videos):
    # read in the frame loop: a capture thread would drop a live source's frames when the
    # loop falls behind, and the frame count would depend on the machine's load
    cfg = make_config(tmp_path, videos / "pyfeat_single_face.mp4", source={"read_ahead": 0})
    source = UnpluggedCamera(videos / "pyfeat_single_face.mp4", fail_at={20, 40})
    monitor = Monitor(cfg, source=source)
    monitor.source.backoff0 = 0.01
    stats = monitor.run()
    records = read_log(tmp_path)
    assert monitor.source.failures == 2
    assert len(records) == stats.events          # every event reached the log
    stopped = records[-1]
    assert stopped["event"] == "stopped" and stopped["source_failures"] == 2
    assert stopped["frames"] == stats.frames > 60


def test_corrupt_and_missing_model_and_bad_config_are_one_line_errors(tmp_path):
    corrupt = tmp_path / "emotion_int8.tflite"
    corrupt.write_bytes(b"\x00not a model" * 100)
    side = json.loads((MODELS / "emotion_int8.json").read_text())
    (tmp_path / "emotion_int8.json").write_text(json.dumps(side))
    for model, message in ((corrupt, "does not match its sidecar"),
                           (tmp_path / "missing.tflite", "model file not found")):
        r = subprocess.run([*EMOTION_EDGE, "run", "--model", str(model)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    side.pop("sha256")
    (tmp_path / "emotion_int8.json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        from edge.classifier import EmotionModel
        EmotionModel(corrupt)

    bad = tmp_path / "config.toml"
    for text, message in (("[tracker]\niou = 1.5\n", "[tracker] iou: 1.5 is outside 0..1"),
                          ("[tracker]\nfoo = 1\n", "[tracker] foo: unknown key"),
                          ("[source]\nwidth = \"wide\"\n", "[source] width: expected a whole"),
                          ("[nope]\n", "unknown section [nope]"),
                          ("[source\n", "not valid TOML")):
        bad.write_text(text)
        r = subprocess.run([*EMOTION_EDGE, "run", "--config", str(bad)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missing_video_is_a_clear_error(tmp_path):
    r = subprocess.run([*EMOTION_EDGE, "run", "--source", str(tmp_path / "none.mp4"),
                        "--log-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "no such video file" in r.stderr, r.stderr


# --- signals -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_flushes_the_log_and_exits_0(tmp_path, videos, sig):
    log = tmp_path / "events.jsonl"
    proc = subprocess.Popen([*EMOTION_EDGE, "run", "--source",
                             str(videos / "pyfeat_single_face.mp4"), "--loop",
                             "--log-dir", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and "face_appeared" in log.read_text():
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("no face appeared in the log within 60 s")
    proc.send_signal(sig)
    # Prompt, but not timed here (a busy machine is slow): the bound only catches a hang;
    # how long a stop takes is measured by bench/system/systemd_vm.py (the Stop row).
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["event"] == "stopped"
    assert records[-1]["reason"] == sig.name
    assert any(r["event"] == "face_left" for r in records)


# --- classify ------------------------------------------------------------------------------

def test_classify_finds_the_manifest_faces(scenes):
    manifest = json.loads((scenes / "manifest.json").read_text())
    r = subprocess.run([*EMOTION_EDGE, "classify", "--json", str(scenes)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    found = {Path(o["image"]).name: o for o in map(json.loads, r.stdout.splitlines())}
    expected = {k: v["faces"] for k, v in manifest.items() if not k.startswith("_")}
    assert set(found) == set(expected)
    hits = sum(min(len(found[k]["faces"]), n) for k, n in expected.items())
    extra = sum(max(0, len(found[k]["faces"]) - n) for k, n in expected.items())
    assert hits / sum(expected.values()) >= 0.7, (hits, sum(expected.values()))
    assert extra <= 3
    for o in found.values():
        for f in o["faces"]:
            assert abs(sum(f["scores"].values()) - 1) < 0.05
            assert f["emotion"] == max(f["scores"], key=f["scores"].get)
