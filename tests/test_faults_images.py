"""Issue #27, pictures of any shape, format and size: validated before OpenCV or LiteRT see
them, downscaled when larger than the pipeline needs, a counted skip or one line when
unusable. All made from a real scene photo in the test's tmp dir."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT
from edge.sources import SourceError
from edge.sources.base import MAX_SIDE, display
from edge.sources.images import header_size, read_image

EMOTION_EDGE = [sys.executable, "-m", "edge"]


def odd_images(folder: Path, photo: np.ndarray) -> tuple[list[str], list[str]]:
    """Writes the variants; returns (usable names, unusable names)."""
    folder.mkdir(exist_ok=True)
    h, w = photo.shape[:2]
    usable = {
        "strip_tall.png": cv2.resize(photo, (40, 3000)),
        "strip_wide.png": cv2.resize(photo, (4000, 60)),
        "min16.png": cv2.resize(photo, (16, 16)),
        "deep16.png": (cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257),
        "alpha.png": cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA),
        "gray.jpg": cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY),
        "plain.bmp": photo,
        "plain.tiff": photo,
        "plain.webp": photo,
        "huge.jpg": cv2.resize(photo, (8000, 8000 * h // w)),
    }
    for name, img in usable.items():
        assert cv2.imwrite(str(folder / name), img), name
    # A name that is not UTF-8 (OpenCV itself would crash on it as a path).
    odd_name = os.fsdecode(b"caf\xe9.jpg")
    (folder / odd_name).write_bytes(cv2.imencode(".jpg", photo)[1].tobytes())
    usable[odd_name] = photo
    unusable = {"one_px.png": cv2.resize(photo, (1, 1)), "tiny.png": cv2.resize(photo, (15, 40)),
                "sliver.png": cv2.resize(photo, (4000, 20))}   # 1920x10 once fitted
    for name, img in unusable.items():
        assert cv2.imwrite(str(folder / name), img)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("not a picture\n")
    (folder / "cut.jpg").write_bytes((folder / "plain.bmp").read_bytes()[:54])
    os.mkfifo(folder / "pipe.jpg")
    (folder / "adir.jpg").mkdir()                 # a folder with an image's name: not listed
    return sorted(usable), sorted([*unusable, "empty.jpg", "text.png", "cut.jpg", "pipe.jpg"])


@pytest.fixture
def photo(scenes):
    return cv2.imread(str(scenes / "pyfeat_single_face.jpg"))


def test_read_image_fits_every_usable_picture_and_refuses_the_rest(tmp_path, photo):
    usable, unusable = odd_images(tmp_path, photo)
    for name in usable:
        img = read_image(tmp_path / name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert max(img.shape[:2]) <= MAX_SIDE and min(img.shape[:2]) >= 16, name
    for name in unusable:
        with pytest.raises(SourceError) as e:
            read_image(tmp_path / name)
        assert len(str(e.value).splitlines()) == 1 and name in str(e.value)


def test_header_size_matches_the_decoded_size(tmp_path, photo):
    for name in ("a.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), cv2.resize(photo, (1234, 567)))
        assert header_size((tmp_path / name).read_bytes()) == (1234, 567)
    assert header_size(b"BM" + b"\0" * 100) is None


def test_a_huge_png_is_decoded_in_gray_and_fitted(tmp_path, photo):
    big = cv2.resize(photo, (8000, 8000))
    cv2.imwrite(str(tmp_path / "huge.png"), big, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    img = read_image(tmp_path / "huge.png")
    assert img.shape == (MAX_SIDE, MAX_SIDE, 3)
    assert np.array_equal(img[..., 0], img[..., 2])      # gray: a third of the memory


@pytest.mark.parametrize("detector", ["blazeface-full", "haar"])
def test_classify_a_folder_of_odd_pictures(tmp_path, photo, detector):
    usable, unusable = odd_images(tmp_path / "in", photo)
    r = subprocess.run([*EMOTION_EDGE, "classify", "--json", "--detector", detector,
                        tmp_path / "in"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    shown = {Path(json.loads(x)["image"]).name for x in r.stdout.splitlines()}
    assert shown == {display(n) for n in usable}
    bad = r.stderr.splitlines()                           # one line per unusable picture
    assert sorted(Path(x.split(":")[0]).name for x in bad) == unusable
    faces = {Path(json.loads(x)["image"]).name: json.loads(x)["faces"]
             for x in r.stdout.splitlines()}
    if detector == "blazeface-full":                      # the face is still found when big
        assert len(faces["huge.jpg"]) == 1 and len(faces["plain.bmp"]) == 1
        odd, plain = faces["caf\\xe9.jpg"], faces["plain.bmp"]    # a JPEG of the same
        assert len(odd) == 1 and odd[0]["emotion"] == plain[0]["emotion"]
        assert np.allclose(odd[0]["box"], plain[0]["box"], atol=4)


def test_run_on_a_folder_of_odd_pictures_counts_what_it_skips(tmp_path, photo):
    usable, unusable = odd_images(tmp_path / "in", photo)
    r = subprocess.run([*EMOTION_EDGE, "run", "--source", tmp_path / "in", "--log-dir",
                        tmp_path / "logs"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    stopped = json.loads((tmp_path / "logs" / "events.jsonl").read_text().splitlines()[-1])
    assert stopped["frames"] == len(usable) and stopped["bad_frames"] == len(unusable)


@pytest.mark.parametrize("kind", ["blazeface-full", "blazeface-short", "haar"])
def test_detectors_take_any_valid_frame_and_refuse_others_with_a_message(photo, kind):
    from edge.detectors import DetectorConfig, create_detector
    det = create_detector(DetectorConfig(kind=kind))
    for shape in ((16, 16), (16, 1920), (1920, 16), (1080, 1920)):
        frame = np.ascontiguousarray(cv2.resize(photo, shape[::-1]))
        assert isinstance(det.detect(frame), list)
    assert isinstance(det.detect(photo[::2, ::3]), list)          # a strided view
    for bad in (photo[..., 0], photo.astype(np.float32), photo[..., :2], np.zeros((0, 0, 3),
                                                                                  np.uint8)):
        try:
            assert det.detect(bad) == []
        except ValueError as exc:
            assert "BGR uint8" in str(exc)
