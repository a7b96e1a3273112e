"""Issue #27, models: ``check`` proves what ``run`` will do. Every model and sidecar that
would crash ``run`` at the first face is refused by ``run``, ``check`` and the model switch
with the same one line. The bad variants are made from the shipped files in tmp dirs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import MODELS, ROOT
from edge import cli, config
from edge.classifier import ClassifierConfig, FaceClassifier, ModelError
from edge.pipeline import Monitor

EMOTION_EDGE = [sys.executable, "-m", "edge"]
SIDECAR = json.loads((MODELS / "emotion_int8.json").read_text())


def emotion_copy(tmp_path: Path, name: str = "model", **changes) -> Path:
    """The shipped emotion model with its sidecar changed as given (None: key removed)."""
    model = tmp_path / f"{name}.tflite"
    shutil.copy(MODELS / "emotion_int8.tflite", model)
    side = dict(SIDECAR)
    for k, v in changes.items():
        if v is None:
            side.pop(k, None)
        else:
            side[k] = v
    model.with_suffix(".json").write_text(json.dumps(side))
    return model


def micro_as_emotion(tmp_path: Path) -> Path:
    """The micro-expression model passed as --model, with a sidecar that looks right."""
    model = tmp_path / "micro.tflite"
    shutil.copy(MODELS / "micro_flow_int8.tflite", model)
    side = {**SIDECAR, "input_size": [28, 28], "labels": ["negative", "positive", "surprise"]}
    side.pop("sha256")
    side.pop("face_size", None)
    model.with_suffix(".json").write_text(json.dumps(side))
    return model


LABELS = SIDECAR["labels"]
BAD = {
    "fewer labels": (dict(labels=LABELS[:-1]), "sidecar names 6 labels"),
    "more labels": (dict(labels=[*LABELS, "contempt"]), "sidecar names 8 labels"),
    "face_size 0": (dict(face_size=[0, 0]), "face_size"),
    "face_size 1 value": (dict(face_size=[48]), "face_size"),
    "input size": (dict(input_size=[64, 64]), "but the sidecar says"),
    "not gray": (dict(grayscale=False), "grayscale"),
    "labels repeat": (dict(labels=[*LABELS[:-1], "angry"]), "distinct"),
    "labels not names": (dict(labels=[1, 2, 3, 4, 5, 6, 7]), "labels"),
    "pixel scale text": (dict(pixel_scale="1/255"), "pixel_scale"),
    "pixel scale 0": (dict(pixel_scale=0), "pixel_scale"),
    "no labels": (dict(labels=None), "labels"),
}


def both_lines(capsys, model: Path, tmp_path: Path, videos: Path) -> tuple[str, str]:
    """(run's error line, check's model line) for ``model``."""
    rc = cli.main(["run", "--model", str(model), "--source",
                   str(videos / "pyfeat_single_face.mp4"), "--log-dir", str(tmp_path / "l")])
    run_err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(run_err) == 1, run_err
    rc = cli.main(["check", "--no-camera", "--model", str(model), "--config",
                   str(_log_config(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 1
    check = next(x for x in out.splitlines() if x.startswith("FAIL  model"))
    return run_err[0].removeprefix("emotion-edge run: "), check.removeprefix("FAIL  model").strip()


def _log_config(tmp_path: Path) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f'[log]\ndir = "{tmp_path / "logs"}"\n')
    return p


@pytest.mark.parametrize("case", list(BAD))
def test_sidecar_that_disagrees_with_its_model_is_refused_alike(tmp_path, videos, capsys, case):
    changes, message = BAD[case]
    model = emotion_copy(tmp_path, **changes)
    run_line, check_line = both_lines(capsys, model, tmp_path, videos)
    assert message in run_line and run_line == check_line


def test_micro_model_as_emotion_model_is_refused_alike(tmp_path, videos, capsys):
    run_line, check_line = both_lines(capsys, micro_as_emotion(tmp_path), tmp_path, videos)
    assert "not gray faces" in run_line and run_line == check_line
    # ... and with its own sidecar
    model = tmp_path / "own" / "micro_flow_int8.tflite"
    model.parent.mkdir()
    shutil.copy(MODELS / "micro_flow_int8.tflite", model)
    shutil.copy(MODELS / "micro_flow_int8.json", model.with_suffix(".json"))
    run_line, check_line = both_lines(capsys, model, tmp_path, videos)
    assert "not a valid model sidecar" in run_line and run_line == check_line


@pytest.mark.parametrize("variant", ["folder", "fifo", "not json", "not utf8", "a list",
                                     "sidecar folder", "sidecar fifo", "empty model"])
def test_model_files_that_are_not_files_are_one_line(tmp_path, videos, capsys, variant):
    model = emotion_copy(tmp_path)
    side = model.with_suffix(".json")
    if variant == "folder":
        model.unlink()
        model.mkdir()
    elif variant == "fifo":
        model.unlink()
        os.mkfifo(model)
    elif variant == "not json":
        side.write_text("{labels: angry")
    elif variant == "not utf8":
        side.write_bytes(b'{"labels": "\xff\xfe"}')
    elif variant == "a list":
        side.write_text("[1, 2]")
    elif variant == "sidecar folder":
        side.unlink()
        side.mkdir()
    elif variant == "sidecar fifo":
        side.unlink()
        os.mkfifo(side)
    else:
        model.write_bytes(b"")
    run_line, check_line = both_lines(capsys, model, tmp_path, videos)
    assert run_line == check_line and "Traceback" not in run_line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_model_and_sidecar_are_one_line(tmp_path, videos, capsys):
    model = emotion_copy(tmp_path)
    for path in (model.with_suffix(".json"), model):
        path.chmod(0)
        run_line, check_line = both_lines(capsys, model, tmp_path, videos)
        assert "cannot read it" in run_line and run_line == check_line
        path.chmod(0o644)


def test_the_model_switch_refuses_the_same_models(tmp_path, videos):
    cfg = config.from_dict({"source": {"uri": str(videos / "pyfeat_single_face.mp4")},
                            "log": {"dir": str(tmp_path)}, "console": {"enabled": False}})
    monitor = Monitor(cfg)
    for case, (changes, message) in BAD.items():
        with pytest.raises(ModelError, match=message.replace("(", r"\(")):
            monitor.switch_model(emotion_copy(tmp_path, case.replace(" ", "_"), **changes))
    assert monitor._next_classifier is None                  # nothing changed


def test_the_shipped_models_pass_and_classify_a_real_face(fer_npz):
    c = FaceClassifier(ClassifierConfig())
    faces = np.load(fer_npz)["x_val"][:4]
    gray = np.zeros((48, 48 * 4), np.uint8)
    for i, f in enumerate(faces):
        gray[:, 48 * i:48 * (i + 1)] = f
    p = c.classify(gray, [(48 * i, 0, 48, 48) for i in range(4)])
    assert p.shape == (4, 7) and np.allclose(p.sum(axis=1), 1, atol=0.05)


def test_a_box_outside_the_frame_is_classified_without_an_opencv_error():
    c = FaceClassifier(ClassifierConfig())
    gray = np.full((120, 160), 128, np.uint8)
    p = c.classify(gray, [(500, 500, 40, 40), (-90, -90, 30, 30), (150, 110, 40, 40)])
    assert p.shape == (3, 7) and np.all(np.isfinite(p))


# --- the micro model: loaded before the camera opens, refused with one line ----------------

def micro_config(tmp_path: Path, model: str) -> Path:
    p = tmp_path / "micro.toml"
    p.write_text(f'[micro]\nenabled = true\nmodel = "{model}"\n[log]\ndir = "{tmp_path / "logs"}"\n')
    return p


@pytest.mark.parametrize("variant", ["missing", "labels", "emotion model"])
def test_bad_micro_model_is_one_line_without_an_abort(tmp_path, videos, variant):
    if variant == "missing":
        model, message = tmp_path / "none.tflite", "sidecar JSON is missing"
    elif variant == "labels":
        model = tmp_path / "m.tflite"
        shutil.copy(MODELS / "micro_flow_int8.tflite", model)
        side = json.loads((MODELS / "micro_flow_int8.json").read_text())
        side["labels"] = ["negative", "positive"]
        model.with_suffix(".json").write_text(json.dumps(side))
        message = "sidecar names 2 labels"
    else:
        model, message = MODELS / "emotion_int8.tflite", "micro model sidecar"
    cfg = micro_config(tmp_path, str(model))
    r = subprocess.run([*EMOTION_EDGE, "run", "--config", str(cfg), "--source",
                        str(videos / "pyfeat_single_face.mp4")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
    assert "terminate called" not in r.stderr
    r = subprocess.run([*EMOTION_EDGE, "check", "--no-camera", "--config", str(cfg)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    fail = [x for x in r.stdout.splitlines() if x.startswith("FAIL  micro")]
    assert r.returncode == 1 and fail and fail[0].split(None, 2)[2] == \
        lines[0].removeprefix("emotion-edge run: ")


def test_faces_dir_that_is_a_file_is_one_line_without_an_abort(tmp_path, videos):
    (tmp_path / "afile").write_text("x")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[monitor]\nsave_faces = true\nfaces_dir = "{tmp_path / "afile"}"\n')
    r = subprocess.run([*EMOTION_EDGE, "run", "--config", str(cfg), "--source",
                        str(videos / "pyfeat_single_face.mp4"), "--log-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "faces_dir" in lines[0], r.stderr
    assert "terminate called" not in r.stderr
