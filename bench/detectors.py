"""Benchmark the face detectors on the real scenes and videos in shared/.

    .venv/bin/python bench/detectors.py [--min-face N] [--out bench/results/detectors.md]

Scenes (data/scenes, face counts in manifest.json; there are no boxes, so detections are
matched to faces by count): per image detected vs expected, recall = sum(min(det, exp)) /
sum(exp), false positives = sum(max(0, det - exp)).
Videos (data/video, every frame): frames with a face, mean faces per frame, detections on
the cartoon (must be ~0), and the median ms per detect() call at 1 thread (OpenCV and
LiteRT both limited to one), by frame size.
Prints the tables and writes them to bench/results/detectors.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edge.detectors import DetectorConfig, FaceDetector, create_detector  # noqa: E402
from edge.detectors import haar  # noqa: E402

SHARED = Path(os.environ.get("EMOTION_SHARED_DIR", ROOT.parent / "shared")) / "data"
NO_FACE_VIDEO = "pyfeat_no_face.mp4"
# pyfeat_face_noface.mov shows a face in frames 0..71 (checked by eye), then a cartoon: the
# rest counts with NO_FACE_VIDEO as cartoon frames, where every detection is a false one.
FACE_UNTIL = {"pyfeat_face_noface.mov": 72}
# What a person sees in each video (from shared/README.md and by eye): faces per frame.
VIDEO_EXPECT = {
    "intel_face-demographics-walking-and-pause.mp4": "1-3 small, walking",
    "intel_head-pose-face-detection-female-and-male.mp4": "2, turning",
    "intel_head-pose-face-detection-female.mp4": "1, turning",
    "intel_head-pose-face-detection-male.mp4": "1, turning",
    "pyfeat_WolfgangLanger_Pexels.mp4": "1 close-up",
    "pyfeat_face_noface.mov": "1 in frames 0-71, then 0 (cartoon)",
    "pyfeat_no_face.mp4": "0 (cartoon)",
    "pyfeat_single_face.mp4": "1",
}


@dataclass
class Variant:
    label: str
    make: Callable[[], FaceDetector]


@dataclass
class Result:
    scene_det: dict[str, int] = field(default_factory=dict)
    video_found: dict[str, int] = field(default_factory=dict)   # frames with >= 1 face
    video_faces: dict[str, int] = field(default_factory=dict)   # all detections
    video_frames: dict[str, int] = field(default_factory=dict)
    face_found: int = 0      # frames that show a face (by eye) where one was found
    face_frames: int = 0
    cartoon_dets: int = 0    # detections on cartoon frames: all false
    cartoon_frames: int = 0
    ms_by_size: dict[str, list[float]] = field(default_factory=dict)      # wall clock
    cpu_ms_by_size: dict[str, list[float]] = field(default_factory=dict)  # process CPU time


def variants(min_face: int) -> list[Variant]:
    """Each detector at a few thresholds; the shipped defaults are marked."""
    default = DetectorConfig()
    out = []
    for sf, mn in ((1.1, 3), (1.1, 5), (1.1, 8), (1.2, 5), (1.2, 8)):
        mark = " (haar default)" if (sf, mn) == (haar.SCALE_FACTOR, haar.MIN_NEIGHBORS) else ""
        out.append(Variant(f"haar sf={sf} nb={mn}{mark}",
                           lambda sf=sf, mn=mn: haar.HaarDetector(
                               min_face=min_face, scale_factor=sf, min_neighbors=mn)))
    for kind in ("blazeface-short", "blazeface-full"):
        for score in (0.5, 0.6, 0.65, 0.75):
            cfg = DetectorConfig(kind=kind, min_score=score, min_face=min_face, threads=1)
            mark = " (default)" if (kind, score) == (default.kind, default.min_score) else ""
            out.append(Variant(f"{kind} s>={score}{mark}", lambda cfg=cfg: create_detector(cfg)))
    return out


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def run(min_face: int) -> tuple[list[Variant], dict[str, Result], dict, list[str]]:
    manifest = json.loads((SHARED / "scenes" / "manifest.json").read_text())
    scenes = {k: v for k, v in manifest.items() if not k.startswith("_")}
    vs = variants(min_face)
    dets = {v.label: v.make() for v in vs}
    res = {v.label: Result() for v in vs}

    for name in scenes:
        img = cv2.imread(str(SHARED / "scenes" / name))
        if img is None:
            raise SystemExit(f"cannot read scene {name}")
        for label, det in dets.items():
            res[label].scene_det[name] = len(det.detect(img))

    videos = sorted(p.name for p in (SHARED / "video").iterdir())
    for vname in videos:
        frames = read_video(SHARED / "video" / vname)
        if not frames:
            print(f"warning: {vname}: OpenCV decoded no frames; skipped", file=sys.stderr)
            continue
        size = f"{frames[0].shape[1]}x{frames[0].shape[0]}"
        for label, det in dets.items():
            r = res[label]
            ms = r.ms_by_size.setdefault(size, [])
            cpu_ms = r.cpu_ms_by_size.setdefault(size, [])
            found = faces = 0
            face_until = 0 if vname == NO_FACE_VIDEO else FACE_UNTIL.get(vname, len(frames))
            for i, frame in enumerate(frames):
                c0, t0 = time.process_time(), time.perf_counter()
                n = len(det.detect(frame))
                ms.append((time.perf_counter() - t0) * 1e3)
                cpu_ms.append((time.process_time() - c0) * 1e3)
                found += n > 0
                faces += n
                if i < face_until:
                    r.face_frames += 1
                    r.face_found += n > 0
                else:
                    r.cartoon_frames += 1
                    r.cartoon_dets += n
            r.video_found[vname], r.video_faces[vname] = found, faces
            r.video_frames[vname] = len(frames)
        print(f"  {vname}: {len(frames)} frames done", file=sys.stderr)
    return vs, res, scenes, videos


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def report(vs, res, scenes, videos, min_face: int) -> str:
    labels = [v.label for v in vs]
    exp_total = sum(s["faces"] for s in scenes.values())
    no_face_scenes = [n for n, s in scenes.items() if s["faces"] == 0]
    sizes = sorted({s for r in res.values() for s in r.ms_by_size},
                   key=lambda s: int(s.split("x")[0]))

    out = ["# Face detectors on the shared scenes and videos", "",
           f"Generated by `.venv/bin/python bench/detectors.py --min-face {min_face}` on "
           f"{time.strftime('%Y-%m-%d %H:%M')} ({platform.machine()}, {os.cpu_count()} cores, "
           f"load average {os.getloadavg()[0]:.1f} at the end: a training job and other work "
           "shared the CPU, so wall-clock times are pessimistic; the CPU time of the process is "
           "the fairer number, and rows compare). OpenCV "
           f"{cv2.__version__}, 1 thread for OpenCV and LiteRT. min_face = {min_face} px for all.",
           "", "## Summary", ""]
    rows = []
    for label in labels:
        r = res[label]
        hit = sum(min(r.scene_det[n], s["faces"]) for n, s in scenes.items())
        fp = sum(max(0, r.scene_det[n] - s["faces"]) for n, s in scenes.items())
        fp0 = sum(r.scene_det[n] for n in no_face_scenes)
        ms = [f"{statistics.median(r.ms_by_size[s]):.1f} / "
              f"{statistics.median(r.cpu_ms_by_size[s]):.1f}" for s in sizes]
        rows.append([label, f"{hit}/{exp_total} = {hit / exp_total:.2f}", fp, fp0,
                     f"{r.face_found}/{r.face_frames} = {r.face_found / max(r.face_frames, 1):.2f}",
                     f"{r.cartoon_dets} ({r.video_faces.get(NO_FACE_VIDEO, 0)})",
                     *ms])
    cartoon_frames = res[labels[0]].cartoon_frames
    out += table(["detector", "scene recall", "scene FP", f"FP on the {len(no_face_scenes)} "
                  "no-face scenes", "video frames with a face: found", f"detections on the "
                  f"{cartoon_frames} cartoon frames ({NO_FACE_VIDEO} alone)",
                  *[f"ms {s}: wall / CPU (median)" for s in sizes]], rows)

    out += ["", "## Scenes: detected per image (expected in the second column)", ""]
    rows = [[n, s["faces"], s["kind"], *[res[label].scene_det[n] for label in labels]]
            for n, s in scenes.items()]
    out += table(["image", "exp", "what", *labels], rows)

    out += ["", "## Videos: frames with a face / frames, mean faces per frame", ""]
    rows = []
    for v in videos:
        cells = []
        for label in labels:
            r = res[label]
            n = r.video_frames.get(v, 0)
            cells.append(f"{r.video_found.get(v, 0)}/{n}, {r.video_faces.get(v, 0) / max(n, 1):.2f}")
        rows.append([v, VIDEO_EXPECT.get(v, "?"), *cells])
    out += table(["video", "faces (by eye)", *labels], rows)
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min-face", type=int, default=DetectorConfig().min_face,
                    help="minimum face side in px for every detector (default: the config's)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "detectors.md")
    args = ap.parse_args()
    if not (SHARED / "scenes").is_dir():
        print(f"error: {SHARED / 'scenes'} not found (set EMOTION_SHARED_DIR)", file=sys.stderr)
        return 1
    cv2.setNumThreads(1)
    vs, res, scenes, videos = run(args.min_face)
    text = report(vs, res, scenes, videos, args.min_face)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
