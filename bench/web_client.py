"""A viewer of the web page for the benchmark: opens the page's two streams (the JSON event
stream and the MJPEG picture, as the page does) and reads them as fast as it can.

    python bench/web_client.py URL SECONDS

Prints one JSON line: pictures received and their delay (receipt time minus the time the
frame loop handed the frame over, from each part's X-Frame-Wall header), in ms.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request


def read_events(url: str, until: float) -> None:
    with urllib.request.urlopen(url + "api/stream", timeout=10) as r:
        while time.time() < until and r.read(4096):
            pass


def main() -> int:
    url, seconds = sys.argv[1], float(sys.argv[2])
    until = time.time() + seconds
    threading.Thread(target=read_events, args=(url, until), daemon=True).start()
    delays = []
    with urllib.request.urlopen(url + "video.mjpg", timeout=10) as r:
        while time.time() < until:
            line = r.readline()
            if not line:
                break
            if line.startswith(b"X-Frame-Wall:"):
                wall = float(line.split(b":", 1)[1])
            elif line.startswith(b"Content-Length:"):
                size = int(line.split(b":", 1)[1])
            elif line == b"\r\n" and "size" in locals():
                r.read(size)
                delays.append((time.time() - wall) * 1000)
                del size
    delays.sort()
    print(json.dumps({"pictures": len(delays), "fps": len(delays) / seconds,
                      "delay_ms_median": delays[len(delays) // 2] if delays else None,
                      "delay_ms_max": delays[-1] if delays else None}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
