"""paho-mqtt's client with a bound on what it reads from the broker.

paho-mqtt 2.2 reads an incoming packet whole before it looks at it: it decodes the fixed
header's remaining length (up to 256 MB in MQTT 3.1.1), then calls ``socket.recv`` with all
of it still to come (CPython allocates that many bytes for each call) and appends every
chunk to one ``bytearray``. It has no option to limit this (``max_inflight_messages`` and
``max_queued_messages`` are about our own publishes), and MQTT 3.1.1 has no way to ask the
broker for smaller packets. So one retained 200 MB message on a topic we subscribe to
(``homeassistant/status``, or a state topic for ``fleet``) means 200 MB or more at every
connect.

``BoundedClient`` looks at the remaining length as soon as paho has decoded it, before the
first byte of the body is read: a PUBLISH larger than ``max_packet`` is read off the socket
in 64 kB pieces into one reused buffer and thrown away (only its topic is kept, for the log
line), counted, and paho goes on with the next packet as if it had never come. Any other
kind of packet that large is a broken broker: the connection is dropped. The bound relies on
paho's private ``_in_packet`` and ``_sock_recv``; paho-mqtt is pinned (pyproject.toml), and
tests/test_mqtt_bounds.py proves the bound against a real Mosquitto under a memory limit.
"""
from __future__ import annotations

import ssl
from collections.abc import Callable

import paho.mqtt.client as mqtt

from .topics import printable

MAX_INCOMING = 64 * 1024   # bytes: what we read is "online"/"offline" and ~400-byte states
_CHUNK = 64 * 1024
_CHUNKS_PER_CALL = 256     # 16 MB, then back to the caller's select loop
_PUBLISH = 0x30


class BoundedClient(mqtt.Client):
    """A ``paho.mqtt.client.Client`` that never buffers an incoming packet larger than
    ``max_packet`` bytes; ``on_oversized(topic, size)`` is called once per discarded one."""

    def __init__(self, *args, max_packet: int = MAX_INCOMING,
                 on_oversized: Callable[[str, int], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_packet = max_packet
        self.on_oversized = on_oversized
        self.oversized = 0            # incoming packets discarded for their size
        self._scratch = bytearray(_CHUNK)

    def _sock_recv(self, bufsize: int) -> bytes:
        packet = self._in_packet
        if packet["have_remaining"] and packet["remaining_length"] > self.max_packet:
            self._discard(packet)
            raise BlockingIOError   # paho returns MQTT_ERR_AGAIN: read on when readable
        return super()._sock_recv(bufsize)

    def _discard(self, packet) -> None:
        if packet["command"] & 0xF0 != _PUBLISH:
            raise ConnectionAbortedError(
                f"the broker sent a packet of {packet['remaining_length']} bytes "
                f"(type {packet['command'] >> 4}; limit {self.max_packet})")
        first = not packet.get("discarding")
        packet["discarding"] = True
        sock = self._sock
        if sock is None:
            raise ConnectionError("no socket")
        view = memoryview(self._scratch)
        for _ in range(_CHUNKS_PER_CALL):
            want = min(_CHUNK, packet["to_process"])
            if want <= 0:
                break
            try:
                n = sock.recv_into(view[:want])
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if n == 0:
                raise ConnectionResetError("the broker closed the connection")
            if first:
                first = False
                self.oversized += 1
                if self.on_oversized is not None:
                    self.on_oversized(_topic(view[:n]), packet["remaining_length"])
            packet["to_process"] -= n
            with self._msgtime_mutex:          # bytes did arrive: not a dead connection
                self._last_bytes_received = mqtt.time_func()
        if packet["to_process"] <= 0:          # all of it gone: the next packet starts
            self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [],
                               "remaining_mult": 1, "remaining_length": 0,
                               "packet": bytearray(b""), "to_process": 0, "pos": 0}


def _topic(head: memoryview) -> str:
    """The topic at the start of a PUBLISH's variable header, if the first piece holds it."""
    if len(head) < 2:
        return "?"
    n = int.from_bytes(head[:2], "big")
    return printable(bytes(head[2:2 + n]).decode("utf-8", "replace"), 120)
