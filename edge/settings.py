"""Config fields that say what they accept, in their metadata, checked in one place.

Each stage's config dataclass declares a key's doc and what it accepts beside its default:
``field(default=0.3, metadata={"doc": "...", "range": "0..1"})``; ``check(self)`` in its
``__post_init__`` tests every declared range and choice, with one message form for all:

    range="0..1"      both ends allowed   iou: 1.5 is outside 0..1
    range="(0, 1]"    0 itself is not     smoothing: 0.0 is outside (0, 1]
    range=">= 1"      a lower bound only  threads: 0 must be at least 1
    range="> 0"                           flush_interval: 0.0 must be more than 0 seconds
    choices=(...)                         kind: 'yolo' is not one of haar, blazeface-short, ...
    unit="seconds"    said after the range

A value past a range's ends is told the plain ``lo..hi``; one that sits on an end the range
leaves out is told the exact interval. What depends on two keys at once (one pin per LED,
``continue_score <= min_score``) stays in the class's own ``__post_init__``. ``edge.config``
builds ``Config``, ``default.toml`` and the reference from these fields.

A leaf module: it imports nothing of the project.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_NUM = r"-?\d+(?:\.\d+)?"
_INTERVAL = re.compile(rf"^([\[(]?)\s*({_NUM})\s*(?:\.\.|,)\s*({_NUM})\s*([\])]?)$")
_BOUND = re.compile(rf"^(>=|>)\s*({_NUM})$")


@dataclass(frozen=True)
class Range:
    """A parsed ``range`` declaration; ``text`` is how it was written."""
    text: str
    lo: float
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    ends: tuple[str, str] = ("", "")     # the bounds as written: "0.1", "2.0"

    @classmethod
    @lru_cache(maxsize=None)
    def parse(cls, text: str) -> "Range":
        m = _INTERVAL.match(text.strip())
        if m:
            left, lo, hi, right = m.groups()
            if ".." in text and (left or right):
                raise ValueError(f"range {text!r}: write 'lo..hi' or '(lo, hi]', not both")
            return cls(text, float(lo), float(hi), left == "(", right == ")", (lo, hi))
        m = _BOUND.match(text.strip())
        if m:
            return cls(text, float(m.group(2)), None, m.group(1) == ">", False, (m.group(2), ""))
        raise ValueError(f"range {text!r}: not 'lo..hi', '(lo, hi]' or '>= lo'")

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range (the message after ``key: ``), or None."""
        lo, hi = self.ends
        if self.hi is None:
            if self.lo_open and not value > self.lo:
                return f"{value} must be more than {lo}"
            if not self.lo_open and not value >= self.lo:
                return f"{value} must be at least {lo}"
            return None
        if not self.lo <= value <= self.hi:
            return f"{value} is outside {lo}..{hi}"
        if (self.lo_open and value == self.lo) or (self.hi_open and value == self.hi):
            return f"{value} is outside {'(' if self.lo_open else '['}{lo}, {hi}" \
                   f"{')' if self.hi_open else ']'}"
        return None


def check(obj: Any) -> None:
    """Test ``obj``'s declared ranges and choices; a ``ValueError`` naming the first key that
    is wrong (``key: message``). Unset optional values (None) are not checked."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if "range" in f.metadata:
            problem = Range.parse(f.metadata["range"]).problem(value)
            if problem:
                unit = f.metadata.get("unit")
                raise ValueError(f"{f.name}: {problem}{' ' + unit if unit else ''}")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"{f.name}: {value!r} is not one of {', '.join(map(str, choices))}")
