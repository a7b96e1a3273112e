"""blazeface-multiscale's far pass: BlazeFace short range (the default) against YuNet
(``[detector.far] model = "face_detection_yunet_2023mar.onnx"``), in one run:

- the pipeline on the 30-face clips at 720p and 1080p (bench/pipeline.py's child process,
  detect and classify 1 frame in 3, one LiteRT thread), fps, CPU and peak RSS, interleaved;
- the detector's recall on a photo (near pass, far pass, close check) on the mosaics of
  bench/classroom_material.py at 24-48 px and the six-group frame;
- the tracks the 3x3 classroom video gives for its 15 people.

Prints the tables and writes bench/results/far_pass.md.
    python bench/far_pass.py [--frames 300] [--rounds 2]
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
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
import classroom_material as material  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "far_pass.md"
FAR = {"short range (default)": "", "YuNet": "face_detection_yunet_2023mar.onnx"}


def child_speed(clip: Path, frames: int, model: str) -> dict:
    code = ("import json, sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/bench']; "
            "import pipeline; print(json.dumps(pipeline.child_edge(sys.argv[2], 1, "
            "int(sys.argv[3]), 'blazeface-multiscale', 3, 2)))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(clip), str(frames)],
                         capture_output=True, text=True, check=True, timeout=1800,
                         env={**os.environ, "BENCH_FAR_MODEL": model})
    return json.loads(out.stdout.strip().splitlines()[-1])


def recall(model: str) -> list[str]:
    from edge.detectors import DetectorConfig, create_detector
    from edge.detectors.far import FarConfig
    det = create_detector(DetectorConfig(far=FarConfig(model=model)))
    cells = []
    try:
        for px in (24, 32, 40, 48):
            found = total = 0
            for size in material.FRAMES.values():
                frame = material.mosaic(px, size)
                hit, _ = material.match([d.box for d in det.detect(frame.image)], frame.faces)
                found, total = found + sum(hit), total + len(frame.faces)
            cells.append(f"{found / total:.2f} ({found}/{total})")
        six = material.six_groups()
        hit, extra = material.match([d.box for d in det.detect(six.image)], six.faces)
        cells.append(f"{sum(hit)}/30, +{extra}")
    finally:
        det.close()
    return cells


def classroom_tracks(clip: Path, model: str) -> int:
    from edge import config
    from edge.pipeline import Monitor
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.from_dict({"source": {"uri": str(clip), "realtime": False},
                                "log": {"dir": tmp}, "console": {"enabled": False},
                                "monitor": {"summary_interval": 3600},
                                "detector": {"far": {"model": model}}})
        Monitor(cfg).run()
        lines = (Path(tmp) / "events.jsonl").read_text().splitlines()
    return len({r["track"] for r in map(json.loads, lines) if r["event"] == "face_appeared"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    out = [f"# The far pass: short range or YuNet\n",
           f"`bench/far_pass.py --frames {args.frames} --rounds {args.rounds}`, "
           f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f} at "
           "the start. Compare within a table.\n",
           "| frame | far pass | fps (each round) | CPU ms/frame | detect ms | peak RSS MB |",
           "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        rows: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.rounds):
            for res in ("720p", "1080p"):
                clip = Path(tmp) / f"crowd30_{res}.mp4"
                if not clip.exists():
                    material.crowd_clip(30, material.FRAMES[res], clip)
                for name, model in FAR.items():
                    rows.setdefault((res, name), []).append(child_speed(clip, args.frames, model))
        for (res, name), runs in rows.items():
            fps = ", ".join(f"{r['fps']:.1f}" for r in runs)
            out.append(f"| {res} | {name} | {fps} | "
                       f"{min(r['cpu_ms'] for r in runs):.2f} | "
                       f"{min(r['stages_ms']['detect'] for r in runs):.1f} | "
                       f"{max(r['rss_mb'] for r in runs):.0f} |")
        out += ["", "Recall of the detector on a photo (near pass, far pass, close check), "
                "720p and 1080p mosaics together:", "",
                "| far pass | 24 px | 32 px | 40 px | 48 px | six groups |", "|---|---|---|---|---|---|"]
        for name, model in FAR.items():
            out.append(f"| {name} | " + " | ".join(recall(model)) + " |")
        clip = material.classroom_clip(Path(tmp) / "classroom.mp4")
        out += ["", f"The classroom video ({material.CLASSROOM_PEOPLE} people): "
                + ", ".join(f"{name} {classroom_tracks(clip, model)} tracks"
                            for name, model in FAR.items()) + "."]
    text = "\n".join(out) + "\n"
    print(text)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
