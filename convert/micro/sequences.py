"""Micro-expression frame sequences in the CASME II and SAMM layouts, for model A.

The licensed datasets are not here (they need signed agreements); the tests build a small
dataset in exactly this layout from real video frames. Layouts, as distributed:

CASME II   <root>/sub01/EP02_01f/img46.jpg ...   (or reg_img46.jpg in the cropped release)
           coding sheet columns: Subject (1 or 01), Filename (EP02_01f), OnsetFrame,
           ApexFrame, OffsetFrame, Estimated Emotion
SAMM       <root>/006/006_1_2/006_05562.jpg ...
           coding sheet columns: Subject (006), Filename (006_1_2), Onset Frame, Apex Frame,
           Offset Frame, Estimated Emotion

The coding sheet is read as CSV (save the distributed .xlsx as CSV into <root>); the frame
number of an image is the last run of digits in its name. Composite classes follow MEGC
2019: negative = CASME II disgust/repression, SAMM anger/contempt/disgust/fear/sadness;
positive = happiness; surprise = surprise; everything else is left out. The two-class
mapping keeps negative and positive only.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data import DataError

COMPOSITE = ("negative", "positive", "surprise")
BINARY = ("negative", "positive")
NEGATIVE = {"casme2": {"disgust", "repression"},
            "samm": {"anger", "contempt", "disgust", "fear", "sadness"}}
MAPPINGS = ("composite", "binary")
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}

# Accepted spellings of each column, per dataset (lower-cased, spaces removed).
COLUMNS = {"subject": ("subject",), "clip": ("filename",), "onset": ("onsetframe",),
           "apex": ("apexframe",), "offset": ("offsetframe",), "emotion": ("estimatedemotion",)}


@dataclass(frozen=True)
class Clip:
    dataset: str        # casme2 | samm
    subject: str        # folder name: sub01 / 006
    name: str           # clip folder name
    emotion: str        # as coded, lower case
    onset: int
    apex: int
    offset: int
    folder: Path


def labels_for(mapping: str) -> tuple[str, ...]:
    if mapping not in MAPPINGS:
        raise DataError(f"unknown class mapping {mapping!r}; use {' or '.join(MAPPINGS)}")
    return COMPOSITE if mapping == "composite" else BINARY


def label_of(clip: Clip, mapping: str) -> int:
    """Class index under ``mapping``, or -1 when the clip's emotion is left out."""
    labels = labels_for(mapping)
    e = clip.emotion
    name = "negative" if e in NEGATIVE[clip.dataset] else "positive" if e == "happiness" \
        else "surprise" if e == "surprise" else None
    return labels.index(name) if name in labels else -1


def _norm(col: str) -> str:
    return re.sub(r"\s+", "", col.strip().lower())


def read_coding_sheet(path: Path, root: Path) -> list[Clip]:
    """Clips listed in one coding sheet (CSV), with their frame folders under ``root``."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise DataError(f"{path}: empty coding sheet")
    cols = {_norm(c): c for c in rows[0]}
    key = {}
    for field, names in COLUMNS.items():
        found = [cols[n] for n in names if n in cols]
        if not found:
            raise DataError(f"{path}: no {field} column (looked for "
                            f"{', '.join(names)}; has {', '.join(rows[0])})")
        key[field] = found[0]
    dataset = "samm" if "inducementcode" in cols or _looks_samm(rows[0][key["clip"]]) else "casme2"
    clips = []
    for line, row in enumerate(rows, start=2):
        try:
            onset, apex, offset = (int(float(row[key[k]])) for k in ("onset", "apex", "offset"))
        except ValueError:
            raise DataError(f"{path}:{line}: onset/apex/offset must be frame numbers") from None
        if not onset <= apex <= offset:
            raise DataError(f"{path}:{line}: frames not in order (onset {onset}, apex {apex}, "
                            f"offset {offset})")
        subj = row[key["subject"]].strip()
        subject = f"sub{int(subj):02d}" if dataset == "casme2" and subj.isdigit() else \
            f"{int(subj):03d}" if subj.isdigit() else subj
        name = row[key["clip"]].strip()
        clips.append(Clip(dataset, subject, name, row[key["emotion"]].strip().lower(),
                          onset, apex, offset, root / subject / name))
    return clips


def _looks_samm(clip_name: str) -> bool:
    return bool(re.fullmatch(r"\d{3}_\d+_\d+", clip_name.strip()))


def load_clips(root: str | Path) -> list[Clip]:
    """Every clip of every coding sheet (``*.csv``) in ``root``; checks the frame folders."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    sheets = sorted(root.glob("*.csv"))
    if not sheets:
        raise DataError(f"{root}: no coding sheet (*.csv; save the dataset's .xlsx as CSV)")
    clips = [c for s in sheets for c in read_coding_sheet(s, root)]
    missing = [c for c in clips if not c.folder.is_dir()]
    if missing:
        raise DataError(f"{missing[0].folder}: frame folder of clip {missing[0].name} is "
                        f"missing ({len(missing)} of {len(clips)} clips have none)")
    return clips


def frame_files(folder: Path) -> dict[int, Path]:
    """Frame number -> image file (the number is the last digit run of the name)."""
    out = {}
    for p in folder.iterdir():
        m = re.search(r"(\d+)(?!.*\d)", p.stem)
        if m and p.suffix.lower() in IMAGE_EXTS:
            out[int(m.group(1))] = p
    return out


def sample_frames(clip: Clip, n_frames: int, size: int) -> np.ndarray:
    """``n_frames`` gray frames (n, size, size) uint8, evenly spaced from onset to offset
    (nearest existing frame: some releases skip numbers)."""
    files = frame_files(clip.folder)
    if not files:
        raise DataError(f"{clip.folder}: no frame images")
    numbers = np.array(sorted(files))
    inside = numbers[(numbers >= clip.onset) & (numbers <= clip.offset)]
    if len(inside) == 0:
        raise DataError(f"{clip.folder}: no frames between onset {clip.onset} and offset "
                        f"{clip.offset}")
    wanted = np.linspace(clip.onset, clip.offset, n_frames)
    picks = inside[np.abs(inside[None, :] - wanted[:, None]).argmin(axis=1)]
    out = np.empty((n_frames, size, size), np.uint8)
    for i, num in enumerate(picks):
        img = cv2.imread(str(files[int(num)]), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise DataError(f"{files[int(num)]}: not a readable image")
        cv2.resize(img, (size, size), dst=out[i],
                   interpolation=cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR)
    return out


@dataclass
class SequenceSet:
    x: np.ndarray           # (N, frames, size, size) uint8
    y: np.ndarray           # (N,) int64 index into labels
    subject: np.ndarray     # (N,) str, dataset-prefixed: the LOSO unit
    dataset: np.ndarray     # (N,) str
    names: np.ndarray       # (N,) str clip names
    labels: tuple[str, ...]
    notes: list[str]

    def __len__(self) -> int:
        return len(self.y)


def load_sequences(root: str | Path, n_frames: int = 10, size: int = 64,
                   mapping: str = "composite") -> SequenceSet:
    """The clips of ``root`` that map to a class, each as ``n_frames`` sampled frames."""
    labels = labels_for(mapping)
    clips = load_clips(root)
    kept = [(c, label_of(c, mapping)) for c in clips]
    kept = [(c, y) for c, y in kept if y >= 0]
    if not kept:
        raise DataError(f"{root}: no clip has an emotion of the {mapping} classes")
    x = np.stack([sample_frames(c, n_frames, size) for c, _ in kept])
    notes = [f"{len(kept)} of {len(clips)} clips map to {'/'.join(labels)}; the rest "
             f"(other emotions) are left out"]
    return SequenceSet(x, np.array([y for _, y in kept], np.int64),
                       np.array([f"{c.dataset}/{c.subject}" for c, _ in kept]),
                       np.array([c.dataset for c, _ in kept]),
                       np.array([c.name for c, _ in kept]), labels, notes)
