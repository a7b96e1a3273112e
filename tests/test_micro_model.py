"""The shipped models/micro_flow_int8.tflite, run as the device runs it, on the real flow set."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from convert.micro import flowset
from edge.classifier import models_dir
from edge.micro.model import FlowModel

# The shipped model trained on all 442 clips, so this is a training-set score: it cannot
# show generalization (the LOSO figures in the sidecar do), but it catches a broken model
# or a broken input path (channel order, scaling, quantization). Chance is UF1 ~0.33
# (uniform guesses) and 0.24 (always "negative"); a model with LOSO UF1 ~0.7 scores higher
# than that on its own training clips. 0.6 is far above chance and below any sane model.
FLOOR = 0.6


@pytest.fixture(scope="module")
def shipped():
    path = models_dir() / "micro_flow_int8.tflite"
    assert path.is_file(), f"{path} is missing: the shipped micro model is part of the repo"
    return path


def test_sidecar_describes_the_model(shipped):
    side = json.loads(shipped.with_suffix(".json").read_text())
    assert side["labels"] == list(flowset.CLASSES)
    assert side["input_size"] == [28, 28] and side["channels"] == ["u", "v", "strain"]
    assert side["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert side["input_quantization"]["dtype"] == "int8" and side["ops"]["float"] == []
    assert side["loso"]["float_mean"]["all"][0] > 0.5       # LOSO UF1, measured


def test_scores_clearly_above_chance(shipped, micro_npz):
    fs = flowset.load_flowset(micro_npz)
    model = FlowModel(shipped)
    probs = model.predict_many(fs.x)
    assert probs.shape == (442, 3) and np.allclose(probs.sum(1), 1, atol=0.05)
    uf1, uar = flowset.uf1_uar(fs.y, probs.argmax(1))
    assert uf1 >= FLOOR and uar >= FLOOR, (uf1, uar)
    # the same images with u and v swapped (a wrong channel layout) must score clearly worse
    swapped = model.predict_many(fs.x[..., [1, 0, 2]])
    assert flowset.uf1_uar(fs.y, swapped.argmax(1))[0] < uf1 - 0.1
