"""The spool on its own (restart, power cut leftovers, damaged files, bounds), the [mqtt]
config's one-line errors, and the sink's cost on the frame loop."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge import config
from edge.events import Event
from edge.mqtt.spool import Spool, read_counters
from edge.mqtt.topics import Topics, safe_id, state_payload
from edge.sinks.mqtt import MqttConfig, MqttSink

TOPICS = Topics("emotion-edge", "room-12")


def summary(t: float, dominant: str = "happy") -> Event:
    return Event("summary", t, emotion=dominant, extra={
        "interval_s": 60.0, "faces_seen": 2, "emotion_share": {"happy": 0.75, "sad": 0.25},
        "dominant": dominant, "frames": 1440, "fps": 24.0})


def spool_states(spool: Spool, n: int, t0: float = 1_800_000_000.0) -> None:
    for i in range(n):
        seq = spool.next_seq("state")
        spool.put(TOPICS.state, state_payload(summary(t0 + i), seq, "room-12", "", 0), True,
                  t0 + i)
    spool.commit(t0 + n)


def seqs(spool: Spool) -> list[int]:
    return [json.loads(spool.payload(item))["seq"] for item in spool]


def test_spool_survives_a_restart_and_sequence_numbers_continue(tmp_path):
    s = Spool(tmp_path, 1_000_000, 3600)
    spool_states(s, 5)
    s.close()
    again = Spool(tmp_path, 1_000_000, 3600)          # a new process on the same folder
    assert seqs(again) == [1, 2, 3, 4, 5] and [i.retain for i in again] == [True] * 5
    for item in list(again)[:3]:                       # the broker acknowledged three
        again.remove(item)
    spool_states(again, 1)
    for item in list(again):
        again.remove(item)
    assert not list(tmp_path.glob("*.msg"))
    again.close()
    third = Spool(tmp_path, 1_000_000, 3600)          # empty now: the counters carry on
    assert third.next_seq("state") == 7 and third.next_seq("events") == 1


def test_power_cut_leftovers_and_damaged_files(tmp_path):
    s = Spool(tmp_path, 1_000_000, 3600)
    spool_states(s, 3)
    s.close()
    # A write the power cut interrupted (never renamed), and a file the SD card mangled.
    (tmp_path / "0000000000000004.msg.tmp").write_bytes(b'{"topic": "emotion-ed')
    (tmp_path / "0000000000000002.msg").write_bytes(b"\x00\x00garbage")
    (tmp_path / "counters.json").write_text("{not json")
    again = Spool(tmp_path, 1_000_000, 3600)
    assert seqs(again) == [1, 3] and again.unreadable == 1
    assert (tmp_path / "0000000000000002.bad").exists()
    assert not list(tmp_path.glob("*.tmp"))
    assert again.next_seq("state") == 4                # from the files, counters.json lost


def test_size_and_age_bounds_drop_the_oldest_and_count_them(tmp_path, caplog):
    t = 1_800_000_000.0
    one = len(json.dumps({"topic": TOPICS.state, "retain": True, "created": t,
                          "payload": state_payload(summary(t), 10, "room-12", "", 0)}))
    s = Spool(tmp_path, max_bytes=one * 4 + 10, max_age_s=100)
    spool_states(s, 10)
    assert seqs(s) == [7, 8, 9, 10] and s.dropped == 6
    assert s.bytes <= one * 4 + 10 and len(list(tmp_path.glob("*.msg"))) == 4
    assert sum("dropping the oldest" in r.message for r in caplog.records) == 1
    # Age: a day later the rest is older than max_age_s.
    assert s.enforce_bounds(t + 86400) == 4 and len(s) == 0 and s.dropped == 10
    assert read_counters(tmp_path)["dropped"] == 10
    # In-flight messages (handed to the client, waiting for PUBACK) are never dropped.
    spool_states(s, 2)
    first = next(iter(s))
    s.enforce_bounds(t + 86400, keep={first.order})
    assert [i.order for i in s] == [first.order]


def test_a_full_disk_keeps_messages_in_memory(tmp_path, monkeypatch):
    import edge.mqtt.spool as spool_module
    s = Spool(tmp_path, 1_000_000, 3600)

    def no_space(path, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(spool_module, "_write_atomic", no_space)
    spool_states(s, 2)
    assert seqs(s) == [1, 2] and s.write_errors >= 2 and not list(tmp_path.glob("*.msg"))
    assert s.in_memory == 2
    s.remove(next(iter(s)))                            # the broker has one
    assert s.in_memory == 1 and s.enforce_bounds(1e12) == 1 and s.in_memory == 0


@pytest.mark.parametrize("section, message", [
    ({"enabled": True}, "[mqtt] host: set the broker's address"),
    ({"port": 70000}, "[mqtt] port: 70000 is outside 1..65535"),
    ({"device_id": "room 12/a"}, "[mqtt] device_id: 'room 12/a' may only hold letters"),
    ({"topic_prefix": "school/#"}, "[mqtt] topic_prefix: 'school/#' must be a topic"),
    ({"ca_file": "/etc/ssl/ca.pem"}, "need tls = true"),
    ({"password_file": "/etc/emotion-edge/pw"}, "password_file: needs a username"),
    ({"spool_max_bytes": 10}, "spool_max_bytes: 10 must be at least 1000"),
    ({"password": "x"}, "[mqtt] password: unknown key"),     # never a password in the config
])
def test_bad_mqtt_config_is_one_line(section, message):
    with pytest.raises(config.ConfigError) as e:
        config.from_dict({"mqtt": section})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_defaults_are_off_and_device_is_the_host_name(monkeypatch):
    c = config.Config().mqtt
    assert not c.enabled and not c.publish_events and c.topic_prefix == "emotion-edge"
    assert safe_id("pi.room-12.local") == "pi-room-12-local"
    c = MqttConfig(device_id="room-12")
    assert str(c.spool_path("/var/log/x")) == "/var/log/x/mqtt-spool/room-12"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/emotion-edge")
    assert str(c.spool_path("/var/log/x")) == "/var/lib/emotion-edge/mqtt-spool/room-12"


def test_missing_password_file_is_a_one_line_sink_error(tmp_path):
    from edge.sinks.base import SinkError
    cfg = MqttConfig(enabled=True, host="127.0.0.1", username="u",
                     password_file=str(tmp_path / "nope"), spool_dir=str(tmp_path / "s"))
    with pytest.raises(SinkError, match=r"password_file .*nope: No such file"):
        MqttSink(cfg)


# --- a full disk, two monitors (issue 35 §8), with real monitors ------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 kB tmpfs: a real ENOSPC after about a dozen spooled messages."""
    import subprocess
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if got.returncode:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {got.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_never_lies_and_leaves_nothing_behind(tmp_path, tiny_disk, videos):
    """The issue's case: with the spool's disk full, 11 of 27 messages lived only in memory
    and were lost at exit while the log said "27 stay in the spool" and "0 dropped"."""
    import re

    from mqtt_broker import Broker, Subscriber, free_port
    from test_mqtt import finish, logged, monitor, write_config

    port = free_port()                                     # the broker is away
    spool = tiny_disk / "spool"
    cfg = write_config(tmp_path / "c.toml", port, summary_interval=0.5, spool_dir=str(spool))
    logs = tmp_path / "logs"
    rc, _, err = finish(monitor(cfg, videos / "pyfeat_WolfgangLanger_Pexels.mp4", logs,
                                "--fast"), sig=None)
    assert rc == 0, err
    states = len(logged(logs, "summary")) + 1              # and the run's first state
    on_disk = len(list(spool.glob("*.msg")))
    assert 3 <= on_disk < states / 2, (on_disk, states)    # the disk did fill up
    assert not list(spool.glob("*.tmp"))                   # no leftovers
    stay = re.search(r"(\d+) message\(s\) stay in the spool", err)
    lost = re.search(r"(\d+) unsent message\(s\) are lost: the spool's disk refused them", err)
    assert stay and lost, err
    assert int(stay.group(1)) == on_disk and int(lost.group(1)) == states - on_disk, err
    assert f", {states - on_disk} dropped (" in err, err
    assert "counters could not be saved" not in err
    counters = read_counters(spool)                        # true, though the disk is full
    assert counters["dropped"] == states - on_disk and counters["state"] == states

    # The broker comes back: what the disk kept arrives, then the next run's states, whose
    # numbers carry on (never reused) and whose "dropped" says what was lost.
    b = Broker(tmp_path / "broker", port=port).start()
    try:
        sub = Subscriber(port, ["emotion-edge/+/state"]).start()
        rc, _, err = finish(monitor(cfg, videos / "pyfeat_single_face.mp4", logs, "--fast"),
                            sig=None)
        assert rc == 0, err
        total = len(logged(logs, "summary")) + 2
        got = sub.wait_for(lambda: seqs_of(sub) and seqs_of(sub)[-1] == total and seqs_of(sub),
                           10, "the newest state")
        sub.stop()
    finally:
        b.kill()
    kept = sorted(set(got) & set(range(1, states + 1)))
    assert len(kept) == on_disk and set(got) - set(kept) == set(range(states + 1, total + 1))
    assert sub.on("#")[-1].json()["dropped"] == states - on_disk
    assert not list(spool.glob("*.msg")) and not list(spool.glob("*.tmp"))


def seqs_of(sub) -> list[int]:
    return [m.json()["seq"] for m in sub.on("emotion-edge/+/state")]


def test_one_spool_per_monitor_and_locked(tmp_path, videos):
    """Two monitors started from one folder shared logs/mqtt-spool: the second device's
    first state carried the first's sequence number. Now each has its own, under its log
    folder, and a second process on the same spool is refused in one line."""
    import subprocess
    import sys

    from mqtt_broker import free_port
    from test_mqtt import finish, monitor, write_config

    port = free_port()
    run = tmp_path / "run"
    run.mkdir()
    base = dict(summary_interval=60.0, spool_dir="")
    a = write_config(tmp_path / "a.toml", port, device_id="room-a", **base)
    b = write_config(tmp_path / "b.toml", port, device_id="room-b", **base)
    clip = videos / "pyfeat_single_face.mp4"

    def start(cfg, logs):
        return subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg),
                                 "--source", str(clip), "--log-dir", str(logs), "--loop"],
                                cwd=run, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**__import__("os").environ,
                                                "PYTHONPATH": str(Path(__file__).resolve().parents[1])})

    first = start(a, run / "logs-a")
    try:
        folder = run / "logs-a" / "mqtt-spool" / "room-a"
        deadline = time.monotonic() + 60
        while not (folder / "lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = start(b, run / "logs-b")                  # another device: its own spool
        same = start(a, run / "logs-a")                    # the same spool: refused
        rc, _, err = finish(same, sig=None)
        assert rc == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and f"mqtt spool {folder} is in use by another monitor (pid " \
            f"{first.pid})" in lines[0], err
        other = run / "logs-b" / "mqtt-spool" / "room-b"
        deadline = time.monotonic() + 60
        while not list(other.glob("*.msg")) and time.monotonic() < deadline:
            assert second.poll() is None, second.communicate()
            time.sleep(0.1)
        assert second.poll() is None                       # running beside the first
    finally:
        for p in (first, locals().get("second")):
            if p is not None:
                finish(p)
    for device in ("a", "b"):
        spool = run / f"logs-{device}" / "mqtt-spool" / f"room-{device}"
        assert read_counters(spool)["state"] >= 2          # first state, the summaries
        first_state = json.loads(json.loads(sorted(spool.glob("*.msg"))[0].read_text())
                                 ["payload"])
        assert first_state["seq"] == 1 and first_state["device"] == f"room-{device}"
    assert not (run / "logs" / "mqtt-spool").exists()
