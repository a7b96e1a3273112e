"""The sink interface: every output (log file, LEDs, stdout, later the network) is one."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ..events import Event, FrameResult


class Sink(ABC):
    """An output stage. ``update`` runs every frame and must be cheap (no I/O unless
    something changed); ``handle`` gets the events of a frame, only when there are some."""

    name = "sink"

    def update(self, result: FrameResult) -> None:
        """Per-frame live state (LEDs, status). Default: nothing."""

    @abstractmethod
    def handle(self, events: Sequence[Event]) -> None:
        """Record or show events. Must not raise for I/O trouble: count it and go on."""

    def flush(self) -> None:
        """Make what was handled durable. A sink that buffers must flush on its own
        schedule (the log sink's writer thread does, every second), never per frame."""

    def close(self) -> None:
        """Flush and release resources; called once at shutdown."""
        self.flush()
