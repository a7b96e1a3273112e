"""Does the frame loop keep its pace while the page is flooded? (issue 35 §4, §6)

    .venv/bin/python bench/web_flood.py [--seconds 15] [--repeats 3] [--nofile 1024]

Runs the monitor (web page on, with a password, the bundled clip as fast as it runs) under
systemd's default descriptor limit (`prlimit --nofile=1024`), and in interleaved phases:

- quiet: nothing but this script's probe;
- idle crowd: 1100 idle connections, reopened as the monitor closes them;
- slow requests: 200 connections each sending half a request, a byte every second;
- guesses: 100 clients guessing the password in parallel, again and again.

Each second it reads the frame counter from /api/state (signed in) and times that request.
Prints a table and writes bench/results/web_flood.md: medians over the repeats of the
frame loop's fps (ratio to quiet in the same run), the probe's answer time, how many
probes failed, wrong passwords actually checked per second, and the log lines written.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "edge" / "samples"


def clip() -> Path:
    return next(p for p in sorted(CLIP.iterdir()) if p.suffix in (".mp4", ".mov", ".webm"))


class Probe:
    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie

    def state(self) -> tuple[int | None, float]:
        start = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.request("GET", "/api/state", headers={"Cookie": self.cookie})
            r = c.getresponse()
            data = json.loads(r.read())
            c.close()
            return data["health"]["frames"], time.monotonic() - start
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            return None, time.monotonic() - start


LOAD = ("127.0.0.2", 0)       # the loads come from another address than the viewer's


def login(port: int, password: str, source: tuple | None = None) -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=source)
    c.request("POST", "/login", body=json.dumps({"password": password}),
              headers={"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"})
    r = c.getresponse()
    r.read()
    cookie = (r.headers.get("Set-Cookie") or "").split(";")[0]
    c.close()
    return r.status, cookie


def idle_crowd(port: int, stop: threading.Event, n: int = 1100) -> None:
    socks: list[socket.socket] = []
    while not stop.is_set():
        socks = [s for s in socks if _open(s)]
        while len(socks) < n and not stop.is_set():
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=2,
                                                      source_address=LOAD))
            except OSError:
                break
        stop.wait(0.2)
    for s in socks:
        s.close()


def _open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            s.close()
            return False
    except BlockingIOError:
        return True
    except OSError:
        s.close()
        return False
    return True


def slow_requests(port: int, stop: threading.Event, n: int = 200) -> None:
    socks: list[socket.socket] = []
    while not stop.is_set():
        alive = []
        for s in socks:
            try:
                s.sendall(b"X")
                alive.append(s)
            except OSError:
                s.close()
        socks = alive
        while len(socks) < n and not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=LOAD)
                s.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(s)
            except OSError:
                break
        stop.wait(1.0)
    for s in socks:
        s.close()


def guesses(port: int, stop: threading.Event, counts: dict, n: int = 100) -> None:
    def guesser():
        while not stop.is_set():
            try:
                status, _ = login(port, "not-the-password", LOAD)
            except OSError:
                status = 0
            counts[status] = counts.get(status, 0) + 1
    threads = [threading.Thread(target=guesser, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(70)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(name: str, port: int, probe: Probe, seconds: float, pid: int) -> dict:
    stop = threading.Event()
    counts: dict = {}
    load = {"quiet": None, "idle crowd": idle_crowd, "slow requests": slow_requests,
            "guesses": lambda p, s: guesses(p, s, counts)}[name]
    t = threading.Thread(target=load, args=(port, stop), daemon=True) if load else None
    if t:
        t.start()
        time.sleep(2)                                      # the load is on
    samples, latencies, failed = [], [], 0
    last, last_t = None, None
    cpu0, frames0 = cpu_seconds(pid), None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        frames, took = probe.state()
        now = time.monotonic()
        if frames is None:
            failed += 1
        else:
            latencies.append(took * 1000)
            frames0 = frames if frames0 is None else frames0
            if last is not None:
                samples.append((frames - last) / (now - last_t))
            last, last_t = frames, now
        time.sleep(max(0.0, 1.0 - took))
    cpu = cpu_seconds(pid) - cpu0
    stop.set()
    if t:
        t.join(90)
    frames = (last - frames0) if last is not None and frames0 is not None else 0
    return {"fps": statistics.median(samples) if samples else 0.0,
            "cpu_s_per_s": cpu / seconds, "cpu_ms_per_frame": 1000 * cpu / frames if frames else None,
            "answer_ms": statistics.median(latencies) if latencies else None,
            "failed": failed, "checked_per_s": counts.get(401, 0) / seconds if counts else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nofile", type=int, default=1024)
    ap.add_argument("--realtime", action="store_true",
                    help="play the clip at its own pace (as a camera delivers), not as fast as it runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pw = Path(tmp) / "pw"
        pw.write_text("bench-password\n")
        pw.chmod(0o600)
        conf = Path(tmp) / "c.toml"
        conf.write_text(f'[web]\nenabled = true\nport = 0\npassword_file = "{pw}"\n'
                        f'[source]\nuri = "{clip()}"\nrealtime = {str(args.realtime).lower()}\nloop = true\n'
                        f'[log]\ndir = "{tmp}/logs"\n[console]\nenabled = false\n')
        proc = subprocess.Popen(["prlimit", f"--nofile={args.nofile}:{args.nofile}", sys.executable,
                                 "-m", "edge", "run", "--config", str(conf)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err_lines: list[str] = []
        threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True).start()
        try:
            port = int(proc.stdout.readline().rsplit(":", 1)[1].strip("/\n"))
            status, cookie = login(port, "bench-password")
            assert status == 200, status
            probe = Probe(port, cookie)
            names = ["quiet", "idle crowd", "slow requests", "guesses"]
            runs: dict[str, list[dict]] = {n: [] for n in names}
            for r in range(args.repeats):
                for name in names:
                    runs[name].append(phase(name, port, probe, args.seconds, proc.pid))
                    print(f"repeat {r + 1} {name}: {runs[name][-1]}", file=sys.stderr)
                    time.sleep(3)                                  # let the timeouts settle
            alive = proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(60)
    quiet = statistics.median(x["fps"] for x in runs["quiet"])
    rows = []
    for name in names:
        xs = runs[name]
        fps = statistics.median(x["fps"] for x in xs)
        ans = [x["answer_ms"] for x in xs if x["answer_ms"] is not None]
        checked = [x["checked_per_s"] for x in xs if x["checked_per_s"] is not None]
        cpu = statistics.median(x["cpu_s_per_s"] for x in xs)
        rows.append(f"| {name} | {fps:.1f} | {fps / quiet:.2f} | {cpu:.2f} | "
                    f"{statistics.median(ans) if ans else float('nan'):.0f} | "
                    f"{sum(x['failed'] for x in xs)} | "
                    f"{f'{statistics.median(checked):.2f}' if checked else '-'} |")
    table = ("| phase | frame loop fps | vs quiet | monitor CPU s/s | /api/state answer ms | "
             "probes failed | wrong passwords checked/s |\n|---|---|---|---|---|---|---|\n"
             + "\n".join(rows))
    pace = "at the clip's own pace (as a camera delivers)" if args.realtime else "as fast as it runs"
    text = (f"# The page under a flood{' (real time)' if args.realtime else ''}\n\n"
            f"`.venv/bin/python bench/web_flood.py --seconds {args.seconds:g} --repeats "
            f"{args.repeats} --nofile {args.nofile}{' --realtime' if args.realtime else ''}` on "
            f"{os.cpu_count()} cores (shared with other work), {datetime.now():%Y-%m-%d %H:%M}. "
            f"The monitor (page on, with a password; the bundled clip {pace}) under `prlimit "
            f"--nofile={args.nofile}` (systemd's default); phases interleaved, {args.seconds:g} s "
            f"each, medians of {args.repeats}. fps: frames a second from the monitor's own "
            f"counter, read once a second through /api/state by a signed-in probe (its answer "
            f"time and failures are columns too); CPU: the monitor process's CPU seconds per "
            f"second. Idle crowd: 1100 idle connections kept open; slow requests: 200 half "
            f"requests, a byte a second each; guesses: 100 parallel clients guessing the "
            f"password again and again. The loads come from 127.0.0.2, the probe from "
            f"127.0.0.1; they run on the same machine, so they also take CPU from the "
            f"monitor.\n\n"
            f"{table}\n\nThe monitor was {'alive' if alive else 'DEAD'} at the end and wrote "
            f"{len(err_lines)} log lines in all:\n\n```\n" + "".join(err_lines[:20]) + "```\n")
    print(table)
    name = "web_flood-realtime.md" if args.realtime else "web_flood.md"
    (ROOT / "bench" / "results" / name).write_text(text)
    return 0 if alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
