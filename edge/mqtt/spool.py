"""The on-disk spool: every state and event message waits here until the broker acknowledged
it, so a broker that is away, a restart of the monitor or a power cut loses nothing.

One file per message, ``<order>.msg`` (a 16-digit counter, so names sort in publishing
order), written as a temporary file, fsynced and renamed, then the folder fsynced: after a
crash a message is either whole or absent, never half there. Sequence numbers continue
across restarts: each message carries its own, and when the broker acknowledged the newest
message of a stream its file becomes ``state.last`` / ``events.last`` instead of being
deleted, so the highest number is never forgotten (a rename a power cut undoes only sends
that message again, a duplicate its ``seq`` gives away). Bounded by total size and by age:
past either bound the oldest messages are deleted, counted (``dropped``, kept in
``counters.json``) and logged once per episode; never a crash, never an unbounded folder.
Only the publisher thread touches it.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

COUNTERS = "counters.json"


@dataclass(frozen=True, slots=True)
class Spooled:
    order: int      # publishing order, unique in this spool
    created: float  # unix seconds, for the age bound
    size: int       # bytes on disk
    topic: str
    retain: bool
    path: Path | None        # None: held in memory only, because the disk refused it
    data: bytes | None = None  # the payload of a memory-only message


class SpoolError(OSError):
    """The spool folder cannot be made (one line for the person at the device)."""


class Spool:
    def __init__(self, folder: str | Path, max_bytes: int, max_age_s: float):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._items: deque[Spooled] = deque()
        self._bytes = 0
        self._newest: dict[str, int] = {}   # stream -> order of its newest spooled message
        self.counters = {"order": 0, "state": 0, "events": 0}
        self.dropped = 0          # deleted unsent by a bound (persisted)
        self.unreadable = 0       # files found damaged at start (moved aside, counted)
        self.write_errors = 0
        self._over = False        # in a "bound hit" episode (logged once)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"mqtt spool {self.folder}: cannot create it "
                             f"({exc.strerror or exc})") from None
        try:
            self._load()
        except OSError as exc:
            raise SpoolError(f"mqtt spool {self.folder}: cannot read it "
                             f"({exc.strerror or exc})") from None

    # --- what the publisher uses -----------------------------------------------------------
    def next_seq(self, stream: str) -> int:
        """The next sequence number of ``stream`` ("state" or "events"), 1, 2, 3 ..."""
        self.counters[stream] += 1
        return self.counters[stream]

    def put(self, topic: str, payload: str, retain: bool, now: float) -> Spooled:
        """Write one message durably; ``commit`` after a batch makes the batch's renames and
        counters durable. If the disk refuses (full, read-only), the message is kept in
        memory instead, in its place in the order, and the fault counted and logged once."""
        order = self.counters["order"] + 1
        data = json.dumps({"topic": topic, "retain": retain, "created": now,
                           "payload": payload}, ensure_ascii=False).encode()
        path = self.folder / f"{order:016d}.msg"
        self.counters["order"] = order
        try:
            _write_atomic(path, data)
            item = Spooled(order, now, len(data), topic, retain, path)
        except OSError as exc:
            self._write_failed(exc)
            item = Spooled(order, now, len(data), topic, retain, None, payload.encode())
        self._items.append(item)
        self._bytes += item.size
        self._newest[stream_of(topic)] = order
        return item

    def commit(self, now: float, keep: set[int] = frozenset()) -> None:
        try:
            _fsync_dir(self.folder)
        except OSError as exc:
            self._write_failed(exc)
        self.enforce_bounds(now, keep)

    def payload(self, item: Spooled) -> bytes:
        if item.path is None:
            return item.data or b""
        return json.loads(item.path.read_bytes())["payload"].encode()

    def remove(self, item: Spooled) -> None:
        """The broker has it (PUBACK): forget it."""
        try:
            self._items.remove(item)
        except ValueError:
            return       # already dropped by a bound
        self._bytes -= item.size
        stream = stream_of(item.topic)
        if self._newest.get(stream) != item.order:
            if item.path is not None:
                _unlink(item.path)
            return
        try:             # the stream's newest: its file keeps the sequence number
            if item.path is None:
                self._save_counters()
            else:
                os.replace(item.path, self.folder / f"{stream}.last")
        except OSError as exc:
            self._write_failed(exc)

    def enforce_bounds(self, now: float | None = None, keep: set[int] = frozenset()) -> int:
        """Delete the oldest messages beyond ``max_bytes`` or older than ``max_age_s``
        (except those in ``keep``: handed to the client, waiting for their PUBACK)."""
        now = time.time() if now is None else now
        dropped, i, items = 0, 0, self._items
        while i < len(items):      # in-flight messages are at the front: i stays small
            item = items[i]
            too_big = self._bytes > self.max_bytes
            too_old = now - item.created > self.max_age_s
            if not (too_big or too_old):
                break
            if item.order in keep:
                i += 1
                continue
            del items[i]
            self._bytes -= item.size
            if item.path is not None:
                _unlink(item.path)
            dropped += 1
            if not self._over:
                self._over = True
                why = f"over {self.max_bytes} bytes" if too_big else \
                    f"older than {self.max_age_s:g} s"
                log.warning("mqtt: spool %s %s while the broker is away: dropping the oldest "
                            "messages (counted as 'dropped')", self.folder, why)
        if dropped:
            self.dropped += dropped
            try:
                self._save_counters()
            except OSError as exc:
                self._write_failed(exc)
        elif self._over and self._bytes <= self.max_bytes:
            self._over = False
        return dropped

    def after(self, order: int, limit: int) -> list[Spooled]:
        """Up to ``limit`` messages after ``order``, oldest first (scans past the few in
        flight, never the whole spool)."""
        out: list[Spooled] = []
        for item in self._items:
            if len(out) >= limit:
                break
            if item.order > order:
                out.append(item)
        return out

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    # --- internals ---------------------------------------------------------------------------
    def _load(self) -> None:
        """Pick up what an earlier run left: counters, then every whole message in order."""
        try:
            saved = json.loads((self.folder / COUNTERS).read_text())
            for k in self.counters:
                self.counters[k] = max(self.counters[k], int(saved.get(k, 0)))
            self.dropped = int(saved.get("dropped", 0))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("mqtt: spool %s: %s unreadable (%s); sequence numbers restart from what "
                        "the spooled messages show", self.folder, COUNTERS, exc)
        for stream in ("state", "events"):
            try:
                rec = json.loads((self.folder / f"{stream}.last").read_bytes())
                self.counters[stream] = max(self.counters[stream],
                                            int(json.loads(rec["payload"])["seq"]))
            except FileNotFoundError:
                pass
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("mqtt: spool %s: %s.last unreadable (%s)", self.folder, stream, exc)
        for path in sorted(self.folder.iterdir()):
            if path.name.endswith(".tmp"):
                _unlink(path)     # a write a crash interrupted: never renamed, never counted
                continue
            if not path.name.endswith(".msg"):
                continue
            try:
                data = path.read_bytes()
                rec = json.loads(data)
                order = int(path.name[:-4])
                item = Spooled(order, float(rec["created"]), len(data), str(rec["topic"]),
                               bool(rec["retain"]), path)
                seq = json.loads(rec["payload"]).get("seq")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self.unreadable += 1
                log.warning("mqtt: spool %s: %s is damaged (%s); moved aside as .bad",
                            self.folder, path.name, exc)
                try:
                    path.rename(path.with_suffix(".bad"))
                except OSError:
                    pass
                continue
            self._items.append(item)
            self._bytes += item.size
            self.counters["order"] = max(self.counters["order"], order)
            stream = stream_of(item.topic)
            self._newest[stream] = order
            if isinstance(seq, int):
                self.counters[stream] = max(self.counters[stream], seq)
        if self._items:
            log.info("mqtt: spool %s: %d message(s) from an earlier run wait for the broker",
                     self.folder, len(self._items))

    def _save_counters(self) -> None:
        _write_atomic(self.folder / COUNTERS,
                      json.dumps({**self.counters, "dropped": self.dropped}).encode())

    def _write_failed(self, exc: OSError) -> None:
        self.write_errors += 1
        if self.write_errors == 1:
            log.warning("mqtt: spool %s: cannot write (%s); messages wait in memory",
                        self.folder, exc.strerror or exc)


def stream_of(topic: str) -> str:
    return "state" if topic.endswith("/state") else "events"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
