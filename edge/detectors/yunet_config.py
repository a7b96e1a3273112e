"""Section ``[detector.yunet]``: the options of the yunet kind (kept apart from yunet.py so
that reading the config builds no OpenCV network)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import check


@dataclass
class YuNetConfig:
    """Sub-section ``[detector.yunet]``: the yunet kind's own options."""
    scale: float = field(default=0.67, metadata={
        "doc": "yunet: the frame (its roi) is scaled by this before YuNet sees it; its cost "
               "grows with the square. YuNet finds faces from ~10-16 px of its input, so "
               "0.67 keeps a 24 px face of the frame (1: full size, slower)",
        "range": "(0, 1]"})
    max_pixels: int = field(default=1280 * 720, metadata={
        "doc": "yunet: the most pixels YuNet's input may have (its memory and time grow with "
               "it); a larger frame (4K, a 12 MP photo) is scaled down further to fit, so its "
               "smallest faces are then ~24 px times the extra shrink",
        "range": ">= 4096", "unit": "pixels"})

    def __post_init__(self):
        check(self)
