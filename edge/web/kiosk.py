"""The public screen: ``GET /kiosk``, what a kiosk's Chromium shows full-screen all day.

    GET /kiosk              the screen (read-only: no control, nothing to press)
    GET /kiosk/stream       its live JSON (Server-Sent Events), already shaped for the mode
    GET /kiosk/video.mjpg   the picture; 404 in room mode and in privacy mode

``[web] kiosk = "live"`` shows the picture with each face's box and emotion; ``"room"``
shows only the room's aggregates (faces in view, the dominant emotion, each emotion's
share, the last hour). Room mode is enforced here, not in the browser: its stream carries
no face, box or track and no picture is ever sent to the kiosk.
"""
from __future__ import annotations

import asyncio
import json
import time
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..eventlog import EventKind
from . import i18n
from .palette import screen_colours

KIOSK_PATHS = ("/kiosk", "/kiosk/stream", "/kiosk/video.mjpg")
HEALTH_EVERY_S = 1.0
SUMMARY_FIELDS = ("ts", "interval_s", "faces_seen", "emotion_share", "dominant")


@lru_cache(maxsize=8)
def _page(lang: str, mode: str, video: bool) -> str:
    return i18n.render(i18n.CATALOGUE.parent / "static" / "kiosk.html", lang, mode=mode,
                       video="1" if video else "0")


def room_now(frame: dict[str, Any], n_labels: int, with_faces: bool) -> dict[str, Any]:
    """The room in one frame: faces in view, the dominant emotion and the model's scores
    averaged over the faces; each face's box and emotion only when ``with_faces``."""
    faces = frame.get("faces") or []
    n = len(faces)
    shares = [round(sum(f["scores"][i] for f in faces if i < len(f["scores"])) / n, 3) if n else 0.0
              for i in range(n_labels)]
    msg: dict[str, Any] = {"type": "now", "t": frame.get("t"), "n": n,
                           "dominant": frame.get("dominant"), "shares": shares}
    if with_faces:
        msg.update(w=frame.get("w"), h=frame.get("h"),
                   faces=[{"box": f["box"], "emotion": f["emotion"], "score": f["score"]}
                          for f in faces])
    return msg


def slim_summary(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in SUMMARY_FIELDS if k in rec}


class Kiosk:
    def __init__(self, web: Any):   # app.WebApp (not imported: the app imports this)
        self.web, self.cfg, self.hub = web, web.cfg, web.hub
        self.mode = self.cfg.kiosk
        self.colours = screen_colours(web.colours)

    @property
    def shows_faces(self) -> bool:
        return self.mode == "live"

    @property
    def shows_picture(self) -> bool:
        return self.mode == "live" and self.cfg.show_video

    def language(self, request: Request) -> str:
        return i18n.choose(self.cfg.language, request.headers.get("accept-language"))

    async def page(self, request: Request) -> Response:
        lang = self.language(request)
        return HTMLResponse(_page(lang, self.mode, self.shows_picture),
                            headers={"Cache-Control": "no-store", "Content-Language": lang})

    def hello(self) -> dict[str, Any]:
        labels = list(self.web.pipeline.labels)
        frame = self.hub.last_frame
        return {"type": "hello", "mode": self.mode, "boot": self.web.started, "labels": labels,
                "colours": self.colours, "video": self.shows_picture,
                "summaries": [slim_summary(s) for s in self.hub.summaries],
                "now": room_now(frame, len(labels), self.shows_faces) if frame else None}

    def health(self) -> dict[str, Any]:
        h = self.web.pipeline.health()
        src = h.get("source") or {}
        return {"type": "health", "fps": h.get("fps"),
                "source": {"live": src.get("live"), "state": src.get("state")}}

    def shape(self, data: str) -> dict[str, Any] | None:
        """A hub message as the kiosk may see it (None: not for the kiosk)."""
        msg = json.loads(data)
        if msg["type"] == "frame":
            return room_now(msg, len(self.web.pipeline.labels), self.shows_faces)
        if msg["type"] == "event":
            rec = msg["record"]
            if rec.get("event") == EventKind.SUMMARY:
                return {"type": "summary", "record": slim_summary(rec)}
            if rec.get("event") == EventKind.MODEL_CHANGED:
                return self.hello()          # new labels: the screen starts over
        return None

    async def stream(self, request: Request) -> Response:
        hub = self.hub

        async def events():
            q = hub.subscribe()
            try:
                yield _sse(self.hello())
                next_health = 0.0
                while not hub.closed:
                    now = time.monotonic()
                    if now >= next_health:
                        next_health = now + HEALTH_EVERY_S
                        yield _sse(self.health())
                    try:
                        data = await asyncio.wait_for(q.get(), max(0.05, next_health - now))
                    except asyncio.TimeoutError:
                        continue
                    out = self.shape(data)
                    if out is not None:
                        yield _sse(out)
            finally:
                hub.unsubscribe(q)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def video(self, request: Request) -> Response:
        if not self.shows_picture:
            why = "room mode ([web] kiosk = \"room\")" if self.mode == "room" else \
                "privacy mode ([web] show_video = false)"
            return PlainTextResponse(f"{why}: the kiosk shows no picture", 404)
        return await self.web.video(request)

    def routes(self) -> list[Route]:
        return [Route("/kiosk", self.page), Route("/kiosk/stream", self.stream),
                Route("/kiosk/video.mjpg", self.video)]


def _sse(msg: dict) -> str:
    return f"data: {json.dumps(msg, separators=(',', ':'))}\n\n"
