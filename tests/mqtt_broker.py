"""A real Mosquitto for the MQTT tests: started by the test on a free port of 127.0.0.1 with a
config file it writes, so a test can kill it, restart it on the same port, or add a password
file or TLS. Never listens on any other address.

Also a small paho subscriber that records every message with its arrival time.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, folder: Path, *, users: dict[str, str] | None = None,
                 tls: dict[str, Path] | None = None, port: int | None = None,
                 persistence: bool = True):
        if not Path(MOSQUITTO).exists():
            raise RuntimeError("mosquitto is not installed: ./install.sh --local --dev installs it")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        # As root, mosquitto would switch to the "mosquitto" user, who cannot write here.
        lines = [f"user {pwd.getpwuid(os.geteuid()).pw_name}",
                 f"listener {self.port} 127.0.0.1",
                 f"allow_anonymous {'false' if users else 'true'}",
                 f"persistence {'true' if persistence else 'false'}",
                 f"persistence_location {folder}/", "autosave_interval 1",
                 f"log_dest file {folder}/mosquitto.log", "log_type all",
                 "max_queued_messages 100000"]
        if users:
            pw = folder / "passwd"
            pw.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True,
                               capture_output=True)
            lines.append(f"password_file {pw}")
        if tls:
            lines += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
            if tls.get("require_certificate"):
                lines.append("require_certificate true")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}"
                                   f"{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    t: float            # time.time() at arrival

    def json(self):
        return json.loads(self.payload)


@dataclass
class Subscriber:
    """A paho client recording every message on ``topics``. ``persistent`` keeps a broker
    session (clean_session false) so nothing is missed across its own reconnects."""
    port: int
    topics: list[str]
    client_id: str = "test-subscriber"
    persistent: bool = False
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self):
        self.lock = threading.Lock()
        self.connected = threading.Event()
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                      clean_session=not self.persistent)
        if self.username:
            c.username_pw_set(self.username, self.password)
        if self.tls_ca:
            c.tls_set(ca_certs=str(self.tls_ca))
        c.reconnect_delay_set(0.1, 0.5)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_disconnect = lambda *a: self.connected.clear()

    def _on_connect(self, client, userdata, flags, rc, props):
        if not rc.is_failure:
            for t in self.topics:
                client.subscribe(t, qos=1)
            self.connected.set()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append(Received(msg.topic, msg.payload, msg.retain, time.time()))

    def start(self) -> "Subscriber":
        self.client.connect_async("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(10), "the test subscriber could not connect"
        time.sleep(0.2)       # let the SUBACKs arrive
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, topic: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if mqtt.topic_matches_sub(topic, m.topic)]

    def wait_for(self, predicate, timeout: float, what: str = "messages"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = predicate()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; got "
                             f"{[(m.topic, m.payload[:80]) for m in self.messages][-20:]}")


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.kill()


@pytest.fixture
def memory_broker(tmp_path):
    """Without persistence: a test's 200 MB retained message is not saved to disk every
    second (which keeps Mosquitto from answering for seconds)."""
    b = Broker(tmp_path / "broker", persistence=False).start()
    yield b
    b.kill()


def openssl_ca(folder: Path, name: str = "ca") -> tuple[Path, Path]:
    """A throwaway CA: (certificate, key)."""
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN=emotion-edge test {name}"],
                   check=True, capture_output=True)
    return cert, key


def openssl_cert(folder: Path, name: str, ca: tuple[Path, Path], *, server: bool) -> tuple[Path, Path]:
    """A certificate signed by ``ca``: for the broker (SAN IP 127.0.0.1) or a client."""
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    ext = folder / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" if server
                   else "extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", f"/CN={name}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey",
                    str(ca[1]), "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile",
                    str(ext)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def publish_raw(port: int, topic: str, size: int, *, retain: bool = True,
                fill: bytes = b"x", client_id: str = "raw-publisher") -> None:
    """Publish one message of ``size`` bytes with QoS 1 over a plain socket, streamed in 1 MB
    pieces (a 200 MB message costs this process 1 MB), and wait for the broker's PUBACK, so
    a retained one is stored when this returns. MQTT 3.1.1 written out by hand: paho would
    build the whole packet in memory."""
    cid = client_id.encode()
    connect = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    t = topic.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"\x10" + _remaining_length(len(connect)) + connect)
        assert s.recv(4) == b"\x20\x02\x00\x00", "the broker refused the raw CONNECT"
        head = len(t).to_bytes(2, "big") + t + b"\x00\x01"          # topic, packet id 1
        s.sendall(bytes([0x32 | int(retain)]) + _remaining_length(len(head) + size) + head)
        chunk = (fill * (1 << 20))[:1 << 20]
        left = size
        while left:
            piece = chunk[:min(left, len(chunk))]
            s.sendall(piece)
            left -= len(piece)
        ack = b""
        while len(ack) < 4:
            got = s.recv(4 - len(ack))
            assert got, "the broker closed the connection instead of a PUBACK"
            ack += got
        assert ack == b"\x40\x02\x00\x01", ack
        s.sendall(b"\xe0\x00")
