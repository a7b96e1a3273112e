"""Helpers for the web page's tests: a monitor with the page on, run in a thread over a
real video, and Debian's Chromium driven by Playwright (no browser download)."""
from __future__ import annotations

import contextlib
import json
import shutil
import threading
from pathlib import Path

import pytest

from edge import config
from edge.pipeline import Monitor
from edge.sinks.web import WebSink

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--no-first-run"]


def web_config(tmp_path: Path, video: Path, **sections) -> config.Config:
    raw = {"source": {"uri": str(video), "realtime": True, "loop": True},
           "log": {"dir": str(tmp_path / "logs")},
           "console": {"enabled": False},
           "monitor": {"summary_interval": 2.0},
           "web": {"enabled": True, "port": 0}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config.from_dict(raw)


@contextlib.contextmanager
def running(cfg: config.Config):
    """A monitor in a thread; yields (monitor, page URL) and stops it cleanly."""
    monitor = Monitor(cfg)
    errors: list[BaseException] = []

    def run():
        try:
            monitor.run()
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    web = next(s for s in monitor.sinks if isinstance(s, WebSink))
    for _ in range(500):
        if web.server is not None and web.url:
            break
        thread.join(0.02)
    assert web.url, f"the web page did not start: {errors}"
    try:
        yield monitor, web.url
    finally:
        monitor.stop("test over")
        thread.join(20)
        assert not thread.is_alive(), "the monitor did not stop"
        assert not errors, errors


def read_log(folder: Path) -> list[dict]:
    out = []
    for p in sorted(folder.glob("events.jsonl*")):
        out += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return out


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed: ./install.sh --local --dev installs it as root "
                    "(or: sudo apt-get install chromium)")
    # Every test module that imports this fixture gets a session fixture of its own, but
    # one process can run only one Playwright: they share it, and the last one closes it.
    if not _shared:
        _shared["playwright"] = sync_api.sync_playwright().start()
        _shared["browser"] = _shared["playwright"].chromium.launch(executable_path=CHROMIUM,
                                                                   args=CHROMIUM_ARGS)
        _shared["users"] = 0
    _shared["users"] += 1
    try:
        yield _shared["browser"]
    finally:
        _shared["users"] -= 1
        if not _shared["users"]:
            _shared.pop("browser").close()
            _shared.pop("playwright").stop()
            _shared.clear()


_shared: dict = {}
