"""The ``[web]`` section: where the page listens, what it shows, who may see it.

It lives here, not beside the sink, so that the sink (``edge.sinks.web``), the server and
the app all import it from one place that imports none of them.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from ..sinks.base import SinkError
from .i18n import LANGUAGES

KIOSK_MODES = ("live", "room")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class WebConfig:
    """The ``[web]`` section."""
    enabled: bool = field(default=False, metadata={
        "doc": "serve the local web page (live view, the room's mood, photos, the model); "
               "emotion-edge run --web turns it on"})
    bind: str = field(default="127.0.0.1", metadata={
        "doc": "address to listen on: 127.0.0.1 is this device only (the kiosk's own "
               "browser); any other address needs a password"})
    port: int = field(default=8080, metadata={"doc": "TCP port (0: any free port)"})
    show_video: bool = field(default=True, metadata={
        "doc": "send the camera picture to the page; false (privacy mode): boxes and "
               "labels on a plain background, no pixel of the camera leaves the pipeline"})
    max_fps: float = field(default=10.0, metadata={
        "doc": "most pictures (and face updates) a second sent to a viewer"})
    max_width: int = field(default=640, metadata={
        "doc": "the live picture is downscaled to at most this many pixels wide"})
    jpeg_quality: int = field(default=75, metadata={"doc": "JPEG quality of the live picture, 1..100"})
    password: str = field(default="", metadata={
        "doc": "password for the page (needed when bind is not a loopback address); "
               "prefer password_file"})
    password_file: str = field(default="", metadata={
        "doc": "file whose first line is the password (readable by the service only)"})
    max_upload_mb: float = field(default=10.0, metadata={
        "doc": "largest photo the page accepts for classification, in MB"})
    models_dir: str = field(default="", metadata={
        "doc": "folder whose models the page offers to switch to; empty: the folder of "
               "the model in use"})
    kiosk: str = field(default="live", metadata={
        "doc": "what the public screen (/kiosk) shows: live (the picture with each face's "
               "box and emotion) | room (only the room's aggregates: no picture, no face; "
               "for schools and workplaces, if at all)"})
    language: str = field(default="", metadata={
        "doc": "language of the page, the kiosk and the report: en | zh-CN; empty: the "
               "browser's preferred language (English when it prefers neither)"})

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is outside 0..65535")
        if not 0 < self.max_fps <= 60:
            raise ValueError(f"max_fps: {self.max_fps} is outside (0, 60]")
        if not 32 <= self.max_width <= 4096:
            raise ValueError(f"max_width: {self.max_width} is outside 32..4096")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality: {self.jpeg_quality} is outside 1..100")
        if not 0 < self.max_upload_mb <= 100:
            raise ValueError(f"max_upload_mb: {self.max_upload_mb} is outside (0, 100]")
        if self.kiosk not in KIOSK_MODES:
            raise ValueError(f"kiosk: {self.kiosk!r} is not one of {', '.join(KIOSK_MODES)}")
        if self.language and self.language not in LANGUAGES:
            raise ValueError(f"language: {self.language!r} is not one of {', '.join(LANGUAGES)} "
                             "(or empty: the browser's choice)")
        if self.enabled and not is_loopback(self.bind) and not (self.password or
                                                                 self.password_file):
            raise ValueError(f"bind: {self.bind} is reachable from the network; set "
                             "password_file (or password) first, or bind 127.0.0.1")

    def read_password(self) -> str:
        if self.password_file:
            try:
                return Path(self.password_file).read_text().splitlines()[0].strip()
            except (OSError, IndexError, UnicodeDecodeError) as exc:
                raise SinkError(f"[web] password_file {self.password_file}: cannot read a "
                                f"password ({getattr(exc, 'strerror', None) or 'empty file'})") from None
        return self.password
