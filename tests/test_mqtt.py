"""The MQTT sink against a real Mosquitto (tests/mqtt_broker.py): a monitor playing real
videos publishes availability, state and Home Assistant discovery; the broker goes away and
comes back, the monitor restarts, the spool fills up; logins, TLS, a kill -9.

Every payload is checked against the schema in docs/mqtt.md, written out again here."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.mqtt.spool import read_counters
from mqtt_broker import Broker, Subscriber, broker, free_port, openssl_ca, openssl_cert  # noqa: F401

CLIP = "pyfeat_WolfgangLanger_Pexels.mp4"          # 19.7 s, one face, sad -> happy
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# --- helpers --------------------------------------------------------------------------------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def write_config(path: Path, port: int, summary_interval: float = 1.0, **mqtt_keys) -> Path:
    spool = path.parent / "spool"
    keys = {"enabled": True, "host": "127.0.0.1", "port": port, "device_id": "room-12",
            "room": "Room 12", "spool_dir": str(spool), "reconnect_max": 1.0, **mqtt_keys}
    text = (f"[monitor]\nsummary_interval = {summary_interval}\n[console]\nenabled = false\n"
            "[mqtt]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()))
    path.write_text(text)
    return path


def monitor(cfg: Path, video: Path, logs: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg),
                             "--source", str(video), "--log-dir", str(logs), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, sig: int | None = signal.SIGTERM, timeout: float = 60):
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def logged(logs: Path, kind: str) -> list[dict]:
    lines = (logs / "events.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == kind]


def seqs(sub: Subscriber, topic: str = "emotion-edge/room-12/state") -> list[int]:
    return [m.json()["seq"] for m in sub.on(topic)]


def is_start(p: dict) -> bool:
    """A run's first state (docs/mqtt.md): published at start, before any summary."""
    return p["frames"] == 0 and p["interval_s"] == 0 and p["fps"] is None


def first_seen(values: list[int]) -> list[int]:
    """The sequence with QoS 1 redeliveries (a seq seen before) taken out."""
    seen, out = set(), []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def check_state(p: dict) -> None:
    """docs/mqtt.md, "State"."""
    assert set(p) == {"v", "seq", "ts", "device", "room", "faces", "faces_unread", "dominant",
                      "emotion_share", "fps", "interval_s", "frames", "dropped"}, p
    assert isinstance(p["faces_unread"], int) and 0 <= p["faces_unread"] <= p["faces"]
    assert p["v"] == 1 and isinstance(p["seq"], int) and p["seq"] >= 1
    assert ISO.match(p["ts"]) and p["device"] == "room-12" and p["room"] == "Room 12"
    assert isinstance(p["faces"], int) and p["faces"] >= 0
    assert p["dominant"] is None or p["dominant"] in LABELS
    share = p["emotion_share"]
    assert share == {} or (set(share) == set(LABELS) and abs(sum(share.values()) - 1) < 0.01)
    assert (p["dominant"] is None) == (share == {})
    assert isinstance(p["fps"], (int, float)) or (p["fps"] is None and is_start(p))
    assert isinstance(p["interval_s"], (int, float))
    assert isinstance(p["frames"], int) and isinstance(p["dropped"], int)


def check_discovery(topic: str, p: dict, state_fields: set[str]) -> None:
    """Home Assistant's MQTT discovery: topic <prefix>/<component>/<node_id>/<object_id>/config
    (ids of [a-zA-Z0-9_-]), the sensor's required state_topic, a unique_id, the device mapping
    that groups the sensors, availability on our status topic."""
    m = re.match(r"^homeassistant/sensor/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$", topic)
    assert m and m.group(1) == "room-12", topic
    assert p["state_topic"] == "emotion-edge/room-12/state"
    assert p["unique_id"] == f"emotion-edge_room-12_{m.group(2)}"
    assert p["availability_topic"] == "emotion-edge/room-12/status"
    assert p["payload_available"] == "online" and p["payload_not_available"] == "offline"
    assert isinstance(p["name"], str) and p["name"]
    dev = p["device"]
    assert dev["identifiers"] == ["emotion-edge_room-12"] and dev["suggested_area"] == "Room 12"
    assert dev["model"].startswith("emotion-edge") and dev["sw_version"] and dev["name"]
    assert p["origin"]["name"] == "emotion-edge"
    used = set(re.findall(r"value_json\.(\w+)", p["value_template"]))
    assert used and used <= state_fields, (used, state_fields)
    if "unit_of_measurement" in p:
        assert p["state_class"] == "measurement"
    if m.group(2) == "dominant":      # an enum sensor: every state it can take, listed
        assert p["device_class"] == "enum" and p["options"] == [*LABELS, "none"]
        assert "unit_of_measurement" not in p and "state_class" not in p


# --- a real video ----------------------------------------------------------------------------

def test_a_real_video_publishes_availability_state_and_discovery(tmp_path, broker, videos):
    sub = Subscriber(broker.port, ["#"]).start()
    cfg = write_config(tmp_path / "c.toml", broker.port)
    rc, out, err = finish(monitor(cfg, videos / CLIP, tmp_path / "logs", "--fast"), sig=None)
    assert rc == 0, err
    summaries = logged(tmp_path / "logs", "summary")
    assert len(summaries) >= 15
    states = sub.wait_for(lambda: len(sub.on("+/+/state")) >= len(summaries) + 1 and
                          sub.on("+/+/state"), 10, "every summary")
    sub.wait_for(lambda: [m for m in sub.on("+/+/status") if m.payload == b"offline"], 10,
                 "offline at a clean stop")
    sub.stop()
    # Nothing but the documented topics: no events topic (publish_events is off).
    topics = {m.topic for m in sub.messages}
    assert {t for t in topics if not t.startswith("homeassistant/")} == {
        "emotion-edge/room-12/status", "emotion-edge/room-12/state"}
    assert [m.payload for m in sub.on("+/+/status")] == [b"online", b"offline"]
    # The run's first state at once (nothing seen yet: the state from before a restart is
    # replaced), then one per logged summary, in order, each saying what the log says.
    assert [m.json()["seq"] for m in states] == list(range(1, len(summaries) + 2))
    start = states[0].json()
    check_state(start)
    assert is_start(start) and (start["faces"], start["dominant"], start["emotion_share"]) == \
        (0, None, {})
    states = states[1:]
    for m, s in zip(states, summaries):
        p = m.json()
        check_state(p)
        assert (p["ts"], p["faces"], p["dominant"], p["emotion_share"], p["fps"]) == \
            (s["ts"], s["faces_seen"], s["dominant"], s["emotion_share"], s["fps"])
    assert {m.json()["dominant"] for m in states} >= {"sad", "happy"}   # the clip's two moods
    # Discovery: dominant, faces, fps and one share per label, all one device.
    disc = {m.topic: m.json() for m in sub.on("homeassistant/#")}
    objects = {t.split("/")[3] for t in disc}
    assert objects == {"dominant", "faces", "fps", *(f"share_{x}" for x in LABELS)}
    fields = set(states[0].json())
    for topic, p in disc.items():
        check_discovery(topic, p, fields)
    assert len({p["unique_id"] for p in disc.values()}) == len(disc)
    # Retained: a client connecting now gets the last state, offline, and every config.
    late = Subscriber(broker.port, ["#"], client_id="late").start()
    late.wait_for(lambda: len(late.messages) >= len(disc) + 2, 5, "the retained messages")
    late.stop()
    assert all(m.retain for m in late.messages)
    assert late.on("+/+/state")[-1].json()["seq"] == len(summaries) + 1
    assert late.on("+/+/status")[-1].payload == b"offline"


def test_face_events_only_when_enabled_and_without_boxes(tmp_path, broker, videos):
    sub = Subscriber(broker.port, ["emotion-edge/#"]).start()
    cfg = write_config(tmp_path / "c.toml", broker.port, summary_interval=60.0,
                       publish_events=True, discovery=False)
    rc, _, err = finish(monitor(cfg, videos / "intel_face-demographics-walking-and-pause.mp4",
                                tmp_path / "logs", "--fast"), sig=None)
    assert rc == 0, err
    kinds = {"face_appeared": "appeared", "emotion_changed": "changed", "face_left": "left"}
    lines = [r for r in map(json.loads, (tmp_path / "logs/events.jsonl").read_text().splitlines())
             if r["event"] in kinds]
    assert len(lines) >= 4
    events = sub.wait_for(lambda: len(sub.on("+/+/events")) >= len(lines) and
                          sub.on("+/+/events"), 10, "every face event")
    sub.stop()
    assert [m.json()["seq"] for m in events] == list(range(1, len(lines) + 1))
    for m, line in zip(events, lines):
        p = m.json()
        assert not m.retain
        assert set(p) <= {"v", "seq", "ts", "device", "event", "track", "emotion", "score",
                          "previous", "duration_s"} and "box" not in p
        assert (p["event"], p["track"], p["emotion"], p["ts"]) == \
            (kinds[line["event"]], line["track"], line["emotion"], line["ts"])
    assert not sub.on("homeassistant/#")      # discovery = false


# --- the broker goes away --------------------------------------------------------------------

def test_broker_away_and_monitor_restart_lose_no_summary(tmp_path, videos):
    """The broker is killed (-9) for several summary intervals; the monitor is stopped and
    started again while it is down; when it is back every summary arrives, in order."""
    b = Broker(tmp_path / "broker").start()
    # A persistent session: the broker queues for this subscriber while it reconnects.
    sub = Subscriber(b.port, ["emotion-edge/+/state"], client_id="durable",
                     persistent=True).start()
    time.sleep(1.5)                # mosquitto's autosave (1 s) has the session on disk
    cfg = write_config(tmp_path / "c.toml", b.port)
    logs = tmp_path / "logs"
    a = monitor(cfg, videos / CLIP, logs, "--loop")         # real time: a summary a second
    try:
        sub.wait_for(lambda: len(sub.on("#")) >= 2, 30, "the first summaries")
        b.kill()
        time.sleep(3.5)
        rc, _, err_a = finish(a)                            # stopped while the broker is away
        assert rc == 0, err_a
        spooled = sorted((tmp_path / "spool").glob("*.msg"))
        assert len(spooled) >= 3
        second = monitor(cfg, videos / CLIP, logs, "--loop")
        time.sleep(3.0)
        b.start()                                           # same port, same persistence
        n_logged = lambda: len(logged(logs, "summary"))     # noqa: E731
        sub.wait_for(lambda: len(set(seqs(sub))) >= n_logged() + 1, 30, "the spooled summaries")
        rc, _, err_b = finish(second)
        assert rc == 0, err_b
        total = n_logged() + 2                              # and each run's first state
        got = sub.wait_for(lambda: len(set(seqs(sub))) >= total and seqs(sub), 20,
                           "every summary")
    finally:
        for p in (a, locals().get("second")):
            if p is not None and p.poll() is None:
                p.kill()
        sub.stop()
        b.kill()
    assert first_seen(got) == list(range(1, total + 1)), got     # complete and in order
    # Each summary's content is what the log says, across both runs of the monitor.
    by_seq = {m.json()["seq"]: m.json() for m in sub.on("#")}
    assert [by_seq[i]["ts"] for i in range(1, total + 1) if not is_start(by_seq[i])] == \
        [s["ts"] for s in logged(logs, "summary")]
    assert sum(is_start(p) for p in by_seq.values()) == 2
    assert "lost the connection" in err_a and "connection refused" in err_a
    assert "from an earlier run" in err_b
    assert not list((tmp_path / "spool").glob("*.msg"))     # all acknowledged, all deleted


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path, videos):
    port = free_port()                                       # no broker yet
    cfg = write_config(tmp_path / "c.toml", port, summary_interval=0.5, spool_max_bytes=4000)
    logs = tmp_path / "logs"
    rc, _, err = finish(monitor(cfg, videos / CLIP, logs, "--fast"), sig=None)
    assert rc == 0, err
    n = len(logged(logs, "summary")) + 1                     # and the run's first state
    kept = sorted((tmp_path / "spool").glob("*.msg"))
    assert 3 <= len(kept) < n / 2
    assert sum(p.stat().st_size for p in kept) <= 4000
    counters = read_counters(tmp_path / "spool")
    assert counters["dropped"] == n - len(kept) and counters["state"] == n
    assert err.count("dropping the oldest") == 1, err       # logged once, counted always
    assert err.count("cannot connect") == 1, err            # refused, many times: one line
    # The broker comes: the newest messages arrive, then a new run's, which says how many
    # were dropped. (The new run has room: its own messages must not push more out.)
    cfg = write_config(tmp_path / "c.toml", port, summary_interval=0.5, spool_max_bytes=100_000)
    b = Broker(tmp_path / "broker", port=port).start()
    try:
        sub = Subscriber(port, ["emotion-edge/+/state"]).start()
        rc, _, err = finish(monitor(cfg, videos / "pyfeat_single_face.mp4", logs, "--fast"),
                            sig=None)
        assert rc == 0, err
        total = len(logged(logs, "summary")) + 2
        got = sub.wait_for(lambda: seqs(sub) and seqs(sub)[-1] == total and seqs(sub), 10,
                           "the newest summaries")
        sub.stop()
    finally:
        b.kill()
    assert first_seen(got) == list(range(n - len(kept) + 1, total + 1))
    assert sub.on("#")[-1].json()["dropped"] == n - len(kept)


# --- logins and TLS --------------------------------------------------------------------------

def run_for(cfg: Path, video: Path, logs: Path, seconds: float):
    """Run for ``seconds`` and then until as many summaries are logged (at most 60 s more):
    a slow start on a busy machine must not shorten the run."""
    proc = monitor(cfg, video, logs, "--loop")
    time.sleep(seconds)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(logged(logs, "summary")) >= seconds:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return finish(proc)


def test_username_and_password_file_and_a_wrong_password(tmp_path, videos):
    b = Broker(tmp_path / "broker", users={"room12": "s3cret-pw"}).start()
    try:
        sub = Subscriber(b.port, ["emotion-edge/#"], username="room12",
                         password="s3cret-pw").start()
        pw = tmp_path / "mqtt-password"
        pw.write_text("s3cret-pw\n")
        pw.chmod(0o600)
        good = write_config(tmp_path / "good.toml", b.port, username="room12",
                            password_file=str(pw), spool_dir=str(tmp_path / "spool-good"))
        rc, _, err = run_for(good, videos / CLIP, tmp_path / "logs-good", 4)
        assert rc == 0 and "cannot connect" not in err, err
        sub.wait_for(lambda: sub.on("+/+/state"), 5, "a state message")

        bad_pw = tmp_path / "wrong"
        bad_pw.write_text("not-it\n")
        bad_pw.chmod(0o600)                      # a file everyone may read is refused
        bad = write_config(tmp_path / "bad.toml", b.port, username="room12",
                           password_file=str(bad_pw), spool_dir=str(tmp_path / "spool-bad"))
        rc, _, err = run_for(bad, videos / CLIP, tmp_path / "logs-bad", 6)
        sub.stop()
    finally:
        b.kill()
    assert rc == 0, err                          # kept monitoring, stopped cleanly
    lines = [line for line in err.splitlines() if "mqtt: cannot connect" in line]
    assert len(lines) == 1, err                  # several attempts, one line
    assert "refused" in lines[0] and ("password" in lines[0] or "authorized" in lines[0])
    assert "not-it" not in err and "s3cret" not in err
    assert len(logged(tmp_path / "logs-bad", "summary")) >= 4     # the monitor kept working
    assert len(list((tmp_path / "spool-bad").glob("*.msg"))) >= 4  # and kept every summary
    assert b.log().count("not authorised") + b.log().count("bad user") >= 2  # it did retry


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = openssl_ca(d, "ca")
    return {"dir": d, "ca": ca, "server": openssl_cert(d, "server", ca, server=True),
            "client": openssl_cert(d, "client", ca, server=False),
            "other_ca": openssl_ca(d, "other-ca")}


def test_tls_with_a_client_certificate_and_an_untrusted_broker(tmp_path, videos, pki):
    (cert, key), (ca, _) = pki["server"], pki["ca"]
    b = Broker(tmp_path / "broker", tls={"ca": ca, "cert": cert, "key": key,
                                         "require_certificate": True}).start()
    try:
        good = write_config(tmp_path / "good.toml", b.port, tls=True, ca_file=str(ca),
                            cert_file=str(pki["client"][0]), key_file=str(pki["client"][1]),
                            spool_dir=str(tmp_path / "spool-good"))
        rc, _, err = run_for(good, videos / CLIP, tmp_path / "logs-good", 4)
        assert rc == 0 and "cannot connect" not in err, err
        assert not list((tmp_path / "spool-good").glob("*.msg"))      # all delivered
        assert len(logged(tmp_path / "logs-good", "summary")) >= 3

        bad = write_config(tmp_path / "bad.toml", b.port, tls=True,
                           ca_file=str(pki["other_ca"][0]), cert_file=str(pki["client"][0]),
                           key_file=str(pki["client"][1]), spool_dir=str(tmp_path / "spool-bad"))
        rc, _, err = run_for(bad, videos / CLIP, tmp_path / "logs-bad", 5)
    finally:
        b.kill()
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "mqtt: cannot connect" in line]
    assert len(lines) == 1 and "certificate is not trusted" in lines[0], err
    assert len(list((tmp_path / "spool-bad").glob("*.msg"))) >= 3


def test_unknown_host_is_one_line_and_the_monitor_keeps_running(tmp_path, videos):
    cfg = write_config(tmp_path / "c.toml", 1883, host="no-such-broker.invalid")
    rc, _, err = run_for(cfg, videos / CLIP, tmp_path / "logs", 4)
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "mqtt: cannot connect" in line]
    assert len(lines) == 1 and "unknown host 'no-such-broker.invalid'" in lines[0], err
    assert len(logged(tmp_path / "logs", "summary")) >= 2


# --- kill -9, Home Assistant's birth message ---------------------------------------------------

def test_kill_9_publishes_the_last_will_and_birth_reannounces(tmp_path, broker, videos):
    sub = Subscriber(broker.port, ["emotion-edge/+/status", "homeassistant/sensor/#"]).start()
    cfg = write_config(tmp_path / "c.toml", broker.port)
    proc = monitor(cfg, videos / CLIP, tmp_path / "logs", "--loop")
    try:
        sub.wait_for(lambda: len(sub.on("homeassistant/#")) == 10, 30, "discovery")
        assert [m.payload for m in sub.on("+/+/status")] == [b"online"]
        # Home Assistant restarts: it publishes its birth message; the monitor announces again.
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="home-assistant")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        pub.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        # At most one announcement per 10 s (a flood of births must not make a flood of
        # configs): this one is due 10 s after the one at connect.
        sub.wait_for(lambda: len(sub.on("homeassistant/#")) == 20, 30, "the second announcement")
        pub.disconnect()
        pub.loop_stop()
        proc.kill()                                          # SIGKILL: no goodbye
        proc.wait(10)
        sub.wait_for(lambda: [m for m in sub.on("+/+/status") if m.payload == b"offline"], 10,
                     "the last will")
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.stop()
    assert [m.payload for m in sub.on("+/+/status")] == [b"online", b"offline"]
    late = Subscriber(broker.port, ["emotion-edge/+/status"], client_id="late").start()
    late.wait_for(lambda: late.messages, 5, "the retained status")
    late.stop()
    assert late.messages[-1].payload == b"offline" and late.messages[-1].retain


def test_the_health_panel_shows_the_broker_connection(tmp_path, broker, videos):
    """The MQTT output reports its own counters through Monitor.health() (what the web
    page's health panel shows): every summary acknowledged, nothing dropped."""
    from edge import config
    from edge.pipeline import Monitor

    cfg = config.load(write_config(tmp_path / "c.toml", broker.port, summary_interval=0.5),
                      {"source": {"uri": str(videos / "pyfeat_single_face.mp4"), "realtime": False},
                       "log": {"dir": str(tmp_path / "logs")}})
    monitor = Monitor(cfg)
    monitor.run()
    mqtt_health = monitor.health()["outputs"]["mqtt"]
    summaries = len(logged(tmp_path / "logs", "summary"))
    assert mqtt_health["broker"] == f"127.0.0.1:{broker.port}"
    assert mqtt_health["published"] == summaries + 1 >= 4    # the first state, every summary
    assert mqtt_health["spool dropped"] == mqtt_health["queue dropped"] == 0


# --- Home Assistant: removing what is no longer announced (issue 35 §8) ------------------------

def retained_configs(port: int) -> dict[str, bytes]:
    """The discovery configs the broker holds now: a new client gets every retained one;
    the retained status (subscribed after) arrives after all of them."""
    late = Subscriber(port, ["homeassistant/#", "emotion-edge/+/status"], client_id="late").start()
    late.wait_for(lambda: late.on("emotion-edge/+/status"), 10, "the retained status")
    late.stop()
    return {m.topic: m.payload for m in late.on("homeassistant/#")}


def run_until(cfg: Path, video: Path, logs: Path, sub: Subscriber, predicate, what: str):
    proc = monitor(cfg, video, logs, "--loop")
    try:
        sub.wait_for(predicate, 60, what)
    finally:
        rc, _, err = finish(proc)
    assert rc == 0, err
    return err


def test_configs_no_longer_announced_are_removed(tmp_path, broker, videos):
    """Home Assistant removes an entity when its config topic gets an empty retained
    message. A label the model no longer has, and with discovery = false every config,
    is removed that way; before, `discovery = false` left the entities in place."""
    stale = "homeassistant/sensor/room-12/share_contempt/config"
    other = "homeassistant/sensor/room-99/faces/config"        # another device: not ours
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="older-run")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    for topic in (stale, other):
        pub.publish(topic, json.dumps({"name": "old", "state_topic": "x"}), qos=1,
                    retain=True).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    sub = Subscriber(broker.port, ["homeassistant/#"]).start()
    cleared = lambda topic: lambda: [m for m in sub.on(topic) if not m.payload]  # noqa: E731

    cfg = write_config(tmp_path / "on.toml", broker.port)
    err = run_until(cfg, videos / CLIP, tmp_path / "logs", sub, cleared(stale), "the stale one")
    assert "removing the discovery config " + stale in err
    now = retained_configs(broker.port)
    ours = {t for t in now if "/room-12/" in t}
    assert len(ours) == 10 and stale not in now and other in now

    cfg = write_config(tmp_path / "off.toml", broker.port, discovery=False)
    err = run_until(cfg, videos / CLIP, tmp_path / "logs", sub,
                    lambda: all(cleared(t)() for t in ours), "every config removed")
    assert err.count("removing the discovery config") == 10
    now = retained_configs(broker.port)
    assert set(now) == {other}
    sub.stop()


def test_a_model_switch_announces_its_labels_and_removes_the_others(tmp_path, broker,
                                                                     monkeypatch):
    """The dominant emotion is an enum with the model's labels as options: when the model
    changes (the web page can switch it), so do the options, and the share sensor of a label
    the new model lacks is removed."""
    import edge.mqtt.publisher as publisher
    from edge.events import Event
    from edge.sinks.mqtt import MqttConfig, MqttSink
    from mqtt_fleet import ReplayPipeline

    monkeypatch.setattr(publisher, "REANNOUNCE_MIN_S", 1.0)
    sub = Subscriber(broker.port, ["homeassistant/#"]).start()
    sink = MqttSink(MqttConfig(enabled=True, host="127.0.0.1", port=broker.port,
                               device_id="room-12", room="Room 12",
                               spool_dir=str(tmp_path / "spool")))
    sink.start(ReplayPipeline())
    dominant = "homeassistant/sensor/room-12/dominant/config"
    try:
        sub.wait_for(lambda: len(sub.on("homeassistant/#")) >= 10, 10, "the first announcement")
        six = [x for x in LABELS if x != "disgust"]
        sink.handle([Event("model_changed", time.time(), extra={
            "model": "six.tflite", "previous": "emotion_int8.tflite", "labels": six})])
        sub.wait_for(lambda: len(sub.on(dominant)) >= 2, 10, "the new announcement")
        removed = sub.wait_for(lambda: [m for m in sub.on("+/+/+/share_disgust/config")
                                        if not m.payload], 10, "share_disgust removed")
    finally:
        sink.close()
        sub.stop()
    new = sub.on(dominant)[-1].json()
    assert new["options"] == [*six, "none"] and new["device"]["model"] == "emotion-edge (six.tflite)"
    assert removed and retained_configs(broker.port).keys() == {
        f"homeassistant/sensor/room-12/{o}/config"
        for o in ("dominant", "faces", "fps", *(f"share_{x}" for x in six))}
