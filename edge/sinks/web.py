"""The kiosk's web page as a sink: the live picture, each face's emotion, the room's mood.

The frame loop's side is ``update``: when nobody is watching it returns at once; when
someone is, it hands a downscaled copy of the frame to the JPEG encoder thread and the
faces to the page, at most ``max_fps`` times a second. Everything else (HTTP, JPEG, JSON,
reading the log for the day view) runs in the web server's thread, never in the loop.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..events import Event, FrameResult
from .base import Pipeline, Sink, SinkError

log = logging.getLogger(__name__)


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


class WebSink(Sink):
    name = "web"

    def __init__(self, cfg: WebConfig):
        from ..web.hub import LiveHub   # the server's parts load only when the web is on

        self.cfg = cfg
        self.hub = LiveHub(cfg.max_width, cfg.jpeg_quality)
        self.server = None
        self._period = 1.0 / cfg.max_fps
        self._next_frame = 0.0

    @property
    def url(self) -> str:
        host = self.cfg.bind if ":" not in self.cfg.bind else f"[{self.cfg.bind}]"
        return f"http://{host}:{self.server.port}/" if self.server else ""

    def start(self, pipeline: Pipeline) -> None:
        from ..web.server import WebServer

        self.server = WebServer(self.cfg, self.hub, pipeline)
        self.server.start()
        print(f"web page: {self.url}", flush=True)

    def update(self, result: FrameResult) -> None:
        hub = self.hub
        if not hub.watching:          # nobody on the page: nothing to do, every frame
            return
        now = time.monotonic()
        if now < self._next_frame:
            return
        self._next_frame = now + self._period
        image = result.image
        if self.cfg.show_video and hub.video_viewers and image is not None:
            hub.encoder.offer(image, result.index)  # copies into its own buffer only if it is idle
        h, w = image.shape[:2] if image is not None else (0, 0)
        hub.frame(result, w, h)

    def handle(self, events: Sequence[Event]) -> None:
        self.hub.events(events)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.hub.close()
