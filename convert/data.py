"""FER2013-format face data: three input formats, FER+ labels, and deliberate cleaning.

Every loader returns a :class:`FaceSet` of 48x48 uint8 grayscale faces with labels in the
standard FER2013 order, so training and evaluation never care where the faces came from.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger",
                   "disgust", "fear", "contempt", "unknown", "NF")
# FER+ column of each FER2013 class, in FER2013 order.
FERPLUS_OF_CLASS = np.array([4, 5, 6, 1, 3, 2, 0])
UNKNOWN_COL, NF_COL = 8, 9
FACE_SIZE = 48

SHARED_DIR_ENV = "EMOTION_SHARED_DIR"


def shared_dir() -> Path:
    """The shared data folder: $EMOTION_SHARED_DIR, else ../shared beside the project."""
    env = os.environ.get(SHARED_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def default_fer_npz() -> Path:
    return shared_dir() / "data" / "fer2013" / "fer2013_trainval.npz"


class DataError(ValueError):
    """Input data that cannot be used, with a message meant for the person running the tool."""


@dataclass
class FaceSet:
    x: np.ndarray                       # (N, 48, 48) uint8
    y: np.ndarray                       # (N,) int64, FER2013 class index
    ferplus: np.ndarray | None = None   # (N, 10) int8 votes, -1 where unknown
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, keep: np.ndarray, note: str | None = None) -> "FaceSet":
        out = FaceSet(self.x[keep], self.y[keep],
                      None if self.ferplus is None else self.ferplus[keep],
                      self.source, list(self.notes))
        if note:
            out.notes.append(note)
        return out


# --- loaders -----------------------------------------------------------------------------

def load_npz(path: str | Path, split: str) -> FaceSet:
    """The shared npz: ``x_S``, ``y_S`` and, when present, ``ferplus_S`` for split ``S``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # zipfile/pickle errors all mean the same thing to the user
        raise DataError(f"{path}: not a readable npz file ({exc.__class__.__name__})") from exc
    kx, ky = f"x_{split}", f"y_{split}"
    if kx not in data.files or ky not in data.files:
        splits = sorted({k[2:] for k in data.files if k.startswith("x_")})
        raise DataError(f"{path}: no split {split!r} (has {', '.join(splits) or 'none'})")
    x, y = data[kx], data[ky].astype(np.int64)
    _check_faces(x, y, str(path))
    fp = data[f"ferplus_{split}"] if f"ferplus_{split}" in data.files else None
    return FaceSet(x, y, fp, f"{path.name}:{split}")


CSV_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def load_csv(path: str | Path, split: str = "train") -> FaceSet:
    """Kaggle's ``fer2013.csv`` (columns ``emotion,pixels,Usage``); ``split`` picks the Usage."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    usage = CSV_USAGE.get(split, split)
    xs, ys = [], []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                            f"expected emotion,pixels,Usage")
        for line, row in enumerate(reader, start=2):
            if "Usage" in row and row["Usage"] and row["Usage"] != usage:
                continue
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            if pixels.size != FACE_SIZE * FACE_SIZE:
                raise DataError(f"{path}:{line}: {pixels.size} pixels, expected "
                                f"{FACE_SIZE * FACE_SIZE} (48x48)")
            xs.append(pixels.reshape(FACE_SIZE, FACE_SIZE))
            ys.append(int(row["emotion"]))
    if not xs:
        raise DataError(f"{path}: no rows with Usage {usage!r}")
    x, y = np.stack(xs), np.array(ys, dtype=np.int64)
    _check_faces(x, y, str(path))
    return FaceSet(x, y, None, f"{path.name}:{usage}")


IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".pgm"}


def load_folder(path: str | Path) -> FaceSet:
    """Image folders ``<root>/<emotion>/*.jpg``: any size or colour, made 48x48 grayscale."""
    import cv2

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    unknown = [d.name for d in root.iterdir() if d.is_dir() and d.name not in CLASSES]
    if unknown:
        raise DataError(f"{root}: unknown emotion folder(s) {', '.join(sorted(unknown))}; "
                        f"use {', '.join(CLASSES)}")
    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        for img_path in sorted((root / name).glob("*")) if (root / name).is_dir() else []:
            if img_path.suffix.lower() not in IMAGE_EXTS:
                continue
            img = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise DataError(f"{img_path}: not a readable image")
            if img.shape != (FACE_SIZE, FACE_SIZE):
                img = cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
            xs.append(img)
            ys.append(label)
    if not xs:
        raise DataError(f"{root}: no images in any of the emotion folders")
    return FaceSet(np.stack(xs), np.array(ys, dtype=np.int64), None, root.name)


def load_faces(path: str | Path, split: str = "train") -> FaceSet:
    """Any of the three formats, chosen by what ``path`` is."""
    p = Path(path)
    if p.is_dir():
        return load_folder(p)
    if p.suffix == ".npz":
        return load_npz(p, split)
    if p.suffix == ".csv":
        return load_csv(p, split)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    raise DataError(f"{p}: unknown format; use an .npz, a fer2013 .csv, or a folder of "
                    f"<emotion>/ image folders")


def _check_faces(x: np.ndarray, y: np.ndarray, where: str) -> None:
    if x.ndim != 3 or x.shape[1:] != (FACE_SIZE, FACE_SIZE):
        raise DataError(f"{where}: faces have shape {x.shape[1:]}, expected (48, 48)")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} faces but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= len(CLASSES)):
        raise DataError(f"{where}: labels outside 0..{len(CLASSES) - 1}")


# --- FER+ labels ---------------------------------------------------------------------------

def ferplus_emotion_votes(votes: np.ndarray) -> np.ndarray:
    """The votes of the seven FER2013 emotions, in FER2013 order (contempt is dropped)."""
    return np.clip(votes[:, FERPLUS_OF_CLASS], 0, None).astype(np.float32)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """FER+ majority label in FER2013 order, or -1 where the image is left out.

    The top emotion wins, ties going to the earlier FER2013 class (argmax does that). An
    image is left out when it has no votes, or when the top emotion's count is below its
    'unknown' count or its 'not a face' count.
    """
    emo = ferplus_emotion_votes(votes)
    label = emo.argmax(axis=1)
    top = emo.max(axis=1)
    v = votes.astype(np.int64)
    no_votes = (v < 0).any(axis=1) | (np.clip(v, 0, None).sum(axis=1) == 0)
    out = (top < v[:, UNKNOWN_COL]) | (top < v[:, NF_COL]) | no_votes | (top == 0)
    return np.where(out, -1, label).astype(np.int64)


def ferplus_distribution(votes: np.ndarray) -> np.ndarray:
    """Soft targets: the seven emotions' share of votes (contempt/unknown/NF left out)."""
    emo = ferplus_emotion_votes(votes)
    total = emo.sum(axis=1, keepdims=True)
    return np.divide(emo, total, out=np.zeros_like(emo), where=total > 0)


# --- cleaning ------------------------------------------------------------------------------

def pixel_hashes(x: np.ndarray) -> np.ndarray:
    return np.array([hashlib.blake2b(img.tobytes(), digest_size=8).hexdigest() for img in x])


def clean_training_set(train: FaceSet, held_out: FaceSet | None = None, *,
                       target: str = "fer2013", blank_std: float = 3.0) -> FaceSet:
    """Deal with FER2013's known faults deliberately, noting what was done in ``notes``.

    - near-blank images (pixel std below ``blank_std``) carry no face: dropped;
    - faces also in the held-out split would leak it into training: dropped from training;
    - exact duplicates: one copy kept, unless the copies disagree on the label, when all
      copies are dropped (no way to know which label is right);
    - for FER+ targets, images FER+ leaves out (no majority, not-a-face, unknown) are dropped;
      for FER2013 targets, images most FER+ annotators call not-a-face are dropped too.
    """
    n0 = len(train)
    keep = np.ones(n0, dtype=bool)
    notes = []

    blank = train.x.reshape(n0, -1).std(axis=1) < blank_std
    keep &= ~blank
    notes.append(f"dropped {int(blank.sum())} near-blank images (pixel std < {blank_std})")

    hashes = pixel_hashes(train.x)
    if held_out is not None and len(held_out):
        leak = np.isin(hashes, pixel_hashes(held_out.x))
        keep &= ~leak
        notes.append(f"dropped {int(leak.sum())} images that also occur in {held_out.source}")

    labels = train.y if target == "fer2013" or train.ferplus is None \
        else ferplus_majority(train.ferplus)
    first: dict[str, int] = {}
    conflicted: set[str] = set()
    dup = np.zeros(n0, dtype=bool)
    for i, h in enumerate(hashes):
        if h in first:
            dup[i] = True
            if labels[first[h]] != labels[i]:
                conflicted.add(h)
        else:
            first[h] = i
    conflict = np.isin(hashes, list(conflicted)) if conflicted else np.zeros(n0, bool)
    keep &= ~dup & ~conflict
    notes.append(f"dropped {int((dup & ~conflict).sum())} exact duplicates (one copy kept) and "
                 f"{int(conflict.sum())} copies of {len(conflicted)} duplicated images "
                 f"whose labels disagree")

    if train.ferplus is not None:
        if target == "fer2013":
            v = train.ferplus.astype(np.int64)
            nf = v[:, NF_COL] > ferplus_emotion_votes(train.ferplus).max(axis=1)
            keep &= ~nf
            notes.append(f"dropped {int(nf.sum())} images FER+ annotators call not-a-face "
                         f"more often than any emotion")
        else:
            out = ferplus_majority(train.ferplus) < 0
            keep &= ~out
            notes.append(f"dropped {int(out.sum())} images FER+ leaves out (no votes, or "
                         f"'unknown'/'not a face' outvote every emotion)")

    result = train.subset(keep)
    result.notes += notes + [f"kept {len(result)} of {n0}"]
    return result


def targets(faces: FaceSet, target: str) -> np.ndarray:
    """Training targets: one-hot FER2013 labels, one-hot FER+ majority, or FER+ vote shares."""
    n = len(CLASSES)
    if target == "fer2013":
        return np.eye(n, dtype=np.float32)[faces.y]
    if faces.ferplus is None:
        raise DataError(f"{faces.source}: target {target!r} needs FER+ votes, which this "
                        f"data does not have")
    if target == "ferplus-majority":
        lab = ferplus_majority(faces.ferplus)
        if (lab < 0).any():
            raise DataError("clean the set first: some images have no FER+ majority")
        return np.eye(n, dtype=np.float32)[lab]
    if target == "ferplus-votes":
        return ferplus_distribution(faces.ferplus)
    raise DataError(f"unknown target {target!r}; use fer2013, ferplus-majority or ferplus-votes")


TARGETS = ("fer2013", "ferplus-majority", "ferplus-votes")
