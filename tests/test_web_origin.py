"""Requests are checked for where they come from (issue 35 §5), in real Chromium: a page
of another origin cannot switch the model or send a photo, a DNS name re-pointed at the
device (rebinding) is not served; and HTTPS with Secure cookies (§6)."""
from __future__ import annotations

import http.client
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import MODELS
from web_support import CHROMIUM, CHROMIUM_ARGS, browser, running, web_config  # noqa: F401
from edge.sinks.web import WebSink


def wait_for(condition, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def web_app(monitor):
    return next(s for s in monitor.sinks if isinstance(s, WebSink)).server.app.state.web


@pytest.fixture()
def models(tmp_path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("emotion_int8", "copy_int8"):
        shutil.copy(MODELS / "emotion_int8.tflite", folder / f"{name}.tflite")
        shutil.copy(MODELS / "emotion_int8.json", folder / f"{name}.json")
    return folder


@pytest.fixture()
def other_origin(tmp_path):
    """A web server on another port of 127.0.0.1: another origin, as a school's other
    web page would be. It serves ``evil.html`` (written by the test)."""
    root = tmp_path / "evil"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


ATTACK = """<!doctype html><html><body><script>
const target = %(target)s;
async function attack() {
  const out = [];
  const tries = [
    // a "simple" request: no preflight, the browser sends it and hides the answer
    ["models as text/plain", target + "api/models", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({file: "copy_int8.tflite"})}],
    ["photo as text/plain", target + "api/photo", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: new Uint8Array(%(photo)s)}],
    ["photo as a form", target + "api/photo", {method: "POST", mode: "no-cors",
      body: new URLSearchParams({a: "b"})}],
    // JSON needs a preflight, which the monitor never grants
    ["models as JSON", target + "api/models", {method: "POST", mode: "cors",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({file: "copy_int8.tflite"})}],
  ];
  for (const [name, url, init] of tries) {
    try { const r = await fetch(url, init); out.push([name, r.type, r.status]); }
    catch (e) { out.push([name, "error", String(e)]); }
  }
  document.title = "done";
  return out;
}
window.attack = attack;
</script></body></html>"""


def test_a_page_of_another_origin_cannot_switch_the_model_or_send_a_photo(
        tmp_path, videos, scenes, models, other_origin, browser):
    evil_root, evil_url = other_origin
    photo = (scenes / "pyfeat_multi_face.jpg").read_bytes()
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4",
                     classifier={"model": str(models / "emotion_int8.tflite")})
    with running(cfg) as (monitor, url):
        (evil_root / "evil.html").write_text(ATTACK % {"target": json.dumps(url),
                                                       "photo": json.dumps(list(photo[:20000]))})
        page = browser.new_page()
        page.goto(evil_url + "evil.html")
        results = page.evaluate("attack()")
        page.close()
        web = web_app(monitor)
        refused = [r for r in results if r[1] == "error"]
        assert monitor.model_path.name == "emotion_int8.tflite", results
        assert web.counters["model_switches"] == 0 and web.counters["photos"] == 0, results
        # The same requests from the page itself still work.
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#model-select option", state="attached")
        page.select_option("#model-select", "copy_int8.tflite")
        page.click("#model-use")
        assert wait_for(lambda: monitor.model_path.name == "copy_int8.tflite")
        page.close()
    # JSON never leaves the browser (its preflight is refused); the simple requests do (the
    # answers are hidden from the page, by CORP too): the server refused those itself.
    assert "models as JSON" in [r[0] for r in refused]


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("POST", path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else {}


def test_state_changing_requests_need_our_origin_and_their_content_type(tmp_path, videos, models):
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4",
                     classifier={"model": str(models / "emotion_int8.tflite")})
    body = json.dumps({"file": "copy_int8.tflite"}).encode()
    with running(cfg) as (monitor, url):
        own = url.rstrip("/")
        host = own.split("//")[1]
        cases = [
            ({"Content-Type": "text/plain", "Origin": own}, 415),
            ({"Content-Type": "application/x-www-form-urlencoded", "Origin": own}, 415),
            ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
            ({"Content-Type": "application/json", "Origin": "null"}, 403),
            ({"Content-Type": "application/json", "Origin": own.replace("127.0.0.1", "localhost")}, 403),
            ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
        ]
        for headers, status in cases:
            got, answer = post(url, "/api/models", body, headers)
            assert (got, headers) == (status, headers) and "\n" not in answer["error"]
        assert monitor.model_path.name == "emotion_int8.tflite"
        got, _ = post(url, "/api/models", body, {"Content-Type": "application/json", "Origin": own,
                                                 "Host": host})
        assert got == 200 and wait_for(lambda: monitor.model_path.name == "copy_int8.tflite")
        # a script (no Origin, as curl sends) is no browser: allowed
        got, _ = post(url, "/api/models", json.dumps({"file": "emotion_int8.tflite"}).encode(),
                      {"Content-Type": "application/json; charset=utf-8"})
        assert got == 200 and wait_for(lambda: monitor.model_path.name == "emotion_int8.tflite")


def get_with_host(url: str, path: str, host: str) -> int:
    addr, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    c = http.client.HTTPConnection(addr, int(port), timeout=30)
    c.putrequest("GET", path, skip_host=True)
    c.putheader("Host", host)
    c.endheaders()
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def test_only_our_names_and_addresses_are_served(tmp_path, videos):
    me = socket.gethostname()
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4",
                     web={"allowed_hosts": ["mood.school.lan"]})
    with running(cfg) as (_, url):
        port = url.rstrip("/").rsplit(":", 1)[1]
        served = ["127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.",
                  f"[::1]:{port}", "192.168.1.20", me, f"{me}.local:{port}", "mood.school.lan"]
        refused = ["evil.example", f"evil.example:{port}", "localhost.evil.example",
                   "mood.school.lan.evil.example", "", "[::1"]
        assert {h: get_with_host(url, "/api/state", h) for h in served} == {h: 200 for h in served}
        got = {h: get_with_host(url, "/api/state", h) for h in refused if h}
        assert got == {h: 421 for h in refused if h}


@pytest.fixture()
def rebinding_browser(browser):
    """Chromium that resolves rebind.test to 127.0.0.1, as an attacker's DNS would after
    the victim opened http://rebind.test/."""
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"])
    yield b
    b.close()


def test_dns_rebinding_reads_nothing_in_chromium(tmp_path, videos, rebinding_browser):
    with running(web_config(tmp_path, videos / "pyfeat_single_face.mp4")) as (_, url):
        port = url.rstrip("/").rsplit(":", 1)[1]
        page = rebinding_browser.new_page()
        r = page.goto(f"http://rebind.test:{port}/api/state")
        status, text = r.status, page.inner_text("body")
        r2 = page.goto(f"http://127.0.0.1:{port}/api/state")
        page.close()
    assert status == 421 and "allowed_hosts" in text and '"labels"' not in text
    assert r2.status == 200


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "web.crt", folder / "web.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o600)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_https_with_a_secure_cookie(tmp_path, videos, browser):
    cert, key = self_signed(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    pw.chmod(0o600)
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4",
                     web={"tls_cert": str(cert), "tls_key": str(key), "password_file": str(pw)})
    with running(cfg) as (_, url):
        assert url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(cert))
        req = urllib.request.Request(url + "login", method="POST",
                                     data=json.dumps({"password": "correct horse"}).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Origin": url.rstrip("/")})
        r = urllib.request.urlopen(req, context=ctx)
        cookie = r.headers["Set-Cookie"]
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
            urllib.request.urlopen(url.replace("https:", "http:") + "login", timeout=10)
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        page.goto(url)
        page.fill("#password", "correct horse")
        page.click("button[type=submit]")
        page.wait_for_selector("#model-info dd", timeout=15000)
        cookies = context.cookies()
        context.close()
    assert "secure" in cookie.lower() and "httponly" in cookie.lower()
    assert [c["secure"] for c in cookies if c["name"] == "emotion_edge"] == [True]


def test_a_bad_tls_pair_is_one_line(tmp_path, videos):
    cert, key = self_signed(tmp_path)
    key.chmod(0o644)
    from edge.sinks.base import SinkError
    from edge.web.config import WebConfig
    with pytest.raises(SinkError, match="tls_key .*every user on this device may read it"):
        WebConfig(tls_cert=str(cert), tls_key=str(key)).ssl_context()
    key.chmod(0o600)
    with pytest.raises(SinkError, match="cannot load them"):
        WebConfig(tls_cert=str(key), tls_key=str(key)).ssl_context()


def test_another_site_cannot_embed_the_live_picture(tmp_path, videos, other_origin, browser):
    evil_root, evil_url = other_origin
    with running(web_config(tmp_path, videos / "pyfeat_single_face.mp4")) as (_, url):
        (evil_root / "embed.html").write_text(
            f'<!doctype html><img id="own" src="{url}static/icon.svg">'
            f'<img id="live" src="{url}video.mjpg">')
        page = browser.new_page()
        page.goto(url)                                  # the page itself shows the picture
        assert wait_for(lambda: page.evaluate("document.getElementById('video').naturalWidth") > 0)
        page.goto(evil_url + "embed.html")
        time.sleep(3)
        widths = page.evaluate("[...document.images].map(i => [i.id, i.complete, i.naturalWidth])")
        page.close()
    assert widths == [["own", True, 0], ["live", True, 0]], widths   # blocked (CORP)
