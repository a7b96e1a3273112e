"""Topic names and payloads: what goes on the wire (documented in docs/mqtt.md).

``<prefix>/<device>/status``  ``online`` / ``offline`` (retained; ``offline`` is the last will)
``<prefix>/<device>/state``   the room's state after every summary (retained JSON, QoS 1)
``<prefix>/<device>/events``  face events, only with ``publish_events`` (JSON, QoS 1)
``<discovery>/sensor/<device>/<object>/config``  Home Assistant discovery (retained JSON)
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ..eventlog import EventKind
from .. import __version__
from ..events import Event, iso_utc

PAYLOAD_VERSION = 1
ONLINE, OFFLINE = "online", "offline"
# Home Assistant: node_id and object_id "must only consist of characters from the character
# class [a-zA-Z0-9_-]"; the same rule keeps MQTT wildcards (+ #) and '/' out of our topics.
ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Face events as published: the log's kind -> the short name on the events topic.
EVENT_NAMES = {EventKind.FACE_APPEARED: "appeared", EventKind.EMOTION_CHANGED: "changed",
               EventKind.FACE_LEFT: "left", EventKind.MICRO_EXPRESSION: "micro_expression"}
# Fields an event payload carries beyond the common ones (no box: where a face is in the
# picture is not needed to know the room's mood).
EVENT_EXTRA = ("previous", "duration_s")


def safe_id(text: str) -> str:
    """A host name made into a device id: characters outside [A-Za-z0-9_-] become '-'."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text).strip("-") or "emotion-edge"


_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp"}


def printable(text: str, limit: int = 64) -> str:
    """``text`` safe for a terminal or a log line: control and format characters (C0, C1,
    DEL, so every escape sequence loses its ESC; bidi overrides, zero-width marks) removed,
    at most ``limit`` characters (an ellipsis marks a cut)."""
    out = "".join(c for c in text[:limit * 4] if unicodedata.category(c) not in _UNPRINTABLE)
    return out if len(out) <= limit else out[:limit - 1] + "\u2026"


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Topics:
    prefix: str
    device: str
    discovery_prefix: str = "homeassistant"

    @property
    def status(self) -> str:
        return f"{self.prefix}/{self.device}/status"

    @property
    def state(self) -> str:
        return f"{self.prefix}/{self.device}/state"

    @property
    def events(self) -> str:
        return f"{self.prefix}/{self.device}/events"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth/will topic (``online`` when it (re)starts)."""
        return f"{self.discovery_prefix}/status"

    def discovery(self, object_id: str, component: str = "sensor") -> str:
        return f"{self.discovery_prefix}/{component}/{self.device}/{object_id}/config"


def state_payload(summary: Event, seq: int, device: str, room: str, dropped: int) -> str:
    """The retained room state published for one ``summary`` event."""
    x = summary.extra
    return dumps({"v": PAYLOAD_VERSION, "seq": seq, "ts": iso_utc(summary.time),
                  "device": device, "room": room, "faces": x.get("faces_seen", 0),
                  "faces_unread": x.get("faces_unread", 0),
                  "dominant": x.get("dominant"), "emotion_share": x.get("emotion_share", {}),
                  "fps": x.get("fps"), "interval_s": x.get("interval_s"),
                  "frames": x.get("frames"), "dropped": dropped})


def event_payload(event: Event, seq: int, device: str) -> str:
    """One face event; ``track`` is the per-run anonymous counter, never an identity."""
    rec: dict[str, Any] = {"v": PAYLOAD_VERSION, "seq": seq, "ts": iso_utc(event.time),
                           "device": device, "event": EVENT_NAMES[event.kind],
                           "track": event.track_id, "emotion": event.emotion}
    if event.score is not None:
        rec["score"] = round(float(event.score), 3)
    rec.update({k: event.extra[k] for k in EVENT_EXTRA if k in event.extra})
    return dumps(rec)


def _share_template(label: str) -> str:
    share = f"value_json.emotion_share.{label}"
    return f"{{{{ ({share} * 100) | round(1) if {share} is defined else None }}}}"


def discovery_messages(topics: Topics, labels: tuple[str, ...], room: str,
                       model: str = "emotion-edge") -> dict[str, str]:
    """Home Assistant MQTT discovery: one retained config per sensor, all on one device.

    Follows home-assistant.io/integrations/mqtt (discovery topic
    ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``, ``unique_id``,
    ``device`` with ``identifiers``, ``availability_topic``) and
    home-assistant.io/integrations/sensor.mqtt (``state_topic`` required, ``value_template``,
    ``unit_of_measurement``, ``state_class``, ``device_class`` and ``options``)."""
    device_uid = f"emotion-edge_{topics.device}"
    device = {"identifiers": [device_uid], "name": f"Emotion monitor {room or topics.device}",
              "model": model, "manufacturer": "emotion-edge", "sw_version": __version__}
    if room:
        device["suggested_area"] = room
    common = {"state_topic": topics.state, "availability_topic": topics.status,
              "payload_available": ONLINE, "payload_not_available": OFFLINE, "qos": 1,
              "device": device, "origin": {"name": "emotion-edge", "sw_version": __version__}}
    sensors: dict[str, dict[str, Any]] = {
        # An enum sensor (home-assistant.io/integrations/sensor, "device class enum"): its
        # states are the model's labels and "none" (no face seen), listed in ``options``.
        "dominant": {"name": "Dominant emotion", "icon": "mdi:emoticon-outline",
                     "device_class": "enum", "options": [*labels, "none"],
                     "value_template": "{{ value_json.dominant or 'none' }}"},
        "faces": {"name": "Faces in view", "icon": "mdi:account-group",
                  "value_template": "{{ value_json.faces }}", "unit_of_measurement": "faces",
                  "state_class": "measurement"},
        "fps": {"name": "Frames per second", "icon": "mdi:speedometer",
                "value_template": "{{ value_json.fps }}", "unit_of_measurement": "fps",
                "state_class": "measurement", "entity_category": "diagnostic"},
    }
    for label in labels:
        sensors[f"share_{label}"] = {"name": f"{label.capitalize()} share",
                                     "icon": "mdi:percent", "unit_of_measurement": "%",
                                     "state_class": "measurement",
                                     "value_template": _share_template(label)}
    return {topics.discovery(object_id): dumps({**spec, "unique_id": f"{device_uid}_{object_id}",
                                                 **common})
            for object_id, spec in sensors.items()}
