"""``emotion-edge tail``: following across rotation and truncation, readable output, the summary."""
from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

from edge.events import Event
from edge.eventlog import format_record
from edge.sinks.jsonlog import JsonLogConfig, JsonLogSink
from edge.eventlog import FollowStats, LiveSummary, follow
from edge.tail import main

T0 = 1_790_000_000.0


def rec(kind: str, t: float, **kw) -> str:
    extra = kw.pop("extra", {})
    return json.dumps(Event(kind, T0 + t, extra=extra, **kw).to_record())


def append(path: Path, *lines: str) -> None:
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def rotate(path: Path, keep: int = 9) -> None:
    """What JsonLogSink (or logrotate) does: path -> .1 -> .2 ..."""
    for i in range(keep - 1, 0, -1):
        old = path.with_name(f"{path.name}.{i}")
        if old.exists():
            old.rename(path.with_name(f"{path.name}.{i + 1}"))
    path.rename(path.with_name(f"{path.name}.1"))


def test_follow_finishes_the_old_file_then_continues_across_several_rotations(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, "a1", "a2")
    stats = FollowStats()
    it = follow(path, from_start=True, poll=0.001, stop_at_eof=True, stats=stats)
    assert [next(it), next(it)] == ["a1", "a2"]
    append(path, "a3")                    # written just before the rotation
    rotate(path)
    append(path, "b1")
    rotate(path)                          # a second rotation before the reader looks again
    append(path, "c1", "c2")
    assert list(it) == ["a3", "b1", "c1", "c2"]
    assert stats.files == 3 and stats.fell_behind == 0


def test_follow_waits_for_new_lines_and_for_the_new_file(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, "old")                   # before we start: not shown without --from-start
    got: list[str] = []
    stats = FollowStats()
    t = threading.Thread(target=lambda: got.extend(
        follow(path, poll=0.005, max_lines=3, idle_timeout=10, stats=stats)))
    t.start()
    deadline = time.monotonic() + 10
    while stats.files == 0 and time.monotonic() < deadline:
        time.sleep(0.005)                 # until the reader has opened the file
    append(path, "n1")
    time.sleep(0.05)
    rotate(path)
    time.sleep(0.05)                      # a moment with no events.jsonl at all
    append(path, "n2", "n3")
    t.join(15)
    assert got == ["n1", "n2", "n3"]


def test_follow_after_truncation_starts_at_the_top(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, "x1", "x2")
    stats = FollowStats()
    it = follow(path, from_start=True, poll=0.001, stop_at_eof=True, stats=stats)
    assert [next(it), next(it)] == ["x1", "x2"]
    os.truncate(path, 0)                  # copytruncate
    append(path, "y1")
    assert list(it) == ["y1"] and stats.truncations == 1


def test_follow_skips_ahead_when_its_file_was_deleted_by_rotation(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, "a1")
    stats = FollowStats()
    it = follow(path, from_start=True, poll=0.001, stop_at_eof=True, stats=stats)
    assert next(it) == "a1"
    rotate(path)
    path.with_name("events.jsonl.1").unlink()   # keep = 0: the reader fell behind
    append(path, "b1")
    assert list(it) == ["b1"] and stats.fell_behind == 1


def test_follow_keeps_lines_appended_just_before_a_rotation_while_it_looked(tmp_path, monkeypatch):
    # The writer appends and rotates between the reader's last empty read and its look for
    # the next file (its stat of the live name): the old file's last line is still read.
    path = tmp_path / "events.jsonl"
    append(path, "a1")
    it = follow(path, from_start=True, poll=0.001, stop_at_eof=True)
    assert next(it) == "a1"
    real_stat, acted = os.stat, []

    def stat_while_the_writer_acts(p, *args, **kwargs):
        if not acted and Path(p) == path:
            acted.append(True)
            append(path, "a2")
            rotate(path)
            append(path, "b1")
        return real_stat(p, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat_while_the_writer_acts)
    assert list(it) == ["a2", "b1"] and acted


def test_chain_finds_every_file_while_many_rotations_happen_during_one_scan(tmp_path, monkeypatch):
    import edge.eventlog.files as files
    path = tmp_path / "events.jsonl"
    for name in ["f0", "f1", "f2", "f3"]:     # f0 oldest, now events.jsonl.3 ... f3 live
        if path.exists():
            rotate(path, keep=50)
        append(path, name)
    real_rotated, storms = files.rotated, [0]

    def rotated_with_a_storm(p, index):
        if index == 2 and storms[0] < 6:      # the writer rotates 6 times mid-scan
            for _ in range(6):
                storms[0] += 1
                rotate(path, keep=50)
                append(path, f"g{storms[0]}")
        return real_rotated(p, index)

    monkeypatch.setattr(files, "rotated", rotated_with_a_storm)
    found = files.chain(path)
    contents = [real_rotated(path, i).read_text().strip() for i, _ in found]
    # Every file that existed when the scan began is found, oldest first; f0 had moved to .9.
    assert contents[:4] == ["f0", "f1", "f2", "f3"]
    assert contents == sorted(contents, key=lambda c: (c[0] == "g", int(c[1:])))


def test_follow_a_partial_last_line_waits_for_its_end(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"half": ')
    out: list[str] = []
    it = follow(path, from_start=True, poll=0.001, max_lines=1, idle_timeout=5)
    t = threading.Thread(target=lambda: out.extend(it))
    t.start()
    time.sleep(0.05)
    with open(path, "ab") as f:
        f.write(b'1}\n')
    t.join(10)
    assert out == ['{"half": 1}']


def test_tail_command_survives_the_sinks_own_rotation(tmp_path):
    n = 200
    sink = JsonLogSink(JsonLogConfig(dir=str(tmp_path), max_bytes=300, keep=100, flush_interval=60))
    sink.handle([Event("face_appeared", T0, track_id=0, emotion="happy", score=0.5)])
    sink.flush()
    out = io.StringIO()
    cmd = threading.Thread(target=main, args=(
        [str(tmp_path / "events.jsonl"), "--from-start", "--json", "-n", str(n), "--poll", "0.002"],
        out, io.StringIO()))
    cmd.start()
    deadline = time.monotonic() + 10
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.005)                 # the reader has opened the first file
    for i in range(1, n):
        sink.handle([Event("face_appeared", T0 + i, track_id=i, emotion="happy", score=0.5)])
        sink.flush()                      # rotates about every 3 lines
    sink.close()
    cmd.join(300)                          # an upper bound for a hang, not a speed target
    assert not cmd.is_alive()
    assert len(list(tmp_path.glob("events.jsonl.*"))) > 50
    assert [json.loads(x)["track"] for x in out.getvalue().splitlines()] == list(range(n))


def test_main_prints_readable_lines_skips_malformed_and_summarises(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path,
           rec("started", 0, extra={"version": "0.1.0"}),
           rec("face_appeared", 1, track_id=3, emotion="happy", score=0.82, box=(1, 2, 3, 4)),
           "{not json",
           rec("emotion_changed", 4, track_id=3, emotion="sad", score=0.7, extra={"previous": "happy"}),
           rec("face_left", 5, track_id=3, extra={"duration_s": 4.0}),
           '["a list, not a record"]')
    out, err = io.StringIO(), io.StringIO()
    assert main([str(path), "--from-start", "--until-eof"], out=out, err=err) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(" started  version=0.1.0")
    assert lines[1].endswith(" face #3 appeared  happy 0.82")
    assert lines[2].endswith(" face #3 happy -> sad 0.70")
    assert lines[3].endswith(" face #3 left after 4.0 s")
    assert lines[4] == ("-- summary: 1 face seen, 0 in view | happy 75%  sad 25% | "
                        "2 malformed line(s) skipped")
    assert len(lines) == 5
    assert err.getvalue().count("skipped a malformed line") == 2


def test_main_max_lines_stops_early(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, *(rec("face_appeared", i, track_id=i, emotion="fear") for i in range(10)))
    out = io.StringIO()
    assert main([str(path), "--from-start", "-n", "3", "--json", "--summary-every", "0"],
                out=out, err=io.StringIO()) == 0
    assert out.getvalue().splitlines() == path.read_text().splitlines()[:3]


def test_summary_from_summary_records_when_there_are_no_face_events():
    s = LiveSummary()
    s.add(json.loads(rec("summary", 60, extra={"interval_s": 60, "faces_seen": 2,
                                               "emotion_share": {"neutral": 0.6, "happy": 0.4},
                                               "dominant": "neutral", "frames": 900, "fps": 15.0})))
    assert s.share() == {"neutral": 0.6, "happy": 0.4}
    assert s.line().endswith("| neutral 60%  happy 40% | 15.0 fps")


def test_summary_counts_faces_still_in_view_up_to_the_latest_record():
    s = LiveSummary()
    s.add(json.loads(rec("face_appeared", 0, track_id=1, emotion="happy")))
    s.add(json.loads(rec("face_appeared", 2, track_id=2, emotion="sad")))
    s.add(json.loads(rec("face_left", 4, track_id=1, extra={"duration_s": 4.0})))
    # happy 0..4 = 4 s; sad 2..4 = 2 s (still in view)
    assert s.share() == {"happy": 4 / 6, "sad": 2 / 6}
    assert s.faces_seen == 2


def test_format_record_for_each_kind():
    def line(kind, **kw):
        return format_record(json.loads(rec(kind, 0, **kw))).split(" ", 1)[1]
    assert line("micro_expression", track_id=2, emotion="surprise", score=0.66) == \
        "face #2 micro-expression surprise 0.66"
    assert line("summary", extra={"interval_s": 60, "faces_seen": 4, "emotion_share":
                                  {"sad": 0.25, "happy": 0.75, "fear": 0.0}, "dominant": "happy",
                                  "frames": 890, "fps": 14.83}) == \
        "summary 60 s: 4 faces  happy 75%  sad 25%  dominant happy  14.8 fps"
    assert line("summary", extra={"interval_s": 19.6, "faces_seen": 1, "dominant": "happy"}) == \
        "summary 19.6 s: 1 face  dominant happy"
    assert line("stopped", extra={"reason": "signal"}) == "stopped  reason=signal"
    assert line("started", extra={"version": "0.1.0", "labels": ["happy", "sad"]}) == \
        "started  version=0.1.0  labels=happy,sad"
    assert line("something_new", track_id=1, extra={"k": 1}) == "something_new face #1  k=1"


# -- the console sink speaks the same lines -------------------------------------------------

class CountingStream(io.StringIO):
    flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


class BrokenStream(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_console_sink_one_line_per_event_and_status_only_at_its_interval():
    import numpy as np
    from edge.events import FrameResult, TrackedFace
    from edge.sinks.console import ConsoleConfig, ConsoleSink

    now = [0.0]
    out = CountingStream()
    sink = ConsoleSink(ConsoleConfig(status_interval=30), stream=out, clock=lambda: now[0])
    sink.handle([Event("face_appeared", T0, track_id=3, emotion="happy", score=0.82),
                 Event("face_left", T0 + 12.4, track_id=3, extra={"duration_s": 12.4})])
    lines = out.getvalue().splitlines()
    assert [x.split(" ", 1)[1] for x in lines] == ["face #3 appeared  happy 0.82",
                                                  "face #3 left after 12.4 s"]
    assert out.flushes == 1                       # one flush per batch
    face = TrackedFace(3, (0, 0, 9, 9), "happy", 0.8, np.zeros(7))
    for i in range(300):                          # 20 s of frames at 15 fps: no output
        now[0] = i / 15
        sink.update(FrameResult(i, T0 + i / 15, [face], "happy"))
    assert out.getvalue().splitlines() == lines
    for i in range(300, 600):                     # past 30 s: one status line
        now[0] = i / 15
        sink.update(FrameResult(i, T0 + i / 15, [face], "happy"))
    status = out.getvalue().splitlines()[2:]
    assert len(status) == 1
    assert "status  1 face (#3 happy)  dominant happy  frame 450" in status[0]


def test_console_sink_survives_a_broken_stdout():
    from edge.sinks.console import ConsoleSink

    sink = ConsoleSink(stream=BrokenStream())
    sink.handle([Event("started", T0)])
    sink.handle([Event("stopped", T0 + 1)])
    assert sink.write_errors == 2
