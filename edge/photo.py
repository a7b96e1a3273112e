"""One still photo: its faces and their emotions, and a copy with them drawn on it.

The same code serves ``emotion-edge classify`` and the web page's photo panel, so a photo
gets the same answer from both.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .classifier import FaceClassifier
from .detectors.base import FaceDetector


def classify_image(image: np.ndarray, detector: FaceDetector,
                   classifier: FaceClassifier) -> list[dict[str, Any]]:
    """``[{"box": [x, y, w, h], "emotion": label, "scores": {label: p}}]`` for a BGR image;
    a face smaller than ``[classifier] min_readable`` is ``{"box": ..., "emotion": null,
    "readable": false}`` (too small to read)."""
    boxes = [d.box for d in detector.detect(image)]
    small = classifier.cfg.min_readable
    readable = [b for b in boxes if min(b[2], b[3]) >= small]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    probs = iter(classifier.classify(gray, readable))
    out = []
    for b in boxes:
        if min(b[2], b[3]) < small:
            out.append({"box": list(map(int, b)), "emotion": None, "readable": False})
            continue
        p = next(probs)
        out.append({"box": list(map(int, b)), "emotion": classifier.labels[int(p.argmax())],
                    "scores": {lab: round(float(v), 4) for lab, v in zip(classifier.labels, p)}})
    return out


def annotate(image: np.ndarray, faces: list[dict[str, Any]],
             colours: dict[str, tuple[int, int, int]] | None = None) -> None:
    """Draw each face's box and label onto ``image`` (BGR, in place). The label is dark
    text on a solid chip of the box's colour, readable on any picture (give the screen's
    colours, edge/web/palette.py, which are light enough for dark text)."""
    for f in faces:
        x, y, w, h = f["box"]
        if f.get("emotion") is None:   # too small to read: a thin grey box, no label
            cv2.rectangle(image, (x, y), (x + w, y + h), (160, 160, 160), 1)
            continue
        colour = (colours or {}).get(f["emotion"], (0, 200, 0))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, 2)
        label = f"{f['emotion']} {max(f['scores'].values()):.2f}"
        scale, thick = max(0.4, w / 250), 1 + w // 200
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        pad = max(2, th // 4)
        chip = th + base + 2 * pad
        top = y - chip if y - chip >= 0 else y + h                   # above the box, else below
        cv2.rectangle(image, (x, top), (x + tw + 2 * pad, top + chip), colour, cv2.FILLED)
        cv2.putText(image, label, (x + pad, top + pad + th), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0x18, 0x14, 0x11), thick, cv2.LINE_AA)


def bgr_colours(colours: dict[str, list[float]]) -> dict[str, tuple[int, int, int]]:
    """LED colours (r, g, b in 0..1, as in ``[gpio] colours``) as OpenCV's BGR."""
    return {k: (int(b * 255), int(g * 255), int(r * 255)) for k, (r, g, b) in colours.items()}
