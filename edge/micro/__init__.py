"""Optional micro-expression stage: spot brief facial movements per tracked face, turn the
onset-to-apex motion into a flow image and classify it (negative / positive / surprise)."""
from .config import RECOMMENDED_FPS, MicroConfig
from .stage import MicroStage

__all__ = ["MicroConfig", "MicroStage", "RECOMMENDED_FPS"]
