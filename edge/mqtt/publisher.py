"""The publisher thread: owns the broker connection and sends the spool, in order.

The frame loop only appends to an in-memory queue (``submit``) and writes one byte to a
wake-up pipe; everything that can wait on the network or the disk happens here. The thread
drives paho-mqtt's "external loop" API (``loop_read``/``loop_write``/``loop_misc`` on
``select``), so its callbacks run in this thread and no lock guards the spool.

Delivery: each message is spooled on disk first, then published with QoS 1 and deleted
when its PUBACK arrives. At most ``WINDOW`` messages are in flight; after a lost connection
paho resends those (same message ids, DUP flag) and this thread carries on after them, so
the order holds and a duplicate is recognisable by its ``seq``. Reconnects back off
exponentially (1 s doubling to ``reconnect_max_s``, with jitter so a fleet does not reconnect
in step); each kind of failure is one log line per episode and a counter.

What comes from the broker is bounded: a packet over ``MAX_INCOMING`` bytes is discarded
unread (``bounded.py``); Home Assistant's birth messages, however many, bring at most one
re-announcement of the sensors per ``REANNOUNCE_MIN_S`` (coalesced, one log line each).
"""
from __future__ import annotations

import logging
import os
import random
import select
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from ..eventlog import EventKind
from ..events import Event
from .bounded import MAX_INCOMING, BoundedClient
from .spool import Spool, Spooled
from .topics import (OFFLINE, ONLINE, Topics, discovery_messages, event_payload, printable,
                     state_payload)

log = logging.getLogger(__name__)

WINDOW = 16              # QoS 1 messages in flight (paho's own limit is 20)
KEEPALIVE_S = 30         # the broker declares us dead (last will) 45 s after a silent cut
CONNECT_TIMEOUT_S = 5.0  # TCP + TLS; then as long again for the broker's CONNACK
QUEUE_MAX = 10_000       # events waiting for this thread; beyond it the newest are counted lost
CLOSE_TIMEOUT_S = 5.0    # at shutdown: how long to wait for PUBACKs before leaving the rest spooled
REANNOUNCE_MIN_S = 10.0  # Home Assistant's birth messages: at most one re-announcement per this
LOG_INTERVAL_S = 60.0    # a repeated trouble from the broker's side: one log line per this
CLEAR_MAX = 256          # stale discovery configs cleared per connection, at most
CLEAR_LOGGED = 16        # of those, logged one by one (ours are 10 + one per label)


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    client_id: str
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    reconnect_max_s: float = 60.0


class Publisher:
    def __init__(self, broker: BrokerSettings, topics: Topics, spool: Spool, *, room: str = "",
                 labels: tuple[str, ...] = (), discovery: bool = True, model: str = "emotion-edge"):
        self.broker, self.topics, self.spool = broker, topics, spool
        self.room, self.labels, self.discovery, self.model = room, labels, discovery, model
        # Counters (read from any thread; written only here or by submit).
        self.published = 0          # PUBACKed state and event messages
        self.connect_failures = 0   # failed attempts (refused, TLS, DNS, timeout, login)
        self.disconnects = 0        # established connections lost
        self.queue_dropped = 0      # submit() found the queue full
        self.oversized = 0          # incoming messages discarded unread for their size
        self.births = 0             # Home Assistant birth messages received
        self.announcements = 0      # discovery announcements sent (each: every config)
        self.cleared = 0            # stale discovery configs removed (empty retained)
        self.errors = 0             # unexpected errors in the thread (bugs), survived
        self._error_logged_at = -LOG_INTERVAL_S
        self.last_error: str | None = None
        self.connected = False
        self._queue: deque[Event] = deque()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop = False
        self._inflight: dict[int, Spooled] = {}   # message id -> spooled message
        self._sent_upto = 0         # highest spool order handed to the client
        self._failures = 0          # consecutive failures, for the backoff
        self._logged_error: str | None = None
        self._connecting_since: float | None = None
        self._next_attempt = 0.0
        self._announce_due = False  # a birth message asked for the configs again
        self._last_announce = -REANNOUNCE_MIN_S
        self._births_logged = 0
        self._cleared_topics: set[str] = set()
        self._announced: set[str] = set()
        self._oversized_logged_at = -LOG_INTERVAL_S
        self._oversized_logged = 0
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self.client = self._make_client()

    # --- from the frame loop (must never block) ---------------------------------------------
    def submit(self, event: Event) -> None:
        if len(self._queue) >= QUEUE_MAX:
            self.queue_dropped += 1
            if self.queue_dropped == 1:
                log.warning("mqtt: %d messages wait for the publisher thread; dropping new ones "
                            "(counted)", QUEUE_MAX)
            return
        self._queue.append(event)
        self._wake()

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = CLOSE_TIMEOUT_S + 5.0) -> None:
        """Spool what was submitted, send what the broker takes within a few seconds, say
        ``offline`` and disconnect; what is not acknowledged stays in the spool."""
        self._stop = True
        self._wake()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive():
            memory = self.spool.in_memory + len(self._queue)
            log.warning("mqtt: the publisher did not finish within %g s; %d unsent message(s) "
                        "stay in the spool %s%s", timeout, len(self.spool) - self.spool.in_memory,
                        self.spool.folder, f"; {memory} held only in memory are lost"
                        if memory else "")
            return
        fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
        for fd in fds:
            os.close(fd)

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged by the broker (spooled or queued)."""
        return len(self.spool) + len(self._queue)

    # --- the thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                stopping = self._stop
                self._spool_queue()
                if stopping:
                    self._finish()
                    return
                self._step()
            except Exception:    # never let the thread die silently: log, wait, go on
                self.errors += 1
                now = time.monotonic()
                if now - self._error_logged_at >= LOG_INTERVAL_S:   # a traceback a minute
                    self._error_logged_at = now
                    log.exception("mqtt: unexpected error in the publisher thread (%d so "
                                  "far; counted, logged once a minute)", self.errors)
                time.sleep(1.0)

    def _step(self) -> None:
        now = time.monotonic()
        sock = self.client.socket()
        if sock is None:
            if self.connected or self._connecting_since is not None:
                self._lost("the socket closed")
            if now >= self._next_attempt:
                self._connect()
                sock = self.client.socket()
        elif self._connecting_since is not None and \
                now - self._connecting_since > 2 * CONNECT_TIMEOUT_S:
            self._fail(f"no answer from the broker within {2 * CONNECT_TIMEOUT_S:g} s")
            self._drop_socket()
            return
        if self.connected:
            if self._announce_due and now - self._last_announce >= REANNOUNCE_MIN_S:
                self._announce_due = False
                births, self._births_logged = self.births - self._births_logged, self.births
                if births:
                    log.info("mqtt: Home Assistant is online (%d birth message(s) since the "
                             "last announcement): announcing the sensors again", births)
                else:
                    log.info("mqtt: the model changed: announcing the sensors again")
                self._announce()
            self._send_pending()
        self._wait(sock, now)

    def _wait(self, sock, now: float) -> None:
        rlist = [self._wake_r]
        wlist = []
        if sock is not None:
            rlist.append(sock)
            if self.client.want_write():
                wlist.append(sock)
            timeout = 1.0
        else:
            timeout = max(0.0, min(1.0, self._next_attempt - now))
        try:
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
        except (OSError, ValueError):     # the socket closed under us
            readable, writable = [], []
        if self._wake_r in readable:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        if sock is not None and self.client.socket() is sock:
            if sock in readable:
                self.client.loop_read()
            if self.client.socket() is sock and sock in writable:
                self.client.loop_write()
            if self.client.socket() is not None:
                self.client.loop_misc()

    def _spool_queue(self) -> None:
        """Move submitted events into the spool (one fsync of the folder per batch)."""
        if not self._queue:
            return
        now = time.time()
        while self._queue:
            ev = self._queue.popleft()
            if ev.kind == EventKind.MODEL_CHANGED:
                self._model_changed(ev)
                continue
            if ev.kind == EventKind.SUMMARY:
                seq = self.spool.next_seq("state")
                dropped = self.spool.dropped + self.queue_dropped
                self.spool.put(self.topics.state,
                               state_payload(ev, seq, self.topics.device, self.room, dropped),
                               True, now)
            else:
                seq = self.spool.next_seq("events")
                self.spool.put(self.topics.events, event_payload(ev, seq, self.topics.device),
                               False, now)
        self.spool.commit(now, keep={m.order for m in self._inflight.values()})

    def _model_changed(self, ev: Event) -> None:
        """Another model, maybe other labels: the sensors are announced again (coalesced as
        a birth is) and the configs of labels it no longer has are removed."""
        self.labels = tuple(ev.extra.get("labels") or self.labels)
        self.model = f"emotion-edge ({ev.extra.get('model', 'model')})"
        if not self.discovery:
            return
        stale = self._announced - set(discovery_messages(self.topics, self.labels, self.room,
                                                         self.model))
        if self.connected:     # else the next connect's scan of the retained configs does it
            for topic in sorted(stale):
                self._announced.discard(topic)
                self.cleared += 1
                log.info("mqtt: removing the discovery config %s from Home Assistant (the "
                         "model has no such label)", topic)
                self.client.publish(topic, b"", qos=1, retain=True)
        self._announce_due = True

    def _send_pending(self) -> None:
        for item in self.spool.after(self._sent_upto, WINDOW - len(self._inflight)):
            try:
                payload = self.spool.payload(item)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("mqtt: spooled message %s unreadable (%s): skipped", item.path, exc)
                self.spool.remove(item)
                continue
            info = self.client.publish(item.topic, payload, qos=1, retain=item.retain)
            self._sent_upto = item.order
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:   # cannot happen with an unlimited queue
                continue
            self._inflight[info.mid] = item

    def _finish(self) -> None:
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        if self.connected:
            while self.connected and (self._inflight or self._unsent()) and \
                    time.monotonic() < deadline:
                self._send_pending()
                self._wait(self.client.socket(), time.monotonic())
            if self.connected:
                info = self.client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
                while self.connected and not info.is_published() and time.monotonic() < deadline:
                    self._wait(self.client.socket(), time.monotonic())
                self.client.disconnect()
                self.client.loop_write()
        self._drop_socket()
        spool = self.spool
        lost = spool.close()       # writes what only memory held, if the disk takes it now
        left = len(spool) - lost
        if left:
            log.info("mqtt: %d message(s) stay in the spool %s for the next start", left,
                     spool.folder)
        if lost:
            log.error("mqtt: %d unsent message(s) are lost: the spool's disk refused them "
                      "(%s); counted as dropped", lost, spool.folder)
        if not spool.counters_saved:
            log.error("mqtt: spool %s: the counters could not be saved (the disk refused "
                      "them): the next start may reuse sequence numbers and under-report "
                      "'dropped'", spool.folder)
        log.info("mqtt: %d message(s) acknowledged, %d failed connection attempt(s), %d lost "
                 "connection(s), %d dropped (spool bound, full queue or full disk), %d "
                 "incoming discarded for their size, %d Home Assistant birth message(s), "
                 "%d announcement(s)", self.published, self.connect_failures, self.disconnects,
                 spool.dropped + self.queue_dropped, self.oversized, self.births,
                 self.announcements)

    def _unsent(self) -> bool:
        return bool(self.spool.after(self._sent_upto, 1))

    # --- connection ------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        b = self.broker
        client = BoundedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=b.client_id,
                               protocol=mqtt.MQTTv311, clean_session=True,
                               max_packet=MAX_INCOMING, on_oversized=self._oversized)
        client.connect_timeout = CONNECT_TIMEOUT_S
        client.max_inflight_messages_set(WINDOW + 4)   # room for status and discovery
        client.will_set(self.topics.status, OFFLINE, qos=1, retain=True)
        if b.username:
            client.username_pw_set(b.username, b.password or None)
        if b.tls:
            client.tls_set(ca_certs=b.ca_file or None, certfile=b.cert_file or None,
                           keyfile=b.key_file or None, cert_reqs=ssl.CERT_REQUIRED,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _connect(self) -> None:
        b = self.broker
        try:
            self.client.connect(b.host, b.port, KEEPALIVE_S)
        except Exception as exc:      # DNS, refused, TLS, timeout: paho raises them as they are
            self._fail(describe(exc, b))
            self._drop_socket()
            return
        self._connecting_since = time.monotonic()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connecting_since = None
        if reason_code.is_failure:
            self._fail(f"the broker refused the connection: {reason_code} (check username "
                       f"and password_file)" if reason_code.value in (4, 5, 134, 135)
                       else f"the broker refused the connection: {reason_code}")
            return
        b = self.broker
        if self._failures or self._logged_error:
            log.info("mqtt: connected to %s:%d after %d failed attempt(s); %d message(s) to send",
                     b.host, b.port, self._failures, len(self.spool))
        else:
            log.info("mqtt: connected to %s:%d as %s", b.host, b.port, self.topics.device)
        self.connected = True
        self._failures = 0
        self._logged_error = None
        self.last_error = None
        client.publish(self.topics.status, ONLINE, qos=1, retain=True)
        # Our discovery configs as the broker holds them (retained): any that we do not
        # announce now (discovery = false, or a label the model no longer has) is removed
        # as Home Assistant documents it, with an empty retained config. QoS 0 both: nothing
        # here needs an acknowledgement from us, so a flood of them costs no PUBACKs.
        self._cleared_topics.clear()
        client.subscribe([(self.topics.discovery("+", "+"), 0)] +
                         ([(self.topics.ha_status, 0)] if self.discovery else []))
        if self.discovery:
            self._announce_due = False
            self._announce()

    def _announce(self) -> None:
        self._last_announce = time.monotonic()
        self.announcements += 1
        configs = discovery_messages(self.topics, self.labels, self.room, self.model)
        self._announced = set(configs)
        for topic, payload in configs.items():
            self.client.publish(topic, payload, qos=1, retain=True)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.topics.ha_status:
            # Home Assistant's birth message: it (re)started and wants the configs again.
            # Coalesced: the next announcement goes out when REANNOUNCE_MIN_S has passed since
            # the last one (in _step), however many births came in between.
            if msg.payload == ONLINE.encode():
                self.births += 1
                self._announce_due = True
            return
        if msg.payload and msg.topic not in self._announced and \
                msg.topic not in self._cleared_topics and \
                len(self._cleared_topics) < CLEAR_MAX and \
                mqtt.topic_matches_sub(self.topics.discovery("+", "+"), msg.topic):
            self._cleared_topics.add(msg.topic)
            self.cleared += 1
            n = len(self._cleared_topics)
            if n <= CLEAR_LOGGED:
                log.info("mqtt: removing the discovery config %s from Home Assistant (%s)%s",
                         printable(msg.topic, 200), "discovery = false" if not self.discovery
                         else "no longer announced", "; more are counted, not logged"
                         if n == CLEAR_LOGGED else "")
            client.publish(msg.topic, b"", qos=1, retain=True)

    def _oversized(self, topic: str, size: int) -> None:
        """BoundedClient discarded a message unread; one log line per LOG_INTERVAL_S."""
        self.oversized += 1
        now = time.monotonic()
        if now - self._oversized_logged_at >= LOG_INTERVAL_S:
            self._oversized_logged_at = now
            log.warning("mqtt: discarded %d incoming message(s) over %d bytes unread (this one: "
                        "%d bytes on %s); counted, next line in %g s at the earliest",
                        self.oversized - self._oversized_logged, MAX_INCOMING, size, topic,
                        LOG_INTERVAL_S)
            self._oversized_logged = self.oversized

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        item = self._inflight.pop(mid, None)
        if item is not None:
            self.spool.remove(item)
            self.published += 1

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._stop:              # our own DISCONNECT at shutdown
            self.connected = False
        elif self.connected:
            self._lost(str(reason_code))

    def _lost(self, why: str) -> None:
        was_connected = self.connected
        self.connected = False
        if not was_connected:        # closed before the CONNACK: a failed attempt, backed off
            self._fail(f"the broker closed the connection before accepting it ({why})")
            return
        self._connecting_since = None
        self.disconnects += 1
        log.warning("mqtt: lost the connection to %s:%d (%s); spooling and reconnecting",
                    self.broker.host, self.broker.port, why)
        self._logged_error = None
        self._schedule(1.0)

    def _fail(self, why: str) -> None:
        self.connected = False
        self._connecting_since = None
        self.connect_failures += 1
        self._failures += 1
        self.last_error = why
        if why != self._logged_error:
            self._logged_error = why
            log.error("mqtt: cannot connect to %s:%d: %s; retrying with backoff up to %g s "
                      "(monitoring goes on; messages wait in the spool)", self.broker.host,
                      self.broker.port, why, self.broker.reconnect_max_s)
        delay = min(self.broker.reconnect_max_s, 2.0 ** (self._failures - 1))
        self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        self._next_attempt = time.monotonic() + delay * random.uniform(0.75, 1.0)

    def _drop_socket(self) -> None:
        if self.client.socket() is not None:
            self.client._sock_close()   # paho has no public "close without DISCONNECT"

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"!")
        except (BlockingIOError, OSError):
            pass       # the pipe is full (the thread is already awake) or closed


def describe(exc: BaseException, b: BrokerSettings) -> str:
    """A connection failure as a short reason a person can act on."""
    if isinstance(exc, socket.gaierror):
        return f"unknown host {b.host!r} ({exc.strerror})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({exc.verify_message}; check ca_file)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running, on this port?)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"
