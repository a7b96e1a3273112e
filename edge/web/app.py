"""The web page's HTTP routes (Starlette): the page, its live streams and its actions.

    GET  /                 the page            GET  /api/stream   live JSON (Server-Sent Events)
    GET  /video.mjpg       the live picture    GET  /api/state    the same facts, once
    GET  /api/days         days in the log     GET  /api/history?date=YYYY-MM-DD
    POST /api/photo        a photo's faces     GET/POST /api/models   list / switch
"""
from __future__ import annotations

import asyncio
import base64
import json
import math
import secrets
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import cv2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse,
                                 Response, StreamingResponse)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..classifier import FaceClassifier, ModelError
from ..errors import EmotionEdgeError
from ..photo import annotate, bgr_colours, classify_image
from ..sinks.base import Pipeline, SinkError
from ..sources import SourceError
from ..sources.images import decode_image
from . import i18n
from .config import WebConfig, is_loopback
from .history import LogFiles
from .hub import LiveHub
from .kiosk import KIOSK_PATHS, Kiosk
from .palette import screen_colours
from .security import BodyLimit, HostCheck, OriginCheck, Throttled, host_names
from .signin import SignInLimiter

STATIC = Path(__file__).parent / "static"
HEALTH_EVERY_S = 1.0
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
OPEN_PATHS = {"/login", "/static/style.css", "/static/login.js", "/static/icon.svg",
              "/favicon.ico"}


class WebApp:
    """The routes, with what they read: the hub (live state), the pipeline (model, health)
    and the log files (days)."""

    def __init__(self, cfg: WebConfig, hub: LiveHub, pipeline: Pipeline):
        self.cfg, self.hub, self.pipeline = cfg, hub, pipeline
        self.colours = dict(pipeline.colours)              # the LEDs'
        self.screen_colours = screen_colours(self.colours)  # the same hues, readable on screen
        self.log = LogFiles(pipeline.log_path.parent, pipeline.log_path.name)
        self.password = cfg.read_password()
        self.signin = SignInLimiter(self.password)
        self.refused_sign_ins = Throttled("refused sign-in attempts (too many failures)")
        if not self.password and not is_loopback(cfg.bind):   # never an open page on the LAN
            raise SinkError(f"[web] bind {cfg.bind}: reachable from the network without a password")
        self.started = time.time()
        self.photos = PhotoDesk(pipeline)
        self.counters = {"photos": 0, "photos_refused": 0, "model_switches": 0,
                         "models_refused": 0}

    # --- the page and its streams -----------------------------------------------------------
    async def index(self, request: Request) -> Response:
        lang = i18n.choose(self.cfg.language, request.headers.get("accept-language"))
        return HTMLResponse(i18n.render(STATIC / "index.html", lang),
                            headers={"Cache-Control": "no-store", "Content-Language": lang})

    async def favicon(self, request: Request) -> Response:
        return RedirectResponse("/static/icon.svg", 301)

    def hello(self) -> dict[str, Any]:
        return {"type": "hello", "labels": list(self.pipeline.labels), "colours": self.screen_colours,
                "show_video": self.cfg.show_video, "model": self.pipeline.model_info(),
                "summaries": list(self.hub.summaries), "frame": self.hub.last_frame,
                "max_fps": self.cfg.max_fps, "auth": bool(self.password)}

    def health(self) -> dict[str, Any]:
        h = self.pipeline.health()
        h.update(type="health", viewers=self.hub.state_viewers,
                 video_viewers=self.hub.video_viewers, pictures=self.hub.encoder.encoded,
                 web_dropped_messages=self.hub.dropped_messages, **self.counters,
                 **(self.signin.counters if self.password else {}))
        return h

    async def stream(self, request: Request) -> Response:
        hub = self.hub

        async def events():
            q = hub.subscribe()
            try:
                yield sse(self.hello())
                next_health = 0.0
                while not hub.closed:
                    now = time.monotonic()
                    if now >= next_health:
                        next_health = now + HEALTH_EVERY_S
                        yield sse(self.health())
                    try:
                        data = await asyncio.wait_for(q.get(), max(0.05, next_health - now))
                    except asyncio.TimeoutError:
                        continue
                    yield f"data: {data}\n\n"
            finally:
                hub.unsubscribe(q)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def video(self, request: Request) -> Response:
        if not self.cfg.show_video:
            return PlainTextResponse("privacy mode: the picture is not sent ([web] show_video "
                                     "= false)", 404)
        hub = self.hub

        async def parts():
            hub.video_viewers += 1
            try:
                seq = hub.jpeg[0]                 # only pictures newer than the request
                while not hub.closed:
                    item = await hub.next_jpeg(seq)
                    if item is None:
                        continue
                    seq, jpeg, wall, index = item
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n"
                           b"X-Frame-Wall: %.6f\r\nX-Frame-Index: %d\r\n\r\n"
                           % (len(jpeg), wall, index)) + jpeg + b"\r\n"
            finally:
                hub.video_viewers -= 1

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    async def state(self, request: Request) -> Response:
        return JSONResponse({**self.hello(), "health": self.health()})

    # --- the room over time -----------------------------------------------------------------
    async def days(self, request: Request) -> Response:
        return JSONResponse({"days": await run_in_threadpool(self.log.days)})

    async def history(self, request: Request) -> Response:
        try:
            day = date.fromisoformat(request.query_params.get("date", ""))
        except ValueError:
            return error("date: give a day as YYYY-MM-DD", 400)
        rows = await run_in_threadpool(self.log.summaries, day)
        return JSONResponse({"date": day.isoformat(), "summaries": rows})

    # --- a photo ----------------------------------------------------------------------------
    async def photo(self, request: Request) -> Response:
        limit = int(self.cfg.max_upload_mb * 1e6)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            self.counters["photos_refused"] += 1
            return error(f"the photo is larger than {self.cfg.max_upload_mb:g} MB", 413)
        body = bytearray()
        async for chunk in request.stream():   # in memory only, never on disk
            body += chunk
            if len(body) > limit:
                self.counters["photos_refused"] += 1
                return error(f"the photo is larger than {self.cfg.max_upload_mb:g} MB", 413)
        try:
            result = await run_in_threadpool(self.photos.classify, bytes(body),
                                             bgr_colours(self.screen_colours))
        except PhotoError as exc:
            self.counters["photos_refused"] += 1
            return error(str(exc), 400)
        self.counters["photos"] += 1
        return JSONResponse(result)

    # --- the model --------------------------------------------------------------------------
    def models_folder(self) -> Path:
        return self.pipeline.catalogue.folder

    def model_list(self) -> list[dict[str, Any]]:
        current = self.pipeline.model_path.resolve()
        return [e.as_dict(e.path.resolve() == current)
                for e in self.pipeline.catalogue.entries()]

    async def models(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"current": self.pipeline.model_info(),
                                 "models": await run_in_threadpool(self.model_list)})
        try:
            name = (await request.json())["file"]
        except (ValueError, KeyError, TypeError):
            return error('send {"file": "<model>.tflite"}', 400)
        path = await run_in_threadpool(self.pipeline.catalogue.find, name) \
            if isinstance(name, str) else None
        if path is None:
            return error(f"{name}: not a model in {self.models_folder()}", 404)
        try:
            await run_in_threadpool(self.pipeline.switch_model, path)
        except ModelError as exc:
            self.counters["models_refused"] += 1
            return error(str(exc), 400)
        self.counters["model_switches"] += 1
        return JSONResponse({"ok": True, "file": name})

    # --- sign-in (only when a password is set) ----------------------------------------------
    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            lang = i18n.choose(self.cfg.language, request.headers.get("accept-language"))
            return HTMLResponse(i18n.render(STATIC / "login.html", lang),
                                headers={"Content-Language": lang})
        client = request.client.host if request.client else "?"
        limiter = self.signin
        wait = limiter.refused(client)
        if wait:
            self.refused_sign_ins(client)
            return JSONResponse({"error": f"too many sign-in attempts; try again in "
                                          f"{math.ceil(wait)} s"}, 429,
                                headers={"Retry-After": str(math.ceil(wait))})
        limiter.begin(client)
        try:
            try:
                given = (await request.json()).get("password", "")
            except (ValueError, AttributeError, RecursionError):
                given = None
            wait = limiter.check(client, given)
            if wait is None:
                request.session["signed_in"] = True
                return JSONResponse({"ok": True})
            await asyncio.sleep(wait)          # the answer comes late, and later each time
            return error("wrong password", 401)
        finally:
            limiter.end(client)

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", 303)

    def routes(self) -> list:
        return [Route("/", self.index), Route("/favicon.ico", self.favicon),
                Route("/api/stream", self.stream),
                Route("/video.mjpg", self.video), Route("/api/state", self.state),
                Route("/api/days", self.days), Route("/api/history", self.history),
                Route("/api/photo", self.photo, methods=["POST"]),
                Route("/api/models", self.models, methods=["GET", "POST"]),
                Route("/login", self.login, methods=["GET", "POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Mount("/static", StaticFiles(directory=STATIC), name="static")]


class PhotoError(EmotionEdgeError, ValueError):
    """A photo that cannot be classified; the message is for the page."""


class PhotoDesk:
    """Classifies uploaded photos with its own detector and classifier (the frame loop's
    are busy in another thread), built on first use and again after a model switch."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._parts: tuple[Path, Any, FaceClassifier] | None = None

    def _tools(self):
        path = self.pipeline.model_path
        if self._parts is None or self._parts[0] != path:
            old = self._parts
            self._parts = (path, self.pipeline.new_detector(),
                           self.pipeline.catalogue.classifier(path))
            if old is not None:
                old[1].close()
        return self._parts[1], self._parts[2]

    def classify(self, data: bytes, colours: dict) -> dict[str, Any]:
        if not data:
            raise PhotoError("no photo in the request")
        with self._lock:   # one photo at a time: its decoding's memory is bounded once
            try:   # the same decoding and size limits as `emotion-edge classify`
                image = decode_image(data, "the photo")
            except SourceError as exc:
                raise PhotoError(str(exc)) from None
            detector, classifier = self._tools()
            faces = classify_image(image, detector, classifier)
        annotate(image, faces, colours)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return {"faces": faces, "width": image.shape[1], "height": image.shape[0],
                "image": "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()}


def sse(msg: dict) -> str:
    return f"data: {json.dumps(msg, separators=(',', ':'))}\n\n"


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status)


class SecurityHeaders:
    """A strict Content-Security-Policy and friends on every response."""

    HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
               # no other site may embed the live picture or any answer (<img>, <script>)
               (b"cross-origin-resource-policy", b"same-origin")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


class SignInGate:
    """With a password set, everything but the sign-in page needs a signed-in session
    (Starlette's signed session cookie)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS \
                and not scope.get("session", {}).get("signed_in") and not _kiosk_here(scope):
            if scope["path"].startswith("/api/") or scope["path"] == "/video.mjpg":
                response: Response = error("sign in first", 401)
            else:
                response = RedirectResponse("/login", 303)
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _kiosk_here(scope) -> bool:
    """The kiosk's own browser (on this device) needs no password for the public screen:
    nobody is there to type one. From anywhere else /kiosk needs a sign-in like the rest."""
    path, client = scope["path"], scope.get("client")
    return bool(client) and is_loopback(client[0]) and (
        path in KIOSK_PATHS or path.startswith("/static/"))


def create_app(cfg: WebConfig, hub: LiveHub, pipeline: Pipeline) -> Starlette:
    web = WebApp(cfg, hub, pipeline)
    middleware = [Middleware(SecurityHeaders),        # outermost: refusals get them too
                  Middleware(HostCheck, names=host_names(cfg.allowed_hosts)),
                  Middleware(OriginCheck, scheme="https" if cfg.tls else "http")]
    if web.password:
        middleware += [Middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(32),
                                  session_cookie="emotion_edge", same_site="strict",
                                  max_age=12 * 3600, https_only=cfg.tls),
                       Middleware(SignInGate)]
    middleware.append(Middleware(BodyLimit, upload_limit=int(cfg.max_upload_mb * 1e6)))
    app = Starlette(routes=web.routes() + Kiosk(web).routes(), middleware=middleware)
    app.state.web = web
    return app
