"""The capture thread on real videos: files lose no frame and no pixel, live sources keep the
newest frames, and errors in the thread reach the frame loop."""
from __future__ import annotations

import hashlib
import time

import pytest

from edge.sources import CaptureThread, ResilientSource
from edge.sources.opencv import OpenCVSource

CLIP = "pyfeat_single_face.mp4"


def digests_read_directly(path) -> list[str]:
    src = ResilientSource(OpenCVSource(str(path), realtime=False))
    src.open()
    out = []
    while (frame := src.next()) is not None:
        out.append(hashlib.sha1(frame.image).hexdigest())
    src.close()
    return out


def test_a_file_read_ahead_delivers_every_frame_intact_and_in_order(videos):
    expected = digests_read_directly(videos / CLIP)
    source = ResilientSource(OpenCVSource(str(videos / CLIP), realtime=False))
    source.open()
    capture = CaptureThread(source, depth=3)
    capture.start()
    got, held = [], []
    try:
        while (frame := capture.next()) is not None:
            held.append(frame)
            # The frame loop is slow: the thread has filled its queue meanwhile, and the
            # previous frame (still referenced, as in the pipeline) must not be overwritten.
            time.sleep(0.002)
            if len(held) > 1:
                assert hashlib.sha1(held[-2].image).hexdigest() == expected[len(held) - 2]
            got.append(hashlib.sha1(frame.image).hexdigest())
        assert capture.next() is None                  # the end stays the end
    finally:
        capture.close()
        source.close()
    assert len(expected) > 60
    assert got == expected
    assert [f.index for f in held] == list(range(len(expected)))
    assert capture.dropped == 0


class LiveVideo(OpenCVSource):
    """A real video played as a camera: at its own frame rate, and it never waits for us."""

    def __init__(self, path):
        super().__init__(str(path), loop=True, realtime=True)
        self.live = self.realtime = True


def test_a_live_source_keeps_the_newest_frames_when_the_loop_is_slow(videos):
    source = ResilientSource(LiveVideo(videos / CLIP))
    source.open()
    capture = CaptureThread(source, depth=2)
    capture.start()
    try:
        first = capture.next()
        time.sleep(0.5)                     # the loop stalls for ~15 camera frames
        after = [capture.next().index for _ in range(3)]
    finally:
        capture.close()
        source.close()
    # It then sees frames from just before now, not the ones right after the stall began.
    assert after[0] - first.index >= 10, after
    assert capture.dropped >= 8
    assert after == sorted(after)


class BrokenAfter(OpenCVSource):
    def __init__(self, path, n: int):
        super().__init__(str(path), realtime=False)
        self.n = n

    def read(self):
        self.n -= 1
        if self.n < 0:
            raise ZeroDivisionError("a bug in a source")
        return super().read()


def test_an_unexpected_error_in_the_thread_is_raised_in_the_frame_loop(videos):
    source = ResilientSource(BrokenAfter(videos / CLIP, 5))
    source.open()
    capture = CaptureThread(source, depth=2)
    capture.start()
    try:
        frames = [capture.next() for _ in range(5)]
        assert all(f is not None for f in frames)
        with pytest.raises(ZeroDivisionError):
            capture.next()
        assert capture.next() is None       # and after it, the stream has ended
    finally:
        capture.close()
        source.close()


def test_close_stops_a_thread_blocked_on_a_full_queue(videos):
    source = ResilientSource(OpenCVSource(str(videos / CLIP), realtime=False))
    source.open()
    capture = CaptureThread(source, depth=2)
    capture.start()
    capture.next()
    time.sleep(0.2)                         # the queue is full; the thread waits to put
    capture.close()                         # raises TimeoutError if it stayed blocked
    assert not capture._thread.is_alive()
    source.close()
