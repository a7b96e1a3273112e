"""Shared fixtures: real data from ../shared (or $EMOTION_SHARED_DIR) and the shipped models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# TensorFlow without its oneDNN kernels, which crash on the project's machines (convert/cli.py,
# WITHOUT_ONEDNN): here because test modules import TensorFlow when they are collected.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTION_SHARED_DIR", ROOT.parent / "shared"))
MODELS = ROOT / "models"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (set EMOTION_SHARED_DIR to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return _need(SHARED / "data")


@pytest.fixture(scope="session")
def videos(shared) -> Path:
    return _need(shared / "video")


@pytest.fixture(scope="session")
def scenes(shared) -> Path:
    return _need(shared / "scenes")


@pytest.fixture(scope="session")
def fer_npz(shared) -> Path:
    return _need(shared / "fer2013" / "fer2013_trainval.npz")


@pytest.fixture(scope="session")
def micro_npz(shared) -> Path:
    return _need(shared / "micro" / "megc2019_composite_flow28.npz")


# --- host tests on a device venv ------------------------------------------------------------
# The training toolchain is the `host` extra (TensorFlow, ...), which a Pi never installs.
# A test that needs it skips, with the reason, where it is missing, so a Pi owner can run
# the device tests (tests/pi_pins.py does so with the Pi's own pins).
HOST_MODULES = {"tensorflow", "keras", "sklearn", "matplotlib"}


def _host_extra_missing(exc: BaseException) -> str | None:
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if isinstance(exc, ModuleNotFoundError) and name in HOST_MODULES:
        return f"needs the host extra (pip install -e '.[host]'): no module {name!r}"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except ModuleNotFoundError as exc:
        reason = _host_extra_missing(exc)
        if reason is None:
            raise
        pytest.skip(reason)


# --- what each test is ----------------------------------------------------------------------
# One marker per file says what kind of test it is, so `-m` picks a kind without moving files:
#   .venv/bin/python -m pytest -m "not slow"          the fast subset (under 3 minutes)
#   .venv/bin/python -m pytest -m "unit or pipeline"  no browser, broker or install
# A new test file gets a line here (its tests fail until it has one); a test that takes more
# than a few seconds on a 2-core machine goes into SLOW, by file or by file::test (every
# parametrization), or its whole kind into SLOW_KINDS.
KINDS = {
    "unit": "in-process tests of one module: no real clip, no child process of the monitor",
    "pipeline": "the monitor, its stages and commands on real clips, photos and models",
    "browser": "the web page in Debian's Chromium (Playwright)",
    "broker": "MQTT against a real Mosquitto",
    "install": "install.sh and the systemd unit, in a scratch copy of the tree",
    "host": "the host toolchain: training, quantization, evaluation (TensorFlow)",
    "system": "the system checks' results (bench/system/) against this tree",
}
KIND_OF_FILE = {
    "test_config.py": "unit",
    "test_errors.py": "unit",
    "test_eventlog.py": "unit",
    "test_faults_property.py": "unit",
    "test_imports.py": "unit",
    "test_litert.py": "unit",
    "test_notify.py": "unit",
    "test_sinks_gpio.py": "unit",
    "test_sinks_jsonlog.py": "unit",
    "test_tail.py": "unit",
    "test_capture.py": "pipeline",
    "test_check_sandbox.py": "pipeline",
    "test_detectors.py": "pipeline",
    "test_faults_cli.py": "pipeline",
    "test_faults_images.py": "pipeline",
    "test_faults_models.py": "pipeline",
    "test_faults_sources.py": "pipeline",
    "test_micro_flow.py": "pipeline",
    "test_micro_stage.py": "pipeline",
    "test_pipeline.py": "pipeline",
    "test_reading.py": "pipeline",
    "test_reliability.py": "pipeline",
    "test_sink_interface.py": "pipeline",
    "test_sources.py": "pipeline",
    "test_track_identity.py": "pipeline",
    "test_classroom.py": "pipeline",
    "test_detector_registry.py": "pipeline",
    "test_yunet.py": "pipeline",
    "test_web_signin.py": "pipeline",
    "test_memory_bombs.py": "pipeline",
    "test_web_connections.py": "pipeline",
    "test_web.py": "browser",
    "test_classroom_page.py": "browser",
    "test_kiosk.py": "browser",
    "test_web_records.py": "browser",
    "test_web_origin.py": "browser",
    "test_mqtt.py": "broker",
    "test_mqtt_bounds.py": "broker",
    "test_mqtt_fleet.py": "broker",
    "test_mqtt_spool.py": "broker",
    "test_install.py": "install",
    "test_mqtt_install.py": "install",
    "test_web_install.py": "install",
    "test_convert.py": "host",
    "test_blazeface_int8.py": "host",
    "test_face_size.py": "host",
    "test_micro_loso.py": "host",
    "test_micro_model.py": "host",
    "test_micro_nested.py": "host",
    "test_micro_sequences.py": "host",
    "test_system_results.py": "system",
}
# Every test of these kinds starts Chromium, Mosquitto, an install or a training run.
SLOW_KINDS = {"browser", "broker", "install", "host"}
SLOW = {
    "test_memory_bombs.py",          # monitors under memory and descriptor limits
    "test_web_connections.py",
    "test_reliability.py",           # the daemon through outages, watchdogs, full disks
    "test_track_identity.py",        # every clip under noise, decode and dropped frames
    "test_faults_sources.py",        # a monitor process per broken source
    "test_classroom.py",             # the classroom video and mosaics through the pipeline
    "test_faults_cli.py::test_options_before_and_after_positional_arguments",
    "test_faults_images.py::test_a_huge_png_is_decoded_in_gray_and_fitted",
    "test_faults_images.py::test_classify_a_folder_of_odd_pictures",
    "test_faults_images.py::test_run_on_a_folder_of_odd_pictures_counts_what_it_skips",
    "test_faults_property.py::test_random_configs_are_valid_or_one_line",
    "test_faults_property.py::test_random_emotion_sidecars_give_a_working_model_or_one_line",
}


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    # With -n (pytest-xdist), an idle worker takes tests queued for a busy one: the training
    # and install tests take minutes each, so a fixed split would leave a core idle.
    if getattr(config.option, "numprocesses", None) and config.option.dist == "no":
        config.option.dist = "worksteal"


def pytest_configure(config):
    for kind, doc in KINDS.items():
        config.addinivalue_line("markers", f"{kind}: {doc}")
    config.addinivalue_line("markers", "slow: more than a few seconds; -m 'not slow' leaves "
                                       "them out (the fast subset)")
    config.addinivalue_line("markers", "kind_missing: the file is not in KIND_OF_FILE")


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        kind = KIND_OF_FILE.get(name)
        if kind is None:
            item.add_marker(pytest.mark.kind_missing)
            continue
        item.add_marker(getattr(pytest.mark, kind))
        if kind in SLOW_KINDS or name in SLOW or \
                f"{name}::{getattr(item, 'originalname', item.name)}" in SLOW:
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    if item.get_closest_marker("kind_missing"):
        pytest.fail(f"{item.path.name} has no kind: add it to KIND_OF_FILE in tests/conftest.py "
                    f"(one of {', '.join(KINDS)})", pytrace=False)
