"""Faces read on a worker thread (edge/reading.py): the same events every run, whatever
the machine's speed; a new face appears with its first emotion; nothing read is lost."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from edge.classifier import ClassifierConfig, FaceClassifier
from edge.pipeline import Monitor
from edge.reading import FaceReader
from edge.tracker import Track
from test_pipeline import make_config, read_log, tracks_in

TWO_PEOPLE = "intel_head-pose-face-detection-female-and-male.mp4"


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("ts", "fps")} for r in records]


def test_reading_in_the_background_gives_the_same_log_every_run(tmp_path, videos):
    """The reads are folded in at the next detector run, never when they happen to finish:
    two runs give the same log, and a slow worker (each read made 30 ms slower) too."""
    clip = videos / TWO_PEOPLE
    logs = []
    for run, slow in enumerate((False, False, True)):
        monitor = Monitor(make_config(tmp_path / str(run), clip))
        assert monitor.classifier.cfg.background    # the default
        if slow:
            predict = monitor.classifier.predict
            monitor.classifier.predict = lambda faces: threading.Event().wait(0.03) or \
                predict(faces)
        switch = sys.getswitchinterval()
        monitor.run()
        assert sys.getswitchinterval() == switch    # 0.5 ms only while the loop runs
        logs.append(without_times(read_log(tmp_path / str(run))))
    assert len(tracks_in(logs[0])) in {2, 3}
    assert any(r["event"] == "emotion_changed" for r in logs[0])
    assert logs[1] == logs[0] and logs[2] == logs[0]


def test_new_faces_appear_as_they_do_when_read_in_the_loop(tmp_path, videos):
    """A face never read is read at once: the faces appear on the same frames with the same
    first emotion whether later reads run beside the loop or in it."""
    appeared = {}
    for background in (True, False):
        Monitor(make_config(tmp_path / str(background), videos / TWO_PEOPLE,
                            classifier={"background": background})).run()
        records = read_log(tmp_path / str(background))
        appeared[background] = [r for r in without_times(records)
                                if r["event"] == "face_appeared"]
        assert records[-1]["event"] == "stopped"
    assert appeared[True] and appeared[True] == appeared[False]
    assert all(r["emotion"] for r in appeared[True])


def _track(box, read_before: bool) -> Track:
    t = Track(id=1, box=np.array(box, float), first_seen=0.0, last_seen=0.0)
    if read_before:
        t.probs = np.full(7, 1 / 7, np.float32)
    return t


@pytest.mark.parametrize("background", [True, False])
def test_a_reader_reads_what_the_classifier_reads(scenes, background):
    """Started, collected: the probabilities of FaceClassifier.classify, whichever thread
    computed them; a face never read is done at once; one batch in flight at most."""
    import cv2
    classifier = FaceClassifier(ClassifierConfig(background=background))
    bgr = cv2.imread(str(scenes / "pyfeat_multi_face.jpg"))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    boxes = [(100, 60, 80, 80), (300, 80, 70, 70), (-20, 500, 40, 40)]
    want = classifier.classify(gray, boxes)
    # The monitor cuts BGR crops and turns only them gray: the same faces, bit for bit.
    np.testing.assert_array_equal(classifier.prepare(bgr, boxes).copy(),
                                  classifier.prepare(gray, boxes))
    reader = FaceReader(classifier)
    try:
        tracks = [_track(b, read_before=True) for b in boxes]
        reader.start(gray, tracks)
        assert reader.read_at_once is not background
        with pytest.raises(RuntimeError, match="not collected"):
            reader.start(gray, tracks)
        got_tracks, probs = reader.collect()
        assert all(a is b for a, b in zip(got_tracks, tracks, strict=True))
        np.testing.assert_allclose(probs, want, atol=1e-6)
        assert reader.collect() is None
        reader.start(gray, [_track(boxes[0], read_before=False)])   # a new face
        assert reader.read_at_once
        np.testing.assert_allclose(reader.collect()[1], want[:1], atol=1e-6)
        reader.start(gray, [])
        assert reader.collect() is None
    finally:
        reader.close()
