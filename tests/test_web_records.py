"""The report and the day view accept only what they can show (issue 35 §9): hostile or
foreign log lines are skipped, every value is escaped, the report's CSP closes forms and
<base>; checked in Chromium, which must run the report's chart and nothing else."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

from web_support import browser  # noqa: F401 (fixture)
from edge.web.history import LogFiles
from edge.web.records import clean_summary

EMOTION_EDGE = [sys.executable, "-m", "edge"]
GOOD = {"v": 1, "ts": "2026-11-21T09:13:00.000Z", "event": "summary", "emotion": "happy",
        "interval_s": 60.0, "faces_seen": 4, "dominant": "happy", "frames": 890, "fps": 14.8,
        "emotion_share": {"happy": 0.45, "sad": 0.25, "neutral": 0.3}}
ATTACK = '<meta http-equiv="refresh" content="0;url=https://evil.example/">'


def at(minute: int, **fields) -> dict:
    return {**GOOD, "ts": f"2026-11-21T09:{minute:02d}:00.000Z", **fields}


HOSTILE = [
    at(1, interval_s=ATTACK), at(2, faces_seen="4"), at(3, faces_seen=True), at(4, faces_seen=-1),
    at(5, interval_s=float("inf")), at(6, dominant="<img src=x onerror=alert(1)>" * 3),
    at(7, emotion_share={"happy": "0.5"}), at(8, emotion_share=[1, 2]), at(9, dominant=7),
    at(10, emotion_share={"<b>x</b>\n": 0.5}), at(11, fps="fast"), at(12, ts=12345),
    at(13, ts="yesterday"), {"event": "summary"}, ["summary"], "summary",
]


def test_only_well_formed_summaries_pass():
    assert clean_summary(GOOD) == {k: v for k, v in GOOD.items() if k != "v"}
    assert clean_summary({**GOOD, "no_video_s": 3.5})["no_video_s"] == 3.5
    assert clean_summary({**GOOD, "dominant": None, "emotion_share": {}})["dominant"] is None
    assert clean_summary({**GOOD, "extra": "<script>"}).get("extra") is None
    for rec in HOSTILE:
        assert clean_summary(rec) is None, rec


def write_log(folder, records, raw_lines=()):
    folder.mkdir()
    lines = [json.dumps(r) for r in records] + list(raw_lines)
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")


def test_report_shows_good_lines_escaped_and_skips_the_rest(tmp_path, browser):
    kept = [at(20), at(21, dominant="sad")]
    write_log(tmp_path / "logs", HOSTILE + kept,
              raw_lines=['{"event":"summary","ts":"2026-11-21T09:30:00Z", torn', '\x00\xff',
                         '{"ts":"2026-11-21T09:31:00Z","event":"summary","interval_s":' + '[' * 5000 + ']' * 5000 + '}'])
    day = datetime(2026, 11, 21, 9, 20, tzinfo=timezone.utc).astimezone().date().isoformat()
    out = tmp_path / "report.html"
    proc = subprocess.run([*EMOTION_EDGE, "report", str(tmp_path / "logs"), "--date", day, "-o",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2 summaries" in proc.stdout
    text = out.read_text()
    assert "http-equiv=\"refresh\"" not in text and "onerror" not in text and "<b>x" not in text
    assert "form-action 'none'" in text and "base-uri 'none'" in text
    assert text.count("<tr><td>") == 2
    page = browser.new_page()
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    page.wait_for_selector("#chart canvas", state="attached")
    points = page.evaluate("R.summaries.map(s => s.ts)")
    page.close()
    assert not errors and all(u.startswith(("file:", "data:")) for u in requests), (errors, requests)
    assert points == [at(20)["ts"], at(21)["ts"]]


def test_the_day_view_skips_the_same_lines(tmp_path):
    write_log(tmp_path / "logs", HOSTILE + [at(20)])
    files = LogFiles(tmp_path / "logs")
    assert [r["ts"] for r in files.summaries()] == [at(20)["ts"]]
    assert len(files.days()) == 1
