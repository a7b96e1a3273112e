"""YuNet's runtime: OpenCV's DNN (cv2.FaceDetectorYN on the .onnx, what ran until
2026-12-07) against LiteRT (YuNetNet on the .tflite made from it, what runs now), on the
far pass's inputs, each call in a process of its own:

    .venv/bin/python bench/yunet_runtime.py [--calls 25] [--repeats 3]

For each runtime and input: CPU ms per call (the median of ``--calls`` calls after 5 to
warm up; CPU of every thread, so OpenCV's own thread pool counts) and the RSS the detector
added (its load, its buffers and its first calls), in processes interleaved ``--repeats``
times (medians). Each process has run a small LiteRT model first, as the pipeline's
process has (BlazeFace, the classifier): LiteRT's own code is not counted to YuNet.
"Bands of 320 rows" is a variant measured while choosing (edge/detectors/yunet.py). The picture is the issue's six-group frame (30 real faces) scaled as the
far pass scales a 720p / 1080p frame. Writes bench/results/yunet_runtime.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
RESULTS = ROOT / "bench" / "results" / "yunet_runtime.md"
ONNX = ROOT / "models" / "face_detection_yunet_2023mar.onnx"
TFLITE = ROOT / "models" / "face_detection_yunet_2023mar.tflite"
# (label, frame, input size): a 720p frame at 2/3, a 1080p frame capped at 1280x720
INPUTS = (("720p far pass", "720p", (853, 480)), ("1080p far pass", "1080p", (1280, 720)))
RUNTIMES = ("OpenCV DNN, 1 thread", "OpenCV DNN, 2 threads", "LiteRT, one call",
            "LiteRT, 2 bands (default)", "LiteRT, bands of 320 rows")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def child(runtime: str, frame: str, w: int, h: int, calls: int) -> dict:
    import cv2
    import numpy as np

    import classroom_material as material
    from edge.detectors.blazeface import SHORT_RANGE, BlazeFaceDetector
    from edge.detectors.yunet import SPLIT_ABOVE, YuNetNet
    size = material.FRAMES[frame]
    BlazeFaceDetector(SHORT_RANGE, ROOT / "models" / SHORT_RANGE.filename).detect(
        np.zeros((128, 128, 3), np.uint8))
    img = np.ascontiguousarray(cv2.resize(material.six_groups(size).image, (w, h),
                                          interpolation=cv2.INTER_AREA))
    base = _rss_mb()
    if runtime.startswith("OpenCV"):
        cv2.setNumThreads(1 if "1 thread" in runtime else 2)
        det = cv2.FaceDetectorYN.create(str(ONNX), "", (w, h), 0.5, 0.3, 5000)

        def run() -> int:
            return len(det.detect(img)[1])
    else:
        cv2.setNumThreads(1)
        net = YuNetNet(TFLITE, 0.5, 0.3, split_above=2048 if "one call" in runtime else SPLIT_ABOVE)
        net.set_input_size(w, h)
        if "320 rows" in runtime:     # the variant: as many bands of 320 rows as it takes
            _bands_of_320(net, w, h)

        def run() -> int:
            return len(net.detect(img))
    ms, faces = [], 0
    for i in range(calls + 5):
        c = time.process_time()
        faces = run()
        if i >= 5:
            ms.append((time.process_time() - c) * 1000)
    return {"ms": statistics.median(ms), "rss": _rss_mb() - base, "faces": faces}


def _bands_of_320(net, w: int, h: int) -> None:
    """``net`` set to run bands of 320 rows overlapping by 128, evenly spread."""
    from edge.detectors.yunet import BAND_OVERLAP, DIVISOR
    ph, rows = -(-h // DIVISOR) * DIVISOR, 320
    n = -(-(ph - BAND_OVERLAP) // (rows - BAND_OVERLAP))
    tops = [(ph - rows) * i // (n - 1) // DIVISOR * DIVISOR for i in range(n)]
    cuts = [0.0] + [(tops[i + 1] + tops[i] + rows) / 2 for i in range(n - 1)] + [ph]
    net._interp.resize_tensor_input(net._input, [1, rows, -(-w // DIVISOR) * DIVISOR, 3])
    net._interp.allocate_tensors()
    net._interp.tensor(net._input)()[:] = 0
    outs = {int(o["shape"][1]): o["index"] for o in net._interp.get_output_details()}
    net._outputs = [(s, outs[rows // s]) for s in (8, 16, 32)]
    net._rows, net._bands = rows, [(tops[i], cuts[i], cuts[i + 1]) for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        runtime, frame, w, h, calls = args.child
        print(json.dumps(child(runtime, frame, int(w), int(h), int(calls))))
        return 0
    res: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeats):
        for label, frame, (w, h) in INPUTS:
            for runtime in RUNTIMES:
                out = subprocess.run([sys.executable, __file__, "--child", runtime, frame, str(w),
                                      str(h), str(args.calls)], capture_output=True, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"})
                if out.returncode:
                    sys.exit(f"{runtime} {label}: {out.stderr.strip()[-400:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                res.setdefault((label, runtime), []).append(r)
                print(label, runtime, r, flush=True)
    lines = ["# YuNet: OpenCV's DNN against LiteRT", "",
             f"`bench/yunet_runtime.py --calls {args.calls} --repeats {args.repeats}`, "
             f"{time.strftime('%Y-%m-%d %H:%M')}, on this shared 2-core x86_64 machine (load "
             f"average {os.getloadavg()[0]:.1f} at the end: compare within the table). Each "
             "cell: the median over the repeats (each its own process) of the median CPU ms "
             "of a call, and of the RSS the detector added; faces found on the six-group "
             "frame (30 real faces) scaled as the far pass scales it.", "",
             "| input | runtime | CPU ms a call | RSS added MB | faces |", "|---|---|---|---|---|"]
    for label, _, (w, h) in INPUTS:
        for runtime in RUNTIMES:
            rs = res[(label, runtime)]
            lines.append(f"| {label} ({w}x{h}) | {runtime} | "
                         f"{statistics.median(r['ms'] for r in rs):.1f} | "
                         f"{statistics.median(r['rss'] for r in rs):.1f} | "
                         f"{'/'.join(str(r['faces']) for r in rs)} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
