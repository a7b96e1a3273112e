"""The yunet kind (edge/detectors/yunet.py) on real photos, the model files the repository
ships (registry.py, fetch_models, check), and the .tflite against OpenCV's run of the .onnx
it is made from (convert/yunet_tflite.py): floors from bench/results/classroom.md, YuNet,
with room for one miss where the benchmark found every face."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detectors import DetectorConfig, DetectorModelError, create_detector
from edge.detectors import fetch_models
from edge.detectors.registry import YUNET_FILE, YUNET_TFLITE_FILE, model_files
from edge.detectors.yunet import YuNetDetector, YuNetNet, input_size
from edge.detectors.yunet_config import YuNetConfig

ROOT = Path(__file__).resolve().parents[1]
ONNX = ROOT / "models" / YUNET_FILE.name
SHIPPED = ROOT / "models" / YUNET_TFLITE_FILE.name     # what the device runs
sys.path.insert(0, str(ROOT / "bench"))
import classroom_material as material  # noqa: E402

NO_FACE = ["skimage_chelsea.png", "skimage_coffee.png", "skimage_rocket.jpg", "dlib_scream.jpg",
           "skimage_hubble_deep_field.jpg", "pyfeat_free-mountain-vector-01.jpg",
           "mtcnn_no-faces.jpg"]


@pytest.fixture(scope="module")
def yunet():
    det = create_detector(DetectorConfig(kind="yunet"))
    yield det
    det.close()


def test_the_source_file_is_the_one_opencv_zoo_publishes():
    """sha256 = the Git LFS oid of opencv_zoo's face_detection_yunet_2023mar.onnx."""
    assert YUNET_FILE.in_repository and YUNET_FILE.licence == "MIT"
    assert YUNET_FILE.sha256 == \
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
    assert ONNX.stat().st_size == 232589
    assert fetch_models.sha256(ONNX) == YUNET_FILE.sha256
    # the device runs the .tflite made from it, and only that
    assert YUNET_TFLITE_FILE.in_repository and YUNET_TFLITE_FILE.licence == "MIT"
    assert fetch_models.sha256(SHIPPED) == YUNET_TFLITE_FILE.sha256
    assert YUNET_TFLITE_FILE.name in model_files() and YUNET_FILE.name not in model_files()
    # its default input is one LiteRT can plan as loaded, on every CPU (1x1, Keras's, is not
    # on arm64: a 2x2 pool of a 1x1 map); any other size is set before a call
    from edge import litert
    interp = litert.interpreter(path=SHIPPED)
    inp = interp.get_input_details()[0]
    assert list(inp["shape"]) == [1, 64, 64, 3] and list(inp["shape_signature"]) == [1, -1, -1, 3]
    interp.invoke()


def test_the_shipped_tflite_is_made_again_from_the_onnx(tmp_path, shared):
    """`python -m convert yunet-tflite` from the verified .onnx gives the shipped bytes,
    after checking its outputs against OpenCV's run of the .onnx on real photos."""
    pytest.importorskip("tensorflow")
    out = tmp_path / YUNET_TFLITE_FILE.name
    r = subprocess.run([sys.executable, "-m", "convert", "yunet-tflite", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "largest difference from OpenCV's outputs" in r.stdout
    assert fetch_models.sha256(out) == YUNET_TFLITE_FILE.sha256
    # a file that is not opencv_zoo's is not converted
    bad = tmp_path / "other.onnx"
    bad.write_bytes(ONNX.read_bytes()[:-1] + b"\0")
    r = subprocess.run([sys.executable, "-m", "convert", "yunet-tflite", "--source", str(bad),
                        "--out", str(tmp_path / "x.tflite")], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 2 and "is not opencv_zoo's" in r.stderr
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.parametrize("name, size", [("pyfeat_multi_face.jpg", (853, 480)),
                                        ("facerec_two_people.jpg", None),
                                        ("intel_headpose_female-and-male_f20.png", None),
                                        ("mtcnn_ivan.jpg", (192, 128))])
def test_the_same_faces_as_opencvs_face_detector_yn(scenes, name, size):
    """YuNetNet gives the rows cv2.FaceDetectorYN gives for the .onnx (boxes, scores, order),
    at a low threshold so that many candidates go through NMS."""
    img = cv2.imread(str(scenes / name))
    if size:
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    ref = cv2.FaceDetectorYN.create(str(ONNX), "", (w, h), 0.3, 0.3, 5000)
    _, rows = ref.detect(img)
    net = YuNetNet(SHIPPED, 0.3, 0.3, split_above=1024)    # the whole image in one call
    net.set_input_size(w, h)
    got = net.detect(img)
    assert rows is not None and len(rows) >= 1
    assert got.shape == (len(rows), 5)
    assert np.abs(got[:, :4] - rows[:, :4]).max() < 0.01
    assert np.abs(got[:, 4] - rows[:, 14]).max() < 1e-4


@pytest.mark.parametrize("px", [24, 48, 96])
def test_bands_find_the_faces_one_call_finds(shared, px):
    """A 720p frame at 2/3 (853x480) as two bands of 320 rows: the same faces as in one
    call, each once (a face in the overlap is kept by one band), boxes within 3 px."""
    img = cv2.resize(material.mosaic(px, material.FRAMES["720p"]).image, (853, 480),
                     interpolation=cv2.INTER_AREA)
    one = YuNetNet(SHIPPED, 0.5, 0.3, split_above=512)
    bands = YuNetNet(SHIPPED, 0.5, 0.3)
    for net in (one, bands):
        net.set_input_size(853, 480)
    assert len(bands._bands) == 2 and len(one._bands) == 1
    a, b = one.detect(img), bands.detect(img)
    assert len(a) == len(b) >= 3, (len(a), len(b))
    for row in a:
        d = np.abs(b[:, :4] - row[:4]).max(axis=1)
        assert d.min() < 3.0, (row, d.min())


def test_finds_the_annotated_scene_faces(yunet, scenes):
    """Every hand-checked face of the scene photos (frontal, turned, small, cut off)."""
    found = total = extra = 0
    for name, info in material.scene_faces().items():
        img = cv2.imread(str(scenes / name))
        hit, more = material.match([d.box for d in yunet.detect(img)],
                                   [tuple(b) for b in info["faces"]])
        found, total, extra = found + sum(hit), total + len(hit), extra + more
    assert total >= 20                 # the benchmark: 23 of 23, no other box
    assert found >= total - 1 and extra <= 1, (found, total, extra)


@pytest.mark.parametrize("name", NO_FACE)
def test_no_face_scenes_stay_empty(yunet, scenes, name):
    assert yunet.detect(cv2.imread(str(scenes / name))) == []


def test_the_thirty_faces_of_the_mosaic(yunet, shared):
    frame = material.six_groups()
    hit, extra = material.match([d.box for d in yunet.detect(frame.image)], frame.faces)
    assert sum(hit) >= 29 and extra == 0, (sum(hit), extra)


def test_faces_of_24_px_at_the_default_scale(yunet, shared):
    """The issue's target at 24 px is recall 0.75; the benchmark measured 0.91 / 0.87."""
    for size in material.FRAMES.values():
        frame = material.mosaic(24, size)
        hit, extra = material.match([d.box for d in yunet.detect(frame.image)], frame.faces)
        assert sum(hit) / len(hit) >= 0.8 and extra <= 1, (size, sum(hit), len(hit), extra)


def test_boxes_are_square_like_the_annotations(yunet, scenes):
    """YuNet's brow-to-chin box is turned into the annotations' square box, so min_face and
    the classifier's crop mean the same for every detector."""
    img = cv2.imread(str(scenes / "pyfeat_multi_face.jpg"))
    truth = [tuple(b) for b in material.scene_faces()["pyfeat_multi_face.jpg"]["faces"]]
    found = yunet.detect(img)
    assert len(found) == len(truth) == 5
    for t in truth:
        d = max(found, key=lambda d: _iou(d.box, t))
        assert abs(d.box[2] - d.box[3]) <= 1 and _iou(d.box, t) > 0.6, (d.box, t)


def _iou(a, b) -> float:
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def test_weak_tier_lies_between_continue_and_min_score(scenes):
    """Strong and weak faces together are what one threshold at continue_score finds."""
    img = cv2.imread(str(scenes / "intel_face-demographics-walking-and-pause_f30.png"))
    img = np.ascontiguousarray(np.vstack([img, cv2.imread(str(scenes / "mtcnn_ivan.jpg"))[
        :img.shape[0], :img.shape[1]]]))
    tiered = YuNetDetector(SHIPPED, min_score=0.9, continue_score=0.3)
    plain = YuNetDetector(SHIPPED, min_score=0.3)
    strong, weak = tiered.detect_tiers(img)
    assert weak and all(0.3 <= d.score < 0.9 for d in weak)
    assert all(d.score >= 0.9 for d in strong) and tiered.detect(img) == strong
    assert sorted(strong + weak, key=lambda d: -d.score) == plain.detect(img)


def test_roi_and_scale_keep_boxes_in_frame_pixels(scenes):
    img = cv2.imread(str(scenes / "facerec_two_people.jpg"))
    whole = YuNetDetector(SHIPPED, YuNetConfig(scale=1.0)).detect(img)
    half = YuNetDetector(SHIPPED, YuNetConfig(scale=0.5)).detect(img)
    right = YuNetDetector(SHIPPED, roi=(0.5, 0.0, 0.5, 1.0)).detect(img)
    assert len(whole) == len(half) == 2 and len(right) == 1
    for d in half:
        assert max(_iou(d.box, w.box) for w in whole) > 0.7
    assert max(_iou(right[0].box, w.box) for w in whole) > 0.8
    assert right[0].box[0] >= img.shape[1] // 2 - 5


class _CountingNet:
    """Forwards to the real network, counting the sizes it is set to."""
    def __init__(self, net):
        self.net, self.sizes = net, []

    def set_input_size(self, w, h):
        if not self.sizes or self.sizes[-1] != (w, h):
            self.sizes.append((w, h))
        self.net.set_input_size(w, h)

    def detect(self, img):
        return self.net.detect(img)


def test_input_size_changes_only_with_the_frame_and_stays_in_budget(shared):
    det = YuNetDetector(SHIPPED)
    det._net = counting = _CountingNet(det._net)
    small = material.six_groups().image
    for _ in range(3):
        det.detect(small)
    assert counting.sizes == [(857, 482)]          # 1280x720 at 0.67, set once
    big = material.six_groups((3840, 2160)).image   # a 4K frame: capped, not 5.6 MP
    assert len(det.detect(big)) >= 29
    w, h = counting.sizes[-1]
    assert w * h <= YuNetConfig().max_pixels and len(counting.sizes) == 2
    assert input_size(4000, 3000, YuNetConfig())[0] * input_size(4000, 3000, YuNetConfig())[1] \
        <= YuNetConfig().max_pixels                 # a 12 MP photo too


def test_missing_and_corrupt_model_are_one_line(tmp_path):
    with pytest.raises(DetectorModelError, match="YuNet model not found") as e:
        create_detector(DetectorConfig(kind="yunet", models_dir=str(tmp_path)))
    assert "\n" not in str(e.value)
    (tmp_path / YUNET_TFLITE_FILE.name).write_bytes(SHIPPED.read_bytes()[:100_000])  # cut
    with pytest.raises(DetectorModelError, match="not a usable TFLite model") as e:
        create_detector(DetectorConfig(kind="yunet", models_dir=str(tmp_path)))
    assert "\n" not in str(e.value) and len(str(e.value)) < 400
    with pytest.raises(fetch_models.FetchError, match="LiteRT cannot run it") as e:
        fetch_models.run_each(tmp_path)
    assert "\n" not in str(e.value)
    # another .tflite under YuNet's name (short range: one fixed input, other outputs)
    shutil.copy(DetectorConfig().model_dir() / "face_detection_short_range.tflite",
                tmp_path / YUNET_TFLITE_FILE.name)
    with pytest.raises(DetectorModelError, match="not YuNet as") as e:
        create_detector(DetectorConfig(kind="yunet", models_dir=str(tmp_path)))
    assert "\n" not in str(e.value)


def test_the_onnx_as_the_far_model_says_what_to_run(tmp_path):
    """[detector.far] model = the .onnx (the default before YuNet ran in LiteRT)."""
    from edge.detectors.far import FarConfig
    with pytest.raises(DetectorModelError, match="runs from a .tflite file") as e:
        create_detector(DetectorConfig(far=FarConfig(model=str(ONNX))))
    assert "\n" not in str(e.value) and "convert yunet-tflite" in str(e.value)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01    # inside a weight: LiteRT still loads it
    path.write_bytes(bytes(data))


@pytest.fixture()
def models_copy(tmp_path):
    """A models folder with every registry file (the BlazeFace ones fetched if missing)."""
    src = DetectorConfig().model_dir()
    fetch_models.fetch(src, log=lambda *_: None)
    d = tmp_path / "models"
    d.mkdir()
    for name in model_files():
        shutil.copy(src / name, d / name)
    return d


def test_fetch_copies_the_shipped_file_and_verify_runs_it(models_copy, capsys):
    (models_copy / YUNET_TFLITE_FILE.name).unlink()
    said = []
    fetch_models.fetch(models_copy, log=said.append)   # no download: only the copy
    assert said == [f"  {models_copy / YUNET_TFLITE_FILE.name} (copied from the repository, "
                    "sha256 ok, LiteRT loads it)"]
    assert fetch_models.is_valid(models_copy / YUNET_TFLITE_FILE.name)
    fetch_models.run_each(models_copy)
    assert f"LiteRT runs {YUNET_TFLITE_FILE.name} ... ok" in capsys.readouterr().out


def test_a_changed_byte_is_refused_in_one_line(models_copy, monkeypatch, capsys, tmp_path):
    _flip_one_byte(models_copy / YUNET_TFLITE_FILE.name)
    # The installed copy is replaced from the checkout's good one ...
    fetch_models.fetch(models_copy, log=lambda *_: None)
    assert fetch_models.is_valid(models_copy / YUNET_TFLITE_FILE.name)
    # ... but a changed file in the checkout itself is refused, and kept for git to restore.
    monkeypatch.setattr(fetch_models, "SHIPPED", models_copy)
    _flip_one_byte(models_copy / YUNET_TFLITE_FILE.name)
    assert fetch_models.main(["--dest", str(tmp_path / "dest"), "--verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not the recorded" in err and "git checkout" in err, err
    assert (models_copy / YUNET_TFLITE_FILE.name).exists()
    # `emotion-edge check` loads it (one byte of a weight) but says it is not the file.
    from edge.check import _detector
    from edge.config import from_dict
    cfg = from_dict({"detector": {"kind": "yunet", "models_dir": str(models_copy)}})
    with pytest.raises(ValueError, match=f"{YUNET_TFLITE_FILE.name}: sha256 differs"):
        _detector(cfg)
    shutil.copy(SHIPPED, models_copy / YUNET_TFLITE_FILE.name)
    assert _detector(cfg) == "yunet (1 model file(s), sha256 ok, MIT)"


def _recall_24(det) -> float:
    found = total = 0
    for size in material.FRAMES.values():
        frame = material.mosaic(24, size)
        hit, _ = material.match([d.box for d in det.detect(frame.image)], frame.faces)
        found, total = found + sum(hit), total + len(frame.faces)
    return found / total


def test_yunet_as_the_far_pass_finds_more_far_faces(shared):
    """By default ([detector.far] model empty, or YuNet's .tflite) blazeface-multiscale's far
    pass and refresh run YuNet (measured: 24 px recall 0.89 against short range's 0.76 on these mosaics),
    and the issue's 30-face frame stays 30 of 30 with no extra box."""
    from edge.detectors.far import FarConfig
    short = create_detector(DetectorConfig(far=FarConfig(model="face_detection_short_range.tflite")))
    far = create_detector(DetectorConfig())     # the default far pass: YuNet
    try:
        r_short, r_yunet = _recall_24(short), _recall_24(far)
        six = material.six_groups()
        hit, extra = material.match([d.box for d in far.detect(six.image)], six.faces)
    finally:
        short.close()
        far.close()
    assert r_yunet >= 0.85 and r_yunet >= r_short + 0.08, (r_yunet, r_short)
    assert sum(hit) >= 29 and extra == 0, (sum(hit), extra)


def test_the_yunet_far_pass_follows_the_classroom_video(shared, tmp_path):
    """The default pipeline (YuNet's far pass and its refresh, edge/detectors/refresh.py)
    on the 3x3 classroom video: at most 1.2 tracks a person (measured: 15 for 15)."""
    import json

    from edge import config
    from edge.pipeline import Monitor
    clip = material.classroom_clip(tmp_path / "classroom.mp4")
    cfg = config.from_dict({"source": {"uri": str(clip), "realtime": False},
                            "log": {"dir": str(tmp_path)}, "console": {"enabled": False},
                            "monitor": {"summary_interval": 3600}})
    Monitor(cfg).run()
    records = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    tracks = {r["track"] for r in records if r["event"] == "face_appeared"}
    assert material.CLASSROOM_PEOPLE <= len(tracks) <= 1.2 * material.CLASSROOM_PEOPLE, \
        len(tracks)
