"""blazeface-multiscale's far pass: BlazeFace short range (the default) against YuNet
(``[detector.far] model = "face_detection_yunet_2023mar.tflite"``; the .onnx through
OpenCV when far_pass.md was written), in one run:

- the pipeline on the 30-face clips at 720p and 1080p (bench/pipeline.py's child process,
  detect and classify 1 frame in 3, one LiteRT thread), fps, CPU and peak RSS, interleaved;
- the detector's recall on a photo (near pass, far pass, close check) on the mosaics of
  bench/classroom_material.py at 24-48 px and the six-group frame;
- the tracks the 3x3 classroom video gives for its 15 people;
- the kiosk: the pipeline on the bundled sample clip (bench/pipeline.py's default row),
  and the people each real clip of tests/test_track_identity.py gives, the no-face clips
  included (a false face there is a track).

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
FAR = {"short range": "face_detection_short_range.tflite",
       "YuNet (default)": "face_detection_yunet_2023mar.tflite"}
KIOSK = ROOT / "edge" / "samples" / "demo_pexels_wolfgang_langer.mp4"
# tests/test_track_identity.py's clips and the people each shows
PEOPLE = {"intel_face-demographics-walking-and-pause.mp4": "3",
          "intel_head-pose-face-detection-female-and-male.mp4": "2-3",
          "intel_head-pose-face-detection-female.mp4": "1",
          "intel_head-pose-face-detection-male.mp4": "1",
          "pyfeat_WolfgangLanger_Pexels.mp4": "1", "pyfeat_face_noface.mov": "1",
          "pyfeat_no_face.mp4": "0", "pyfeat_single_face.mp4": "1"}


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


def kiosk_section() -> list[str]:
    out = ["", "The people each real clip gives (tracks; tests/test_track_identity.py's clips, "
           "every frame analysed):", "",
           "| clip | people | " + " | ".join(FAR) + " |", "|---|---|" + "---|" * len(FAR)]
    for clip, people in PEOPLE.items():
        out.append(f"| {clip} | {people} | " + " | ".join(
            str(classroom_tracks(material.SHARED / "video" / clip, m)) for m in FAR.values())
            + " |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    out = [f"# The far pass: YuNet or short range\n",
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
            for name, model in FAR.items():     # the kiosk: bench/pipeline.py's default row
                rows.setdefault(("kiosk 640x360", name), []).append(
                    child_speed(KIOSK, args.frames * 2, model))
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
        out += kiosk_section()
    text = "\n".join(out) + "\n"
    print(text)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
