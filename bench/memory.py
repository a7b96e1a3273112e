"""Peak memory of the daemon per source resolution: is it under the unit's MemoryMax?

    .venv/bin/python bench/memory.py [--frames 150] [--repeat 3] [--compare REF] [--out bench/results/memory.md]

Makes the sources in a scratch folder from real data: the 640x360 clip
``../shared/data/video/pyfeat_single_face.mp4`` as it is, and upscaled (bicubic) to 1080p
and 4K (MPEG-4, OpenCV's writer), and an 8000x8000 still made from a real scene photo, as a
JPEG and as a PNG. Each row runs ``python -m edge run --source X --fast --max-frames N`` as
its own process, as the service does, and reads its peak resident memory (``ru_maxrss`` of
the child from ``wait4``); the median of ``--repeat`` runs is reported, against systemd's
``MemoryMax=300M`` (300 MiB). ``--compare REF`` runs the same rows with the code of a git ref
(``git archive`` into the scratch folder), in the same run, for a before/after table.

Prints a table and writes ``bench/results/memory.md``. Not run by CI.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTION_SHARED_DIR", ROOT.parent / "shared")) / "data"
CLIP = SHARED / "video" / "pyfeat_single_face.mp4"
PHOTO = SHARED / "scenes" / "pyfeat_single_face.jpg"
RESULTS = ROOT / "bench" / "results" / "memory.md"
MEMORY_MAX_MIB = 300


def make_clip(dst: Path, size: tuple[int, int], frames: int) -> Path:
    cap = cv2.VideoCapture(str(CLIP))
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    written = 0
    while written < frames:
        ok, frame = cap.read()
        if not ok:                        # the clip is shorter: play it again
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        out.write(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC))
        written += 1
    out.release()
    return dst


def make_sources(scratch: Path, frames: int) -> list[tuple[str, Path, int]]:
    """(row name, path, frames to run) for each source."""
    still = cv2.resize(cv2.imread(str(PHOTO)), (8000, 8000), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(scratch / "still8000.jpg"), still, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(scratch / "still8000.png"), still, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    del still
    return [("640x360 video (the real clip)", CLIP, frames),
            ("1920x1080 video", make_clip(scratch / "1080p.mp4", (1920, 1080), frames), frames),
            ("3840x2160 video (4K)", make_clip(scratch / "4k.mp4", (3840, 2160), frames), frames),
            ("8000x8000 still, JPEG", scratch / "still8000.jpg", 1),
            ("8000x8000 still, PNG", scratch / "still8000.png", 1)]


# A forked child's ru_maxrss counts the memory it had before exec, i.e. this benchmark's
# (frames it made); a tiny Python in between forks from a small process instead.
_WRAPPER = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\n"
            "_, status, usage = os.wait4(pid, 0)\nprint(usage.ru_maxrss)\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")


def peak_rss_mib(code: Path, source: Path, frames: int, logs: Path) -> tuple[float, int]:
    """Peak RSS of one daemon run in MiB, and its exit status."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "edge", "run", "--source",
           str(source), "--fast", "--max-frames", str(frames), "--log-dir", str(logs)]
    r = subprocess.run(cmd, cwd=code, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return int(r.stdout.strip().splitlines()[-1]) / 1024, r.returncode


def code_at(ref: str, scratch: Path) -> Path:
    dst = scratch / f"code-{ref.replace('/', '_')}"
    dst.mkdir()
    archive = subprocess.run(["git", "archive", ref, "edge", "models"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    for f in (ROOT / "models").glob("face_detection_*.tflite"):   # fetched, not committed
        (dst / "models" / f.name).write_bytes(f.read_bytes())
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150, help="frames per video run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row (median reported)")
    ap.add_argument("--compare", metavar="REF", help="also run the code of this git ref")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if not CLIP.exists():
        print(f"{CLIP} is absent (set EMOTION_SHARED_DIR)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="emotion-edge-memory-") as tmp:
        scratch = Path(tmp)
        sources = make_sources(scratch, args.frames)
        codes = [("this tree", ROOT)]
        if args.compare:
            codes.append((args.compare, code_at(args.compare, scratch)))
        rows = []
        for name, path, frames in sources:
            row = [name]
            for label, code in codes:
                runs = [peak_rss_mib(code, path, frames, scratch / "logs") for _ in
                        range(args.repeat)]
                mib = statistics.median(r[0] for r in runs)
                rcs = sorted({r[1] for r in runs})
                row.append(f"{mib:.0f} MiB" + ("" if rcs == [0] else f" (exit {rcs})"))
                row.append("yes" if mib < MEMORY_MAX_MIB and rcs == [0] else "**no**")
            rows.append(row)
            print(" | ".join(row), flush=True)

    head = ["source"]
    for label, _ in codes:
        head += [f"peak RSS, {label}", f"under {MEMORY_MAX_MIB} MiB"]
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = " ".join(["bench/memory.py", *sys.argv[1:]])
    text = "\n".join([
        "# Peak memory per source resolution", "",
        f"Measured {when} with `.venv/bin/python {cmd}` on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, OpenCV {cv2.__version__}.",
        "",
        f"Each row: `python -m edge run --source X --fast --max-frames N` as its own process "
        f"({args.frames} frames per video, one frame for a still), the median peak RSS "
        f"(`ru_maxrss`) of {args.repeat} runs, against the unit's `MemoryMax=300M`. Videos are "
        f"the real 640x360 clip `pyfeat_single_face.mp4` and the same upscaled (bicubic, "
        f"MPEG-4); the stills are a real scene photo upscaled to 8000x8000.",
        "",
        *table, "",
        "Frames larger than 1920 px on their longest side are downscaled as they are read "
        "(`edge/sources/base.py` MAX_SIDE): BlazeFace sees the whole frame at 128 or 192 px "
        "and the classifier a face at 48 px, so 1920 px keeps every face the detector can "
        "find at least as large as the classifier's training faces. JPEG stills are decoded "
        "at 1/2, 1/4 or 1/8 scale directly; other stills over 24 MP are decoded in gray.",
        ""])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
