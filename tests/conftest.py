"""Shared fixtures: real data from ../shared (or $EMOTION_SHARED_DIR) and the shipped models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
# the device tests (tests/test_pi_constraints.py does so with the Pi's own pins).
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
