"""Far faces: the size curve (``convert size-curve``) and the low-resolution training view."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from conftest import MODELS
from convert import data as fer
from test_convert import run_convert

pytest.importorskip("tensorflow", reason="the host toolchain needs the 'host' extra")


@pytest.fixture(scope="module")
def val(fer_npz):
    return fer.load_npz(fer_npz, "val")


def sharpness(faces: np.ndarray) -> float:
    """Mean absolute Laplacian: what a far camera loses first."""
    return float(np.mean([np.abs(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F)).mean()
                          for f in faces]))


def test_a_face_at_a_size_is_the_camera_view(val):
    from convert.sizes import at_size

    faces = val.x[:50]
    small = at_size(faces, 16)
    assert small.shape == (50, 16, 16) and small.dtype == np.uint8
    # area averaging keeps each face's brightness; nearest only picks pixels
    np.testing.assert_allclose(small.mean(axis=(1, 2)), faces.mean(axis=(1, 2)), atol=1.0)
    assert not np.array_equal(at_size(faces, 16, "nearest"), small)
    assert at_size(faces, 48) is faces


def test_low_res_view_is_down_then_up_with_the_device_resize(val):
    """Each degraded face is exactly: brought down to its drawn size by its drawn camera
    interpolation, rounded to 8 bits, enlarged by the device's own resize; the others are
    left as they were."""
    from convert.sizes import DOWN, LowRes
    from edge.classifier import resize_into

    faces = val.x[:200].astype(np.float32)
    view = LowRes(12, 48, share=0.6)
    out = view(faces, np.random.default_rng(5))
    rng = np.random.default_rng(5)  # replay the draws
    sizes, kinds = view.sizes(200, rng), rng.integers(0, len(view.downs), 200)
    changed = (sizes > 0) & (sizes < 48)
    assert 0.45 < changed.mean() < 0.7 and sizes[changed].min() >= 12
    assert (sizes[changed] < 24).sum() > 20  # the small sizes are well represented
    np.testing.assert_array_equal(out[~changed], faces[~changed])
    for i in np.flatnonzero(changed)[:30]:
        small = cv2.resize(faces[i], (int(sizes[i]),) * 2,
                           interpolation=DOWN[view.downs[kinds[i]]])
        up = np.empty((48, 48), np.uint8)
        resize_into(np.clip(np.rint(small), 0, 255).astype(np.uint8), up)
        np.testing.assert_array_equal(out[i], up)
    assert sharpness(out[changed]) < 0.8 * sharpness(faces[changed])
    with pytest.raises(ValueError, match="LOW-HIGH"):
        LowRes.parse("24", 0.5)


def test_training_batches_include_far_faces(val):
    """``--low-res``: the same augmented faces as without it, then brought down and up."""
    from convert.train import TrainConfig, make_batches

    n = 64
    y = np.eye(7, dtype=np.float32)[val.y[:n]]
    w = np.arange(n, dtype=np.float32)
    plain, _, pw = next(iter(make_batches(val.x[:n], y, w, TrainConfig(), 48)))
    far, _, fw = next(iter(make_batches(val.x[:n], y, w, TrainConfig(low_res="12-24",
                                                                      low_res_share=1.0), 48)))
    assert np.array_equal(pw.numpy(), fw.numpy())
    to_pixels = lambda t: (t.numpy()[..., 0] + 1) * 127.5  # noqa: E731
    assert sharpness(to_pixels(far)) < 0.7 * sharpness(to_pixels(plain))


def test_shipped_model_loses_accuracy_on_small_faces():
    """The size curve of the shipped int8 model, by the device's code, on 600 val faces: the
    full size scores as `evaluate` does, and 16 px faces lose more than 10 points (the card:
    about 25 on all of val) — a curve that stays flat means the faces were not made small."""
    r = run_convert("size-curve", MODELS / "emotion_int8.tflite", "--sizes", "16,48",
                    "--limit", "600", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    curve = json.loads(r.stdout.strip().splitlines()[-1])
    assert curve["kind"] == "int8" and curve["n"] > 580
    r = run_convert("evaluate", MODELS / "emotion_int8.tflite", "--labels", "ferplus",
                    "--limit", "600", "--json")
    assert curve["accuracy"]["48"] == round(json.loads(r.stdout.strip().splitlines()[-1])["accuracy"], 4)
    assert curve["accuracy"]["16"] < curve["accuracy"]["48"] - 0.10, curve


def test_training_keeps_the_epoch_best_across_face_sizes(tmp_path):
    """``--val-sizes``: each epoch is scored at those sizes too, logged, and the best epoch is
    the one with the best mean of them and the full size."""
    run = tmp_path / "far"
    r = run_convert("train", "--model", "vgg_bn", "--target", "ferplus-votes",
                    "--init", MODELS / "emotion.keras", "--low-res", "12-48",
                    "--val-sizes", "24,16", "--limit", "64", "--val-limit", "128",
                    "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "16",
                    "--lr", "1e-5", "--warmup-epochs", "0", "--run", run)
    assert r.returncode == 0, r.stderr[-2000:]
    with (run / "log.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    accs = [float(row[k]) for k in ("val_accuracy", "val_accuracy_24px", "val_accuracy_16px")]
    assert float(row["val_size_score"]) == pytest.approx(np.mean(accs))
    assert accs[0] > accs[2]  # the shipped start reads small faces worse
    assert json.loads((run / "state.json").read_text())["best"] == pytest.approx(np.mean(accs))


def test_freeze_bn_keeps_the_starting_models_batch_norm(tmp_path):
    """``--freeze-bn``: fine-tuning on far faces at a large rate moves the convolutions but
    leaves every BatchNorm layer's statistics, scale and offset as the shipped model has
    them, and a resumed run keeps them frozen."""
    import keras

    run = tmp_path / "fbn"
    args = ["train", "--model", "vgg_bn", "--target", "ferplus-votes",
            "--init", MODELS / "emotion.keras", "--low-res", "12-24", "--low-res-share", "1",
            "--freeze-bn", "--limit", "64", "--val-limit", "64", "--steps-per-epoch", "2",
            "--batch-size", "16", "--lr", "1e-3", "--warmup-epochs", "0", "--run", run]
    r = run_convert(*args, "--epochs", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BatchNorm layers frozen" in r.stdout
    assert run_convert(*args, "--epochs", "2").returncode == 0  # resumed from last.keras

    start = keras.models.load_model(MODELS / "emotion.keras", compile=False)
    tuned = keras.models.load_model(run / "last.keras", compile=False)
    bn = [(a, b) for a, b in zip(start.layers, tuned.layers)
          if isinstance(a, keras.layers.BatchNormalization)]
    assert len(bn) >= 8
    for a, b in bn:
        assert not b.trainable
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    convs = [(a, b) for a, b in zip(start.layers, tuned.layers)
             if isinstance(a, keras.layers.Conv2D)]
    assert all(np.abs(a.get_weights()[0] - b.get_weights()[0]).max() > 1e-5 for a, b in convs)
    assert json.loads((run / "state.json").read_text())["epoch"] == 1


def test_quantize_checks_int8_at_every_face_size(tmp_path, fer_npz):
    """``quantize --sizes``: float and int8 are scored on val faces of each size, the curves
    go into the sidecar (the full size's figure is the usual val figure), and int8 may lose
    at most ``--max-drop`` at any of them. A small npz keeps it quick."""
    with np.load(fer_npz) as d:
        small = {f"{k}_{s}": d[f"{k}_{s}"][:n] for s, n in (("train", 2000), ("val", 400))
                 for k in ("x", "y", "ferplus")}
    np.savez(tmp_path / "small.npz", **small)
    out = tmp_path / "q.tflite"
    r = run_convert("quantize", MODELS / "emotion.keras", "-o", out, "--data",
                    tmp_path / "small.npz", "--calib", "140", "--target", "ferplus-votes",
                    "--sizes", "16,48")
    assert r.returncode == 0, r.stderr[-2000:]
    val = json.loads(out.with_suffix(".json").read_text())["val"]
    curves = val["by_face_size"]
    assert curves["float"]["48"] == val["float_accuracy"]
    assert curves["int8"]["48"] == val["int8_accuracy"]
    assert curves["int8"]["16"] < curves["int8"]["48"] - 0.10
    assert abs(curves["float"]["16"] - curves["int8"]["16"]) < 0.03
    r = run_convert("quantize", MODELS / "emotion.keras", "-o", tmp_path / "r.tflite",
                    "--data", tmp_path / "small.npz", "--calib", "70", "--sizes", "x")
    assert r.returncode == 2 and "--sizes 'x'" in r.stderr


def test_interpolate_blends_a_fine_tune_back_toward_its_start(tmp_path):
    """``convert interpolate`` (WiSE-FT): every weight is (1 - alpha) x start + alpha x tuned;
    a tuned model whose BatchNorm statistics moved is refused in one line (the blend would
    have no statistics of its own)."""
    import keras

    start = keras.models.load_model(MODELS / "emotion.keras", compile=False)
    tuned = keras.models.load_model(MODELS / "emotion.keras", compile=False)
    convs = [layer for layer in tuned.layers if isinstance(layer, keras.layers.Conv2D)]
    rng = np.random.default_rng(0)
    for layer in convs:
        layer.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype)
                           for w in layer.get_weights()])
    tuned.save(tmp_path / "tuned.keras")
    r = run_convert("interpolate", MODELS / "emotion.keras", tmp_path / "tuned.keras",
                    "--alpha", "0.25", "-o", tmp_path / "blend.keras")
    assert r.returncode == 0, r.stderr[-2000:]
    blend = keras.models.load_model(tmp_path / "blend.keras", compile=False)
    for a, b, m in zip(start.get_weights(), tuned.get_weights(), blend.get_weights()):
        np.testing.assert_allclose(m, 0.75 * a + 0.25 * b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(blend.get_weights()[0], start.get_weights()[0])

    bn = next(layer for layer in tuned.layers if isinstance(layer, keras.layers.BatchNormalization))
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma, beta, mean + 0.1, var])
    tuned.save(tmp_path / "moved.keras")
    r = run_convert("interpolate", MODELS / "emotion.keras", tmp_path / "moved.keras",
                    "--alpha", "0.5", "-o", tmp_path / "bad.keras")
    assert r.returncode == 2
    assert "--freeze-bn" in r.stderr and not (tmp_path / "bad.keras").exists()
