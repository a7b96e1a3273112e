"""How fast anyone may guess the page's password (as Home Assistant's ``http`` bans a
client after failed logins, here as growing waits that need no ban list on disk).

Per client address: one attempt at a time; after the n-th failure in a row its next
attempt is answered only after 2**(n-1) seconds (1, 2, 4 ... at most ``MAX_WAIT_S``), and
an attempt during that wait is a 429 at once, without looking at the password. A success
clears it. Over all clients: at most ``GLOBAL_FAILURES`` failures in ``WINDOW_S``; past that
every attempt is a 429 until the window has room, so many addresses guess no faster than
that together. Memory is bounded: the ``MAX_CLIENTS`` most recent addresses are kept.
"""
from __future__ import annotations

import hmac
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_WAIT_S = 60.0
GLOBAL_FAILURES = 30
WINDOW_S = 60.0
MAX_CLIENTS = 4096


@dataclass
class _Client:
    failures: int = 0
    until: float = 0.0          # no attempt before this (monotonic seconds)
    busy: bool = False


class SignInLimiter:
    def __init__(self, password: str, clock: Callable[[], float] = time.monotonic):
        self._password = password.encode("utf-8")
        self.clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._recent: deque[float] = deque()        # times of failures in the window
        self.counters = {"sign_ins": 0, "sign_in_failures": 0, "sign_ins_refused": 0}

    def refused(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now). A refusal is counted."""
        now = self.clock()
        while self._recent and self._recent[0] <= now - WINDOW_S:
            self._recent.popleft()
        c = self._clients.get(client)
        wait = 0.0
        if c is not None and (c.busy or c.until > now):
            wait = max(c.until - now, 1.0)
        if len(self._recent) >= GLOBAL_FAILURES:
            wait = max(wait, self._recent[0] + WINDOW_S - now)
        if wait:
            self.counters["sign_ins_refused"] += 1
        return wait

    def begin(self, client: str) -> None:
        c = self._clients.pop(client, None) or _Client()
        self._clients[client] = c               # most recent last
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        c.busy = True

    def check(self, client: str, given: object) -> float | None:
        """None if ``given`` is the password; else the seconds to wait before saying no.
        Anything that is not a string, or cannot be UTF-8 (a lone surrogate), is wrong."""
        c = self._clients[client]
        try:
            ok = isinstance(given, str) and hmac.compare_digest(
                given.encode("utf-8"), self._password)
        except UnicodeEncodeError:
            ok = False
        if ok:
            self.counters["sign_ins"] += 1
            c.failures, c.until = 0, 0.0
            return None
        self.counters["sign_in_failures"] += 1
        c.failures += 1
        wait = min(2.0 ** (c.failures - 1), MAX_WAIT_S)
        now = self.clock()
        c.until = now + wait
        self._recent.append(now)
        return wait

    def end(self, client: str) -> None:
        c = self._clients.get(client)
        if c is not None:
            c.busy = False
