"""Whole-pipeline benchmark: frames per second, per-stage medians, peak RSS, time to first result.

    .venv/bin/python bench/pipeline.py [--frames N] [--skip-peer]
    .venv/bin/python bench/pipeline.py --web [--web-seconds S] [--repeats R]

``--web`` runs only the web page's rows (bench/results/web.md): the default pipeline with
the page off, on with no viewer, and with 1 and 3 viewers, each a real HTTP client in its
own process pulling the page's event stream and its live picture (bench/web_client.py).

Each configuration runs in its own process (so peak RSS and start-up time are its own) over
real video: the bundled Pexels clip (640x360) and the same frames letterboxed to 640x480.
The peer is the `fer` package's FER(mtcnn=False).detect_emotions on the same frames, in the
same run (bench environment only: pip install fer==25.10.3 --no-deps, plus pandas and
setuptools<81 for its imports). Writes bench/results/pipeline.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pipeline.md"
CLIP = ROOT / "edge" / "samples" / "demo_pexels_wolfgang_langer.mp4"

sys.path.insert(0, str(ROOT))
from edge.detectors import DetectorConfig  # noqa: E402
from edge.sources import SourceConfig  # noqa: E402
from edge.tracker import TrackerConfig  # noqa: E402

DEFAULT_DETECTOR, DEFAULT_EVERY = DetectorConfig().kind, TrackerConfig().detect_every
DEFAULT_AHEAD = SourceConfig().read_ahead


def letterbox_clip(src: Path, dst: Path, size=(640, 480)) -> Path:
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        canvas = np.zeros((size[1], size[0], 3), np.uint8)
        y = (size[1] - frame.shape[0]) // 2
        canvas[y:y + frame.shape[0]] = frame
        out.write(canvas)
    out.release()
    return dst


# --- child processes -----------------------------------------------------------------------

def child_edge(video: str, threads: int, frames: int, detector: str, every: int,
               ahead: int) -> dict:
    t_start = time.monotonic()
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from edge import config
    from edge.pipeline import Monitor

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.from_dict({
            "source": {"uri": video, "realtime": False, "loop": True, "read_ahead": ahead},
            "detector": {"kind": detector, "threads": threads,
                         # bench/classroom.py --only int8: the far pass's model, float or int8
                         **({"far": {"model": os.environ["BENCH_FAR_MODEL"]}}
                            if os.environ.get("BENCH_FAR_MODEL") else {})},
            "classifier": {"threads": threads},
            "tracker": {"detect_every": every},
            "monitor": {"max_frames": frames},
            "log": {"dir": tmp},
            "gpio": {"enabled": True, "pin_factory": "mock"},
            "console": {"enabled": False}})
        monitor = Monitor(cfg, profile=True)
        cpu = time.process_time()
        st = monitor.run()
        cpu = time.process_time() - cpu
    first = st.started - t_start + (st.first_result_s or 0)
    return {"fps": st.fps, "first_result_s": first, "cpu_ms": cpu / st.frames * 1000,
            # detect and classify run on every k-th frame only: their median is over those.
            "stages_ms": {k: float(np.median(v[::every] if k in ("detect", "classify") else v)
                                   * 1000) for k, v in st.stage_s.items()},
            "rss_mb": peak_rss_mb(), "frames": st.frames}


def child_web(video: str, viewers: int, seconds: float) -> dict:
    """The default pipeline for ``seconds`` with the page off (viewers < 0) or on, with
    ``viewers`` clients; fps is taken over the time all of them are connected."""
    import threading

    import numpy as np

    from edge import config
    from edge.events import FrameResult
    from edge.pipeline import Monitor
    from edge.sinks.base import Sink
    from edge.sinks.web import WebSink

    class Clock(Sink):
        def __init__(self):
            self.ticks: list[float] = []

        def update(self, result: FrameResult) -> None:
            self.ticks.append(time.perf_counter())

        def handle(self, events) -> None: ...

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.from_dict({
            "source": {"uri": video, "realtime": False, "loop": True},
            "log": {"dir": tmp}, "console": {"enabled": False},
            "gpio": {"enabled": True, "pin_factory": "mock"},
            "web": {"enabled": viewers >= 0, "port": 0}})
        monitor = Monitor(cfg)
        clock = Clock()
        monitor.sinks.append(clock)
        thread = threading.Thread(target=monitor.run)
        thread.start()
        web = next((s for s in monitor.sinks if isinstance(s, WebSink)), None)
        clients = []
        if web is not None:
            while not web.url:
                time.sleep(0.01)
            clients = [subprocess.Popen([sys.executable, str(ROOT / "bench" / "web_client.py"),
                                         web.url, str(seconds + 1)], stdout=subprocess.PIPE,
                                        text=True) for _ in range(max(viewers, 0))]
            while web.hub.video_viewers < viewers:
                time.sleep(0.01)
        else:
            while not clock.ticks:
                time.sleep(0.01)
        start, cpu = len(clock.ticks), time.process_time()
        time.sleep(seconds)
        end, cpu = len(clock.ticks), time.process_time() - cpu
        ticks = clock.ticks[start:end]
        monitor.stop("bench")
        thread.join()
        got = [json.loads(c.communicate()[0].strip().splitlines()[-1]) for c in clients]
    fps = (len(ticks) - 1) / (ticks[-1] - ticks[0])
    delays = [g["delay_ms_median"] for g in got if g["delay_ms_median"] is not None]
    return {"fps": fps, "rss_mb": peak_rss_mb(), "frames": len(ticks),
            "cpu_ms": cpu / max(1, end - start) * 1000,
            "viewer_fps": float(np.median([g["fps"] for g in got])) if got else None,
            "delay_ms": float(np.median(delays)) if delays else None,
            "delay_ms_max": max((g["delay_ms_max"] for g in got), default=None)}


def web_rows(seconds: float, repeats: int) -> int:
    """The web page's cost: medians over ``repeats`` runs of each configuration,
    interleaved so that drift in the machine's speed hits every configuration alike."""
    import numpy as np

    configs = [("page off", -1), ("page on, no viewer", 0), ("1 viewer", 1), ("3 viewers", 3)]
    runs: dict[str, list[dict]] = {name: [] for name, _ in configs}
    for r in range(repeats):
        for name, viewers in configs:
            res = run_child("web", str(CLIP), str(viewers), str(seconds))
            if isinstance(res, str):
                print(name, "failed:", res, flush=True)
                return 1
            runs[name].append(res)
            print(f"run {r + 1}: {name}: {res['fps']:.1f} fps, {res['rss_mb']:.0f} MB",
                  res["delay_ms"] and f"delay {res['delay_ms']:.0f} ms", flush=True)
    med = lambda name, key: float(np.median([x[key] for x in runs[name]]))  # noqa: E731
    base_fps, base_rss = med("page off", "fps"), med("page off", "rss_mb")
    base_cpu = med("page off", "cpu_ms")
    lines = ["# Web page benchmark", "",
             f"`.venv/bin/python bench/pipeline.py --web --web-seconds {seconds:g} --repeats "
             f"{repeats}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}. The "
             "default pipeline (blazeface-full, detect 1/3) on the bundled clip (640x360) as fast "
             "as it runs, in its own process per row; each viewer is a separate process reading "
             "the page's event stream and its MJPEG picture (capped at [web] max_fps = 10). fps is "
             "the frame loop's over the seconds all viewers were connected, and CPU ms/frame the "
             "monitor process's CPU time (every thread: capture, loop, JPEG, HTTP) over those "
             "frames, which depends less on what else the machine runs; delay is a picture's "
             "receipt time minus the moment the frame loop handed the frame over (encoding and "
             f"transfer included). Medians of {repeats} interleaved runs; cost is against 'page "
             "off' in the same run.", "",
             "| configuration | frame loop fps | fps cost | CPU ms/frame | CPU cost | peak RSS MB | "
             "extra RSS MB | pictures/s per viewer | delay ms (median) | delay ms (worst) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, _ in configs:
        fps, rss, cpu = med(name, "fps"), med(name, "rss_mb"), med(name, "cpu_ms")
        has = runs[name][0]["delay_ms"] is not None
        worst = max(x["delay_ms_max"] for x in runs[name]) if has else None
        lines.append(f"| {name} | {fps:.1f} | {100 * (1 - fps / base_fps):+.1f}% | {cpu:.2f} | "
                     f"{100 * (cpu / base_cpu - 1):+.1f}% | {rss:.0f} | "
                     f"{rss - base_rss:+.0f} | "
                     + (f"{med(name, 'viewer_fps'):.1f} | {med(name, 'delay_ms'):.0f} | "
                        f"{worst:.0f} |" if has else "- | - | - |"))
    table = "\n".join(lines) + "\n"
    print(table)
    out = RESULTS.with_name("web.md")
    out.write_text(table)
    return 0


def child_peer(video: str, frames: int) -> dict:
    t_start = time.monotonic()
    import cv2
    import warnings
    warnings.simplefilter("ignore")
    from fer.fer import FER  # fer/__init__ does not export it in 25.10.3

    det = FER(mtcnn=False)
    cap = cv2.VideoCapture(video)
    n, t0, first, cpu, faces = 0, None, None, 0.0, 0
    while n < frames:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        if t0 is None:
            t0, cpu = time.monotonic(), time.process_time()
        faces += len(det.detect_emotions(frame))   # its cost grows with the faces it finds
        n += 1
        if first is None:
            first = time.monotonic() - t_start
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu
    return {"fps": n / elapsed, "first_result_s": first, "cpu_ms": cpu / n * 1000,
            "rss_mb": peak_rss_mb(), "frames": n, "faces": faces / n}


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(*args: str, threads: int = 1) -> dict | str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                       text=True, env=env, timeout=1800)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        return (r.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(lines[-1])


# --- the table -------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=480)
    ap.add_argument("--peer-frames", type=int, default=100)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--web", action="store_true", help="only the web page's rows (web.md)")
    ap.add_argument("--web-seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child and args.child[0] == "web":
        print(json.dumps(child_web(args.child[1], int(args.child[2]), float(args.child[3]))))
        return 0
    if args.web:
        return web_rows(args.web_seconds, args.repeats)
    if args.child:
        kind, *rest = args.child
        out = child_edge(rest[0], int(rest[1]), int(rest[2]), rest[3], int(rest[4]),
                         int(rest[5])) \
            if kind == "edge" else child_peer(rest[0], int(rest[1]))
        print(json.dumps(out))
        return 0

    import cv2
    with tempfile.TemporaryDirectory() as tmp:
        clips = {"Pexels 640x360": str(CLIP),
                 "640x480": str(letterbox_clip(CLIP, Path(tmp) / "clip480.mp4"))}
        rows = []
        for clip_name, video in clips.items():
            # (detector, detect every k-th frame, threads, read-ahead); the defaults first.
            d, k, a = DEFAULT_DETECTOR, DEFAULT_EVERY, DEFAULT_AHEAD
            variants = [(d, k, 1, a), (d, k, 2, a), (d, k, 1, 0),
                        ("blazeface-full", 1, 1, a), ("blazeface-full", 1, 2, a)]
            if clip_name.startswith("Pexels"):
                variants += [("blazeface-full", 2, 1, a), ("blazeface-full", 4, 1, a),
                             ("blazeface-short", 3, 1, a), ("blazeface-short", 1, 1, a),
                             ("haar", 1, 1, a)]
            for detector, every, threads, ahead in variants:
                name = f"emotion-edge {detector} " + \
                    ("every frame" if every == 1 else f"detect 1/{every}") + \
                    (", capture in the loop" if not ahead else "") + \
                    (" (default)" if (detector, every, ahead) == (d, k, a) else "")
                res = run_child("edge", video, str(threads), str(args.frames), detector,
                                str(every), str(ahead), threads=threads)
                rows.append((clip_name, name, threads, res))
                print(clip_name, name, threads, res if isinstance(res, str) else
                      f"{res['fps']:.1f} fps", flush=True)
            if not args.skip_peer:
                res = run_child("peer", video, str(args.peer_frames), threads=1)
                rows.append((clip_name, "peer: fer 25.10.3 FER(mtcnn=False)", 1, res))
                print(clip_name, "peer", res if isinstance(res, str) else f"{res['fps']:.1f} fps",
                      flush=True)

    lines = [
        "# Pipeline benchmark", "",
        f"`{' '.join(['.venv/bin/python', 'bench/pipeline.py'] + sys.argv[1:])}` on "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}; {args.frames} frames per "
        f"row (peer {args.peer_frames}), medians per stage. Threads = LiteRT threads per model. "
        f"By default a capture thread decodes up to {DEFAULT_AHEAD} frames ahead (OpenCV and "
        f"LiteRT release the GIL, so decoding overlaps inference): capture ms is then the frame "
        f"loop's wait for a frame, and CPU ms/frame (process CPU time, all threads, over frames) "
        f"shows the whole cost; 'capture in the loop' rows decode in the frame loop. In "
        f"'detect 1/k' rows the detector and the classifier run on every k-th frame (their "
        f"medians are over those frames) and tracks coast in between. The faces are read "
        f"on a second thread ([classifier] background): classify ms is the loop's part, "
        f"cutting the crops; the reads show in CPU ms/frame. "
        f"OpenCV {cv2.__version__}.", "",
        "| clip | pipeline | threads | fps | x peer | CPU ms/frame | capture ms | detect ms "
        "| classify ms | track ms | sinks ms | peak RSS MB | first result s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    peer_fps = {c: r["fps"] for c, n, _, r in rows if n.startswith("peer") and isinstance(r, dict)}
    for clip_name, name, threads, res in rows:
        if isinstance(res, str):
            lines.append(f"| {clip_name} | {name} | {threads} | failed: {res} ||||||||||")
            continue
        s = res.get("stages_ms", {})
        ratio = f"{res['fps'] / peer_fps[clip_name]:.1f}" if clip_name in peer_fps else "-"
        cell = lambda k: f"{s[k]:.2f}" if k in s else "-"  # noqa: E731
        lines.append(f"| {clip_name} | {name} | {threads} | {res['fps']:.1f} | {ratio} | "
                     f"{res['cpu_ms']:.2f} | {cell('capture')} | {cell('detect')} | "
                     f"{cell('classify')} | "
                     f"{cell('track')} | {cell('sinks')} | {res['rss_mb']:.0f} | "
                     f"{res['first_result_s']:.2f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
