"""The screen's colours: the LED colours of ``[gpio] colours``, made readable on a dark screen.

An LED's pure blue (0, 0, 1) is bright on a board and unreadable as text on the page's
dark panels (1.9:1). Each emotion keeps its LED's hue and saturation; only its lightness
is raised until its text reaches ``MIN_CONTRAST`` against the lightest surface the page
draws labels on. The same colour then works the other way round too: dark text on a chip
of that colour (the labels on the live picture) has at least that contrast, since the
page's dark colours are all darker than that surface.
"""
from __future__ import annotations

import colorsys

MIN_CONTRAST = 4.6           # WCAG AA asks 4.5:1 for normal text; a little margin for rounding
SURFACES = ("#111418", "#1b2027", "#232a33")   # page, panels, bar tracks (style.css, kiosk.css)
DARK_TEXT = "#111418"        # text on a chip of an emotion's colour


def _channel(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance of an sRGB colour with channels 0..1."""
    r, g, b = (_channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def from_hex(text: str) -> tuple[float, float, float]:
    text = text.lstrip("#")
    return tuple(int(text[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def to_hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)


def _quantized(rgb) -> tuple[float, float, float]:
    return from_hex(to_hex(rgb))      # what the page will actually show


def readable(led: list[float] | tuple[float, ...], on: str = SURFACES[-1],
             minimum: float = MIN_CONTRAST) -> tuple[float, float, float]:
    """The LED colour with its hue kept and its lightness raised just enough to be read
    on ``on`` (a bisection on HSL lightness; white always reaches it on a dark surface)."""
    surface = from_hex(on)
    h, l, s = colorsys.rgb_to_hls(*(float(c) for c in led[:3]))
    if contrast(_quantized(colorsys.hls_to_rgb(h, l, s)), surface) >= minimum:
        return _quantized(colorsys.hls_to_rgb(h, l, s))
    lo, hi = l, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if contrast(_quantized(colorsys.hls_to_rgb(h, mid, s)), surface) >= minimum:
            hi = mid
        else:
            lo = mid
    return _quantized(colorsys.hls_to_rgb(h, hi, s))


def screen_colours(leds: dict[str, list[float]]) -> dict[str, list[float]]:
    """Each emotion's colour for the screen, as [r, g, b] 0..1 (the shape of ``[gpio] colours``)."""
    return {label: [round(c, 4) for c in readable(rgb)] for label, rgb in leds.items()}
