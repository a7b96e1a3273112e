"""Tell systemd how the daemon is doing (the sd_notify protocol), without libsystemd.

systemd passes a datagram socket in ``$NOTIFY_SOCKET`` to ``Type=notify`` services;
each datagram holds newline-separated ``KEY=VALUE`` fields (``READY=1``,
``STATUS=...``, ``WATCHDOG=1``, ...). Outside systemd (a laptop, the tests) the
variable is absent and every call is a cheap no-op.

Typical use in the daemon::

    notifier = SystemdNotifier()
    ...open camera, load model...
    notifier.ready("running: 0 faces")
    while running:
        frame = ...
        notifier.watchdog()            # every frame: sends at most every WatchdogSec/2
        notifier.status(f"{fps:.1f} fps, {n} faces")   # sent at most every 5 s
    notifier.stopping()
"""
from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 5.0  # systemctl status is read by people: no need for more


class SystemdNotifier:
    """Sends sd_notify messages; never raises, never blocks the frame loop."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        status_interval: float = STATUS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if env is None else env
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        self._clock = clock
        self.errors = 0  # datagrams that could not be delivered (socket gone, queue full)
        # Watchdog: ping at half the timeout, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval = _watchdog_interval(env) if self._address else None
        self._last_ping = float("-inf")
        self._status_interval = status_interval
        self._last_status_at = float("-inf")
        self._last_status: str | None = None
        self._pending_status: str | None = None

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` fields; False if not sent."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A full receive queue must drop a ping, not stall the camera loop.
                self._sock.setblocking(False)
            self._sock.sendto(message, self._address)
            return True
        except OSError as exc:  # socket vanished, connection refused, queue full...
            self.errors += 1
            if self.errors == 1:
                log.warning("systemd notify socket unusable (%s); carrying on without it", exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) finished: systemd marks the unit active."""
        fields = ["READY=1"]
        if status is not None:
            fields.append(self._status_field(status))
        return self.notify(*fields)

    def reloading(self) -> bool:
        """A reload (SIGHUP) started; call ready() when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown started (SIGTERM): systemd stops expecting watchdog pings."""
        fields = ["STOPPING=1"]
        if status is not None:
            fields.append(self._status_field(status))
        return self.notify(*fields)

    def status(self, text: str, *, force: bool = False) -> bool:
        """Set the one-line status shown by systemctl status (rate-limited).

        Called as often as you like: the newest text is sent at most every
        ``status_interval`` seconds (a later watchdog() call flushes it).
        """
        if self._address is None:
            return False
        self._pending_status = text
        if force or self._clock() - self._last_status_at >= self._status_interval:
            return self._flush_status()
        return False

    def watchdog(self) -> bool:
        """Keep-alive from the frame loop: cheap enough to call every frame."""
        if self.watchdog_interval is None:
            return False
        now = self._clock()
        if now - self._last_ping < self.watchdog_interval:
            return False
        self._last_ping = now
        if (
            self._pending_status is not None
            and now - self._last_status_at >= self._status_interval
        ):
            self._flush_status()
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _status_field(self, text: str) -> str:
        self._pending_status = None
        self._last_status = text
        self._last_status_at = self._clock()
        return f"STATUS={_one_line(text)}"

    def _flush_status(self) -> bool:
        text = self._pending_status
        if text is None or text == self._last_status:
            self._pending_status = None
            return False
        return self.notify(self._status_field(text))


def _socket_address(value: str) -> str | None:
    """$NOTIFY_SOCKET as a socket address: a path, or '@name' for the abstract namespace."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value:  # e.g. 'vsock:...' (systemd in a VM): not needed on a Pi
        log.debug("unsupported NOTIFY_SOCKET %r ignored", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between pings, or None when systemd expects none from this process."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    # A child that inherited the variables must not ping for its parent.
    if pid and pid.strip() != str(os.getpid()):
        return None
    return usec / 2 / 1_000_000


def _one_line(text: str) -> str:
    return " ".join(text.split())
