"""SSD anchors as MediaPipe's ``SsdAnchorsCalculator`` generates them for BlazeFace.

Both face-detection graphs (mediapipe/modules/face_detection/face_detection.pbtxt, fed by
face_detection_short_range.pbtxt / face_detection_full_range.pbtxt) use
``anchor_offset 0.5, aspect_ratios [1.0], fixed_anchor_size: true``; they differ in input
size, strides and ``interpolated_scale_aspect_ratio``:

- short range: 128x128, strides [8, 16, 16, 16], interpolated 1.0 -> 16*16*2 + 8*8*6 = 896
- full range:  192x192, strides [4],             interpolated 0.0 -> 48*48*1      = 2304

With ``fixed_anchor_size`` every anchor is 1.0 wide and high, so the scales (min/max_scale)
do not matter: an anchor is just a cell centre, repeated once per anchor of its layer group.
"""
from __future__ import annotations

import math

import numpy as np


def anchors_per_cell(num_layers_in_group: int, aspect_ratios: tuple[float, ...],
                     interpolated_scale_aspect_ratio: float) -> int:
    """Anchors per feature-map cell for consecutive layers that share a stride."""
    extra = 1 if interpolated_scale_aspect_ratio > 0.0 else 0
    return num_layers_in_group * (len(aspect_ratios) + extra)


def ssd_anchor_centers(input_size: int | tuple[int, int], strides: tuple[int, ...],
                       interpolated_scale_aspect_ratio: float,
                       aspect_ratios: tuple[float, ...] = (1.0,),
                       offset: float = 0.5) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in 0..1 of the model input, in the model's output order.

    Mirrors the calculator's loop: layers with the same stride are merged into one feature
    map whose cells carry all of those layers' anchors, row by row, column by column.
    ``input_size`` is the side of a square input, or (width, height) of any other one (a
    fully convolutional model such as short range runs at any size; see wide.py).
    """
    width, height = (input_size, input_size) if isinstance(input_size, int) else input_size
    groups: list[tuple[int, int]] = []  # (stride, number of layers with it), in order
    for s in strides:
        if groups and groups[-1][0] == s:
            groups[-1] = (s, groups[-1][1] + 1)
        else:
            groups.append((s, 1))

    parts = []
    for stride, n_layers in groups:
        cols, rows = math.ceil(width / stride), math.ceil(height / stride)
        per_cell = anchors_per_cell(n_layers, aspect_ratios, interpolated_scale_aspect_ratio)
        cx = (np.arange(cols, dtype=np.float32) + offset) / cols
        cy = (np.arange(rows, dtype=np.float32) + offset) / rows
        ys, xs = np.meshgrid(cy, cx, indexing="ij")         # row-major: y outer, x inner
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        parts.append(np.repeat(cells, per_cell, axis=0))
    return np.ascontiguousarray(np.concatenate(parts).astype(np.float32))
