"""The detector registry (edge/detectors/registry.py): one table that every consumer reads,
and the default kind's two passes (edge/detectors/multiscale.py, wide.py) on real frames."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import config
from edge.detectors import KINDS, DetectorConfig, create_detector
from edge.detectors.anchors import ssd_anchor_centers
from edge.detectors.fetch_models import MODELS, fetch
from edge.detectors.registry import KINDS as REGISTRY, model_files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import classroom_material as material  # noqa: E402


@pytest.fixture(scope="module")
def models_dir():
    d = DetectorConfig().model_dir()
    fetch(d, log=lambda *_: None)
    return d


def test_every_consumer_reads_the_registry():
    assert KINDS == tuple(REGISTRY)
    assert DetectorConfig().kind == next(iter(REGISTRY))          # the first entry: default
    assert set(MODELS) == set(model_files())                      # fetch_models
    listed = subprocess.run([sys.executable, "-m", "edge.detectors.fetch_models", "--list"],
                            capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert listed.split() == list(MODELS)
    notice = (ROOT / "NOTICE").read_text()
    for name, m in model_files().items():
        assert name in notice and m.licence.split("-")[0] in notice, name
        ignored = subprocess.run(["git", "check-ignore", "-q", f"models/{name}"], cwd=ROOT)
        if m.in_repository:   # shipped: tracked in git, so install.sh finds it in a clone
            assert ignored.returncode == 1, f"models/{name} is hidden by .gitignore"
            tracked = subprocess.run(["git", "ls-files", "--error-unmatch", f"models/{name}"],
                                     cwd=ROOT, capture_output=True)
            assert tracked.returncode == 0, f"models/{name} is not tracked"
            assert m.sha256 in notice    # the verified origin is written down with it
        else:
            assert ignored.returncode == 0, f"models/{name} is not in .gitignore"
        assert len(m.sha256) == 64 and m.member.endswith(name)
    help_text = subprocess.run([sys.executable, "-m", "edge", "run", "--help"],
                               capture_output=True, text=True, cwd=ROOT).stdout
    assert all(k in " ".join(help_text.split()) for k in REGISTRY)
    ref = config.reference()
    assert "[detector.far]" in ref and "[detector.yunet]" in ref
    assert all(k in ref for k in REGISTRY)


def test_every_kind_builds_and_runs(models_dir, scenes):
    import cv2
    img = cv2.imread(str(scenes / "facerec_two_people.jpg"))
    for kind in REGISTRY:
        det = create_detector(DetectorConfig(kind=kind))
        assert len(det.detect(img)) == 2, kind
        det.close()


def test_far_subsection_errors_name_the_key(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[detector.far]\nevery = 0\n")
    with pytest.raises(config.ConfigError, match=r"\[detector\.far\] every: must be at least 1"):
        config.load(bad)
    bad.write_text("[detector.far]\nspeed = 2\n")
    with pytest.raises(config.ConfigError, match=r"\[detector\.far\] speed: unknown key"):
        config.load(bad)
    good = tmp_path / "g.toml"
    good.write_text('[detector]\nkind = "blazeface-full"\n[detector.far]\nsmallest_face = 32\n')
    cfg = config.load(good)
    assert cfg.detector.kind == "blazeface-full" and cfg.detector.far.scale == 0.5


def test_anchors_of_a_wide_input():
    a = ssd_anchor_centers((640, 384), (8, 16, 16, 16), 1.0)
    assert a.shape == (80 * 48 * 2 + 40 * 24 * 6, 2)
    np.testing.assert_allclose(a[2], [1.5 / 80, 0.5 / 48])
    np.testing.assert_allclose(a[-1], [39.5 / 40, 23.5 / 24])


def test_the_default_sees_the_thirty_faces_the_old_one_did_not(models_dir):
    frame = material.six_groups()
    old = create_detector(DetectorConfig(kind="blazeface-full"))
    new = create_detector(DetectorConfig())
    hit_old, _ = material.match([d.box for d in old.detect(frame.image)], frame.faces)
    hit, extra = material.match([d.box for d in new.detect(frame.image)], frame.faces)
    assert sum(hit_old) == 0
    assert sum(hit) >= 27 and extra <= 1, (sum(hit), extra)


def test_the_near_pass_runs_every_other_run_while_it_finds_nobody(models_dir):
    import cv2

    from edge.detectors.multiscale import NEAR_IDLE
    photo = cv2.imread(str(material.SHARED / "scenes" / "pyfeat_single_face.jpg"))
    face = np.full((720, 1280, 3), 96, np.uint8)       # a kiosk's close face, one person
    small = cv2.resize(photo, (round(photo.shape[1] * 720 / photo.shape[0]), 720))[:, :1280]
    face[:, :small.shape[1]] = small
    empty = np.full_like(face, 96)
    det = create_detector(DetectorConfig())

    def near_runs(frames):
        before = det.near_runs
        found = [len(det.detect_tiers(f)[0]) for f in frames]
        return det.near_runs - before, found
    # Someone close: every run looks, as the blazeface-full kind does.
    assert near_runs([face] * 4) == (4, [1] * 4)
    # Nobody: NEAR_IDLE runs look, then every other run.
    assert near_runs([empty] * (NEAR_IDLE + 6))[0] == NEAR_IDLE + 3
    # Whoever walks up is found at most one run later, then looked at every run again.
    runs, found = near_runs([face] * 5)
    assert found[1:] == [1] * 4 and runs >= 4, (runs, found)
    # A photo on its own gets the near pass even when the video's next run would skip it.
    assert near_runs([empty] * NEAR_IDLE)[0] == NEAR_IDLE      # the next run would skip
    near_calls, near_detect = [], det.near.detect
    det.near.detect = lambda frame: near_calls.append(1) or near_detect(frame)
    assert len(det.detect(face)) == 1 and near_calls == [1]


def test_far_faces_are_kept_between_far_passes(models_dir):
    from edge.detectors.far import FarConfig
    frame = material.six_groups().image
    blank = np.full_like(frame, 96)
    det = create_detector(DetectorConfig(far=FarConfig(every=4)))

    def video(img):
        return det.detect_tiers(img)[0]
    first = len(video(frame))
    assert first >= 27
    # The next three runs keep the far pass's faces (a classroom moves slowly) ...
    assert [len(video(blank)) for _ in range(3)] == [first] * 3 and det.far_runs == 1
    # ... the fourth looks again: missed once (a head turned away), they are held one
    # more far pass, then dropped.
    assert len(video(blank)) == first and det.far_runs == 2
    assert [len(video(blank)) for _ in range(4)] == [first] * 3 + [0] and det.far_runs == 3
    # Nobody far away: the far pass comes less often; a frame of another size runs it.
    assert [len(video(blank)) for _ in range(7)] == [0] * 7 and det.far_runs == 3
    assert video(np.zeros((360, 640, 3), np.uint8)) == [] and det.far_runs == 4
    # A photo on its own never gets faces of another picture.
    video(frame)
    assert det.detect(blank) == [] and len(det.detect(frame)) == first
