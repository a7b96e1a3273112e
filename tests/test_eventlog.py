"""The event-log package: the kinds of event, file naming and rotation, in one place."""
from __future__ import annotations

import re

from conftest import ROOT
from edge.eventlog import EventKind, chain, log_files, rotate, rotated


def test_every_kind_the_code_emits_is_an_event_kind_and_documented():
    emitted = set()
    for path in (ROOT / "edge").rglob("*.py"):
        emitted |= set(re.findall(r'\bEvent\(\s*"([a-z_]+)"', path.read_text()))
    assert emitted and emitted <= {k.value for k in EventKind}, emitted - set(EventKind)
    doc = (ROOT / "docs" / "log-format.md").read_text()
    assert [k for k in EventKind if f"### `{k}`" not in doc] == []


def test_kinds_are_the_strings_the_log_holds():
    import json
    assert EventKind.FACE_APPEARED == "face_appeared"
    assert json.dumps({"event": EventKind.SUMMARY}) == '{"event": "summary"}'


def test_rotation_naming_is_what_the_readers_walk(tmp_path):
    live = tmp_path / "events.jsonl"
    for n in range(4):                       # write, rotate, three times; keep 2
        live.write_text(f"{n}\n")
        if n < 3:
            rotate(live, keep=2)
    assert [p.name for p in log_files(tmp_path)] == \
        ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert [p.read_text() for p in log_files(tmp_path)] == ["3\n", "2\n", "1\n"]
    assert [i for i, _ in chain(live)] == [2, 1, 0]          # oldest first, for follow
    assert rotated(live, 0) == live and rotated(live, 3).name == "events.jsonl.3"
    rotate(live, keep=0)                     # keep 0: the live file goes, nothing is kept
    assert not live.exists()
