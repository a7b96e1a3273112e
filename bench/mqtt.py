"""MQTT benchmark: what publishing costs the frame loop, and how a fleet's messages travel.

    .venv/bin/python bench/mqtt.py [--repeats 5] [--frames 2000] [--devices 30] [--seconds 60]

1. The frame loop (``edge.pipeline.Monitor``, in this process) on a real clip from
   ../shared (``pyfeat_WolfgangLanger_Pexels.mp4`` looped, ``realtime = false`` as with
   ``--fast``), in three variants in the same run: MQTT off; on with the broker up; on with
   the broker down (every message spooled on disk, reconnects refused). With MQTT on, a
   summary every 1 s of video (about 15 a second at these speeds) and every face event are published, far more than the
   defaults (a summary a minute, no face events). The variants are interleaved, their
   order rotated each repeat; the table gives medians over the repeats of fps, process CPU
   time per frame (all threads, so the publisher thread's work counts) and the sinks stage.
2. The fleet: ``--devices`` real MQTT sinks in this process (tests/mqtt_fleet.py), each with
   its own device id, spool and publisher thread, each handed a real summary every second
   for ``--seconds``; a paho subscriber counts what arrives and measures the end-to-end
   latency from the summary's creation (its ``ts``) to its arrival.

A Mosquitto (tests/mqtt_broker.py) is started on a free port of 127.0.0.1 and stopped at the
end. Prints a table and writes ``bench/results/mqtt.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mqtt_broker import Broker, Subscriber, free_port  # noqa: E402
from mqtt_fleet import replay, start_fleet, stop_fleet, summaries_from_log  # noqa: E402

SHARED = Path(os.environ.get("EMOTION_SHARED_DIR", ROOT.parent / "shared"))
CLIP = SHARED / "data" / "video" / "pyfeat_WolfgangLanger_Pexels.mp4"
RESULTS = ROOT / "bench" / "results" / "mqtt.md"
VARIANTS = ("off", "on, broker up", "on, broker down (spooling)")


def frame_loop(variant: str, port_up: int, port_down: int, frames: int, tmp: Path) -> dict:
    from edge import config
    from edge.pipeline import Monitor

    run = Path(tempfile.mkdtemp(dir=tmp))
    raw = {"source": {"uri": str(CLIP), "realtime": False, "loop": True},
           "monitor": {"max_frames": frames, "summary_interval": 1.0},
           "log": {"dir": str(run)}, "console": {"enabled": False}}
    if variant != "off":
        raw["mqtt"] = {"enabled": True, "host": "127.0.0.1", "publish_events": True,
                       "port": port_up if variant == "on, broker up" else port_down,
                       "device_id": "bench", "room": "Bench", "spool_dir": str(run / "spool")}
    monitor = Monitor(config.from_dict(raw), profile=True)
    cpu = time.process_time()
    st = monitor.run()
    cpu = time.process_time() - cpu
    sink = next((s for s in monitor.sinks if s.name == "mqtt"), None)
    return {"fps": st.fps, "cpu_ms": cpu / st.frames * 1000,
            "sinks_ms": statistics.median(st.stage_s["sinks"]) * 1000,
            "sinks_p99_ms": sorted(st.stage_s["sinks"])[int(0.99 * st.frames)] * 1000,
            "published": sink.publisher.published if sink else 0,
            "spooled": len(sink.spool) if sink else 0, "events": st.events}


def fleet(port: int, devices: int, seconds: float, tmp: Path) -> dict:
    from edge import config
    from edge.pipeline import Monitor

    real = tmp / "real-run"
    Monitor(config.from_dict({"source": {"uri": str(CLIP), "realtime": False},
                              "monitor": {"summary_interval": 0.5},
                              "log": {"dir": str(real)}, "console": {"enabled": False}})).run()
    summaries = summaries_from_log(real / "events.jsonl")
    sub = Subscriber(port, ["fleet/+/state"], client_id="bench-fleet").start()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    run = start_fleet(port, devices, tmp / "fleet", prefix="fleet")
    t0 = time.monotonic()
    replay(run, summaries, seconds)
    sent = sum(len(v) for v in run.sent.values())
    deadline = time.monotonic() + 30
    while len(sub.messages) < sent + devices and time.monotonic() < deadline:
        time.sleep(0.1)
    wall = time.monotonic() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    stop_fleet(run)
    sub.stop()
    got = [m for m in sub.messages if m.json()["frames"]]     # not each run's first state
    complete = all([m.json()["seq"] for m in sub.on(f"fleet/{d}/state")]
                   == list(range(1, len(v) + 2)) for d, v in run.sent.items())
    latency = sorted(m.t - datetime.fromisoformat(m.json()["ts"].replace("Z", "+00:00"))
                     .timestamp() for m in got)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return {"devices": devices, "seconds": seconds, "sent": sent, "received": len(got),
            "complete": complete, "rate": len(got) / seconds,
            "lat_median_ms": statistics.median(latency) * 1000,
            "lat_p99_ms": latency[int(0.99 * len(latency))] * 1000,
            "lat_max_ms": latency[-1] * 1000, "cpu_pct": cpu / wall * 100,
            "handle_us": statistics.median(run.frame_calls_s) * 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--devices", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if not CLIP.exists():
        print(f"bench/mqtt.py: {CLIP} is absent (set EMOTION_SHARED_DIR)", file=sys.stderr)
        return 2
    started = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        broker = Broker(tmp / "broker").start()
        try:
            down = free_port()
            rows: dict[str, list[dict]] = {v: [] for v in VARIANTS}
            frame_loop("off", broker.port, down, 300, tmp)             # warm-up, not counted
            for r in range(args.repeats):
                order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
                for v in order:
                    rows[v].append(frame_loop(v, broker.port, down, args.frames, tmp))
                    print(f"repeat {r + 1} {v}: {rows[v][-1]['fps']:.1f} fps", flush=True)
            f = fleet(broker.port, args.devices, args.seconds, tmp)
        finally:
            broker.kill()
    med = {v: {k: statistics.median(x[k] for x in rows[v]) for k in rows[v][0]} for v in VARIANTS}
    base = med["off"]["fps"]
    # Paired: each repeat's on/off ratio (its three runs back to back), then the median, so a
    # load change on this shared machine between repeats cancels out.
    paired = {v: statistics.median(a["fps"] / b["fps"] for a, b in zip(rows[v], rows["off"]))
              for v in VARIANTS}
    cpu_paired = {v: statistics.median(a["cpu_ms"] / b["cpu_ms"]
                                       for a, b in zip(rows[v], rows["off"])) for v in VARIANTS}
    lines = [
        "# MQTT benchmark", "",
        f"`.venv/bin/python bench/mqtt.py --repeats {args.repeats} --frames {args.frames} "
        f"--devices {args.devices} --seconds {args.seconds:g}` on {os.cpu_count()} CPUs "
        f"({platform.machine()}, Python {platform.python_version()}), "
        f"{started:%Y-%m-%d %H:%M} UTC; Mosquitto on 127.0.0.1 started by the benchmark.", "",
        "## The frame loop with MQTT off / on / on with the broker down", "",
        f"`{CLIP.name}` looped, `realtime = false`, {args.frames} frames per run, default "
        "detector and tracker; with MQTT on, a summary every 1 s of video (about 15 a second "
        "at these speeds) and every face event published (the defaults publish a summary a minute). Medians of "
        f"{args.repeats} interleaved repeats (order rotated), after one warm-up run. CPU "
        "ms/frame is the process's CPU time (all threads: the publisher thread's JSON, "
        "fsync and network work counts) over frames; sinks ms is the frame loop's sinks "
        "stage (summary, every sink's handle and update).", "",
        "| MQTT | fps | fps vs off (paired) | CPU ms/frame | CPU vs off (paired) | sinks ms "
        "(median / p99) | messages acknowledged / left in the spool per run |",
        "|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        m = med[v]
        lines.append(f"| {v} | {m['fps']:.1f} | {(paired[v] - 1) * 100:+.1f}% | "
                     f"{m['cpu_ms']:.2f} | {(cpu_paired[v] - 1) * 100:+.1f}% | "
                     f"{m['sinks_ms']:.3f} / {m['sinks_p99_ms']:.3f} | "
                     f"{m['published']:.0f} / {m['spooled']:.0f} |")
    per_msg = {v: (med[v]["cpu_ms"] - med["off"]["cpu_ms"]) * args.frames /
               max(med[v]["published"] + med[v]["spooled"], 1) for v in VARIANTS[1:]}
    lines += ["", "CPU per message (median CPU ms/frame minus off's, times frames, over messages "
              "per run): " + "; ".join(f"{v}: {x:.2f} ms" for v, x in per_msg.items()) +
              ". At the default summary_interval (a summary a minute, no face events) that is "
              f"{per_msg[VARIANTS[1]] / 60:.3f} ms of CPU per second with the broker up."]
    lines += ["", "Every run's fps: " + "; ".join(
        f"{v}: " + ", ".join(f"{x['fps']:.1f}" for x in rows[v]) for v in VARIANTS) + ".", "",
        "## The fleet", "",
        f"{f['devices']} real MQTT sinks in one process (tests/mqtt_fleet.py), each its own "
        "device id, spool and publisher thread, each handed a real summary (replayed from a "
        f"real run's log) every second for {f['seconds']:g} s; one paho subscriber. "
        "Latency: summary created (its `ts`, ms resolution) -> the subscriber has it, which "
        "includes the spool's fsyncs.", "",
        "| devices | summaries sent | received | every seq, in order | messages/s | latency "
        "median | p99 | max | process CPU | handle() median |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {f['devices']} | {f['sent']} | {f['received']} | "
        f"{'yes' if f['complete'] else 'NO'} | {f['rate']:.1f} | {f['lat_median_ms']:.1f} ms | "
        f"{f['lat_p99_ms']:.1f} ms | {f['lat_max_ms']:.1f} ms | {f['cpu_pct']:.0f}% of a core | "
        f"{f['handle_us']:.0f} us |", ""]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
