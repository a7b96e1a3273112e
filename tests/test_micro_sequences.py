"""Sequence loader (CASME II / SAMM layouts) and model A, on a fixture built here from real
video frames: no licensed micro-expression sequences exist in this project."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from convert.data import DataError
from convert.micro import sequences

CASME_COLS = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
              "Estimated Emotion"]
SAMM_COLS = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
             "Offset Frame", "Duration", "Type", "Action Units", "Notes", "Estimated Emotion"]


def _face_frames(path: Path, start: int, count: int, step: int = 1) -> list[np.ndarray]:
    """Gray 96x96 crops of the face (box found once by Haar on the first frame)."""
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < count * step:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
    cap.release()
    frames = frames[::step]
    det = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    x, y, w, h = max(det.detectMultiScale(frames[0], 1.1, 5, minSize=(60, 60)), key=lambda b: b[2])
    return [cv2.resize(f[y:y + h, x:x + w], (96, 96), interpolation=cv2.INTER_AREA) for f in frames]


def _write_clip(folder: Path, frames: list[np.ndarray], first: int, name) -> tuple[int, int, int]:
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / name(first + i)), f)
    return first, first + len(frames) // 2, first + len(frames) - 1


@pytest.fixture(scope="module")
def micro_root(videos, tmp_path_factory) -> Path:
    return build_fixture(videos, tmp_path_factory.mktemp("micro_seq"))


def build_fixture(videos: Path, root: Path) -> Path:
    """Two CASME II subjects and two SAMM subjects, 12 clips, real faces:
    a smile (single_face, neutral->smile) and crying / laughing stretches of the Pexels clip."""
    smile = _face_frames(videos / "pyfeat_single_face.mp4", 0, 36)
    cry = _face_frames(videos / "pyfeat_WolfgangLanger_Pexels.mp4", 0, 30, 2)
    laugh = _face_frames(videos / "pyfeat_WolfgangLanger_Pexels.mp4", 380, 30, 2)
    rows_c, rows_s = [], []
    for s, subj in enumerate(("1", "02")):
        for j, (frames, emo) in enumerate(((smile, "happiness"), (cry, "repression"),
                                           (laugh[::-1], "surprise"), (cry[::-1], "others"))):
            clip = f"EP0{s}_0{j}f"
            on, ap, off = _write_clip(root / f"sub{int(subj):02d}" / clip, frames, 46 + 10 * j,
                                      lambda n: f"img{n}.jpg")
            rows_c.append([subj, clip, on, ap, off, "12", emo])
    for s, subj in enumerate(("006", "011")):
        for j, (frames, emo) in enumerate(((laugh, "Happiness"), (cry, "Sadness"))):
            clip = f"{subj}_{j + 1}_{s + 2}"
            on, ap, off = _write_clip(root / subj / clip, frames, 5562 + 100 * j,
                                      lambda n, subj=subj: f"{subj}_{n:05d}.jpg")
            rows_s.append([subj, clip, 1, on, ap, off, off - on + 1, "Micro - 1/2", "", "",
                           emo])
    for name, cols, rows in (("CASME2-coding.csv", CASME_COLS, rows_c),
                             ("SAMM_Micro_FACS_Codes.csv", SAMM_COLS, rows_s)):
        with (root / name).open("w", newline="") as f:
            csv.writer(f).writerows([cols, *rows])
    return root


def test_clips_are_read_from_both_layouts(micro_root):
    clips = sequences.load_clips(micro_root)
    assert len(clips) == 12
    by = {(c.dataset, c.subject, c.name): c for c in clips}
    c = by[("casme2", "sub01", "EP00_01f")]
    assert (c.onset, c.emotion) == (56, "repression") and c.offset == 56 + 29
    s = by[("samm", "011", "011_2_3")]
    assert (s.onset, s.emotion) == (5662, "sadness")


def test_composite_and_binary_mappings(micro_root):
    comp = sequences.load_sequences(micro_root, n_frames=6, size=64)
    assert comp.labels == ("negative", "positive", "surprise")
    assert len(comp) == 10                      # the two "others" clips are left out
    assert comp.x.shape == (10, 6, 64, 64) and comp.x.dtype == np.uint8
    assert np.bincount(comp.y).tolist() == [4, 4, 2]
    assert set(comp.dataset) == {"casme2", "samm"}
    assert len(set(comp.subject)) == 4
    binary = sequences.load_sequences(micro_root, n_frames=6, size=64, mapping="binary")
    assert len(binary) == 8 and binary.labels == ("negative", "positive")


def test_frames_are_sampled_from_onset_to_offset(micro_root):
    clip = next(c for c in sequences.load_clips(micro_root) if c.emotion == "happiness")
    x = sequences.sample_frames(clip, 5, 64)
    first = cv2.resize(cv2.imread(str(clip.folder / f"img{clip.onset}.jpg"), 0), (64, 64),
                       interpolation=cv2.INTER_AREA)
    last = cv2.resize(cv2.imread(str(clip.folder / f"img{clip.offset}.jpg"), 0), (64, 64),
                      interpolation=cv2.INTER_AREA)
    assert np.array_equal(x[0], first) and np.array_equal(x[-1], last)
    assert not np.array_equal(x[0], x[-1])      # neutral -> smile really changes


def test_friendly_errors(tmp_path, micro_root):
    with pytest.raises(DataError, match="no coding sheet"):
        sequences.load_clips(tmp_path)
    (tmp_path / "bad.csv").write_text("Subject,Filename\n1,EP01\n")
    with pytest.raises(DataError, match="no onset column"):
        sequences.load_clips(tmp_path)
    with pytest.raises(DataError, match="unknown class mapping"):
        sequences.load_sequences(micro_root, mapping="seven")


def test_model_a_trains_on_the_fixture(micro_root, tmp_path):
    from convert.micro.sequence_train import evaluate_sequences, train_sequences
    from convert.train import TrainConfig

    # The origin's design at a smoke-test scale: 4 frames of 32x32 (the default is 10 of 64x64).
    cfg = TrainConfig(model="micro_cnn_lstm", data=str(micro_root), epochs=5, batch_size=8,
                      lr=3e-3, warmup_epochs=0, class_weight="none", seed=3, input_size=32)
    state = train_sequences(cfg, tmp_path / "run", verbose=0, frames=4)
    log = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    losses = [float(r["loss"]) for r in log]
    assert len(losses) == 5 and losses[-1] < 0.8 * losses[0], losses
    assert state["val_subjects"] and state["n_train"] + state["n_val"] == 10
    rep = evaluate_sequences(tmp_path / "run" / "last.keras", micro_root)
    assert rep["n"] == state["n_val"] and 0.0 <= rep["uf1"] <= 1.0
