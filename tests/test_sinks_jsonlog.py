"""The JSON-lines event log: format, rotation, faults, crash safety."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from edge.events import SCHEMA_VERSION, Event
from edge.sinks.jsonlog import JsonLogConfig, JsonLogSink
from edge.eventlog import FollowStats, follow

ROOT = Path(__file__).resolve().parents[1]
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
T0 = 1_790_000_000.0   # a fixed wall-clock time: 2026-09-21T...Z


def ev(seq: int, kind: str = "emotion_changed") -> Event:
    return Event(kind, T0 + seq * 0.1, track_id=seq % 5, emotion="happy", score=0.5,
                 box=(1, 2, 3, 4), extra={"previous": "sad", "seq": seq})


def lines_of(path: Path) -> list[str]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} ends in a partial line"
    return data.decode().splitlines()


def sink_at(tmp_path: Path, **kw) -> JsonLogSink:
    kw.setdefault("flush_interval", 60.0)   # flush by hand unless a test wants the timer
    return JsonLogSink(JsonLogConfig(dir=str(tmp_path / "logs"), **kw))


def test_record_format(tmp_path):
    sink = sink_at(tmp_path)
    events = [
        Event("started", T0, extra={"version": "0.1.0"}),
        Event("face_appeared", T0 + 1, track_id=3, emotion="happy", score=0.81649, box=(10, 20, 30, 40)),
        Event("emotion_changed", T0 + 2, track_id=3, emotion="sad", score=0.6, extra={"previous": "happy"}),
        Event("face_left", T0 + 3, track_id=3, extra={"duration_s": 2.0}),
        Event("summary", T0 + 60, extra={"interval_s": 60, "faces_seen": 1, "emotion_share":
                                         {"happy": 0.5, "sad": 0.5}, "dominant": "happy",
                                         "frames": 900, "fps": 15.0}),
    ]
    sink.handle(events)
    sink.close()
    lines = lines_of(tmp_path / "logs" / "events.jsonl")
    assert len(lines) == len(events)
    recs = [json.loads(line) for line in lines]
    for rec, e in zip(recs, events):
        assert list(rec)[:3] == ["v", "ts", "event"]
        assert rec["v"] == SCHEMA_VERSION
        assert ISO_Z.match(rec["ts"]), rec["ts"]
        assert rec["event"] == e.kind
        assert None not in rec.values()
    assert recs[0]["ts"] == "2026-09-21T14:13:20.000Z"
    assert recs[1] == {"v": 1, "ts": "2026-09-21T14:13:21.000Z", "event": "face_appeared",
                       "track": 3, "emotion": "happy", "score": 0.816, "box": [10, 20, 30, 40]}
    assert "track" not in recs[0] and "emotion" not in recs[3]
    assert recs[2]["previous"] == "happy" and recs[3]["duration_s"] == 2.0
    assert recs[4]["emotion_share"] == {"happy": 0.5, "sad": 0.5}
    assert sink.lines_written == 5 and sink.write_errors == 0 and sink.dropped_lines == 0


def test_written_by_the_timer_without_flush_calls(tmp_path):
    sink = sink_at(tmp_path, flush_interval=0.05)
    sink.handle([ev(0), ev(1)])
    path = tmp_path / "logs" / "events.jsonl"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not path.exists() or len(lines_of(path)) < 2):
        time.sleep(0.02)
    assert len(lines_of(path)) == 2      # nobody called flush(): the flusher thread did
    sink.close()


def test_rotation_keeps_keep_files_of_whole_lines(tmp_path):
    sink = sink_at(tmp_path, max_bytes=400, keep=3)
    for i in range(200):
        sink.handle([ev(i)])
        if i % 3 == 0:
            sink.flush()
    sink.close()
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [
        "events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"]
    seqs = []
    for name in ["events.jsonl.3", "events.jsonl.2", "events.jsonl.1", "events.jsonl"]:
        path = logs / name
        assert path.stat().st_size <= 400
        lines = lines_of(path)
        assert lines
        seqs += [json.loads(line)["seq"] for line in lines]
    # The newest lines, in order, none twice: the oldest files were dropped whole.
    assert seqs == list(range(200 - len(seqs), 200))
    assert len(seqs) > 4


def test_reader_during_rotation_under_load_sees_every_line_once_in_order(tmp_path):
    total = 3000
    sink = sink_at(tmp_path, max_bytes=4096, keep=500, flush_interval=0.01)
    path = tmp_path / "logs" / "events.jsonl"
    sink.handle([ev(0)])
    sink.flush()
    got: list[str] = []
    first = threading.Event()
    stats = FollowStats()

    def reader():   # polls slowly on purpose: several rotations happen between two looks
        for line in follow(path, from_start=True, poll=0.05, max_lines=total,
                           idle_timeout=30, stats=stats):
            got.append(line)
            first.set()

    t = threading.Thread(target=reader)
    t.start()
    assert first.wait(10)
    for i in range(1, total):
        sink.handle([ev(i)])
        if i % 7 == 0:
            sink.flush()          # many small writes, rotating every ~35 lines
    sink.close()
    t.join(60)
    assert not t.is_alive()
    assert len(got) == total
    seqs = [json.loads(line)["seq"] for line in got]   # every line whole JSON
    assert seqs == list(range(total))
    assert stats.files > 50 and stats.fell_behind == 0   # it really followed the rotations


def _fault_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "edge.sinks.jsonlog" and r.levelno == logging.WARNING]


def test_disk_full_queues_counts_warns_once_and_recovers(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.sinks.jsonlog")
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "events.jsonl"
    path.symlink_to("/dev/full")              # every write fails with ENOSPC
    sink = sink_at(tmp_path)
    for i in range(5):
        sink.handle([ev(i)])
        sink.flush()                          # no exception into the caller
    assert sink.write_errors == 5
    assert sink.queued_lines == 5 and sink.dropped_lines == 0 and not sink.healthy
    assert len(_fault_warnings(caplog)) == 1  # one per episode, not per line or attempt
    assert "No space left on device" in _fault_warnings(caplog)[0]

    path.unlink()                             # space again: a fresh file takes its place
    sink.handle([ev(5)])
    sink.flush()
    assert sink.healthy and sink.queued_lines == 0
    assert [json.loads(x)["seq"] for x in lines_of(path)] == [0, 1, 2, 3, 4, 5]
    sink.close()
    assert len(_fault_warnings(caplog)) == 1


def test_unwritable_directory_then_recovery_and_bounded_queue(tmp_path):
    blocker = tmp_path / "notadir"
    blocker.write_text("a regular file where the log directory should be")
    cfg = JsonLogConfig(dir=str(blocker / "logs"), flush_interval=60, queue_lines=10)
    sink = JsonLogSink(cfg)
    for i in range(25):
        sink.handle([ev(i)])
        sink.flush()
    assert sink.write_errors == 25
    assert sink.queued_lines == 10 and sink.dropped_lines == 15   # oldest dropped, counted
    blocker.unlink()
    sink.flush()
    sink.close()
    seqs = [json.loads(x)["seq"] for x in lines_of(blocker / "logs" / "events.jsonl")]
    assert seqs == list(range(15, 25))


def test_file_deleted_while_running_goes_on_in_a_new_file(tmp_path):
    sink = sink_at(tmp_path)
    path = tmp_path / "logs" / "events.jsonl"
    sink.handle([ev(0)])
    sink.flush()
    path.unlink()
    sink.handle([ev(1)])
    sink.flush()
    sink.close()
    assert [json.loads(x)["seq"] for x in lines_of(path)] == [1]
    assert sink.write_errors == 0


def test_reopen_after_an_outside_rotation(tmp_path):
    sink = sink_at(tmp_path, max_bytes=0)
    path = tmp_path / "logs" / "events.jsonl"
    sink.handle([ev(0)])
    sink.flush()
    path.rename(path.with_name("events.jsonl.1"))   # what logrotate does, then SIGHUP
    sink.reopen()
    sink.handle([ev(1)])
    sink.close()
    assert [json.loads(x)["seq"] for x in lines_of(path.with_name("events.jsonl.1"))] == [0]
    assert [json.loads(x)["seq"] for x in lines_of(path)] == [1]



def test_reopen_makes_the_new_file_without_waiting_for_an_event(tmp_path):
    # A quiet room may log nothing for minutes: the rotated-away file must be let go, and
    # the new one made, by the flusher alone.
    sink = sink_at(tmp_path, max_bytes=0, flush_interval=0.05)
    path = tmp_path / "logs" / "events.jsonl"
    sink.handle([ev(0)])
    sink.flush()
    moved = path.with_name("events.jsonl.1")
    path.rename(moved)
    sink.reopen()
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert path.exists() and path.read_bytes() == b""
        held = [os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()]
        assert str(moved) not in held
    finally:
        sink.close()
    assert [json.loads(x)["seq"] for x in lines_of(moved)] == [0]


CRASH_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from edge.events import Event
    from edge.sinks.jsonlog import JsonLogConfig, JsonLogSink
    sink = JsonLogSink(JsonLogConfig(dir={logs!r}, flush_interval=0.2))
    for i in range(500):
        sink.handle([Event("face_appeared", 1.79e9 + i, track_id=i, emotion="happy", score=0.5)])
    print("handed", flush=True)
    time.sleep(60)     # never flushes or closes by itself
""")


def test_sigkill_after_flush_interval_loses_nothing(tmp_path):
    logs = tmp_path / "logs"
    script = CRASH_SCRIPT.format(root=str(ROOT), logs=str(logs))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "handed"
        time.sleep(0.8)                  # > flush_interval (0.2 s)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    lines = lines_of(logs / "events.jsonl")
    assert [json.loads(x)["track"] for x in lines] == list(range(500))


@pytest.mark.parametrize("kw, field", [
    ({"max_bytes": -1}, "max_bytes"), ({"keep": -2}, "keep"), ({"flush_interval": 0}, "flush_interval"),
    ({"file": "a/b.jsonl"}, "file"), ({"queue_lines": 0}, "queue_lines"), ({"dir": ""}, "dir"),
])
def test_config_errors_name_the_field(kw, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        JsonLogConfig(**kw)


def test_close_is_idempotent_and_handle_after_close_is_counted(tmp_path):
    sink = sink_at(tmp_path)
    sink.handle([ev(0)])
    sink.close()
    sink.close()
    sink.handle([ev(1)])
    assert sink.dropped_lines == 1
    assert len(lines_of(tmp_path / "logs" / "events.jsonl")) == 1
