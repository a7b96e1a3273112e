"""What comes from the broker cannot exhaust the monitor (issue 35, sections 3 and 8): a
200 MB retained message on a topic it subscribes to, a flood of Home Assistant birth
messages. A real Mosquitto (tests/mqtt_broker.py); the memory bound is proved with the
monitor in a child process under a limit of its own address space (tests/memlimit.py), set
just above what the same run needs without the big message and well below the message."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from mqtt_broker import Subscriber, broker, memory_broker, publish_raw  # noqa: F401
from mqtt_fleet import ReplayPipeline, as_event
from test_mqtt import finish, logged, write_config

TESTS = Path(__file__).resolve().parent
BIG = 200 * 1024 * 1024
HEADROOM_MB = 128          # above the run's own peak; the message is 200 MB
CLIP = "pyfeat_WolfgangLanger_Pexels.mp4"


def limited(report: Path, limit_mb: float | None, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, str(TESTS / "memlimit.py"), "--report", str(report)]
    if limit_mb is not None:
        cmd += ["--limit-mb", str(limit_mb)]
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    return subprocess.Popen([*cmd, "-m", "edge", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def run_until_states(proc: subprocess.Popen, sub: Subscriber, n: int):
    """Stop a ``--loop`` run once the broker has passed on ``n`` more of its states: it was
    connected and working (not a question of how fast this machine is today)."""
    before = len(sub.on("emotion-edge/+/state"))
    try:
        sub.wait_for(lambda: len(sub.on("emotion-edge/+/state")) >= before + n or
                     proc.poll() is not None, 90, f"{n} states")
    finally:
        rc, out, err = finish(proc, timeout=120)
    return rc, out, err


def test_a_200_mb_retained_birth_message_is_discarded_unread(tmp_path, memory_broker, videos):
    """Issue 35 §3: one 200 MB retained message on homeassistant/status killed the monitor
    under MemoryMax=300M, again at every start."""
    broker = memory_broker
    cfg = write_config(tmp_path / "c.toml", broker.port, summary_interval=0.5)
    run = ("run", "--config", str(cfg), "--source", str(videos / CLIP), "--loop")
    sub = Subscriber(broker.port, ["emotion-edge/+/state"]).start()
    rc, _, err = run_until_states(limited(tmp_path / "plain.json", None, *run, "--log-dir",
                                          str(tmp_path / "logs-plain")), sub, 3)
    assert rc == 0, err
    plain = json.loads((tmp_path / "plain.json").read_text())

    publish_raw(broker.port, "homeassistant/status", BIG)
    limit = plain["vm_peak_mb"] + HEADROOM_MB
    logs = tmp_path / "logs-bomb"
    rc, _, err = run_until_states(limited(tmp_path / "bomb.json", limit, *run, "--log-dir",
                                          str(logs)), sub, 3)
    sub.stop()
    assert rc == 0, err[-3000:]
    bomb = json.loads((tmp_path / "bomb.json").read_text())
    assert "unexpected error" not in err and "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if "mqtt: discarded" in line]
    assert len(lines) == 1, err
    size = re.search(r"this one: (\d+) bytes on homeassistant/status\)", lines[0])
    assert size and int(size.group(1)) > BIG, lines
    # Still a working monitor: every summary of the run was acknowledged by the broker.
    assert len(logged(logs, "summary")) >= 2
    assert not list((tmp_path / "spool").glob("*.msg"))
    assert "0 dropped" in err
    # And it never held the message: resident memory as without it, give or take 32 MB.
    print(f"\nmonitor without / with a {BIG >> 20} MB retained message (limit {limit:.0f} MB "
          f"of address space): {plain} / {bomb}")
    assert bomb["rss_peak_mb"] < plain["rss_peak_mb"] + 32, (plain, bomb)


def test_fleet_under_a_memory_limit_with_a_200_mb_retained_state(tmp_path, memory_broker):
    """``emotion-edge fleet`` subscribes to every state: the same bomb, on a state topic."""
    broker = memory_broker
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="good-device")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    good = {"v": 1, "seq": 4, "ts": "2026-12-03T14:02:11.004Z", "device": "room-1",
            "room": "Room 1", "faces": 2, "dominant": "happy", "emotion_share": {"happy": 1.0},
            "fps": 24.0, "interval_s": 60.0, "frames": 1440, "dropped": 0}
    pub.publish("emotion-edge/room-1/state", json.dumps(good), qos=1, retain=True) \
        .wait_for_publish(5)
    pub.publish("emotion-edge/room-1/status", "online", qos=1, retain=True).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    fleet = ("fleet", "--broker", "127.0.0.1", "--port", str(broker.port), "--json",
             "--wait", "5")
    rc, out, err = finish(limited(tmp_path / "plain.json", None, *fleet), sig=None)
    assert rc == 0, err
    plain = json.loads((tmp_path / "plain.json").read_text())

    publish_raw(broker.port, "emotion-edge/room-2/state", BIG, fill=b"{")
    rc, out, err = finish(limited(tmp_path / "bomb.json", plain["vm_peak_mb"] + HEADROOM_MB,
                                  *fleet), sig=None, timeout=120)
    assert rc == 0, err[-3000:]
    shown = json.loads(out)
    assert [d["device"] for d in shown["devices"]] == ["room-1"]
    assert shown["devices"][0]["seq"] == 4 and shown["devices"][0]["status"] == "online"
    assert shown["bad_messages"] == 1
    bomb = json.loads((tmp_path / "bomb.json").read_text())
    print(f"\nfleet without / with a {BIG >> 20} MB retained state: {plain} / {bomb}")
    assert bomb["rss_peak_mb"] < plain["rss_peak_mb"] + 32, (plain, bomb)


def test_a_flood_of_birth_messages_is_coalesced(tmp_path, broker, monkeypatch, caplog):
    """Issue 35 §8: 1000 `online` messages a second made 134,475 discovery re-sends, late
    states and 20,000 log lines. Now: at most one announcement per REANNOUNCE_MIN_S."""
    import logging

    import edge.mqtt.publisher as publisher
    from edge.sinks.mqtt import MqttConfig, MqttSink

    monkeypatch.setattr(publisher, "REANNOUNCE_MIN_S", 2.0)
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    sub = Subscriber(broker.port, ["homeassistant/sensor/#", "emotion-edge/+/state"]).start()
    sink = MqttSink(MqttConfig(enabled=True, host="127.0.0.1", port=broker.port,
                               device_id="room-12", spool_dir=str(tmp_path / "spool")))
    sink.start(ReplayPipeline())
    flood = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="home-assistant")
    flood.connect("127.0.0.1", broker.port)
    flood.loop_start()
    summary = {"interval_s": 1.0, "faces_seen": 1, "emotion_share": {"happy": 1.0},
               "dominant": "happy", "frames": 24, "fps": 24.0}
    p = sink.publisher
    try:
        sub.wait_for(lambda: len(sub.on("homeassistant/#")) >= 10, 10, "the first announcement")
        t0 = time.monotonic()
        births, states = 0, 1                       # start() sends this run's first state
        while time.monotonic() - t0 < 5.0:          # as fast as paho sends them, 5 s
            for _ in range(200):
                flood.publish("homeassistant/status", "online", qos=0)
            births += 200
            sink.handle([as_event(summary, time.time())])
            states += 1                             # one state each; its seq is given later,
            time.sleep(0.05)                        # on the publisher's thread
        flood.publish("homeassistant/status", "online", qos=1).wait_for_publish(10)
        sub.wait_for(lambda: len(sub.on("emotion-edge/+/state")) >= states, 20, "every state")
        sub.wait_for(lambda: p.births >= births // 2, 20, "the births")
        sub.wait_for(lambda: p.announcements >= 2, 20, "a second announcement")
    finally:
        flood.disconnect()
        flood.loop_stop()
        sink.close()
        elapsed = time.monotonic() - t0
    try:
        sub.wait_for(lambda: len(sub.on("homeassistant/#")) >= 10 * p.announcements, 10,
                     "every announced config")
    finally:
        sub.stop()
    assert p.births >= births // 2 >= 1000          # they did arrive (QoS 0 may lose some)
    assert p.queue_dropped == 0 and p.spool.counters["state"] == states
    # One announcement at connect, then at most one per 2 s, whatever the machine's load.
    assert 2 <= p.announcements <= 2 + elapsed / 2.0, (p.announcements, elapsed)
    assert len(sub.on("homeassistant/#")) == 10 * p.announcements
    lines = [r for r in caplog.records if "Home Assistant is online" in r.getMessage()]
    assert len(lines) == p.announcements - 1
    assert [m.json()["seq"] for m in sub.on("emotion-edge/+/state")] == \
        list(range(1, states + 1))
