"""Frame sources on real files: video timeline, looping, image folders, skipped bad frames."""
from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from edge.sources import (SAMPLE_CLIP, EndOfStream, ResilientSource, SourceConfig, SourceError,
                          create_source)
from edge.sources.images import ImageSource
from edge.sources.opencv import OpenCVSource


def test_video_file_follows_its_own_timeline(videos):
    src = OpenCVSource(str(videos / "pyfeat_single_face.mp4"), realtime=False)
    src.open()
    assert src.fps == pytest.approx(30, abs=1) and not src.live
    stamps = []
    try:
        while True:
            frame = src.read()
            stamps.append(src.timestamp())
    except EndOfStream:
        pass
    assert frame.shape == (360, 640, 3)
    assert 60 <= len(stamps) <= 80          # 2.4 s at 30 fps
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) == pytest.approx(1 / 30, rel=0.01)  # video time, not processing time


def test_realtime_playback_drops_frames_when_behind(videos):
    src = OpenCVSource(str(videos / "pyfeat_single_face.mp4"), realtime=True)
    src.open()
    src.read()
    time.sleep(0.5)                         # the pipeline stalls for half a second
    src.read()
    assert src._pos >= 15                   # ~15 frames of video were skipped, as a camera would


def test_loop_restarts_a_file(videos):
    src = OpenCVSource(str(videos / "pyfeat_single_face.mp4"), realtime=False, loop=True)
    src.open()
    frames, stamps = [], []
    for _ in range(200):                    # about 2.7 times the clip's 72 frames
        frames.append(src.read().copy())
        stamps.append(src.timestamp())
    src.close()
    # each pass starts again at the clip's first frame, and the timeline runs on across it
    assert np.array_equal(frames[72], frames[0]) and np.array_equal(frames[150], frames[6])
    assert not np.array_equal(frames[71], frames[0])
    assert all(b > a for a, b in zip(stamps, stamps[1:]))


def test_image_folder_yields_every_image_then_ends(scenes):
    src = ImageSource([scenes])
    src.open()
    names = []
    with pytest.raises(EndOfStream):
        while True:
            img = src.read()
            assert img.ndim == 3 and img.shape[2] == 3
            names.append(src.current.name)
    assert len(names) == 22 and "skimage_astronaut.png" in names


def test_unreadable_image_is_skipped_and_counted(scenes, tmp_path):
    for name in ("facerec_obama.jpg", "pyfeat_single_face.jpg"):
        shutil.copy(scenes / name, tmp_path / name)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    src = ResilientSource(ImageSource([tmp_path]))
    src.open()
    frames = []
    while (frame := src.next()) is not None:
        frames.append(frame)
    assert len(frames) == 2 and src.bad_frames == 1 and src.failures == 0


def test_auto_falls_back_to_the_bundled_clip_without_a_camera(monkeypatch):
    monkeypatch.setattr("edge.sources.picamera.available", lambda: False)
    monkeypatch.setattr("os.path.exists", lambda p: False if p == "/dev/video0" else True)
    src = create_source(SourceConfig())
    assert isinstance(src, OpenCVSource) and src.uri == str(SAMPLE_CLIP)
    assert SAMPLE_CLIP.stat().st_size > 100_000


def test_missing_file_and_camera_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no such video file"):
        OpenCVSource(str(tmp_path / "none.mp4")).open()
    with pytest.raises(SourceError, match="no such image or folder"):
        ImageSource([tmp_path / "none.jpg"])
