"""edge.notify against a real AF_UNIX datagram socket standing in for systemd."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.notify import SystemdNotifier


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket, like systemd's /run/systemd/notify."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    yield path, sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on the socket, decoded."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


def test_ready_status_stopping_reloading(listener):
    path, sock = listener
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("camera open")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=camera open"
    assert n.stopping()
    assert sock.recv(4096).decode() == "STOPPING=1"
    assert n.reloading()
    msg = sock.recv(4096).decode().split("\n")
    assert msg[0] == "RELOADING=1"
    # systemd compares this with its own CLOCK_MONOTONIC reading.
    usec = int(msg[1].removeprefix("MONOTONIC_USEC="))
    assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 5_000_000
    assert n.errors == 0


def test_status_is_rate_limited_and_single_line(listener):
    path, sock = listener
    clock = FakeClock()
    n = SystemdNotifier({"NOTIFY_SOCKET": path}, status_interval=5.0, clock=clock)
    assert n.status("10 fps\n2 faces")
    for i in range(100):  # a frame loop hammering status()
        clock.now += 0.01
        n.status(f"{i} fps")
    assert received(sock) == ["STATUS=10 fps 2 faces"]
    clock.now += 5.0
    assert n.status("12 fps")
    assert received(sock) == ["STATUS=12 fps"]
    assert not n.status("12 fps", force=True)  # unchanged text is not resent
    assert n.status("13 fps", force=True)
    assert received(sock) == ["STATUS=13 fps"]


def test_watchdog_paced_at_half_watchdog_usec(listener):
    path, sock = listener
    clock = FakeClock()
    n = SystemdNotifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())},
        clock=clock,
    )
    assert n.watchdog_interval == 1.0
    sent_at = []
    for _ in range(1000):  # 10 s of frames at 100 fps
        if n.watchdog():
            sent_at.append(clock.now)
        clock.now += 0.01
    msgs = received(sock)
    assert msgs == ["WATCHDOG=1"] * len(sent_at)
    assert len(sent_at) == 10
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert all(0.99 <= g <= 1.02 for g in gaps), gaps


def test_watchdog_flushes_pending_status(listener):
    path, sock = listener
    clock = FakeClock()
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}, clock=clock)
    n.status("starting")
    n.status("5 fps")  # too soon: kept for later
    assert received(sock) == ["STATUS=starting"]
    clock.now += 6.0
    assert n.watchdog()
    assert received(sock) == ["STATUS=5 fps", "WATCHDOG=1"]


def test_watchdog_in_real_time(listener):
    """WATCHDOG_USEC=0.2 s: a busy loop for ~1 s sends one ping per 0.1 s, no more."""
    path, sock = listener
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    start = time.monotonic()
    calls = 0
    while time.monotonic() - start < 1.0:
        n.watchdog()
        calls += 1
    elapsed = time.monotonic() - start
    pings = received(sock)
    assert set(pings) == {"WATCHDOG=1"}
    assert n.errors == 0  # nothing was dropped: it really sent this few
    assert calls > 1000  # cheap enough to call every frame
    assert len(pings) <= int(elapsed / 0.1) + 1
    assert len(pings) >= 5  # even on a loaded CI machine


def test_watchdog_pid_of_another_process_disables_pings(listener):
    path, sock = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": str(os.getpid() + 1)}
    n = SystemdNotifier(env)
    assert n.watchdog_interval is None
    assert not n.watchdog()
    assert n.ready()  # other notifications still go out
    assert received(sock) == ["READY=1"]


@pytest.mark.parametrize("value", ["", "0", "-5", "abc"])
def test_bad_or_missing_watchdog_usec_means_no_watchdog(listener, value):
    path, _ = listener
    assert SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": value}).watchdog_interval is None


def test_abstract_socket():
    name = f"emotion-edge-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        n = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_no_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000")
    n = SystemdNotifier()
    assert not n.enabled
    assert n.watchdog_interval is None
    assert not any([n.ready("x"), n.status("x"), n.watchdog(), n.stopping(), n.reloading()])
    assert n.errors == 0


def test_unsupported_address_is_a_no_op():
    n = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled and not n.ready()


def test_vanished_socket_is_counted_not_raised(listener, caplog):
    path, sock = listener
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000"})
    assert n.ready()
    sock.close()
    os.unlink(path)  # systemd went away (or the socket was removed)
    assert not n.watchdog()
    assert not n.stopping("bye")
    assert n.errors == 2
    # Warned once, not per frame.
    assert sum("notify socket" in r.getMessage() for r in caplog.records) == 1


def test_socket_without_reader_is_counted_not_raised(tmp_path):
    path = tmp_path / "notify"
    path.touch()  # exists but is no socket: ECONNREFUSED
    n = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    assert not n.ready()
    assert n.errors == 1


def test_full_queue_does_not_block(listener):
    """A receiver that stops reading must not stall the frame loop."""
    path, _ = listener
    n = SystemdNotifier({"NOTIFY_SOCKET": path})

    def hammer() -> None:
        for i in range(5000):
            n.notify(f"STATUS={'x' * 1000} {i}")

    worker = threading.Thread(target=hammer, daemon=True)  # a blocked send stays behind
    worker.start()
    worker.join(timeout=10.0)
    assert not worker.is_alive(), "notify() blocked on a full socket queue"
    assert n.errors > 0  # some were dropped, none raised
