"""``emotion-edge report``: one day's mood as a single self-contained HTML file.

Everything it needs is inside the file (the chart library, the styles, the data), so it
opens offline, by e-mail, years later; a Content-Security-Policy with the hashes of its
two scripts lets nothing else run and nothing load from anywhere.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from collections import Counter
from datetime import date
from pathlib import Path

from ..errors import EmotionEdgeError
from . import i18n
from .history import LogFiles
from .palette import screen_colours

STATIC = Path(__file__).parent / "static"


class ReportError(EmotionEdgeError, ValueError):
    """A report that cannot be written; one line for the user."""


def write_report(log: Path, day: str, output: Path, colours: dict[str, list[float]],
                 language: str = "") -> int:
    """Write the report of ``day`` from ``log`` (and its rotated files) in ``language``
    ([web] language; English when empty); returns how many summaries it holds. Refuses
    to overwrite a file, or to read a log that is not there."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise ReportError(f"--date {day}: give a day as YYYY-MM-DD") from None
    log = Path(log)
    if log.is_dir():
        log = log / "events.jsonl"
    files = LogFiles(log.parent, log.name)
    if not files.files():
        raise ReportError(f"{log}: no event log there (nor rotated files {log.name}.1 ...)")
    rows = files.summaries(when)
    labels = _labels(rows) or list(colours)
    page = render(when, rows, labels, screen_colours(colours), log, language or i18n.DEFAULT)
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ReportError(f"{output}: already exists; choose another file name") from None
    except OSError as exc:
        raise ReportError(f"{output}: cannot write ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    return len(rows)


def _labels(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for lab in r.get("emotion_share") or {}:
            seen.setdefault(lab, None)
    return list(seen)


def _sha(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def render(day: date, rows: list[dict], labels: list[str], colours: dict, log: Path,
           lang: str = i18n.DEFAULT) -> str:
    def t(key: str, **values) -> str:
        return html.escape(i18n.text(lang, key, **values))

    lib = (STATIC / "vendor" / "uPlot.iife.min.js").read_text() + "\n" + (STATIC / "chart.js").read_text()
    names = {lab: i18n.emotion(lang, lab) for lab in labels}
    data = (json.dumps({"labels": labels, "colours": colours, "summaries": rows, "day": day.isoformat(),
                        "names": names, "faces": i18n.text(lang, "common.faces_seen"),
                        "time": i18n.text(lang, "common.time")}, ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    init = ("const R = " + data + ";\nnew EmotionChart(document.getElementById('chart'), R.labels, "
            "R.colours, {names: R.names, facesLabel: R.faces, timeLabel: R.time}).draw(R.summaries, "
            "EmotionChart.dayWindow(R.day));")
    css = (STATIC / "vendor" / "uPlot.min.css").read_text() + (STATIC / "style.css").read_text()
    csp = (f"default-src 'none'; script-src {_sha(lib)} {_sha(init)}; style-src 'unsafe-inline'; "
           "img-src data:; form-action 'none'; base-uri 'none'")
    faces = sum(r.get("faces_seen", 0) for r in rows)
    dominant = Counter(r.get("dominant") for r in rows if r.get("dominant"))
    table = "".join(   # rows are checked summaries (records.py); escaped all the same
        f"<tr><td>{html.escape(r['ts'][11:19])} UTC</td><td>{r['interval_s']:g}</td>"
        f"<td>{html.escape(str(r['faces_seen']))}</td>"
        f"<td>{html.escape(i18n.emotion(lang, r['dominant']) if r.get('dominant') else '-')}</td></tr>"
        for r in rows)
    most = ", ".join(f"{html.escape(i18n.emotion(lang, k))} ({v})" for k, v in dominant.most_common(3)) \
        or t("report.none")
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>emotion-edge · {html.escape(day.isoformat())}</title>
<style>{css} body{{padding:1rem}} table{{border-collapse:collapse}} td,th{{padding:.2rem .8rem;border-bottom:1px solid #2c333d;text-align:left}}</style>
</head><body>
<h1>{t("report.title", date=day.isoformat())}</h1>
<p class="note">{t("report.from_log", log=str(log), n=len(rows), faces=faces, most="{most}").replace("{most}", most)}
{t("common.notice")}</p>
<section><div id="chart"></div></section>
<section><h2>{t("report.every")}</h2><table><tr><th>{t("report.time")}</th><th>{t("report.interval")}</th><th>{t("report.faces")}</th><th>{t("report.dominant")}</th></tr>{table}</table></section>
<script>{lib}</script>
<script>{init}</script>
</body></html>
"""
