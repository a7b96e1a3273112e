"""Soak test: the daemon over a looped real video for a long time; does it leak?

    .venv/bin/python bench/soak.py [--minutes 10] [--interval 5] [--out bench/results/soak.md]

Runs ``python -m edge run`` as its own process, as the service does, over the bundled clip
(``edge/samples/demo_pexels_wolfgang_langer.mp4``) looped, ``--fast`` (frames as fast as the
CPU allows: more frames per minute than a real camera gives), LEDs on mock pins, and a log
with a small ``max_bytes`` so it rotates many times. Every ``--interval`` seconds it reads
the process's resident memory (``/proc/PID/status`` VmRSS) and open file descriptors
(``/proc/PID/fd``). At the end it sends SIGTERM, as systemd does, and reports:

* RSS when the steady state starts (after the warm-up: the first minute, or the first
  10 % of a longer run), RSS at the end, and the RSS slope in MB/hour, a least-squares
  line over the second half of the samples (a leak shows as a steady positive slope);
* the open-fd count, min and max over the steady state (a descriptor leak, e.g. from log
  rotation or reopening the video, shows as a max that keeps growing);
* frames processed and frames per second (the daemon's own ``stopped`` record), log
  rotations seen, and whether every kept log line is whole JSON.

Prints a table and writes ``bench/results/soak.md``. Not run by CI (it takes minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "edge" / "samples" / "demo_pexels_wolfgang_langer.mp4"
RESULTS = ROOT / "bench" / "results" / "soak.md"

CONFIG = """\
[monitor]
summary_interval = 10.0

[log]
max_bytes = {max_bytes}
keep = 3
flush_interval = 1.0
"""


# --- /proc readings ----------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads from /proc/PID/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


# --- statistics ---------------------------------------------------------------------------

def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")


# --- the run ------------------------------------------------------------------------------

def soak(minutes: float, interval: float, max_bytes: int, source: Path) -> dict:
    duration = minutes * 60
    warmup = max(60.0, 0.1 * duration) if duration > 120 else 0.25 * duration
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    log_dir = tmp / "logs"
    conf = tmp / "config.toml"
    conf.write_text(CONFIG.format(max_bytes=max_bytes))
    cmd = [sys.executable, "-m", "edge", "run", "--config", str(conf), "--source", str(source),
           "--loop", "--fast", "--mock-gpio", "--log-dir", str(log_dir)]
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    out_path = tmp / "stdout.txt"
    load_start = loadavg()
    samples: list[dict] = []
    inode, rotations = None, 0
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        try:
            next_at = t0
            while True:
                now = time.monotonic()
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited early (code {proc.returncode}); "
                                       f"see {out_path}")
                if now >= next_at:
                    st = proc_status(proc.pid)
                    try:
                        ino = os.stat(log_dir / "events.jsonl").st_ino
                    except FileNotFoundError:
                        ino = inode
                    if inode is not None and ino != inode:
                        rotations += 1   # at most one per sample seen: a lower bound
                    inode = ino
                    samples.append({"t": now - t0, "rss_kb": st["VmRSS"], "hwm_kb": st["VmHWM"],
                                    "threads": st["Threads"], "fds": fd_count(proc.pid),
                                    "cpu_s": cpu_seconds(proc.pid)})
                    s = samples[-1]
                    print(f"  {s['t']:7.0f} s  RSS {s['rss_kb'] / 1024:6.1f} MB  fds {s['fds']:3d}"
                          f"  threads {s['threads']:2d}  cpu {s['cpu_s']:7.1f} s", flush=True)
                    next_at += interval
                if now - t0 >= duration:
                    break
                time.sleep(max(0.0, min(next_at, t0 + duration) - time.monotonic()))
            cpu_end = cpu_seconds(proc.pid)
            wall_end = time.monotonic() - t0
            t_term = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            stop_s = time.monotonic() - t_term
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # The log: every kept line whole JSON; the daemon's own final record.
    files = sorted(log_dir.glob("events.jsonl*"))
    lines = partial = 0
    records = []
    for f in files:
        data = f.read_bytes()
        if data and not data.endswith(b"\n"):
            partial += 1
        for raw in data.splitlines():
            records.append(json.loads(raw))   # raises on a broken line
            lines += 1
    current = [json.loads(x) for x in (log_dir / "events.jsonl").read_bytes().splitlines()]
    stopped = current[-1] if current and current[-1]["event"] == "stopped" else None

    shutil.rmtree(tmp, ignore_errors=True)
    steady = [s for s in samples if s["t"] >= warmup] or samples
    half = samples[len(samples) // 2:]
    return {
        "cmd": cmd, "config": CONFIG.format(max_bytes=max_bytes), "minutes": minutes,
        "interval": interval, "warmup_s": warmup, "samples": samples, "exit_code": code,
        "stop_s": stop_s, "wall_s": wall_end, "cpu_s": cpu_end, "load_start": load_start,
        "load_end": loadavg(), "rotations": rotations, "log_files": [f.name for f in files],
        "log_lines_kept": lines, "partial_files": partial, "stopped": stopped,
        "rss_start_mb": steady[0]["rss_kb"] / 1024, "rss_start_t": steady[0]["t"],
        "rss_end_mb": samples[-1]["rss_kb"] / 1024,
        "rss_min_mb": min(s["rss_kb"] for s in steady) / 1024,
        "rss_max_mb": max(s["rss_kb"] for s in steady) / 1024,
        "hwm_mb": samples[-1]["hwm_kb"] / 1024,
        "slope_mb_h": slope([s["t"] / 3600 for s in half], [s["rss_kb"] / 1024 for s in half]),
        "fds_min": min(s["fds"] for s in steady), "fds_max": max(s["fds"] for s in steady),
        "fds_all": (min(s["fds"] for s in samples), max(s["fds"] for s in samples)),
        "threads": (min(s["threads"] for s in steady), max(s["threads"] for s in steady)),
        "tmp": str(tmp),   # deleted by now; named <tmp> in the report
    }


def table(r: dict) -> list[tuple[str, str]]:
    st = r["stopped"] or {}
    return [
        ("run", f"{r['wall_s'] / 60:.1f} min, sampled every {r['interval']:g} s "
                f"({len(r['samples'])} samples); steady state from {r['rss_start_t']:.0f} s"),
        ("RSS at start of steady state", f"{r['rss_start_mb']:.1f} MB"),
        ("RSS at end", f"{r['rss_end_mb']:.1f} MB"),
        ("RSS min / max in steady state", f"{r['rss_min_mb']:.1f} / {r['rss_max_mb']:.1f} MB"),
        ("RSS slope, 2nd half (least squares)", f"{r['slope_mb_h']:+.2f} MB/hour"),
        ("peak RSS (VmHWM)", f"{r['hwm_mb']:.1f} MB"),
        ("open fds min / max in steady state",
         f"{r['fds_min']} / {r['fds_max']} (whole run {r['fds_all'][0]} / {r['fds_all'][1]})"),
        ("threads min / max in steady state", f"{r['threads'][0]} / {r['threads'][1]}"),
        ("frames processed", f"{st.get('frames', '?')}"),
        ("fps (daemon's stopped record)", f"{st.get('fps', '?')}"),
        ("CPU time of the daemon", f"{r['cpu_s']:.0f} s = {100 * r['cpu_s'] / r['wall_s']:.0f} % "
                                   "of one core"),
        ("log rotations seen (lower bound)", f"{r['rotations']}"),
        ("log files kept, lines, partial lines", f"{len(r['log_files'])}, {r['log_lines_kept']}, "
                                                 f"{r['partial_files']}"),
        ("bad frames / source failures", f"{st.get('bad_frames', '?')} / "
                                         f"{st.get('source_failures', '?')}"),
        ("SIGTERM -> exit", f"code {r['exit_code']} after {r['stop_s']:.2f} s, last line "
                            f"{'stopped' if r['stopped'] else 'NOT stopped'}"),
        ("load average start / end", f"{r['load_start']} / {r['load_end']}"),
    ]


def markdown(r: dict) -> str:
    rows = table(r)
    cmd = " ".join(str(c).replace(str(ROOT) + "/", "").replace(r["tmp"], "<tmp>")
                   for c in r["cmd"])
    argv = " ".join(sys.argv[1:])
    out = [
        "# Soak test: memory and file descriptors of the running daemon",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with "
        f"`.venv/bin/python bench/soak.py{(' ' + argv) if argv else ''}` on {cpu_model()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. "
        "The machine was shared with a model-training job (see the load average): fps is "
        "what the daemon got, not what it can do alone.",
        "",
        "The daemon ran as its own process:",
        "",
        "```",
        cmd,
        "```",
        "",
        "with this config (a small `max_bytes` so the log rotates all the time):",
        "",
        "```toml",
        r["config"].rstrip(),
        "```",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
        "## Samples",
        "",
        "| t (s) | RSS (MB) | open fds | threads | CPU (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    samples = r["samples"]
    step = max(1, len(samples) // 30)
    for s in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        out.append(f"| {s['t']:.0f} | {s['rss_kb'] / 1024:.1f} | {s['fds']} | {s['threads']} "
                   f"| {s['cpu_s']:.1f} |")
    out += [
        "",
        "How to read it: the slope is fitted to the second half of the samples only, so "
        "start-up allocation does not count; a few MB/hour either way over minutes is noise "
        "(allocator and decoder buffers), a leak shows as the same positive slope in a longer "
        "run (`--minutes 60`). The fd count should stay flat while the log rotates.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="run time (default 10)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--max-bytes", type=int, default=2_000,
                   help="[log] max_bytes, small so the log rotates every ~20 s (default 2000)")
    p.add_argument("--source", type=Path, default=CLIP, help="video to loop")
    p.add_argument("--out", type=Path, default=RESULTS, help="markdown report")
    args = p.parse_args(argv)
    print(f"soak: {args.minutes:g} min over {args.source.name}, sampling every "
          f"{args.interval:g} s", flush=True)
    r = soak(args.minutes, args.interval, args.max_bytes, args.source)
    width = max(len(k) for k, _ in table(r))
    print()
    for k, v in table(r):
        print(f"{k:<{width}}  {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(r))
    print(f"\nwrote {args.out}")
    ok = r["exit_code"] == 0 and r["stopped"] is not None and r["partial_files"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
