"""The MQTT sink: the room's state after every summary, optional face events, Home Assistant
discovery (docs/mqtt.md). Off by default: with it on, room summaries leave the device.

``handle`` only picks the events to publish and hands them to the publisher thread
(``edge/mqtt/publisher.py``) through a bounded queue; ``update`` does nothing. The frame
loop never waits for the network or the spool's disk writes.

``start`` opens the spool (its default folder is under the log folder, one per device, and
locked) and hands the publisher a first state for this run, so that the state retained on
the broker is never the one from before a restart.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..eventlog import EventKind
from ..events import Event
from ..mqtt.spool import Spool, SpoolError
from ..mqtt.topics import EVENT_NAMES, ID_RE, Topics, safe_id
from ..password_file import PasswordFileError, read_password_file
from .base import Pipeline, Sink, SinkError
from ..settings import check

log = logging.getLogger(__name__)


@dataclass
class MqttConfig:
    """The ``[mqtt]`` section."""
    enabled: bool = field(default=False, metadata={
        "doc": "publish to an MQTT broker (off by default: with it on, the room's summaries "
               "leave the device; what is sent: docs/mqtt.md)"})
    host: str = field(default="", metadata={"doc": "the broker's host name or IP address"})
    port: int = field(default=1883, metadata={"doc": "the broker's port (usually 8883 with tls)",
        "range": "1..65535"})
    tls: bool = field(default=False, metadata={"doc": "connect with TLS"})
    ca_file: str = field(default="", metadata={
        "doc": "with tls: the CA certificate(s) to trust, PEM (empty: the system's CAs)"})
    cert_file: str = field(default="", metadata={
        "doc": "with tls: a client certificate (PEM), if the broker asks for one"})
    key_file: str = field(default="", metadata={
        "doc": "the client certificate's private key (empty: it is in cert_file)"})
    username: str = field(default="", metadata={"doc": "login name (empty: anonymous)"})
    password_file: str = field(default="", metadata={
        "doc": "a file holding the password on its first line, readable by the service only "
               "(never put a password in this config)"})
    device_id: str = field(default="", metadata={
        "doc": "this monitor's id in topics and Home Assistant, letters, digits, _ and - "
               "(empty: the host name)"})
    topic_prefix: str = field(default="emotion-edge", metadata={
        "doc": "topics are <topic_prefix>/<device_id>/status, /state and /events"})
    room: str = field(default="", metadata={
        "doc": "a human name for the room, e.g. \"Room 12\" (Home Assistant's suggested area)"})
    publish_events: bool = field(default=False, metadata={
        "doc": "also publish each face event (appeared, changed, left, micro-expression) with "
               "its anonymous track id; off by default: room aggregates only"})
    discovery: bool = field(default=True, metadata={
        "doc": "announce the sensors to Home Assistant (MQTT discovery)"})
    discovery_prefix: str = field(default="homeassistant", metadata={
        "doc": "Home Assistant's discovery prefix"})
    spool_dir: str = field(default="", metadata={
        "doc": "where messages wait until the broker has them, one folder per monitor (empty: "
               "mqtt-spool/<device id> in $STATE_DIRECTORY under systemd, else in the log "
               "folder)"})
    spool_max_bytes: int = field(default=20_000_000, metadata={
        "doc": "the spool's size limit; beyond it the oldest messages are dropped (counted)",
        "range": ">= 1000"})
    spool_max_age: float = field(default=7 * 86400.0, metadata={
        "doc": "seconds a message may wait in the spool before it is dropped (counted)",
        "range": "> 0", "unit": "seconds"})
    reconnect_max: float = field(default=60.0, metadata={
        "doc": "longest wait in seconds between reconnection attempts (backoff from 1 s)",
        "range": ">= 1", "unit": "seconds"})

    def __post_init__(self) -> None:
        check(self)   # the ranges and choices in the fields' metadata
        if self.enabled and not self.host.strip():
            raise ValueError("host: set the broker's address (or enabled = false)")
        if self.device_id and not ID_RE.match(self.device_id):
            raise ValueError(f"device_id: {self.device_id!r} may only hold letters, digits, "
                             "_ and -")
        for name in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, name)
            if not value or value.startswith("/") or value.endswith("/") or \
                    any(c in value for c in "+#\0"):
                raise ValueError(f"{name}: {value!r} must be a topic without '+', '#' or a "
                                 "leading or trailing '/'")
        if (self.cert_file or self.ca_file or self.key_file) and not self.tls:
            raise ValueError("ca_file, cert_file and key_file need tls = true")
        if self.key_file and not self.cert_file:
            raise ValueError("key_file: needs cert_file")
        if self.password_file and not self.username:
            raise ValueError("password_file: needs a username")

    @property
    def device(self) -> str:
        return self.device_id or safe_id(socket.gethostname())

    def spool_path(self, log_dir: str | Path = "logs") -> Path:
        """``spool_dir``, or ``mqtt-spool/<device>`` in systemd's state folder or else in
        the log folder: two monitors started from one folder, each with its own
        ``--log-dir``, never share a spool (and the spool's lock refuses a second one)."""
        if self.spool_dir:
            return Path(self.spool_dir)
        state = os.environ.get("STATE_DIRECTORY")
        return Path(state.split(":")[0] if state else log_dir) / "mqtt-spool" / self.device


def read_password(path: str) -> str:
    """The password in ``password_file`` (edge.password_file's rules); else one line."""
    try:
        return read_password_file(path, "[mqtt] password_file")
    except PasswordFileError as exc:
        raise SinkError(str(exc)) from None


class MqttSink(Sink):
    """Hands summaries (and, with ``publish_events``, face events) to the publisher thread."""

    name = "mqtt"

    def __init__(self, config: MqttConfig | None = None) -> None:
        from ..mqtt.publisher import BrokerSettings, Publisher   # paho only when enabled

        self.config = c = config or MqttConfig()
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(c, name)
            if path and not os.access(path, os.R_OK):
                raise SinkError(f"[mqtt] {name} {path}: not found or not readable")
        self.topics = Topics(c.topic_prefix, c.device, c.discovery_prefix)
        self._broker = BrokerSettings(
            host=c.host, port=c.port, client_id=f"emotion-edge-{c.device}",
            username=c.username, password=read_password(c.password_file) if c.password_file
            else "", tls=c.tls, ca_file=c.ca_file, cert_file=c.cert_file, key_file=c.key_file,
            reconnect_max_s=c.reconnect_max)
        self._publisher_class = Publisher
        self._kinds = {EventKind.SUMMARY} | (set(EVENT_NAMES) if c.publish_events else set())
        self.spool: Spool | None = None
        self.publisher: Publisher | None = None
        self._started = False

    def start(self, pipeline: Pipeline) -> None:
        c = self.config
        log_path = getattr(pipeline, "log_path", None)     # the monitor's event log
        folder = c.spool_path(log_path.parent if log_path is not None else "logs")
        if not c.spool_dir:
            _adopt_legacy_spool(folder)
        try:
            self.spool = Spool(folder, c.spool_max_bytes, c.spool_max_age)
        except SpoolError as exc:
            raise SinkError(str(exc)) from None
        info = pipeline.model_info()
        self.publisher = self._publisher_class(
            self._broker, self.topics, self.spool, room=c.room, discovery=c.discovery,
            labels=tuple(pipeline.labels), model=f"emotion-edge ({info.get('file', 'model')})")
        # This run's first state, before any summary: what the broker keeps (retained) and
        # Home Assistant shows from the moment we connect is no longer the state from before
        # a restart or a crash. Honest, not invented: no frame analysed yet, nothing seen.
        self.publisher.submit(Event(EventKind.SUMMARY, time.time(), extra={
            "interval_s": 0.0, "faces_seen": 0, "emotion_share": {}, "dominant": None,
            "frames": 0, "fps": None}))
        self.publisher.start()
        self._started = True

    def health(self) -> dict:
        p, spool = self.publisher, self.spool
        if p is None or spool is None:
            return {"broker": f"{self._broker.host}:{self._broker.port}", "state": "not started"}
        return {"broker": f"{p.broker.host}:{p.broker.port}",
                "state": "connected" if p.connected else "not connected",
                "published": p.published, "connect failures": p.connect_failures,
                "waiting": len(spool), "spool dropped": spool.dropped,
                "queue dropped": p.queue_dropped, "incoming discarded": p.oversized,
                **({"held in memory (disk refused)": spool.in_memory} if spool.in_memory
                   else {}),
                **({"last error": p.last_error} if p.last_error and not p.connected else {})}

    def handle(self, events: Sequence[Event]) -> None:
        kinds = self._kinds
        if self.publisher is None:
            return
        for e in events:
            if e.kind in kinds or e.kind == EventKind.MODEL_CHANGED:   # the latter: new discovery
                self.publisher.submit(e)

    def close(self) -> None:
        if self._started:
            self._started = False
            self.publisher.close()


def _adopt_legacy_spool(folder: Path) -> None:
    """Before per-device folders the default spool was ``mqtt-spool`` itself: move what an
    older version left there (unsent messages, counters) into this device's folder, once,
    so nothing waiting is forgotten and the sequence numbers carry on."""
    legacy = folder.parent
    if folder.exists() or not legacy.is_dir():
        return
    files = [p for p in legacy.iterdir() if p.is_file() and
             (p.suffix in (".msg", ".last") or p.name == "counters.json")]
    if not files:
        return
    try:
        folder.mkdir()
        for p in files:
            p.rename(folder / p.name)
    except OSError as exc:
        log.warning("mqtt: could not move the old spool %s into %s (%s)", legacy, folder,
                    exc.strerror or exc)
        return
    log.info("mqtt: moved the spool of an earlier version (%d file(s)) from %s into %s",
             len(files), legacy, folder)
