"""Section ``[detector.far]``: the options of blazeface-multiscale's small-face pass
(kept apart from multiscale.py so that reading the config imports no model runtime)."""
from __future__ import annotations

from dataclasses import dataclass, field

# The smallest face (input pixels) short range finds reliably: on the scenes' five-person
# photo shrunk step by step it finds 4-5 of 5 from 16 px, 3 of 5 at 14, 1 at 12.
SMALLEST_INPUT_FACE = 16


@dataclass
class FarConfig:
    """Sub-section ``[detector.far]``: the small-face pass of blazeface-multiscale."""
    smallest_face: int = field(default=24, metadata={
        "doc": "blazeface-multiscale: the smallest face side in frame pixels the far pass "
               "looks for; it scales the frame by 16/smallest_face (24: 2/3), so its cost "
               "grows with the square of 1/smallest_face"})
    every: int = field(default=4, metadata={
        "doc": "blazeface-multiscale: run the far pass on every n-th detector run and keep "
               "its faces in between (1: every run); while it finds nobody, every 2n-th, "
               "then 4n-th"})
    min_score: float = field(default=0.5, metadata={
        "doc": "blazeface-multiscale: confidence threshold of a short-range far pass, 0..1 "
               "(YuNet's, the default far pass: [detector] min_score)"})
    model: str = field(default="", metadata={
        "doc": "blazeface-multiscale: the far pass's model file (a relative path is in the "
               "models folder; a name with 'yunet' in it runs as YuNet). Empty: YuNet, "
               "face_detection_yunet_2023mar.tflite, for the far pass and its refresh. face_detection_short_range.tflite: MediaPipe's short "
               "range, the default before (30-face 720p clip, against YuNet when OpenCV ran it: "
               "24 px recall 0.76 instead of 0.89, 0.97-1.00 instead of 0.94-0.97 from 32 px, "
               "72-90 fps instead of 88-108, peak RSS 208 instead of 165 MB: "
               "bench/results/far_pass.md; YuNet in LiteRT holds less still). A short-range .tflite made by `python -m convert "
               "blazeface-int8`: int8 activations, slower here"})
    verify_score: float = field(default=0.72, metadata={
        "doc": "blazeface-multiscale: a face the far pass finds for the first time must "
               "score this on a close crop around it (0: no check)"})

    def __post_init__(self):
        if self.smallest_face < SMALLEST_INPUT_FACE // 2:
            raise ValueError(f"smallest_face: {self.smallest_face} is below "
                             f"{SMALLEST_INPUT_FACE // 2} pixels")
        if self.every < 1:
            raise ValueError(f"every: must be at least 1, not {self.every}")
        if not 0.0 < self.min_score < 1.0:
            raise ValueError(f"min_score: {self.min_score} must be between 0 and 1 (exclusive)")
        if not 0.0 <= self.verify_score < 1.0:
            raise ValueError(f"verify_score: {self.verify_score} must be 0 (no check) or "
                             "between 0 and 1")

    @property
    def scale(self) -> float:
        return min(1.0, SMALLEST_INPUT_FACE / self.smallest_face)
