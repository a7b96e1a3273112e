"""Does detecting every k-th frame lose faces? Tracks and emotions at k = 1..4 on real videos.

    .venv/bin/python bench/detect_every.py

With ``[tracker] detect_every = k`` the detector and the classifier run on every k-th frame
and tracks coast (boxes on a velocity guess, emotions carried) in between. Each video in
``../shared/data/video`` runs once per k, every frame processed (no real-time dropping);
every frame's faces are compared with the k = 1 run's faces on the same frame:

- faces kept: face-frames reported at k / face-frames at k = 1;
- count agrees: frames whose number of faces equals the k = 1 number;
- box IoU: median IoU of matched faces (greedy by IoU, matched when IoU >= 0.3);
- emotion agrees: matched faces showing the same smoothed emotion as at k = 1.

Writes bench/results/detect_every.md.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import config  # noqa: E402
from edge.events import FrameResult  # noqa: E402
from edge.pipeline import Monitor  # noqa: E402
from edge.sinks.base import Sink  # noqa: E402
from edge.tracker import iou_matrix  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "detect_every.md"
EVERY = (1, 2, 3, 4)


class FrameLog(Sink):
    """Keeps each frame's (box, emotion) pairs; counts tracks as they appear."""

    name = "frames"

    def __init__(self):
        self.frames: list[list[tuple[tuple[int, int, int, int], str]]] = []
        self.tracks = 0

    def update(self, result: FrameResult) -> None:
        self.frames.append([(f.box, f.emotion) for f in result.faces])

    def handle(self, events) -> None:
        self.tracks += sum(e.kind == "face_appeared" for e in events)


def run(video: Path, every: int) -> FrameLog:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.from_dict({
            "source": {"uri": str(video), "realtime": False},
            "tracker": {"detect_every": every},
            "log": {"enabled": False, "dir": tmp},
            "console": {"enabled": False}})
        frames = FrameLog()
        Monitor(cfg, sinks=[frames]).run()
        return frames


def compare(ref: FrameLog, got: FrameLog) -> dict:
    n = min(len(ref.frames), len(got.frames))
    ref_faces = sum(len(f) for f in ref.frames[:n])
    got_faces = sum(len(f) for f in got.frames[:n])
    same_count = sum(len(a) == len(b) for a, b in zip(ref.frames[:n], got.frames[:n]))
    ious, same_emotion = [], []
    for a, b in zip(ref.frames[:n], got.frames[:n]):
        if not a or not b:
            continue
        m = iou_matrix(np.array([x[0] for x in a], float), np.array([x[0] for x in b], float))
        while m.size and m.max() >= 0.3:
            i, j = np.unravel_index(m.argmax(), m.shape)
            ious.append(m[i, j])
            same_emotion.append(a[i][1] == b[j][1])
            m[i, :], m[:, j] = -1, -1
    return {"frames": n, "kept": got_faces / ref_faces if ref_faces else float("nan"),
            "ref_faces": ref_faces, "count": same_count / n if n else float("nan"),
            "iou": float(np.median(ious)) if ious else float("nan"),
            "emotion": float(np.mean(same_emotion)) if same_emotion else float("nan")}


def pct(v: float) -> str:
    return "-" if v != v else f"{100 * v:.1f}%"  # v != v: NaN, nothing to compare


def num(v: float) -> str:
    return "-" if v != v else f"{v:.2f}"


def main() -> int:
    shared = Path(os.environ.get("EMOTION_SHARED_DIR", ROOT.parent / "shared"))
    videos = sorted(p for p in (shared / "data" / "video").iterdir()
                    if p.suffix in (".mp4", ".mov"))
    lines = ["# Detecting every k-th frame: faces and emotions against k = 1", "",
             f"`.venv/bin/python bench/detect_every.py` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d %H:%M')}; defaults otherwise (blazeface-full, 1 thread), "
             "every frame of each video processed; the columns are explained in the module "
             "docstring. Speed: bench/pipeline.py.", "",
             "| video | k | frames | tracks | faces kept | count agrees | box IoU (median) "
             "| emotion agrees |", "|---|---|---|---|---|---|---|---|"]
    for video in videos:
        ref = None
        for every in EVERY:
            frames = run(video, every)
            ref = ref or frames
            c = compare(ref, frames)
            row = (f"| {video.name} | {every} | {c['frames']} | {frames.tracks} | "
                   f"{pct(c['kept'])} ({c['ref_faces']} at k=1) | {pct(c['count'])} | "
                   f"{num(c['iou'])} | {pct(c['emotion'])} |")
            lines.append(row)
            print(row, flush=True)
    table = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
