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

A full disk: a message the disk refuses waits in memory, in its place in the order, and is
sent from there; ``close`` tries to write what is still unsent once more, and what the disk
still refuses is counted as dropped and logged with its number: never lost silently. So that
the counters stay true on a full disk, ``counters.json`` is written once at full size and
then updated in place (two checksummed slots, the newer one wins; an overwrite needs no new
blocks), and no ``.tmp`` file is ever left behind by a failed write.

One process per spool: a ``flock`` on the folder is held from the start to ``close``; a
second monitor on the same folder gets a one-line error naming the first's pid (from the
file ``lock``).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..errors import EmotionEdgeError
from ..paths import fsync_dir

log = logging.getLogger(__name__)

COUNTERS = "counters.json"
LOCK = "lock"
SLOT = 256               # bytes per counters slot; the file is two of them


@dataclass(frozen=True, slots=True)
class Spooled:
    order: int      # publishing order, unique in this spool
    created: float  # unix seconds, for the age bound
    size: int       # bytes on disk
    topic: str
    retain: bool
    path: Path | None        # None: held in memory only, because the disk refused it
    data: bytes | None = None  # the payload of a memory-only message


class SpoolError(EmotionEdgeError, OSError):
    """The spool folder cannot be made or is in use (one line for the person at the device)."""


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
        self.lost = 0             # of ``dropped``: unsent at close, the disk refused them
        self.counters_saved = True    # at close
        self._over = False        # in a "bound hit" episode (logged once)
        self._memory = 0          # items with path None (a counter: read from other threads)
        self._gen = 0             # counters slot generation
        self._lock_fd: int | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"mqtt spool {self.folder}: cannot create it "
                             f"({exc.strerror or exc})") from None
        self._lock()
        try:
            self._load()
        except OSError as exc:
            self._unlock()
            raise SpoolError(f"mqtt spool {self.folder}: cannot read it "
                             f"({exc.strerror or exc})") from None
        try:
            if not _is_slotted(self.folder / COUNTERS):
                self._create_counters()
        except OSError as exc:
            self._write_failed(exc)

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
            self._memory += 1
            self._try_save_counters()   # in place: the order and seq stay true on a full disk
        self._items.append(item)
        self._bytes += item.size
        self._newest[stream_of(topic)] = order
        return item

    def commit(self, now: float, keep: set[int] = frozenset()) -> None:
        try:
            fsync_dir(self.folder)
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
        self._memory -= item.path is None
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
            self._memory -= item.path is None
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
            self._try_save_counters()
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

    @property
    def in_memory(self) -> int:
        """Unsent messages the disk refused (held in memory only)."""
        return self._memory

    def close(self) -> int:
        """At shutdown: write the unsent messages that only memory holds, if the disk takes
        them now; count the rest as dropped (returned), save the counters, unlock."""
        lost = 0
        for item in list(self._items):
            if item.path is not None:
                continue
            path = self.folder / f"{item.order:016d}.msg"
            data = json.dumps({"topic": item.topic, "retain": item.retain,
                               "created": item.created, "payload": (item.data or b"").decode()},
                              ensure_ascii=False).encode()
            try:
                _write_atomic(path, data)
            except OSError:
                lost += 1
        if lost:
            self.lost += lost
            self.dropped += lost
        try:
            fsync_dir(self.folder)
        except OSError:
            pass
        self.counters_saved = self._try_save_counters()
        self._unlock()
        return lost

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
            saved = self._read_counters()
            for k in self.counters:
                self.counters[k] = max(self.counters[k], int(saved.get(k, 0)))
            self.dropped = int(saved.get("dropped", 0))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
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
        """Update the older of counters.json's two slots in place (no new disk blocks);
        the file is made whole first if it is missing or of the old format."""
        path = self.folder / COUNTERS
        if not _is_slotted(path):
            self._create_counters()
            return
        self._gen += 1
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.pwrite(fd, self._slot(), (self._gen % 2) * SLOT)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _try_save_counters(self) -> bool:
        try:
            self._save_counters()
            return True
        except OSError as exc:
            self._write_failed(exc)
            return False

    def _create_counters(self) -> None:
        self._gen += 1
        slot = self._slot()
        _write_atomic(self.folder / COUNTERS, slot + slot)

    def _slot(self) -> bytes:
        body = json.dumps({"gen": self._gen, **self.counters, "dropped": self.dropped},
                          separators=(",", ":"))
        line = f"{zlib.crc32(body.encode()):08x} {body}".encode()
        if len(line) > SLOT - 1:
            raise OSError(f"{COUNTERS}: the counters outgrew their slot")
        return line.ljust(SLOT - 1) + b"\n"

    def _read_counters(self) -> dict:
        best = read_counters(self.folder)
        self._gen = int(best.get("gen", 0))
        return best

    def _lock(self) -> None:
        """flock the folder itself (needs no new file, so a full disk cannot stop it); the
        file ``lock`` only tells a second monitor the first one's pid, when it can be written."""
        try:
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise SpoolError(f"mqtt spool {self.folder}: cannot open it "
                             f"({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                other = (self.folder / LOCK).read_text(errors="replace").strip()[:20] or "?"
            except OSError:
                other = "?"
            raise SpoolError(f"mqtt spool {self.folder} is in use by another monitor (pid "
                             f"{other}); give each its own --log-dir or [mqtt] spool_dir") \
                from None
        self._lock_fd = fd
        try:
            (self.folder / LOCK).write_text(f"{os.getpid()}\n")
        except OSError:
            pass

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)     # closing the descriptor releases the flock
            self._lock_fd = None

    def _write_failed(self, exc: OSError) -> None:
        self.write_errors += 1
        if self.write_errors == 1:
            log.warning("mqtt: spool %s: cannot write (%s); messages wait in memory",
                        self.folder, exc.strerror or exc)


def stream_of(topic: str) -> str:
    return "state" if topic.endswith("/state") else "events"


def read_counters(folder: Path) -> dict:
    """A spool's counters: the newer whole slot of ``counters.json``, or the file of the old
    format (one JSON object). Raises ValueError if neither slot is whole."""
    data = (Path(folder) / COUNTERS).read_bytes()
    if len(data) != 2 * SLOT:
        return json.loads(data)
    best = None
    for i in range(2):
        line = data[i * SLOT:(i + 1) * SLOT].decode("utf-8", "replace").strip()
        crc, _, body = line.partition(" ")
        if crc == f"{zlib.crc32(body.encode()):08x}":
            rec = json.loads(body)
            if best is None or rec["gen"] > best["gen"]:
                best = rec
    if best is None:
        raise ValueError("neither copy is whole")
    return best


def _is_slotted(path: Path) -> bool:
    try:
        return path.stat().st_size == 2 * SLOT
    except FileNotFoundError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    """Write, fsync, rename; a write that fails (a full disk) leaves no ``.tmp`` behind."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
