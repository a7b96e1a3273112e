"""A school's worth of monitors: 30 real MQTT sinks on one broker for a minute, and
``emotion-edge fleet --json`` showing every one of them with its latest state."""
from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
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
        sub.wait_for(lambda: len(sub.messages) >= total + DEVICES, 20, "every summary")
        fleet = subprocess.run([sys.executable, "-m", "edge", "fleet", "--broker", "127.0.0.1",
                                "--port", str(broker.port), "--json", "--wait", "1"],
                               capture_output=True, text=True, timeout=30)
    finally:
        stop_fleet(run)
        sub.stop()
    assert fleet.returncode == 0, fleet.stderr
    # Every summary of every device arrived, in order, each once, after the first state.
    for device, sent in run.sent.items():
        got = [m.json() for m in sub.on(f"emotion-edge/{device}/state")]
        assert [p["seq"] for p in got] == list(range(1, len(sent) + 2)), device
        assert got[0]["frames"] == 0 and got[0]["faces"] == 0
        assert [(p["dominant"], p["faces"]) for p in got[1:]] == \
            [(s["dominant"], s["faces_seen"]) for s in sent]
    # The fleet view: every device, online, with its latest state.
    shown = {v["device"]: v for v in json.loads(fleet.stdout)["devices"]}
    assert set(shown) == set(run.sent)
    for device, sent in run.sent.items():
        v = shown[device]
        assert v["status"] == "online" and v["seq"] == len(sent) + 1
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


# --- a fleet view that trusts nothing (issue 35 §7) -------------------------------------------

GOOD = {"v": 1, "seq": 5, "ts": "2026-12-03T14:02:11.004Z", "device": "room-1", "room": "Room 1",
        "faces": 2, "dominant": "happy", "emotion_share": {"happy": 0.75, "sad": 0.25},
        "fps": 24.0, "interval_s": 60.0, "frames": 1440, "dropped": 0}
ESC = "\x1b]0;pwned\x07\x1b[2J\x1b[8m"          # set the title, clear the screen, conceal
HOSTILE = {   # device -> a retained state (or status) as an attacker on the broker writes it
    "ts-number": b'{"seq":1,"ts":123}',
    "seq-inf": b'{"seq":1e999,"ts":"2026-12-03T14:02:11.004Z"}',
    "dropped-text": json.dumps({**GOOD, "dropped": "x"}).encode(),
    "seq-bool": json.dumps({**GOOD, "seq": True}).encode(),
    "seq-huge": json.dumps({**GOOD, "seq": 10 ** 30}).encode(),
    "seq-negative": json.dumps({**GOOD, "seq": -4}).encode(),
    "faces-text": json.dumps({**GOOD, "faces": "many"}).encode(),
    "share-nan": json.dumps({**GOOD, "emotion_share": {"happy": float("nan")}}).encode(),
    "fps-object": json.dumps({**GOOD, "fps": {"a": 1}}).encode(),
    "ts-garbage": json.dumps({**GOOD, "ts": "yesterday"}).encode(),
    "a-list": b"[1, 2, 3]",
    "not-json": b"\xff\xfe{",
    "deep": b"[" * 100_000 + b"]" * 100_000,
}


def test_fleet_takes_nothing_on_trust():
    from edge.mqtt.fleet import Fleet, table
    fleet = Fleet()
    for device, payload in HOSTILE.items():
        fleet.add(f"emotion-edge/{device}/state", payload)          # never raises
    assert fleet.bad_messages == len(HOSTILE) and fleet.last_bad
    # A bad message changes nothing, not even half of a device's view.
    fleet.add("emotion-edge/room-1/state", json.dumps(GOOD).encode())
    fleet.add("emotion-edge/room-1/state", json.dumps({**GOOD, "seq": 6, "dropped": "x"}).encode())
    fleet.add("emotion-edge/room-1/state", json.dumps({**GOOD, "seq": 7, "faces": 3}).encode())
    (room1,) = [v for v in fleet.rows() if v.device == "room-1"]
    assert (room1.seq, room1.faces, room1.dropped, room1.missed) == (7, 3, 0, 1)
    # Escape sequences and other control characters never reach the terminal.
    fleet.add("emotion-edge/room-1/status", f"online{ESC}".encode())       # not a status
    fleet.add("emotion-edge/room-2/state",
              json.dumps({**GOOD, "room": f"Room{ESC} 2\u202e", "dominant": f"x{ESC}" * 40})
              .encode())
    fleet.add("emotion-edge/room-2/status", b"online")
    fleet.add(f"emotion-edge/evil{ESC}/state", json.dumps(GOOD).encode())  # not a device id
    shown = table(fleet.rows(), fleet.bad_messages, fleet.last_bad)
    assert not any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) < 0xa0 or c == "\u202e"
                   for c in shown), repr(shown)
    assert "Room]0;pwned[2J[8m 2" in shown
    assert max(len(line) for line in shown.splitlines()) < 400       # cut to a length
    assert [v.device for v in fleet.rows()] == ["room-1", "room-2"]
    assert f"{len(HOSTILE) + 3} bad message(s) ignored" in shown


def _default_signals() -> None:
    """In the child: SIGINT as a terminal sends it, whatever the test process had set or
    blocked (in two full runs the table ignored SIGINT, never when run alone)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def test_fleet_on_a_hostile_broker_keeps_its_network_thread(tmp_path, broker):
    """The reported cases as retained messages on a real broker, then a live table: it
    starts, shows the bad messages counted, and still follows a good device's updates."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    for device, payload in HOSTILE.items():
        pub.publish(f"emotion-edge/{device}/state", payload, qos=1, retain=True).wait_for_publish(5)
    pub.publish("emotion-edge/room-1/status", f"online{ESC}", qos=1, retain=True).wait_for_publish(5)
    pub.publish("emotion-edge/room-1/state", json.dumps({**GOOD, "room": f"R{ESC}1"}), qos=1,
                retain=True).wait_for_publish(5)
    shown = subprocess.run([sys.executable, "-m", "edge", "fleet", "--broker", "127.0.0.1",
                            "--port", str(broker.port), "--json", "--wait", "5"],
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr                  # no "internal error"
    got = json.loads(shown.stdout)
    assert [d["device"] for d in got["devices"]] == ["room-1"]
    assert got["devices"][0]["room"] == "R]0;pwned[2J[8m1"
    assert got["bad_messages"] == len(HOSTILE) + 1
    live = subprocess.Popen([sys.executable, "-m", "edge", "fleet", "--broker", "127.0.0.1",
                             "--port", str(broker.port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(lambda: live.stdout.read(1), "")),
                              daemon=True)
    reader.start()

    def screen() -> str:                  # the last whole table on the screen
        frames = "".join(out).split("\x1b[H\x1b[2J")
        return frames[-2] if len(frames) > 2 else ""

    def shows(seq: int, bad: int) -> bool:
        last = screen()
        row = [line for line in last.splitlines() if line.startswith("room-1")]
        return bool(row) and row[0].split()[-2] == str(seq) and \
            f"; {bad} bad message(s) ignored" in last

    def wait(predicate, what: str) -> None:
        deadline = time.monotonic() + 180     # a bound against a hang, not a speed test
        while not predicate():
            assert time.monotonic() < deadline and live.poll() is None, \
                f"{what}: {screen()!r} {live.poll()}"
            time.sleep(0.1)

    try:
        wait(lambda: shows(5, len(HOSTILE) + 1), "the retained messages")
        # The hostile messages again, live this time, then a good update: it must show.
        for device, payload in HOSTILE.items():
            pub.publish(f"emotion-edge/{device}/state", payload, qos=1).wait_for_publish(5)
        pub.publish("emotion-edge/room-1/state", json.dumps({**GOOD, "seq": 9, "faces": 7}),
                    qos=1, retain=True).wait_for_publish(5)
        wait(lambda: shows(9, 2 * len(HOSTILE) + 1), "the live messages")
    finally:
        live.send_signal(signal.SIGINT)
        try:
            live.wait(120)                    # a bound against a hang
        except subprocess.TimeoutExpired:     # let the first failure, if any, be seen
            live.kill()
            live.wait()
        reader.join(10)
        pub.disconnect()
        pub.loop_stop()
    assert live.returncode == 0, live.stderr.read()
    row = [line for line in screen().splitlines() if line.startswith("room-1")][0]
    assert row.split()[-2:] == ["9", "3"] and " 7 " in row      # seq 9, 3 missed (6-8)
    text = "".join(out)
    assert "\x1b" not in text.replace("\x1b[H\x1b[2J", ""), repr(text[-2000:])
