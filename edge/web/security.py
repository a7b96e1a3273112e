"""What every request must pass before a route sees it (ASGI middleware, outermost first):

- ``HostCheck``: only this device's names and addresses are served, so a page whose DNS
  name is re-pointed at the device (DNS rebinding) cannot read it.
- ``OriginCheck``: a request that changes something comes from the page itself (its
  ``Origin`` is ours, when the browser sends one), with the content type its route takes
  (a cross-origin page can send ``text/plain`` or a form without asking; JSON or an image
  type needs a CORS preflight, which is never granted).
- ``BodyLimit`` (inside the sign-in gate): a body is read, up to its route's limit, before
  the route runs, so no route ever holds more than that in memory.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable

from starlette.responses import JSONResponse

log = logging.getLogger("edge.web")

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Route -> (the content types it takes (a prefix ends with /), its largest body in bytes;
# None: [web] max_upload_mb). Any other route takes no body larger than SMALL_BODY.
SMALL_BODY = 4096
BODIES: dict[str, tuple[tuple[str, ...], int | None]] = {
    "/login": (("application/json",), SMALL_BODY),
    "/api/models": (("application/json",), SMALL_BODY),
    "/api/photo": (("image/", "application/octet-stream"), None),
    "/logout": ((), SMALL_BODY),
}


def refuse(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers={"Connection": "close"})


class Throttled:
    """A problem worth one log line per ``every`` seconds, with how often it happened."""

    def __init__(self, what: str, every: float = 60.0):
        self.what, self.every = what, every
        self.count, self._since, self._next = 0, 0, 0.0

    def __call__(self, detail: str = "") -> None:
        self.count += 1
        self._since += 1
        now = time.monotonic()
        if now >= self._next:
            log.warning("web: %s%s (%d since the last such line)", self.what,
                        f": {detail}" if detail else "", self._since)
            self._since, self._next = 0, now + self.every


def host_names(extra: Iterable[str] = ()) -> set[str]:
    """The names served: localhost, this device's own name (and name.local), ``extra``.
    Any IP address is served too (see ``host_allowed``)."""
    me = socket.gethostname().lower()
    return {"localhost", me, f"{me}.local", *(n.lower().rstrip(".") for n in extra)}


def host_allowed(host: str, names: set[str]) -> bool:
    """``host`` (a Host header: name or address, maybe with a port) is ours. An IP address
    is always allowed: a browser sends one only when the page was opened by its address,
    which is no rebinding."""
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.lower().rstrip(".")
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in names


class HostCheck:
    def __init__(self, app, names: set[str]):
        self.app, self.names = app, names
        self.refused = Throttled("refused requests for a host name not in [web] allowed_hosts")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host and not host_allowed(host, self.names):   # no Host: HTTP/1.0, no browser
                self.refused(repr(host[:80]))
                return await refuse(f"this page does not answer to {host[:80]!r}; add the "
                                    f"name to [web] allowed_hosts", 421)(scope, receive, send)
        await self.app(scope, receive, send)


class OriginCheck:
    """A request that changes something must come from this page, with its route's type."""

    def __init__(self, app, scheme: str):
        self.app, self.scheme = app, scheme
        self.refused = Throttled("refused cross-origin requests")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = dict(scope["headers"])
            problem = self._origin_problem(headers)
            if problem:
                self.refused(problem)
                return await refuse(f"refused: {problem}", 403)(scope, receive, send)
            types = BODIES.get(scope["path"], ((), 0))[0]
            if types and not _type_ok(headers.get(b"content-type", b""), types):
                want = " or ".join(t + "*" if t.endswith("/") else t for t in types)
                return await refuse(f"send the body as {want}", 415)(scope, receive, send)
        await self.app(scope, receive, send)

    def _origin_problem(self, headers: dict[bytes, bytes]) -> str | None:
        origin = headers.get(b"origin")
        if origin is None:   # not a browser (a browser sends one with every POST)
            site = headers.get(b"sec-fetch-site", b"same-origin")
            return None if site in (b"same-origin", b"none") else f"sent from a {site.decode('latin-1')} page"
        own = f"{self.scheme}://{headers.get(b'host', b'').decode('latin-1')}".lower()
        given = origin.decode("latin-1").lower()
        return None if given == own else f"sent from {given[:80]!r}, not from this page"


class BodyLimit:
    """Reads a request's body, up to its route's limit and within ``timeout`` seconds,
    before the route runs; past either it is refused and nothing more is read. At most
    ``BIG_AT_ONCE`` bodies larger than SMALL_BODY are read at a time."""

    BIG_AT_ONCE = 2

    def __init__(self, app, upload_limit: int, timeout: float = 60.0):
        self.app, self.upload_limit, self.timeout = app, upload_limit, timeout
        self._big = asyncio.Semaphore(self.BIG_AT_ONCE)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        limit = BODIES.get(scope["path"], ((), SMALL_BODY))[1]
        limit = self.upload_limit if limit is None else limit
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            return await self.app(scope, receive, send)          # no body
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await too_large(scope["path"], limit)(scope, receive, send)
        big = declared is None or int(declared) > SMALL_BODY
        try:
            if big:
                async with self._big:
                    body = await asyncio.wait_for(_read(receive, limit), self.timeout)
            else:
                body = await asyncio.wait_for(_read(receive, limit), self.timeout)
        except asyncio.TimeoutError:
            return await refuse(f"the body did not arrive within {self.timeout:g} s",
                                408)(scope, receive, send)
        if body is None:
            return await too_large(scope["path"], limit)(scope, receive, send)
        await self.app(scope, _replay(body, receive), send)


async def _read(receive, limit: int) -> bytes | None:
    """The whole body, or None past ``limit`` bytes (or when the client went away)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _type_ok(content_type: bytes, types: tuple[str, ...]) -> bool:
    media = content_type.decode("latin-1").split(";")[0].strip().lower()
    return any(media.startswith(t) if t.endswith("/") else media == t for t in types)


def too_large(path: str, limit: int) -> JSONResponse:
    size = f"{limit / 1e6:g} MB" if limit >= 100_000 else f"{limit} bytes"
    what = "the photo" if path == "/api/photo" else "the request"
    return refuse(f"{what} is larger than {size}", 413)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()     # after the body: wait for the disconnect, as usual

    return replay
