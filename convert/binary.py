"""The origin's two-class task: FER2013 classes grouped by valence.

A leaf module (only convert.data below it), so training and evaluation both read the one map
without importing each other.
"""
from __future__ import annotations

import numpy as np

from . import data as fer

# surprise and neutral are left out as neither clearly positive nor negative
BINARY_LABELS = ("negative", "positive")
BINARY_OF_CLASS = np.array([0, 0, 0, 1, 0, -1, -1])


def to_binary(faces: fer.FaceSet) -> fer.FaceSet:
    b = BINARY_OF_CLASS[faces.y]
    out = faces.subset(b >= 0, "binary task: angry/disgust/fear/sad -> negative, happy -> "
                                "positive; surprise and neutral left out")
    out.y = BINARY_OF_CLASS[out.y]
    out.ferplus = None
    return out
