"""Classroom material built from ../shared at run time (nothing of it is committed).

- ``six_groups(size)``: six copies of ``pyfeat_multi_face.jpg`` (5 faces each) in a 3x2
  grid: the 30-face frame of issue 37, faces of about 36-47 px at 1280x720.
- ``mosaic(face_px, size, seed)``: the real photos of data/scenes, each cut to the smallest
  window around its faces (with some head and shoulders), scaled so that its faces are about
  ``face_px`` wide, and packed in rows; the photos without a face go in between as bait.
  The hand-checked face boxes of tests/data/scene_faces.json are carried through, so every
  face of the frame has its ground-truth box.
- ``classroom_clip(path, ...)``: the ``intel_*`` and ``pyfeat_*`` clips with people, tiled
  3x3 into 1280x720, each tile starting at another time and playing forward and back:
  15 small real people who walk, pause and turn their heads.
- ``crowd_clip(n, size, path, face=0)``: n = 1, 5, 15, 30 or 60 faces in view (copies of
  the group photo in a grid, or with ``face`` its faces brought to that size), slowly
  panned: the speed benchmark's and the page's crowd.
- ``match(found, truth)``: which found boxes hit a true face (the box's centre inside the
  true box and sides within 0.5-2x of it, so that detectors with a looser or tighter box
  convention are judged alike).

The data folder is $EMOTION_SHARED_DIR/data, else ../shared/data next to the repository.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTION_SHARED_DIR", ROOT.parent / "shared")) / "data"
SCENE_FACES = ROOT / "tests" / "data" / "scene_faces.json"
BACKGROUND = (96, 96, 96)
SIZES = (24, 32, 40, 48, 64, 96)
FRAMES = {"720p": (1280, 720), "1080p": (1920, 1080)}

Box = tuple[int, int, int, int]


@dataclass
class Frame:
    image: np.ndarray          # BGR uint8
    faces: list[Box]           # ground truth, frame pixels


def scene_faces() -> dict[str, dict]:
    data = json.loads(SCENE_FACES.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _load(name: str) -> np.ndarray:
    img = cv2.imread(str(SHARED / "scenes" / name), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(SHARED / "scenes" / name)
    return img


def six_groups(size: tuple[int, int] = (1280, 720)) -> Frame:
    """Six copies of the five-person group photo, 3 across and 2 down, each fit into its cell."""
    name = "pyfeat_multi_face.jpg"
    img, boxes = _load(name), scene_faces()[name]["faces"]
    fw, fh = size
    cw, ch = fw // 3, fh // 2
    s = min(cw / img.shape[1], ch / img.shape[0])
    small = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                       interpolation=cv2.INTER_AREA)
    canvas = np.full((fh, fw, 3), BACKGROUND, np.uint8)
    faces: list[Box] = []
    for r in range(2):
        for c in range(3):
            ox = c * cw + (cw - small.shape[1]) // 2
            oy = r * ch + (ch - small.shape[0]) // 2
            canvas[oy:oy + small.shape[0], ox:ox + small.shape[1]] = small
            faces += [(round(x * s) + ox, round(y * s) + oy, round(w * s), round(h * s))
                      for x, y, w, h in boxes]
    return Frame(canvas, faces)


def _cut(name: str, boxes: list[list[int]], img: np.ndarray) -> tuple[np.ndarray, list[Box]]:
    """The photo cut to its faces' union grown by a face width each side (1.5 below)."""
    if not boxes:
        return img, []
    x0 = min(b[0] for b in boxes); y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes); y1 = max(b[1] + b[3] for b in boxes)
    m = int(np.median([b[2] for b in boxes]))
    H, W = img.shape[:2]
    cx0, cy0 = max(0, x0 - m), max(0, y0 - m)
    cx1, cy1 = min(W, x1 + m), min(H, y1 + int(1.5 * m))
    return img[cy0:cy1, cx0:cx1], [(x - cx0, y - cy0, w, h) for x, y, w, h in boxes]


def mosaic(face_px: int, size: tuple[int, int] = (1280, 720), seed: int = 0,
           gap: int = 4) -> Frame:
    """The scenes packed in rows at a face width of about ``face_px`` (each photo's own
    median face is scaled to it, times 0.9-1.1 at random), until the frame is full."""
    rng = random.Random(seed)
    fw, fh = size
    items = []
    for name, entry in scene_faces().items():
        if entry.get("partial"):
            continue
        img = _load(name)
        cut, boxes = _cut(name, entry["faces"], img)
        items.append((cut, boxes))
    with_faces = [it for it in items if it[1]]
    without = [it for it in items if not it[1]]
    canvas = np.full((fh, fw, 3), BACKGROUND, np.uint8)
    faces: list[Box] = []
    x = y = 0
    row_h = 0
    order: list = []
    while True:
        if not order:
            order = with_faces[:]
            rng.shuffle(order)
            order.insert(rng.randrange(len(order)), rng.choice(without))
        cut, boxes = order.pop()
        if boxes:
            s = face_px * rng.uniform(0.9, 1.1) / float(np.median([b[2] for b in boxes]))
        else:  # bait: about as tall as a face photo at this size
            s = 3.0 * face_px / cut.shape[0]
        w, h = max(1, round(cut.shape[1] * s)), max(1, round(cut.shape[0] * s))
        if w > fw or h > fh:
            continue
        if x + w > fw:
            x, y, row_h = 0, y + row_h + gap, 0
        if y + h > fh:
            break
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        canvas[y:y + h, x:x + w] = cv2.resize(cut, (w, h), interpolation=interp)
        faces += [(x + round(bx * s), y + round(by * s), round(bw * s), round(bh * s))
                  for bx, by, bw, bh in boxes]
        x += w + gap
        row_h = max(row_h, h)
    return Frame(canvas, faces)


def size_bin(side: float) -> int:
    """The nearest of SIZES to a face's side."""
    return min(SIZES, key=lambda s: abs(np.log(side / s)))


def match(found: list[Box], truth: list[Box]) -> tuple[list[bool], int]:
    """(for each true face, whether a found box hits it; found boxes that hit none).
    A hit: the found box's centre inside the true box, its side 0.5-2x the true side; each
    found box counts for one true face at most (greedy, nearest centre first)."""
    hit = [False] * len(truth)
    extra = 0
    for fx, fy, fw_, fh_ in found:
        cx, cy = fx + fw_ / 2, fy + fh_ / 2
        best, best_d = -1, 1e18
        for i, (tx, ty, tw, th) in enumerate(truth):
            if hit[i] or not (tx <= cx <= tx + tw and ty <= cy <= ty + th):
                continue
            if not 0.5 <= max(fw_, fh_) / max(tw, th) <= 2.0:
                continue
            d = (cx - tx - tw / 2) ** 2 + (cy - ty - th / 2) ** 2
            if d < best_d:
                best, best_d = i, d
        if best >= 0:
            hit[best] = True
        else:
            extra += 1
    return hit, extra


# --- the classroom video ----------------------------------------------------------------------

# The 3x3 classroom: (clip, people in it). The clips are short (2-5 s, 19.7 s for the
# Pexels one), so each tile plays forward and back again (no jump, nobody leaves); the
# face-then-cartoon clip is left out for the same reason.
TILES = (("intel_face-demographics-walking-and-pause.mp4", 3),
         ("intel_head-pose-face-detection-female-and-male.mp4", 2),
         ("intel_head-pose-face-detection-female.mp4", 1),
         ("intel_head-pose-face-detection-male.mp4", 1),
         ("pyfeat_WolfgangLanger_Pexels.mp4", 1),
         ("pyfeat_single_face.mp4", 1),
         ("intel_face-demographics-walking-and-pause.mp4", 3),
         ("intel_head-pose-face-detection-female-and-male.mp4", 2),
         ("intel_head-pose-face-detection-male.mp4", 1))
CLASSROOM_PEOPLE = sum(n for _, n in TILES)


def _frames(path: Path, size: tuple[int, int], fps: float) -> list[np.ndarray]:
    """The clip resampled to ``fps`` (nearest frame) and fit into ``size`` (letterboxed)."""
    cap = cv2.VideoCapture(str(path))
    src_fps = cap.get(cv2.CAP_PROP_FPS) or fps
    raw = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        raw.append(f)
    cap.release()
    if not raw:
        raise RuntimeError(f"{path}: no frames decoded")
    n = max(1, int(len(raw) / src_fps * fps))
    tw, th = size
    out = []
    for i in range(n):
        f = raw[min(len(raw) - 1, int(i * src_fps / fps))]
        s = min(tw / f.shape[1], th / f.shape[0])
        small = cv2.resize(f, (round(f.shape[1] * s), round(f.shape[0] * s)),
                           interpolation=cv2.INTER_AREA)
        tile = np.zeros((th, tw, 3), np.uint8)
        oy, ox = (th - small.shape[0]) // 2, (tw - small.shape[1]) // 2
        tile[oy:oy + small.shape[0], ox:ox + small.shape[1]] = small
        out.append(tile)
    return out


def classroom_clip(dst: Path, seconds: float = 12.0, fps: float = 12.0,
                   size: tuple[int, int] = (1280, 720)) -> Path:
    """Write the 3x3 classroom clip (mp4v) to ``dst``: tile i plays TILES[i] forward and
    back, starting at 0.37 * i of the way through that cycle. Returns ``dst``."""
    tw, th = size[0] // 3, size[1] // 3
    sources = []
    for name, _ in TILES:
        f = _frames(SHARED / "video" / name, (tw, th), fps)
        sources.append(f + f[-2:0:-1])          # forward, then back
    starts = [int(i * 0.37 * len(s)) % len(s) for i, s in enumerate(sources)]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not out.isOpened():
        raise RuntimeError(f"{dst}: OpenCV cannot write an mp4v video here")
    for k in range(int(seconds * fps)):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        for i, src in enumerate(sources):
            r, c = divmod(i, 3)
            frame[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = src[(starts[i] + k) % len(src)]
        out.write(frame)
    out.release()
    return dst


# --- crowds of 1-60 faces, for the speed rows and the page ---------------------------------

def crowd_frame(n: int, size: tuple[int, int], face: int = 0) -> np.ndarray:
    """``n`` faces in view: copies of the five-person photo (or, for 1, the one-person
    photo) in a 3x2 grid (4x3 for 60), the other cells grey. ``face``: the group photo's
    faces scaled to this mean side (the photo cropped around them to fit its cell), else
    the whole photo fit into its cell."""
    cols, rows = (4, 3) if n > 30 else (3, 2)
    fw, fh = size
    cw, ch = fw // cols, fh // rows
    name, per = ("pyfeat_single_face.jpg", 1) if n == 1 else ("pyfeat_multi_face.jpg", 5)
    img = _load(name)
    if face and n > 1:
        boxes = np.array(scene_faces()[name]["faces"], float)
        s = face / boxes[:, 2:].mean()
        cx = (boxes[:, 0].min() + (boxes[:, 0] + boxes[:, 2]).max()) / 2
        cy = (boxes[:, 1].min() + (boxes[:, 1] + boxes[:, 3]).max()) / 2
        w, h = min(img.shape[1], round(cw / s)), min(img.shape[0], round(ch / s))
        x0 = int(min(max(0, cx - w / 2), img.shape[1] - w))
        y0 = int(min(max(0, cy - h / 2), img.shape[0] - h))
        img = img[y0:y0 + h, x0:x0 + w]
    canvas = np.full((fh, fw, 3), BACKGROUND, np.uint8)
    for i in range(n // per):
        r, c = divmod(i, cols)
        s = min(cw / img.shape[1], ch / img.shape[0])
        if n == 1:
            s *= 0.35   # one person at a classroom's distance (a ~60 px face at 720p)
        small = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                           interpolation=cv2.INTER_AREA)
        oy, ox = r * ch + (ch - small.shape[0]) // 2, c * cw + (cw - small.shape[1]) // 2
        canvas[oy:oy + small.shape[0], ox:ox + small.shape[1]] = small
    return canvas


def crowd_face_sides(face: int) -> tuple[int, int]:
    """The smallest and largest face side of ``crowd_frame(..., face)``."""
    sides = np.array(scene_faces()["pyfeat_multi_face.jpg"]["faces"], float)[:, 2:]
    return round(sides.min() * face / sides.mean()), round(sides.max() * face / sides.mean())


def crowd_clip(n: int, size: tuple[int, int], dst: Path, seconds: float = 8.0,
               fps: float = 15.0, face: int = 0) -> Path:
    """The crowd frame panned slowly (+-12 px, a 4 s sway) at 15 fps."""
    base = crowd_frame(n, size, face)
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for k in range(int(seconds * fps)):
        dx = int(round(12 * np.sin(2 * np.pi * k / (4 * fps))))
        out.write(np.roll(base, dx, axis=1))
    out.release()
    return dst
