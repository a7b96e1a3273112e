"""The kiosk's web page as a sink: the live picture, each face's emotion, the room's mood.

The frame loop's side is ``update``: when nobody is watching it returns at once; when
someone is, it hands a downscaled copy of the frame to the JPEG encoder thread and the
faces to the page, at most ``max_fps`` times a second. Everything else (HTTP, JPEG, JSON,
reading the log for the day view) runs in the web server's thread, never in the loop.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ..events import Event, FrameResult
from ..web.config import WebConfig  # SECTIONS finds the [web] config here, beside its sink
from .base import Pipeline, Sink

log = logging.getLogger(__name__)


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
        scheme = "https" if self.cfg.tls else "http"
        return f"{scheme}://{host}:{self.server.port}/" if self.server else ""

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
