"""A school's worth of monitors: 30 real MQTT sinks on one broker for a minute, and
``emotion-edge fleet --json`` showing every one of them with its latest state."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from mqtt_broker import Subscriber, broker  # noqa: F401
from mqtt_fleet import replay, start_fleet, stop_fleet, summaries_from_log

DEVICES, SECONDS = 30, 60.0


@pytest.fixture(scope="module")
def real_summaries(tmp_path_factory, videos) -> list[dict]:
    """Summaries of a real run: the sample clip, a summary every 0.5 s of video."""
    d = tmp_path_factory.mktemp("real-run")
    cfg = d / "c.toml"
    cfg.write_text("[monitor]\nsummary_interval = 0.5\n[console]\nenabled = false\n")
    subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(cfg), "--source",
                    str(videos / "pyfeat_WolfgangLanger_Pexels.mp4"), "--fast", "--log-dir",
                    str(d)], check=True, capture_output=True, timeout=120)
    got = summaries_from_log(d / "events.jsonl")
    assert len(got) >= 30 and {s["dominant"] for s in got} >= {"sad", "happy"}
    return got


def test_thirty_monitors_for_a_minute_nothing_lost(tmp_path, broker, real_summaries):
    sub = Subscriber(broker.port, ["emotion-edge/+/state"]).start()
    run = start_fleet(broker.port, DEVICES, tmp_path)
    try:
        replay(run, real_summaries, SECONDS)
        per_device = {d: len(s) for d, s in run.sent.items()}
        assert len(per_device) == DEVICES and min(per_device.values()) >= 55
        total = sum(per_device.values())
        sub.wait_for(lambda: len(sub.messages) >= total, 20, "every summary")
        fleet = subprocess.run([sys.executable, "-m", "edge", "fleet", "--broker", "127.0.0.1",
                                "--port", str(broker.port), "--json", "--wait", "1"],
                               capture_output=True, text=True, timeout=30)
    finally:
        stop_fleet(run)
        sub.stop()
    assert fleet.returncode == 0, fleet.stderr
    # Every summary of every device arrived, in order, each once.
    for device, sent in run.sent.items():
        got = [m.json() for m in sub.on(f"emotion-edge/{device}/state")]
        assert [p["seq"] for p in got] == list(range(1, len(sent) + 1)), device
        assert [(p["dominant"], p["faces"]) for p in got] == \
            [(s["dominant"], s["faces_seen"]) for s in sent]
    # The fleet view: every device, online, with its latest state.
    shown = {v["device"]: v for v in json.loads(fleet.stdout)["devices"]}
    assert set(shown) == set(run.sent)
    for device, sent in run.sent.items():
        v = shown[device]
        assert v["status"] == "online" and v["seq"] == len(sent)
        assert (v["dominant"], v["faces"], v["missed"], v["dropped"]) == \
            (sent[-1]["dominant"], sent[-1]["faces_seen"], 0, 0)
        assert v["room"] == f"Room {int(device.split('-')[1]) + 1}"
    # The frame loop's side of it: handing a summary over never waits for the network.
    assert statistics.median(run.frame_calls_s) < 0.001
    latency = [m.t - _unix(m.json()["ts"]) for m in sub.messages]
    print(f"\n{total} summaries from {DEVICES} devices in {SECONDS:g} s; end-to-end latency "
          f"median {statistics.median(latency) * 1000:.1f} ms, max {max(latency) * 1000:.1f} ms")


def _unix(ts: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
