"""The kiosk page in a real browser (Debian's Chromium via Playwright) over real videos and
photos: the live view agrees with the log, the chart with the summaries, a photo with
`classify --json`; model switching; privacy mode; sign-in; one-line refusals."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from conftest import MODELS
from web_support import browser, read_log, running, web_config  # noqa: F401 (fixture)

CLIP = "pyfeat_WolfgangLanger_Pexels.mp4"       # one woman, crying to laughing
EMOTION_EDGE = [sys.executable, "-m", "edge"]


def unix(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def emotions_at(records: list[dict], t: float) -> dict[int, str]:
    """Each track's emotion after the frame at time ``t``, as the log tells it."""
    state: dict[int, str] = {}
    for r in records:
        if unix(r["ts"]) > t:
            break
        if r["event"] in ("face_appeared", "emotion_changed"):
            state[r["track"]] = r["emotion"]
        elif r["event"] == "face_left":
            state.pop(r["track"], None)
    return state


def wait_js(page, expression: str, timeout: float = 10.0) -> None:
    """Wait until ``expression`` is true in the page. (Playwright's wait_for_function needs
    eval, which the page's Content-Security-Policy rightly forbids.)"""
    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < end, f"timed out waiting for {expression}"
        time.sleep(0.1)


def picture_digest(page) -> float:
    """The mean of the live picture's pixels, read back in the page."""
    return page.evaluate("""() => {
        const img = document.getElementById('video');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
        return s / (d.length / 4);
    }""")


def test_live_view_agrees_with_the_log_and_the_chart_with_the_summaries(tmp_path, videos, browser):
    cfg = web_config(tmp_path, videos / CLIP)
    with running(cfg) as (monitor, url):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        wait_js(page, "document.getElementById('video').naturalWidth > 0", 15)
        samples, pictures = [], []
        for _ in range(24):                    # ~12 s of the clip, in real time
            time.sleep(0.5)
            shown = page.evaluate("""() => { const l = document.getElementById('faces');
                return {t: parseFloat(l.dataset.t), faces: [...l.children].map(li =>
                    [parseInt(li.dataset.track), li.dataset.emotion, li.textContent])}; }""")
            samples.append(shown)
            pictures.append(round(picture_digest(page), 2))
        # The chart: every summary the log has so far is on it.
        n_log = sum(r["event"] == "summary" for r in read_log(tmp_path / "logs"))
        wait_js(page, f"parseInt(document.getElementById('chart').dataset.points) >= {n_log}")
        n_chart = int(page.get_attribute("#chart", "data-points"))
        health = page.inner_text("#health-info")
        page.screenshot(path=str(tmp_path / "kiosk.png"), full_page=True)
        page.close()
    assert not errors, errors
    assert len(set(pictures)) >= 10, pictures          # the picture moves
    assert n_log >= 4 and n_log <= n_chart <= n_log + 1
    assert "pyfeat_WolfgangLanger_Pexels.mp4 (file)" in health
    assert "lines written:" in health and "file: " in health       # the log's own counters
    records = read_log(tmp_path / "logs")
    with_faces = [s for s in samples if s["faces"]]
    assert len(with_faces) >= 15, samples
    emotions = set()
    for s in with_faces:
        want = emotions_at(records, s["t"])
        got = {track: emotion for track, emotion, _ in s["faces"]}
        assert got == want, (s, want)
        emotions |= set(got.values())
    assert len(emotions) >= 2                          # the clip goes from crying to laughing
    assert (tmp_path / "kiosk.png").stat().st_size > 50_000


def test_the_day_view_reads_every_rotated_file(tmp_path, videos, browser):
    # A real run's log, split the way rotation leaves it: events.jsonl (newest lines),
    # events.jsonl.1, ... events.jsonl.3 (oldest).
    cfg = web_config(tmp_path, videos / "intel_head-pose-face-detection-female-and-male.mp4",
                     source={"realtime": False, "loop": False}, monitor={"summary_interval": 0.4})
    from edge.pipeline import Monitor
    Monitor(cfg).run()
    log = tmp_path / "logs" / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    ends = [i + 1 for i, line in enumerate(lines) if '"event":"summary"' in line]
    cuts = [0] + [ends[len(ends) * k // 4] for k in (1, 2, 3)] + [len(lines)]
    for i, name in enumerate(["events.jsonl.3", "events.jsonl.2", "events.jsonl.1", "events.jsonl"]):
        (log.parent / name).write_text("".join(lines[cuts[i]:cuts[i + 1]]))
    summaries = {r["ts"] for r in read_log(tmp_path / "logs") if r["event"] == "summary"}
    assert len(summaries) >= 8
    assert all('"summary"' in p.read_text() for p in log.parent.glob("events.jsonl*"))
    day = datetime.fromisoformat(min(summaries).replace("Z", "+00:00")).astimezone().date()
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4", monitor={"summary_interval": 600.0})
    with running(cfg) as (_, url):
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#model-info dd")
        page.fill("#day", day.isoformat())
        page.dispatch_event("#day", "change")
        wait_js(page, "document.getElementById('chart-note').textContent.includes('from the log')")
        shown = int(page.get_attribute("#chart", "data-points"))
        days = json.loads(urllib.request.urlopen(url + "api/days").read())["days"]
        page.close()
    assert shown == len(summaries)
    assert day.isoformat() in days


def test_a_photo_gets_the_same_answer_as_classify_and_a_corrupt_one_a_message(
        tmp_path, videos, scenes, browser):
    photo = scenes / "pyfeat_multi_face.jpg"          # five people
    expected = json.loads(subprocess.run([*EMOTION_EDGE, "classify", "--json", str(photo)],
                                         capture_output=True, text=True, check=True).stdout)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:300])       # a real JPEG, cut off
    with running(web_config(tmp_path, videos / "pyfeat_single_face.mp4")) as (monitor, url):
        page = browser.new_page()
        page.goto(url)
        page.set_input_files("#photo-file", str(photo))
        page.wait_for_selector("#photo-faces li")
        faces = page.eval_on_selector_all("#photo-faces li", "els => els.map(e => [e.dataset.emotion, e.textContent])")
        assert page.evaluate("document.getElementById('photo-result').naturalWidth") > 0
        frames = monitor.stats.frames
        page.set_input_files("#photo-file", str(broken))
        wait_js(page, "document.getElementById('photo-error').textContent.length > 0")
        message = page.inner_text("#photo-error")
        time.sleep(1.0)
        assert monitor.stats.frames > frames              # the monitor kept running
        page.close()
    want = [(f["emotion"], ", ".join(map(str, f["box"]))) for f in expected["faces"]]
    assert want, "the scene photo should have faces"
    assert [(e, text.split(" at ")[1]) for e, text in faces] == want
    assert "not a readable image" in message


def test_upload_limits_and_strict_headers(tmp_path, videos):
    with running(web_config(tmp_path, videos / "pyfeat_single_face.mp4",
                            web={"max_upload_mb": 0.01})) as (_, url):
        r = urllib.request.urlopen(url)
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        html = r.read().decode()
        assert "http://" not in html and "https://" not in html   # nothing from elsewhere
        for body, status in [(b"x" * 20_000, 413), (b"", 400), (b"not an image", 400)]:
            req = urllib.request.Request(url + "api/photo", data=body, method="POST",
                                         headers={"Content-Type": "image/jpeg"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req)
            assert err.value.code == status
            assert "\n" not in json.loads(err.value.read())["error"]


def test_switching_models_from_the_page(tmp_path, videos, browser):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("emotion_int8", "copy_int8"):
        shutil.copy(MODELS / "emotion_int8.tflite", models / f"{name}.tflite")
        shutil.copy(MODELS / "emotion_int8.json", models / f"{name}.json")
    (models / "broken_int8.tflite").write_bytes((MODELS / "emotion_int8.tflite").read_bytes()[:5000])
    shutil.copy(MODELS / "emotion_int8.json", models / "broken_int8.json")
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4",
                     classifier={"model": str(models / "emotion_int8.tflite")})
    with running(cfg) as (monitor, url):
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#model-select option", state="attached")
        options = page.eval_on_selector_all("#model-select option", "els => els.map(e => e.value)")
        assert options == ["broken_int8.tflite", "copy_int8.tflite", "emotion_int8.tflite"]
        page.select_option("#model-select", "broken_int8.tflite")
        page.click("#model-use")
        wait_js(page, "document.getElementById('model-error').textContent.length > 0")
        refused = page.inner_text("#model-error")
        assert monitor.model_path.name == "emotion_int8.tflite"
        page.select_option("#model-select", "copy_int8.tflite")
        page.click("#model-use")
        wait_js(page, "document.getElementById('model-ok').textContent.length > 0")
        wait_js(page, "document.querySelector('#model-info dd').textContent === 'copy_int8.tflite'")
        page.close()
    assert "broken_int8.tflite" in refused and "sha256" in refused and "\n" not in refused
    assert monitor.model_path.name == "copy_int8.tflite"
    changed = [r for r in read_log(tmp_path / "logs") if r["event"] == "model_changed"]
    assert [c["model"] for c in changed] == ["copy_int8.tflite"]


def test_privacy_mode_sends_no_image_bytes(tmp_path, videos, browser):
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4", web={"show_video": False})
    responses = []
    with running(cfg) as (monitor, url):
        page = browser.new_page()
        page.on("response", lambda r: responses.append((r.url, r.status, r.headers.get("content-type", ""))))
        page.goto(url)
        wait_js(page, "document.querySelectorAll('#faces li').length > 0", 15)
        time.sleep(2)
        stream = urllib.request.urlopen(url + "api/stream")
        chunk = stream.read(20000).decode()
        stream.close()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "video.mjpg")
        assert not page.is_visible("#video") and page.is_visible("#privacy")
        page.close()
        encoded = monitor.sinks[-1].hub.encoder.encoded if hasattr(monitor.sinks[-1], "hub") else None
    assert err.value.code == 404
    # No picture but the page's own icon: nothing from the camera.
    camera = [r for r in responses if "/static/" not in r[0] and
              (r[2].startswith(("image/", "multipart/")) or "video.mjpg" in r[0])]
    assert not camera, responses
    assert '"type":"frame"' in chunk and "base64" not in chunk and "jpeg" not in chunk.lower()
    assert encoded == 0                                   # not one JPEG was even made


def test_a_network_bind_needs_a_password_and_the_password_works(tmp_path, videos, browser):
    conf = tmp_path / "open.toml"
    conf.write_text('[web]\nenabled = true\nbind = "0.0.0.0"\n')
    proc = subprocess.run([*EMOTION_EDGE, "run", "--config", str(conf)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "password" in proc.stderr, proc.stderr
    secret = tmp_path / "password"
    secret.write_text("correct horse\n")
    secret.chmod(0o600)
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4", web={"password_file": str(secret)})
    with running(cfg) as (_, url):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "api/state")
        assert err.value.code == 401
        page = browser.new_page()
        page.goto(url)
        assert page.url.endswith("/login")
        page.fill("#password", "wrong")
        page.click("button[type=submit]")
        wait_js(page, "document.getElementById('login-error').textContent.length > 0")
        page.fill("#password", "correct horse")
        page.click("button[type=submit]")
        page.wait_for_selector("#model-info dd", timeout=15000)
        assert page.inner_text("#model-info dd") == "emotion_int8.tflite"
        page.close()


def test_run_prints_the_page_address_and_a_port_in_use_is_one_line(tmp_path, videos):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        conf = tmp_path / "busy.toml"
        conf.write_text(f"[web]\nport = {port}\n")
        proc = subprocess.run([*EMOTION_EDGE, "run", "--web", "--config", str(conf), "--source",
                               str(videos / "pyfeat_single_face.mp4"), "--fast", "--log-dir",
                               str(tmp_path / "b")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("emotion-edge run: [web] cannot listen on 127.0.0.1:")
    conf.write_text("[web]\nport = 0\n")
    proc = subprocess.run([*EMOTION_EDGE, "run", "--web", "--config", str(conf), "--source",
                           str(videos / "pyfeat_single_face.mp4"), "--fast", "--log-dir",
                           str(tmp_path / "c")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "web page: http://127.0.0.1:" in proc.stdout


def test_report_is_one_self_contained_file(tmp_path, videos, browser):
    from edge.pipeline import Monitor
    cfg = web_config(tmp_path, videos / "intel_head-pose-face-detection-female-and-male.mp4",
                     source={"realtime": False, "loop": False}, monitor={"summary_interval": 0.5},
                     web={"enabled": False})
    Monitor(cfg).run()
    summaries = [r for r in read_log(tmp_path / "logs") if r["event"] == "summary"]
    day = datetime.fromisoformat(summaries[0]["ts"].replace("Z", "+00:00")).astimezone().date()
    out = tmp_path / "report.html"
    cmd = [*EMOTION_EDGE, "report", str(tmp_path / "logs" / "events.jsonl"), "--date",
           day.isoformat(), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(summaries)} summaries" in proc.stdout
    text = out.read_text()
    import re
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:|url\(\s*["']?https?:|<link""", text)
    assert "default-src 'none'" in text and "'unsafe-inline'" not in text.split("script-src")[1].split(";")[0]
    assert text.count("<tr><td>") == len(summaries)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert out.read_text() == text                        # never overwritten
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(out.as_uri())
    page.wait_for_selector("#chart canvas", state="attached")
    page.close()
    assert not errors, errors                             # its CSP lets its own scripts run
