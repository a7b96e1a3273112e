"""``emotion-edge fleet``: every monitor on a broker at once, for an admin without Home Assistant.

It subscribes to ``<prefix>/+/status`` and ``<prefix>/+/state`` (both retained, so every
device shows up at once) and shows a table that refreshes every second::

    device    room      status   faces  dominant  last summary          seq  missed
    room-12   Room 12   online       3  happy     2026-12-03 14:02:11    812       0
    room-14   Room 14   offline      0  none      2026-12-03 09:15:40    233       0

``missed`` counts sequence numbers skipped while watching, plus what the device itself
reports it dropped (a spool that overflowed). ``--json`` prints one object after ``--wait``
seconds and exits, for scripts.

It trusts nothing it reads: anyone who may publish on the broker can write these topics.
Every field is checked for its type and range before anything is taken from a message; a
message that fails is ignored whole, counted and shown (``bad_messages``, with the last
reason); text is stripped of control characters (no escape sequence reaches the terminal)
and cut to a length; a message over 64 kB is discarded unread (``bounded.py``); at most
``MAX_DEVICES`` devices are tracked. The network thread never dies of a message.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .topics import ID_RE, printable

MAX_DEVICES = 10_000
MAX_SEQ = 2 ** 53             # what a JSON number holds exactly everywhere
TEXT_MAX = 64                 # room, dominant emotion, share labels: cut to this


class BadMessage(ValueError):
    """A message that does not follow docs/mqtt.md; the text says which field."""

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
        self.last_bad: str | None = None     # topic and reason of the last one, printable
        self._lock = threading.Lock()

    def add(self, topic: str, payload: bytes) -> None:
        """Take one message; never raises (a bad one is counted in ``bad_messages``)."""
        try:
            self._add(topic, payload)
        except BadMessage as exc:
            self.bad(topic, str(exc))
        except Exception as exc:          # noqa: BLE001 - the network thread must live on
            self.bad(topic, f"unreadable ({type(exc).__name__})")

    def bad(self, topic: str, why: str) -> None:
        with self._lock:
            self.bad_messages += 1
            self.last_bad = f"{printable(topic, 120)}: {printable(why, 120)}"

    def _add(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != len(self.prefix.split("/")) + 2 or not topic.startswith(self.prefix + "/"):
            return
        device, kind = parts[-2], parts[-1]
        if kind not in ("status", "state"):
            return
        if not ID_RE.match(device) or len(device) > TEXT_MAX:
            raise BadMessage("the device id is not letters, digits, _ and - (at most "
                             f"{TEXT_MAX})")
        if kind == "status":
            if payload not in (b"online", b"offline"):
                raise BadMessage("the status is neither online nor offline")
            update = {"status": payload.decode()}
        else:
            update = parse_state(payload)
        with self._lock:
            view = self.devices.get(device)
            if view is None:
                if len(self.devices) >= MAX_DEVICES:
                    raise BadMessage(f"more than {MAX_DEVICES} devices")
                view = self.devices[device] = DeviceView(device)
            if kind == "status":
                view.status = update["status"]
                return
            seq = update["seq"]
            if view.seq is not None:
                if seq <= view.seq:
                    return        # a QoS 1 redelivery, or an older retained copy
                view.missed += seq - view.seq - 1
            view.summaries += 1
            for key, value in update.items():
                setattr(view, key, value)

    def rows(self) -> list[DeviceView]:
        with self._lock:
            return [DeviceView(**asdict(v)) for _, v in sorted(self.devices.items())]


def parse_state(payload: bytes) -> dict[str, Any]:
    """A state payload (docs/mqtt.md, "State") as DeviceView fields, every one checked;
    ``BadMessage`` names the first field that is wrong."""
    try:
        p = json.loads(payload)
    except (ValueError, RecursionError):
        raise BadMessage("not JSON") from None
    if not isinstance(p, dict):
        raise BadMessage("not a JSON object")
    out: dict[str, Any] = {"seq": _int(p, "seq", required=True)}
    ts = p.get("ts")
    if not isinstance(ts, str) or len(ts) > 40:
        raise BadMessage("ts is not a time")
    try:
        datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        raise BadMessage("ts is not an ISO 8601 time") from None
    out["last_summary"] = ts
    out["room"] = _text(p, "room") or ""
    out["faces"] = _int(p, "faces")
    out["dominant"] = _text(p, "dominant")
    share = p.get("emotion_share")
    if share is not None:
        if not isinstance(share, dict) or len(share) > 32 or \
                not all(isinstance(k, str) and _number(v) and 0 <= v <= 1
                        for k, v in share.items()):
            raise BadMessage("emotion_share is not labels with shares 0..1")
        share = {printable(k, TEXT_MAX): float(v) for k, v in share.items()}
    out["emotion_share"] = share
    fps = p.get("fps")
    if fps is not None and not (_number(fps) and 0 <= fps < 1e6):
        raise BadMessage("fps is not a number of frames per second")
    out["fps"] = None if fps is None else float(fps)
    out["dropped"] = _int(p, "dropped") or 0
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(p: dict, key: str, required: bool = False) -> int | None:
    v = p.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < MAX_SEQ:
        raise BadMessage(f"{key} is not a whole number 0..2^53")
    return v


def _text(p: dict, key: str) -> str | None:
    v = p.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise BadMessage(f"{key} is not text")
    return printable(v, TEXT_MAX)


def table(rows: list[DeviceView], bad_messages: int = 0, last_bad: str | None = None) -> str:
    head = ("device", "room", "status", "faces", "dominant", "last summary", "seq", "missed")
    body = [tuple(printable(c, TEXT_MAX) for c in (
                v.device, v.room, v.status, "" if v.faces is None else str(v.faces),
                v.dominant or ("none" if v.seq is not None else ""), _local(v.last_summary),
                "" if v.seq is None else str(v.seq), str(v.missed + v.dropped))) for v in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    right = {3, 6, 7}
    fmt = lambda r: "  ".join(c.rjust(w) if i in right else c.ljust(w)   # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    online = sum(v.status == "online" for v in rows)
    foot = f"{len(rows)} device(s), {online} online"
    if bad_messages:
        foot += f"; {bad_messages} bad message(s) ignored (last: {last_bad})"
    return "\n".join([fmt(head), *map(fmt, body), foot])


def _local(ts: str | None) -> str:
    if not ts:
        return ""
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone() \
            .strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return printable(str(ts), 40)


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

    from .bounded import MAX_INCOMING, BoundedClient

    out = out or sys.stdout
    fleet = Fleet(args.prefix)
    connected = threading.Event()
    online = threading.Event()         # connected now (paho's thread reconnects by itself)
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refused.append(str(reason_code))
            connected.set()
            return
        # QoS 0: nothing we read needs our acknowledgement, so a discarded message holds
        # none of the broker's in-flight slots for us.
        client.subscribe([(f"{args.prefix}/+/status", 0), (f"{args.prefix}/+/state", 0)])
        online.set()
        connected.set()

    def oversized(topic: str, size: int) -> None:
        fleet.bad(topic, f"{size} bytes, over the {MAX_INCOMING}-byte limit: discarded unread")

    client = BoundedClient(mqtt.CallbackAPIVersion.VERSION2, max_packet=MAX_INCOMING,
                           on_oversized=oversized)
    client.on_connect = on_connect
    client.on_disconnect = lambda *a: online.clear()
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
                       "devices": [asdict(v) for v in fleet.rows()],
                       "bad_messages": fleet.bad_messages, "last_bad": fleet.last_bad},
                      out, indent=2)
            out.write("\n")
            return 0
        while True:
            state = "" if online.is_set() else "  CONNECTION LOST, reconnecting"
            out.write("\x1b[H\x1b[2J" + f"emotion-edge fleet on {printable(args.broker)}:{port}"
                      f"  {datetime.now():%H:%M:%S}{state}  (Ctrl-C to quit)\n\n"
                      + table(fleet.rows(), fleet.bad_messages, fleet.last_bad) + "\n")
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

