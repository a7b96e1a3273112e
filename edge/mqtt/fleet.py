"""``emotion-edge fleet``: every monitor on a broker at once, for an admin without Home Assistant.

It subscribes to ``<prefix>/+/status`` and ``<prefix>/+/state`` (both retained, so every
device shows up at once) and shows a table that refreshes every second::

    device    room      status   faces  dominant  last summary          seq  missed
    room-12   Room 12   online       3  happy     2026-12-03 14:02:11    812       0
    room-14   Room 14   offline      0  none      2026-12-03 09:15:40    233       0

``missed`` counts sequence numbers skipped while watching, plus what the device itself
reports it dropped (a spool that overflowed). ``--json`` prints one object after ``--wait``
seconds and exits, for scripts.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from ..password_file import PasswordFileError, read_password_file


@dataclass
class DeviceView:
    device: str
    room: str = ""
    status: str = "unknown"       # online | offline | unknown (no status message seen)
    faces: int | None = None
    dominant: str | None = None
    emotion_share: dict[str, float] | None = None
    fps: float | None = None
    last_summary: str | None = None   # the summary's own time (ISO 8601 UTC)
    seq: int | None = None
    summaries: int = 0            # state messages received while watching
    missed: int = 0               # seq numbers skipped while watching
    dropped: int = 0              # what the device reports its spool dropped


class Fleet:
    """The latest status and state of each device, from the messages seen."""

    def __init__(self, prefix: str = "emotion-edge"):
        self.prefix = prefix
        self.devices: dict[str, DeviceView] = {}
        self.bad_messages = 0
        self._lock = threading.Lock()

    def add(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != len(self.prefix.split("/")) + 2 or not topic.startswith(self.prefix + "/"):
            return
        device, kind = parts[-2], parts[-1]
        with self._lock:
            view = self.devices.setdefault(device, DeviceView(device))
            if kind == "status":
                view.status = payload.decode(errors="replace") or "unknown"
            elif kind == "state":
                self._state(view, payload)

    def _state(self, view: DeviceView, payload: bytes) -> None:
        try:
            p = json.loads(payload)
            seq = int(p["seq"])
        except (ValueError, KeyError, TypeError):
            self.bad_messages += 1
            return
        if view.seq is not None:
            if seq <= view.seq:
                return            # a QoS 1 redelivery, or an older retained copy
            view.missed += seq - view.seq - 1
        view.seq = seq
        view.summaries += 1
        view.room = str(p.get("room") or "")
        view.faces = p.get("faces")
        view.dominant = p.get("dominant")
        view.emotion_share = p.get("emotion_share")
        view.fps = p.get("fps")
        view.last_summary = p.get("ts")
        view.dropped = int(p.get("dropped") or 0)

    def rows(self) -> list[DeviceView]:
        with self._lock:
            return [DeviceView(**asdict(v)) for _, v in sorted(self.devices.items())]


def table(rows: list[DeviceView]) -> str:
    head = ("device", "room", "status", "faces", "dominant", "last summary", "seq", "missed")
    body = [(v.device, v.room, v.status, "" if v.faces is None else str(v.faces),
             v.dominant or ("none" if v.seq is not None else ""), _local(v.last_summary),
             "" if v.seq is None else str(v.seq), str(v.missed + v.dropped)) for v in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    right = {3, 6, 7}
    fmt = lambda r: "  ".join(c.rjust(w) if i in right else c.ljust(w)   # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    online = sum(v.status == "online" for v in rows)
    return "\n".join([fmt(head), *map(fmt, body),
                      f"{len(rows)} device(s), {online} online"])


def _local(ts: str | None) -> str:
    if not ts:
        return ""
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone() \
            .strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, metavar="HOST", help="the MQTT broker")
    p.add_argument("--port", type=int, help="default 1883, or 8883 with --tls")
    p.add_argument("--prefix", default="emotion-edge", help="the monitors' topic_prefix")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca-file", help="with --tls: CA certificate(s) to trust (default: the system's)")
    p.add_argument("--cert-file", help="with --tls: a client certificate")
    p.add_argument("--key-file", help="the client certificate's key")
    p.add_argument("--username", help="login name")
    p.add_argument("--password-file", type=Path, help="a file with the password on its first line")
    p.add_argument("--json", action="store_true",
                   help="print every device as JSON after --wait seconds and exit")
    p.add_argument("--wait", type=float, default=2.0,
                   help="with --json: seconds to collect messages (default 2)")


def run(args: argparse.Namespace, out=None) -> int:
    import paho.mqtt.client as mqtt

    out = out or sys.stdout
    fleet = Fleet(args.prefix)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refused.append(str(reason_code))
            connected.set()
            return
        client.subscribe([(f"{args.prefix}/+/status", 1), (f"{args.prefix}/+/state", 1)])
        connected.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = on_connect
    client.on_message = lambda c, u, msg: fleet.add(msg.topic, msg.payload)
    if args.username:
        password = None
        if args.password_file:
            try:
                password = read_password_file(args.password_file, "--password-file")
            except PasswordFileError as exc:
                return _fail(str(exc))
        client.username_pw_set(args.username, password)
    if args.tls:
        try:
            client.tls_set(ca_certs=args.ca_file, certfile=args.cert_file, keyfile=args.key_file)
        except (OSError, ValueError) as exc:
            return _fail(f"TLS setup: {exc}")
    port = args.port or (8883 if args.tls else 1883)
    try:
        client.connect(args.broker, port, keepalive=30)
    except Exception as exc:    # DNS, refused, TLS: one line
        from .publisher import BrokerSettings, describe
        return _fail(f"cannot connect to {args.broker}:{port}: "
                     f"{describe(exc, BrokerSettings(args.broker, port, ''))}")
    client.loop_start()
    try:
        if not connected.wait(10) or refused:
            why = refused[0] if refused else "no answer within 10 s"
            return _fail(f"{args.broker}:{port} refused the connection: {why}")
        if args.json:
            time.sleep(args.wait)
            json.dump({"broker": f"{args.broker}:{port}", "prefix": args.prefix,
                       "devices": [asdict(v) for v in fleet.rows()]}, out, indent=2)
            out.write("\n")
            return 0
        while True:
            out.write("\x1b[H\x1b[2J" + f"emotion-edge fleet on {args.broker}:{port}  "
                      f"{datetime.now():%H:%M:%S}  (Ctrl-C to quit)\n\n"
                      + table(fleet.rows()) + "\n")
            out.flush()
            time.sleep(1.0)
    except KeyboardInterrupt:
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


def _fail(message: str) -> int:
    print(f"emotion-edge fleet: {message}", file=sys.stderr)
    return 2

