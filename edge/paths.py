"""Where the device finds its files."""
from __future__ import annotations

import os
from pathlib import Path


def models_dir() -> Path:
    """Model files: $EMOTION_EDGE_MODELS (set by the systemd unit), else the repo's models/."""
    env = os.environ.get("EMOTION_EDGE_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "models"
