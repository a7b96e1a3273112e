"""Memory is bounded for every untrusted input (issue 35 §3): pictures are refused from
their headers before decoding, bodies before reading, models before loading. Proved with
the real bombs, made at test time, sent to `classify` and to a running monitor's page
while each runs under the unit's own limit (MemoryMax=300M) in a memory cgroup."""
from __future__ import annotations

import http.client
import json
import shutil
import socket
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import MODELS
from memory_limit import MemoryLimit, address_space_of, jpeg_bomb, png_bomb
from edge.sources import SourceError
from edge.sources.image_header import HeaderError, read_header
from edge.sources.images import decode_image

EMOTION_EDGE = [sys.executable, "-m", "edge"]
UNIT_MEMORY_MAX = 300 * 1024 * 1024          # systemd/emotion-edge.service


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    return {
        "png_30000_gray": png_bomb(d / "gray30000.png", 30000, 30000),
        "png_16000_rgb": png_bomb(d / "rgb16000.png", 16000, 16000, colour=True),
        "jpeg_progressive_65500": jpeg_bomb(d / "prog65500.jpg", 65500, 65500, progressive=True),
        "jpeg_baseline_65500": jpeg_bomb(d / "base65500.jpg", 65500, 65500, progressive=False),
    }


def test_the_bombs_are_small_files_that_declare_huge_pictures(bombs):
    sizes = {k: p.stat().st_size for k, p in bombs.items()}
    assert sizes["png_30000_gray"] < 1_200_000 and sizes["jpeg_progressive_65500"] < 1000, sizes
    for name, path in bombs.items():
        h = read_header(lambda o, n, data=path.read_bytes(): data[o:o + n])
        assert h.pixels >= 16000 * 16000, name


def formats(photo: np.ndarray, folder: Path) -> dict[str, Path]:
    out = {}
    for name, flags in [("a.jpg", []), ("p.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), ("a.png", []),
                        ("a.bmp", []), ("a.tiff", []), ("a.webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
                        ("lossless.webp", [cv2.IMWRITE_WEBP_QUALITY, 101])]:
        assert cv2.imwrite(str(folder / name), photo, flags), name
        out[name] = folder / name
    gray = folder / "gray.tiff"
    cv2.imwrite(str(gray), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    out["gray.tiff"] = gray
    return out


def test_every_allowed_format_declares_the_size_opencv_decodes(tmp_path, scenes):
    photo = cv2.resize(cv2.imread(str(scenes / "pyfeat_single_face.jpg")), (1234, 567))
    for name, path in formats(photo, tmp_path).items():
        data = path.read_bytes()
        h = read_header(lambda o, n: data[o:o + n])
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert (h.width, h.height) == (decoded.shape[1], decoded.shape[0]) == (1234, 567), name
        assert h.progressive == (name == "p.jpg"), name


@pytest.mark.parametrize("data", [
    b"P6\n65500 65500\n255\n" + bytes(100),                 # PPM: a header alone allocates
    b"PF\n65500 65500\n-1.0\n" + bytes(100),                # PFM
    b"\x76\x2f\x31\x01" + bytes(100),                       # OpenEXR
    b"#?RADIANCE\n" + bytes(100),                           # HDR
    b"\x59\xa6\x6a\x95" + bytes(100),                       # Sun raster
    b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(100),         # JPEG 2000
    b"GIF89a" + bytes(100), b"", b"hello",
])
def test_other_formats_are_refused_before_decoding(data):
    with pytest.raises(HeaderError, match="JPEG, PNG, WebP, BMP or TIFF"):
        read_header(lambda o, n: data[o:o + n])
    with pytest.raises(SourceError):
        decode_image(data, "upload")


def test_a_bomb_is_refused_in_one_line_that_says_why(bombs):
    for name, path in bombs.items():
        with pytest.raises(SourceError) as err:
            decode_image(path.read_bytes(), "the photo")
        msg = str(err.value)
        assert "\n" not in msg and "would take" in msg and "the most this decodes is 128 MB" in msg, msg


def test_large_ordinary_pictures_still_decode(tmp_path, scenes):
    photo = cv2.imread(str(scenes / "pyfeat_single_face.jpg"))
    big = cv2.resize(photo, (6000, 4000))
    for name in ("big.jpg", "big.png"):
        cv2.imwrite(str(tmp_path / name), big)
        image = decode_image((tmp_path / name).read_bytes(), name)
        assert max(image.shape[:2]) == 1920


def test_classify_refuses_bombs_under_the_units_memory_limit(tmp_path, bombs, scenes):
    photo = scenes / "pyfeat_single_face.jpg"
    cmd = [*EMOTION_EDGE, "classify", "--json", *map(str, bombs.values()), str(photo)]
    fallback = address_space_of([*EMOTION_EDGE, "classify", "--json", str(photo)]) + UNIT_MEMORY_MAX
    with MemoryLimit(UNIT_MEMORY_MAX, fallback) as limit:
        r = limit.run(cmd, timeout=300)
        peak = limit.peak
    assert r.returncode == 1, (limit.kind, r.returncode, r.stderr[-2000:])   # not killed
    refused = [line for line in r.stderr.splitlines() if "would take" in line]
    assert len(refused) == len(bombs), r.stderr
    assert [json.loads(x)["image"] for x in r.stdout.splitlines()] == [str(photo)]
    assert "Traceback" not in r.stderr
    if peak is not None:
        assert peak < UNIT_MEMORY_MAX


def test_a_model_file_too_large_is_refused_before_it_is_read(tmp_path):
    from edge.classifier import ModelError, load_interpreter
    from edge.litert import MAX_MODEL_BYTES
    big = tmp_path / "huge_int8.tflite"
    with big.open("wb") as f:          # sparse: takes no disk, nor memory unless read
        f.truncate(400 * 1024 * 1024)
    with pytest.raises(ModelError, match="400 MB is larger than any model this loads"):
        load_interpreter(big)
    shutil.copy(MODELS / "emotion_int8.tflite", tmp_path / "ok.tflite")
    assert load_interpreter(tmp_path / "ok.tflite") is not None
    assert MAX_MODEL_BYTES >= 16 * (tmp_path / "ok.tflite").stat().st_size


# --- the running monitor under the unit's limit --------------------------------------------

def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
            timeout: float = 60) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers={"Origin": f"http://127.0.0.1:{port}",
                                                 **(headers or {})})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def huge_body(port: int, path: str, total: int, content_type: str, chunked: bool) -> int | None:
    """Sends up to ``total`` bytes of body; returns the status, or None if the server shut
    the connection before answering."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Content-Type: {content_type}\r\n" + ("Transfer-Encoding: chunked\r\n" if chunked
                                                   else f"Content-Length: {total}\r\n") + "\r\n")
    s.sendall(head.encode())
    block = bytes(1 << 20)
    sent = 0
    try:
        while sent < total:
            s.sendall(b"%x\r\n" % len(block) + block + b"\r\n" if chunked else block)
            sent += len(block)
    except OSError:
        pass                                  # the server closed it: refused mid-way
    try:
        answer = s.recv(4096)
    except OSError:
        answer = b""
    s.close()
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None


def test_the_monitor_refuses_bombs_and_huge_bodies_under_the_units_memory_limit(
        tmp_path, bombs, scenes, videos):
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    pw.chmod(0o600)
    conf = tmp_path / "c.toml"
    conf.write_text(f'[web]\nenabled = true\nport = 0\npassword_file = "{pw}"\n'
                    f'[source]\nuri = "{videos / "pyfeat_single_face.mp4"}"\nloop = true\n'
                    f'[log]\ndir = "{tmp_path / "logs"}"\n[console]\nenabled = false\n')
    cmd = [*EMOTION_EDGE, "run", "--config", str(conf)]
    photo = (scenes / "pyfeat_single_face.jpg").read_bytes()
    with MemoryLimit(UNIT_MEMORY_MAX, fallback_as=4 << 30) as limit:
        proc = limit.popen(cmd, stdout=__import__("subprocess").PIPE,
                           stderr=__import__("subprocess").PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert "web page:" in line, (line, proc.poll())
            port = int(line.rsplit(":", 1)[1].strip("/\n"))
            # before any sign-in: a 300 MB body to /login, declared and chunked
            assert huge_body(port, "/login", 300 << 20, "application/json", chunked=False) == 413
            assert huge_body(port, "/login", 300 << 20, "application/json", chunked=True) in (413, None)
            status, _ = request(port, "POST", "/login", json.dumps({"password": "correct horse"}).encode(),
                                {"Content-Type": "application/json"})
            assert status == 200
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("POST", "/login", body=json.dumps({"password": "correct horse"}),
                      headers={"Content-Type": "application/json",
                               "Origin": f"http://127.0.0.1:{port}"})
            r = c.getresponse()
            r.read()
            cookie = r.headers["Set-Cookie"].split(";")[0]
            answers = {}
            for name, path in bombs.items():
                c.request("POST", "/api/photo", body=path.read_bytes(), headers={
                    "Content-Type": "image/png", "Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"})
                r = c.getresponse()
                answers[name] = (r.status, json.loads(r.read())["error"])
            c.request("POST", "/api/photo", body=photo, headers={
                "Content-Type": "image/jpeg", "Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"})
            r = c.getresponse()
            ok = (r.status, len(json.loads(r.read())["faces"]))
            c.request("GET", "/api/state", headers={"Cookie": cookie})
            r = c.getresponse()
            frames = json.loads(r.read())["health"]["frames"]
            c.close()
            time.sleep(1)
            alive = proc.poll() is None
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=60)
        peak = limit.peak
    assert alive, err[-3000:]
    assert all(status == 400 and "would take" in msg for status, msg in answers.values()), answers
    assert ok == (200, 1) and frames > 0
    if peak is not None:
        assert peak < UNIT_MEMORY_MAX
