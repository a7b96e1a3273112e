"""Issue #27, property-based: random configs and sidecars through the loaders. The only
outcomes allowed are a valid configuration / model, or one ``ConfigError`` / ``ModelError``
line; anything else (a TypeError, a traceback, a native crash) fails the test."""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import typing
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MODELS
from edge import config
from edge.classifier import EmotionModel, ModelError
from edge.micro.model import FlowModel

SETTINGS = dict(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(
    st.booleans(), st.none(),
    st.integers(), st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 2),
    st.text(max_size=12), st.sampled_from(["auto", "0", "picamera", "haar", "mock", "dis",
                                           "blazeface-full", "", "/dev/null", "rtsp://x"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def keys_of(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(config.SECTIONS[section])]


@st.composite
def raw_configs(draw):
    raw = {}
    for section in draw(st.lists(st.sampled_from([*config.SECTIONS, "nope"])
                                 | st.text(max_size=4), max_size=4, unique=True)):
        if section not in config.SECTIONS or draw(st.integers(0, 9)) == 0:
            raw[section] = draw(values)
            continue
        known = keys_of(section)
        names = draw(st.lists(st.sampled_from([*known, "typo", "a\nb", "\x00", "é"])
                              | st.text(max_size=4), max_size=4, unique=True))
        raw[section] = {k: draw(_value_for(section, k)) for k in names}
    return raw


def _value_for(section: str, key: str):
    """Mostly values of the right type (to reach the range checks), sometimes anything."""
    hints = typing.get_type_hints(config.SECTIONS[section])
    hint = hints.get(key)
    typed = {int: st.integers(-10, 10**6), float: st.floats(allow_nan=True),
             bool: st.booleans(), str: st.text(max_size=10)}.get(hint)
    return st.one_of(typed, values) if typed is not None else values


def one_line(exc: Exception) -> bool:
    text = str(exc)
    return bool(text) and "\n" not in text and "Traceback" not in text


@settings(max_examples=400, **SETTINGS)
@given(raw_configs())
def test_random_configs_are_valid_or_one_line(raw):
    try:
        cfg = config.from_dict(raw, "config.toml")
    except config.ConfigError as exc:
        assert one_line(exc), exc
        assert str(exc).startswith("config.toml: "), exc
        return
    assert isinstance(cfg, config.Config)


@settings(max_examples=200, **SETTINGS)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
       | st.lists(st.sampled_from(["[source]\n", "[tracker]\n", "uri = ", "iou = ", "1.5",
                                   '"x"', "\n", "[", "]", "=", "nan", "inf", "{a=1}",
                                   "[[micro]]\n", "\xe9", "\x00", "true"]),
                  max_size=30).map(lambda parts: "".join(parts).encode("utf-8", "replace")))
def test_random_config_files_are_valid_or_one_line(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "config.toml"
        path.write_bytes(data)
        try:
            config.load(path)
        except config.ConfigError as exc:
            assert one_line(exc), exc


SIDECAR = json.loads((MODELS / "emotion_int8.json").read_text())
FLOW_SIDECAR = json.loads((MODELS / "micro_flow_int8.json").read_text())


@st.composite
def sidecars(draw, base: dict):
    side = dict(base)
    for key in draw(st.lists(st.sampled_from([*base, "face_size", "extra"]), max_size=3,
                             unique=True)):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            side.pop(key, None)
        elif choice == 1 and isinstance(base.get(key), list):   # near the real value
            side[key] = draw(st.lists(st.one_of(st.integers(-2, 100), st.text(max_size=5)),
                                      max_size=9))
        else:
            side[key] = draw(values)
    if draw(st.booleans()):
        side.pop("sha256", None)             # let the model load; the sidecar decides
    return side


def _write(d: Path, model: str, side) -> Path:
    path = d / "m.tflite"
    shutil.copy(MODELS / model, path)
    path.with_suffix(".json").write_text(json.dumps(side))
    return path


@settings(max_examples=150, **SETTINGS)
@given(sidecars(SIDECAR))
def test_random_emotion_sidecars_give_a_working_model_or_one_line(side):
    with tempfile.TemporaryDirectory() as d:
        try:
            m = EmotionModel(_write(Path(d), "emotion_int8.tflite", side))
        except ModelError as exc:
            assert one_line(exc), exc
            return
        faces = np.full((3, *m.input_size), 100, np.uint8)
        p = m.predict(faces)                 # what run does at the first faces
        assert p.shape == (3, len(m.labels)) and np.all(np.isfinite(p))


@settings(max_examples=100, **SETTINGS)
@given(sidecars(FLOW_SIDECAR))
def test_random_micro_sidecars_give_a_working_model_or_one_line(side):
    with tempfile.TemporaryDirectory() as d:
        try:
            m = FlowModel(_write(Path(d), "micro_flow_int8.tflite", side))
        except ModelError as exc:
            assert one_line(exc), exc
            return
        p = m.predict(np.full((28, 28, 3), 128, np.uint8))
        assert p.shape == (len(m.labels),) and np.all(np.isfinite(p))
