"""Sign-in that cannot be silently absent (issue 35 §2): one password-file reader for the
page, MQTT and fleet; a file that yields no usable password stops `run`, and `config
--validate` and `check` say so."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.password_file import PasswordFileError, read_password_file

EMOTION_EDGE = [sys.executable, "-m", "edge"]


def secret(tmp_path: Path, data: bytes, mode: int = 0o600, name: str = "password") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    p.chmod(mode)
    return p


@pytest.mark.parametrize("data, why", [
    (b"", "first line is empty"),
    (b"\n", "first line is empty"),
    (b"\nsecond-line\n", "first line is empty"),
    (b"\r\n", "first line is empty"),
    (b"   \t \n", "only spaces"),
    (b" hunter22\n", "begins or ends with spaces"),
    (b"hunter22 \n", "begins or ends with spaces"),
    (b"hunter\x0022\n", "control character"),
    (b"caf\xe9 au lait\n", "not UTF-8 text (byte 4 is 0xe9)"),
    (b"x" * 5000, "too large"),
])
def test_a_file_that_yields_no_usable_password_is_one_line(tmp_path, data, why):
    with pytest.raises(PasswordFileError) as err:
        read_password_file(secret(tmp_path, data), "[web] password_file")
    msg = str(err.value)
    assert why in msg and msg.startswith("[web] password_file ") and "\n" not in msg


def test_the_password_is_the_first_line_exactly(tmp_path):
    assert read_password_file(secret(tmp_path, b"correct horse\r\nignored\n"), "x") == "correct horse"
    assert read_password_file(secret(tmp_path, "pässwörd".encode()), "x") == "pässwörd"
    assert read_password_file(secret(tmp_path, b"in group\n", 0o640), "x") == "in group"


def test_a_file_every_user_may_read_is_refused_as_openssh_does(tmp_path):
    with pytest.raises(PasswordFileError, match=r"every user on this device may read it "
                                                r"\(mode 0644\); chmod 600"):
        read_password_file(secret(tmp_path, b"hunter22\n", 0o644), "[web] password_file")


def test_not_a_file_and_missing(tmp_path):
    with pytest.raises(PasswordFileError, match="not a regular file"):
        read_password_file(tmp_path, "[web] password_file")
    with pytest.raises(PasswordFileError, match="No such file"):
        read_password_file(tmp_path / "nope", "[web] password_file")


def test_every_reader_uses_the_one_function(tmp_path):
    """The page, the MQTT sink and `fleet` refuse the same file with the same reason."""
    from edge.sinks.base import SinkError
    from edge.sinks.mqtt import read_password
    from edge.web.config import WebConfig

    empty = secret(tmp_path, b"\nsecond\n")
    with pytest.raises(SinkError, match=r"^\[web\] password_file .*first line is empty"):
        WebConfig(password_file=str(empty)).read_password()
    with pytest.raises(SinkError, match=r"^\[mqtt\] password_file .*first line is empty"):
        read_password(str(empty))
    proc = subprocess.run([*EMOTION_EDGE, "fleet", "--broker", "127.0.0.1", "--port", "1",
                           "--username", "u", "--password-file", str(empty)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--password-file" in proc.stderr
    assert "first line is empty" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_an_inline_password_of_spaces_is_a_config_error(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('[web]\nenabled = true\nbind = "0.0.0.0"\npassword = "   "\n')
    proc = subprocess.run([*EMOTION_EDGE, "config", "--validate", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "[web] password: the password is only spaces" in proc.stderr


def test_run_config_validate_and_check_refuse_an_empty_first_line(tmp_path, videos):
    """The audit's case: an empty first line gave the password "" and an open page."""
    pw = secret(tmp_path, b"\nhunter22\n")
    conf = tmp_path / "c.toml"
    conf.write_text(f'[web]\nenabled = true\nbind = "127.0.0.1"\nport = 0\npassword_file = "{pw}"\n'
                    f'[log]\ndir = "{tmp_path / "logs"}"\n'
                    f'[source]\nuri = "{videos / "pyfeat_single_face.mp4"}"\n')
    run = subprocess.run([*EMOTION_EDGE, "run", "--config", str(conf), "--fast"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].endswith("the first line is empty, so there is no password")
    assert "web page:" not in run.stdout
    val = subprocess.run([*EMOTION_EDGE, "config", "--validate", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert val.returncode == 2 and "first line is empty" in val.stderr and "ok" not in val.stdout
    check = subprocess.run([*EMOTION_EDGE, "check", "--config", str(conf)],
                           capture_output=True, text=True, timeout=120)
    lines = check.stdout.splitlines()
    assert check.returncode == 1
    assert any(line.startswith("FAIL  sign-in") and "first line is empty" in line for line in lines), lines
    assert "all checks passed" not in check.stdout
    pw.write_text("hunter22\n")
    ok = subprocess.run([*EMOTION_EDGE, "config", "--validate", str(conf)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr


# --- how fast anyone may guess (issue 35 §6) ------------------------------------------------

def test_the_limiter_waits_longer_after_each_failure_and_for_everyone_past_a_global_cap():
    from edge.web import signin
    now = [1000.0]
    lim = signin.SignInLimiter("hunter22", clock=lambda: now[0])
    waits = []
    for _ in range(9):
        assert lim.refused("a") == 0
        lim.begin("a")
        waits.append(lim.check("a", "wrong"))
        assert lim.refused("a") >= waits[-1] - 1e-9      # during the wait: refused at once
        lim.end("a")
        now[0] += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    lim.begin("a")
    assert lim.check("a", "hunter22") is None          # a success clears it
    lim.end("a")
    lim.begin("a")
    assert lim.check("a", "nope") == 1
    lim.end("a")
    # Many addresses: at most GLOBAL_FAILURES failures a minute in all.
    lim = signin.SignInLimiter("hunter22", clock=lambda: now[0])
    checked = 0
    for i in range(100):
        if lim.refused(f"10.0.{i}.1") == 0:
            lim.begin(f"10.0.{i}.1")
            lim.check(f"10.0.{i}.1", "wrong")
            lim.end(f"10.0.{i}.1")
            checked += 1
    assert checked == signin.GLOBAL_FAILURES
    assert 0 < lim.refused("10.9.9.9") <= signin.WINDOW_S
    now[0] += signin.WINDOW_S
    assert lim.refused("10.9.9.9") == 0


def test_odd_passwords_are_wrong_not_errors():
    from edge.web.signin import SignInLimiter
    lim = SignInLimiter("hunter22")
    for given in ("\ud800", "hunter22\udc80", 22, None, ["hunter22"], {"p": 1}, "hunter22 "):
        lim.begin("c")
        assert lim.check("c", given) is not None, given
        lim.end("c")


def _login(url: str, body: bytes, source: str = "127.0.0.1") -> tuple[int, str]:
    import http.client
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=120, source_address=(source, 0))
    try:
        c.request("POST", "/login", body=body, headers={"Content-Type": "application/json",
                                                        "Origin": url.rstrip("/")})
        r = c.getresponse()
        return r.status, r.read().decode()
    except (ConnectionError, http.client.RemoteDisconnected):
        return 0, ""            # past [web] max_connections busy ones: refused at once
    finally:
        c.close()


def test_a_hundred_parallel_guesses_get_one_answer_a_growing_wait_apart(tmp_path, videos):
    import json
    import math
    import time
    from concurrent.futures import ThreadPoolExecutor

    from web_support import running, web_config

    pw = secret(tmp_path, b"correct horse\n")
    cfg = web_config(tmp_path, videos / "pyfeat_single_face.mp4", web={"password_file": str(pw)})
    with running(cfg) as (_, url):
        # a lone surrogate is a wrong password (401 after the wait), not a 500
        status, text = _login(url, b'{"password": "\\ud800"}', "127.0.0.9")
        assert status == 401 and "wrong password" in text
        start = time.monotonic()
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda i: _login(url, json.dumps({"password": f"guess{i}"}).encode()),
                                    range(100)))
        elapsed = time.monotonic() - start
        statuses = [s for s, _ in answers]
        # Another address is not held back by this one, and the right password works there.
        assert _login(url, json.dumps({"password": "correct horse"}).encode(), "127.0.0.2")[0] == 200
        # Many addresses (127.0.0.10 ...): at most GLOBAL_FAILURES failures a minute in all.
        from edge.web.signin import GLOBAL_FAILURES
        with ThreadPoolExecutor(50) as pool:
            spread = list(pool.map(lambda i: _login(url, b'{"password": "x"}', f"127.0.1.{i + 1}")[0],
                                   range(50)))
    assert set(statuses) <= {0, 401, 429} and statuses.count(401) >= 1
    # after n failures in a row the next is n seconds of waiting away: 1 + 2 + 4 ...
    assert statuses.count(401) <= math.floor(math.log2(elapsed + 1)) + 1, (statuses.count(401), elapsed)
    assert all("try again in" in t for s, t in answers if s == 429)
    assert spread.count(401) <= GLOBAL_FAILURES - 2 and spread.count(401) + spread.count(0) < 50
