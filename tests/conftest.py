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
