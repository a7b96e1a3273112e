"""The sink interface: every output (log file, LEDs, stdout, the web page, MQTT) is one."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import EmotionEdgeError
from ..events import Event, FrameResult


class SinkError(EmotionEdgeError, RuntimeError):
    """An output that cannot start (a folder that cannot be made, a port in use); the
    message is one line for the person at the device."""


class Pipeline(Protocol):
    """What a running monitor offers its sinks (``Sink.start``; ``pipeline.MonitorHandle``):
    read-only facts, plus requests the frame loop carries out between frames (never inside
    a sink's call). Never the configuration itself: a sink gets its own section."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def model_path(self) -> Path: ...

    colours: dict[str, str]       # label -> colour, as the LEDs are wired ([gpio] colours)
    log_path: Path                # the event log being written (rotated files beside it)
    catalogue: Any                # catalogue.ModelCatalogue: the models one may switch to

    def model_info(self) -> dict[str, Any]:
        """The model in use: file, labels, accuracy and the like from its sidecar."""

    def health(self) -> dict[str, Any]:
        """fps, source state, uptime, counters; cheap, safe from any thread."""

    def switch_model(self, path: Path) -> None:
        """Load ``path`` now (raises ``ModelError`` with a one-line reason, keeping the model
        in use) and have the frame loop use it from its next frame."""

    def new_detector(self) -> Any:
        """A face detector like the frame loop's, for work outside it (photos)."""


class Sink(ABC):
    """An output stage. ``update`` runs every frame and must be cheap (no I/O unless
    something changed); ``handle`` gets the events of a frame, only when there are some."""

    name = "sink"

    def start(self, pipeline: Pipeline) -> None:
        """Called once before the first frame. Default: nothing."""

    def update(self, result: FrameResult) -> None:
        """Per-frame live state (LEDs, the live picture). Default: nothing."""

    @abstractmethod
    def handle(self, events: Sequence[Event]) -> None:
        """Record or show events. Must not raise for I/O trouble: count it and go on."""

    def health(self) -> dict[str, Any]:
        """This output's own state and counters for the health panel (the web page); cheap
        and safe from any thread. Default: nothing to report."""
        return {}

    def flush(self) -> None:
        """Make what was handled durable. A sink that buffers must flush on its own
        schedule (the log sink's writer thread does, every second), never per frame."""

    def close(self) -> None:
        """Flush and release resources; called once at shutdown."""
        self.flush()
