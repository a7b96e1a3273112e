"""Whole-pipeline benchmark: frames per second, per-stage medians, peak RSS, time to first result.

    .venv/bin/python bench/pipeline.py [--frames N] [--skip-peer]

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
            "detector": {"kind": detector, "threads": threads},
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


def child_peer(video: str, frames: int) -> dict:
    t_start = time.monotonic()
    import cv2
    import warnings
    warnings.simplefilter("ignore")
    from fer.fer import FER  # fer/__init__ does not export it in 25.10.3

    det = FER(mtcnn=False)
    cap = cv2.VideoCapture(video)
    n, t0, first, cpu = 0, None, None, 0.0
    while n < frames:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        if t0 is None:
            t0, cpu = time.monotonic(), time.process_time()
        det.detect_emotions(frame)
        n += 1
        if first is None:
            first = time.monotonic() - t_start
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu
    return {"fps": n / elapsed, "first_result_s": first, "cpu_ms": cpu / n * 1000,
            "rss_mb": peak_rss_mb(), "frames": n}


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
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
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
        f"medians are over those frames) and tracks coast in between. "
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
