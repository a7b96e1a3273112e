"""Connections are limited and timed out, below the web framework (uvicorn's h11 protocol).

uvicorn keeps a connection that sends nothing, or half a request, open for as long as the
client likes (its keep-alive timer starts only after a response, and any byte stops it),
and accepts connections until the process runs out of file descriptors; then the page
stops answering and asyncio logs a traceback per failed accept. Here:

- a connection has ``request_timeout`` seconds to send its request's headers, and again
  after each response for the next one; then it is closed;
- at most ``max_connections`` are open at once, and as many more may be in one burst of
  accepts (asyncio's backlog): never more than half the descriptors the process may
  have. A new one past that closes the connection that has waited longest for its
  request, of the address that holds the most: an idle crowd cannot lock a viewer out,
  and connections being answered (a live stream, an upload) are never the ones closed.
  Only when all are busy is the new one closed at once;
- should the process still run out of descriptors (its other files, connections being
  closed), asyncio stops accepting for a second and tries again; that is counted and
  logged as a warning, not as asyncio's error with a traceback per failed accept;
- each kind of trouble is logged once a minute, with how often it happened.
"""
from __future__ import annotations

import errno
import logging
import resource
import time
from collections import Counter, OrderedDict

from uvicorn.protocols.http.h11_impl import H11Protocol

from .security import Throttled

RESERVED_FDS = 128     # for the log, the camera, models, MQTT ...
# accept() failing for want of descriptors or kernel memory: asyncio retries by itself
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_cap(wanted: int) -> int:
    """``wanted``, or a quarter of the descriptors this process may open if that is less
    (the same again may be accepted in one burst before the guard sees them)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(4, min(wanted, (soft - RESERVED_FDS) // 2, soft // 4))


class ConnectionGuard:
    """The open connections of one server; shared by its protocols. At the cap the most
    crowded address gives up its longest-waiting connection: a crowd from one machine
    cannot crowd out a viewer on another. Busy connections are never closed, and below the
    cap none is, so many tabs on one machine, or a school's NAT, work."""

    def __init__(self, max_connections: int, request_timeout: float):
        self.max_connections = connection_cap(max_connections)
        self.request_timeout = request_timeout
        self.open: OrderedDict[GuardedH11Protocol, float] = OrderedDict()
        self.by_address: Counter[str] = Counter()
        self.closed_idle = Throttled("closed connections that sent no request in time")
        self.evicted = Throttled(f"too many connections (at most {self.max_connections}); "
                                 f"closed the longest waiting")
        self.refused = Throttled(f"too many busy connections (at most {self.max_connections}); "
                                 f"refused new ones")
        self.out_of_descriptors = Throttled("out of file descriptors; stopped accepting "
                                            "connections for a second")

    def on_loop_error(self, loop, context: dict) -> None:
        """The event loop's exception handler: a failed accept for want of descriptors is
        a counted warning (asyncio itself pauses and retries); anything else goes to
        asyncio's own handler."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES:
            self.out_of_descriptors(exc.strerror or "")
            return
        loop.default_exception_handler(context)

    def protocol(self) -> type[GuardedH11Protocol]:
        return type("Guarded", (GuardedH11Protocol,), {"guard": self})

    def admit(self, conn: GuardedH11Protocol) -> bool:
        if len(self.open) >= self.max_connections:
            crowds = [a for a, _ in self.by_address.most_common()]   # the most crowded first
            waiting = next((w for a in crowds if (w := self._longest_waiting(a))), None)
            if waiting is None:
                self.refused()
                return False
            self.evicted()
            waiting.drop()
        self.open[conn] = time.monotonic()
        self.by_address[conn.address] += 1
        return True

    def _longest_waiting(self, address: str) -> GuardedH11Protocol | None:
        waiting = [c for c in self.open if c.waiting and c.address == address]
        return min(waiting, key=lambda c: c.waiting_since) if waiting else None

    def forget(self, conn: GuardedH11Protocol) -> None:
        if self.open.pop(conn, None) is not None:
            self.by_address[conn.address] -= 1
            if self.by_address[conn.address] <= 0:
                del self.by_address[conn.address]


class GuardedH11Protocol(H11Protocol):
    guard: ConnectionGuard

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = None
        self.waiting_since = time.monotonic()
        self.address = self.client[0] if self.client else "?"
        if not self.guard.admit(self):
            transport.abort()
            return
        self._arm()

    @property
    def waiting(self) -> bool:
        """Between requests: no request in progress whose answer would be cut off."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.guard.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.waiting and not self.transport.is_closing():
            self.guard.closed_idle()
            self.drop()

    def drop(self) -> None:
        self._disarm()
        self.guard.forget(self)
        self.transport.abort()      # nothing of ours is in flight: no need to linger

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.waiting:        # the headers are in: the route's own limits apply now
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.waiting_since = time.monotonic()
        if not self.transport.is_closing():
            self._arm()             # the next request's headers, in the same time

    def connection_lost(self, exc) -> None:
        self._disarm()
        self.guard.forget(self)
        super().connection_lost(exc)


class OncePerInterval(logging.Filter):
    """The same log message (its template) at most once per ``every`` seconds, with its
    traceback only the first time: a flood of failed accepts is a line a minute."""

    def __init__(self, every: float = 60.0):
        super().__init__()
        self.every = every
        self._last: dict[str, float] = {}
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.msg}"
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.every:
            return False
        self._last[key] = now
        if key in self._seen:
            record.exc_info = None
            record.exc_text = None
        self._seen.add(key)
        if len(self._last) > 1000:
            self._last.clear()
        return True


_FILTER = OncePerInterval()


def quiet_server_logs() -> None:
    """Rate-limit asyncio's and uvicorn's own error lines (idempotent)."""
    for name in ("asyncio", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
