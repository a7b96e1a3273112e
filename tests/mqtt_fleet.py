"""A fleet of monitors in one process: N real MQTT sinks (edge/sinks/mqtt.py, each with its
own device id, spool and publisher thread) fed with real summary events replayed from a
real run's log, one per device every ``interval`` seconds. Used by tests/test_mqtt_fleet.py
and bench/mqtt.py.

No video is decoded per device: the summaries come from the log of one real run, so 30 or
more devices cost little CPU, and every summary is stamped with the time it is created (the
start of the end-to-end latency the subscriber measures).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.events import Event
from edge.sinks.mqtt import MqttConfig, MqttSink

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class ReplayPipeline:
    """What a sink asks of a running monitor (edge/sinks/base.py ``Pipeline``)."""
    labels = LABELS

    def model_info(self) -> dict:
        return {"file": "emotion_int8.tflite"}


def summaries_from_log(path: Path) -> list[dict]:
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in recs if r["event"] == "summary"]


def as_event(rec: dict, t: float) -> Event:
    keys = ("interval_s", "faces_seen", "emotion_share", "dominant", "frames", "fps")
    return Event("summary", t, emotion=rec.get("emotion"), extra={k: rec[k] for k in keys})


@dataclass
class FleetRun:
    sinks: list[MqttSink]
    sent: dict[str, list[dict]] = field(default_factory=dict)   # device -> summaries handed over
    frame_calls_s: list[float] = field(default_factory=list)    # time spent in handle()


def start_fleet(port: int, n: int, spool_root: Path, prefix: str = "emotion-edge") -> FleetRun:
    sinks = []
    for i in range(n):
        cfg = MqttConfig(enabled=True, host="127.0.0.1", port=port, device_id=f"fleet-{i:02d}",
                         room=f"Room {i + 1}", topic_prefix=prefix,
                         spool_dir=str(spool_root / f"spool-{i:02d}"), reconnect_max=1.0)
        sink = MqttSink(cfg)
        sink.start(ReplayPipeline())
        sinks.append(sink)
    return FleetRun(sinks)


def replay(run: FleetRun, summaries: list[dict], seconds: float, interval: float = 1.0) -> None:
    """Each device gets one summary every ``interval`` s, the devices spread over the interval."""
    n = len(run.sinks)
    start = time.monotonic()
    k = 0
    while True:
        tick, i = divmod(k, n)
        due = start + tick * interval + i * interval / n
        if due - start >= seconds:
            return
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sink = run.sinks[i]
        rec = summaries[(tick + i) % len(summaries)]
        t0 = time.perf_counter()
        sink.handle([as_event(rec, time.time())])
        run.frame_calls_s.append(time.perf_counter() - t0)
        run.sent.setdefault(sink.topics.device, []).append(rec)
        k += 1


def stop_fleet(run: FleetRun) -> None:
    for sink in run.sinks:
        sink.close()
