"""Output stages behind one interface (``Sink``): the event log, LEDs, the console, the
web page.

Each sink has a config dataclass named after its TOML section (``SECTIONS``); ``make_sink``
builds one. The GPIO sink is imported lazily so that importing this package never touches
gpiozero.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import Pipeline, Sink, SinkError
from .console import ConsoleConfig, ConsoleSink
from .jsonlog import JsonLogConfig, JsonLogSink

# TOML section -> (module, config class, sink class)
SECTIONS: dict[str, tuple[str, str, str]] = {
    "log": ("jsonlog", "JsonLogConfig", "JsonLogSink"),
    "gpio": ("gpio", "GpioConfig", "GpioSink"),
    "console": ("console", "ConsoleConfig", "ConsoleSink"),
    "web": ("web", "WebConfig", "WebSink"),
    "mqtt": ("mqtt", "MqttConfig", "MqttSink"),
}

__all__ = ["Pipeline", "Sink", "SinkError", "SECTIONS", "make_sink", "config_class", "ConsoleConfig", "ConsoleSink",
           "JsonLogConfig", "JsonLogSink", "GpioConfig", "GpioSink"]


def config_class(section: str) -> type:
    """The config dataclass of a sink section, e.g. ``config_class("gpio") is GpioConfig``."""
    module, cfg, _ = SECTIONS[section]
    return getattr(import_module(f".{module}", __name__), cfg)


def make_sink(section: str, config: Any) -> Sink:
    """Build the sink of ``section`` from its config; may raise a one-line error (e.g. GPIO)."""
    module, _, cls = SECTIONS[section]
    return getattr(import_module(f".{module}", __name__), cls)(config)


def __getattr__(name: str) -> Any:
    if name in ("GpioConfig", "GpioSink", "GpioUnavailable"):
        return getattr(import_module(".gpio", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
