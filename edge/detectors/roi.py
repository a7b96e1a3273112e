"""Region of interest: the part of the frame a detector looks at, given as fractions.

A kiosk camera often sees a doorway or a wall too; restricting detection to where faces can
be both saves time and avoids false positives on posters. Fractions keep one config valid
across camera resolutions.
"""
from __future__ import annotations

Roi = tuple[float, float, float, float]  # x, y, w, h as fractions of the frame
WHOLE_FRAME: Roi = (0.0, 0.0, 1.0, 1.0)


def check_roi(roi) -> Roi:
    """The ROI as a tuple of 4 floats, or ValueError saying what is wrong."""
    try:
        x, y, w, h = (float(v) for v in roi)
    except (TypeError, ValueError):
        raise ValueError(f"roi: {roi!r} must be 4 numbers [x, y, w, h], fractions of the frame") \
            from None
    if not (0.0 <= x < 1.0 and 0.0 <= y < 1.0 and w > 0.0 and h > 0.0
            and x + w <= 1.0 + 1e-9 and y + h <= 1.0 + 1e-9):
        raise ValueError(f"roi: {[x, y, w, h]} must lie inside the frame: 0 <= x, y; w, h > 0; "
                         "x + w <= 1; y + h <= 1")
    return x, y, w, h


def roi_pixels(roi: Roi, width: int, height: int) -> tuple[int, int, int, int]:
    """The ROI as pixel bounds x0, y0, x1, y1 (x1/y1 exclusive), at least 1 px each way."""
    x, y, w, h = roi
    x0, y0 = int(round(x * width)), int(round(y * height))
    x1 = max(x0 + 1, min(width, int(round((x + w) * width))))
    y1 = max(y0 + 1, min(height, int(round((y + h) * height))))
    return x0, y0, x1, y1
