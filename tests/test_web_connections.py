"""Connections are limited and timed out (issue 35 §4): the monitor runs under a real
descriptor limit (`prlimit --nofile`), far more idle connections than it may hold are
opened, and the page keeps answering, slow clients are closed within the timeout, the log
stays a few lines, and the frame loop keeps going. (Its frame rate meanwhile is measured
in bench/web_flood.py, not here.)"""
from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

EMOTION_EDGE = [sys.executable, "-m", "edge"]
NOFILE = 256
TIMEOUT_S = 2.0


def state(port: int) -> dict:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/api/state")
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200
    return json.loads(body)


def closed_by_server(s: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``s`` (EOF or reset), or None if it did not."""
    start = time.monotonic()
    s.settimeout(within)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        return None
    except OSError:
        pass
    return time.monotonic() - start


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) not installed")
def test_idle_crowds_and_slow_clients_under_a_descriptor_limit(tmp_path, videos):
    conf = tmp_path / "c.toml"
    conf.write_text(f'[web]\nenabled = true\nport = 0\nrequest_timeout = {TIMEOUT_S}\n'
                    f'[source]\nuri = "{videos / "pyfeat_single_face.mp4"}"\nloop = true\n'
                    f'[log]\ndir = "{tmp_path / "logs"}"\n[console]\nenabled = false\n')
    proc = subprocess.Popen(["prlimit", f"--nofile={NOFILE}:{NOFILE}", *EMOTION_EDGE, "run",
                             "--config", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    crowd: list[socket.socket] = []
    try:
        line = proc.stdout.readline()
        assert "web page:" in line, (line, proc.poll())
        port = int(line.rsplit(":", 1)[1].strip("/\n"))
        frames_before = state(port)["health"]["frames"]

        # A connection that sends nothing, and one that sends half a request and then a
        # byte a second: both closed once the timeout has passed, not kept for ever.
        silent = socket.create_connection(("127.0.0.1", port))
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(3):
            time.sleep(0.5)
            half.sendall(b"X")
        assert closed_by_server(silent, 30) is not None
        assert closed_by_server(half, 30) is not None
        silent.close()
        half.close()

        # Four times the descriptors the monitor may have, all idle, from two addresses
        # other than the viewer's.
        for i in range(4 * NOFILE):
            try:
                crowd.append(socket.create_connection(("127.0.0.1", port), timeout=10,
                                                      source_address=(f"127.0.0.{2 + i % 2}", 0)))
            except OSError:
                pass                                # the backlog is full for a moment: fine
        answers = [state(port) for _ in range(5)]   # the page answers all the while
        # ... and a crowd from the viewer's own address does not stop the viewer either
        for _ in range(NOFILE):
            try:
                crowd.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            except OSError:
                pass
        answers += [state(port) for _ in range(5)]
        assert all(a["type"] == "hello" for a in answers)
        time.sleep(2 * TIMEOUT_S)
        frames_after = state(port)["health"]["frames"]
        open_now = 0
        for s in crowd:
            s.setblocking(False)
            try:
                open_now += 0 if s.recv(1) == b"" else 1
            except BlockingIOError:
                open_now += 1                       # still open, nothing to read
            except OSError:
                pass
        alive = proc.poll() is None
    finally:
        for s in crowd:
            s.close()
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert alive, err[-3000:]
    assert frames_after > frames_before                       # the frame loop kept going
    assert open_now <= NOFILE // 2, open_now                  # the server kept its cap
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) <= 20 and "Traceback" not in err, err[-3000:]
    assert any("closed the longest waiting" in x for x in lines), lines   # said once, not per socket


def first_free_descriptor(pid: int) -> int:
    used = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    return next(n for n in range(len(used) + 1) if n not in used)


def test_out_of_descriptors_is_a_counted_warning_and_the_page_comes_back(tmp_path, videos):
    """The process runs out of descriptors (made certain here by lowering its limit to the
    first free descriptor while it runs): a failed accept is one warning, not asyncio's
    error and traceback, and the page answers again once descriptors are free."""
    conf = tmp_path / "c.toml"
    conf.write_text(f'[web]\nenabled = true\nport = 0\n'
                    f'[source]\nuri = "{videos / "pyfeat_single_face.mp4"}"\nloop = true\n'
                    f'[log]\ndir = "{tmp_path / "logs"}"\n[console]\nenabled = false\n')
    proc = subprocess.Popen([*EMOTION_EDGE, "run", "--config", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    limits = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
    try:
        line = proc.stdout.readline()
        assert "web page:" in line, (line, proc.poll())
        port = int(line.rsplit(":", 1)[1].strip("/\n"))
        state(port)
        answer: list[dict] = []
        for _ in range(30):                      # the process's descriptors may move: retry
            resource.prlimit(proc.pid, resource.RLIMIT_NOFILE,
                             (first_free_descriptor(proc.pid), limits[1]))
            viewer = threading.Thread(target=lambda: answer.append(state(port)))
            viewer.start()
            viewer.join(1.5)
            if viewer.is_alive():                # not accepted: out of descriptors
                break
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, limits)
        viewer.join(60.0)                        # a hang bound: asyncio retries after 1 s
        alive = proc.poll() is None
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert answer and answer[-1]["type"] == "hello", err[-3000:]
    assert alive, err[-3000:]
    assert "Traceback" not in err and "ERROR" not in err, err[-3000:]
    assert err.count("out of file descriptors") == 1, err[-3000:]


def test_at_the_cap_the_most_crowded_address_yields_and_busy_ones_are_never_closed():
    from edge.web.connections import ConnectionGuard

    guard = ConnectionGuard(16, 5.0)
    clock = iter(range(1000))

    class Conn:
        def __init__(self, address: str, waiting: bool = True):
            self.address, self.waiting, self.dropped = address, waiting, False
            self.waiting_since = next(clock)

        def drop(self):
            self.dropped = True
            guard.forget(self)

    busy_a = [Conn("a", waiting=False) for _ in range(12)]        # many tabs, or a NAT
    assert all(guard.admit(c) for c in busy_a)                    # below the cap: all kept
    b = [Conn("b") for _ in range(2)]
    c = Conn("c")
    assert all(guard.admit(x) for x in b + [c]) and len(guard.open) == 15
    assert guard.admit(Conn("d")) and len(guard.open) == 16
    b[0].waiting_since, b[1].waiting_since = 900, 800             # b[1] has waited longer
    assert guard.admit(Conn("e"))           # full: a has most but all busy; b next: b[1] yields
    assert [x.dropped for x in b] == [False, True] and not c.dropped
    assert not any(x.dropped for x in busy_a)
    for x in guard.open:
        x.waiting = False
    assert not guard.admit(Conn("f"))                             # all busy: the new one is refused
