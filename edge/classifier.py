"""The emotion classifier: an int8 TFLite model run in LiteRT, described by its JSON sidecar.

``EmotionModel`` turns gray face crops into class probabilities exactly as the host's
``evaluate`` does (it calls the same code), and ``FaceClassifier`` cuts faces out of frames.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import litert
from .errors import EmotionEdgeError, display
from .events import Box
from .paths import file_problem, models_dir
from .settings import check


class ModelError(EmotionEdgeError, RuntimeError):
    """A model file that cannot be used; the message says which file and why."""


_INFO_KEYS = ("model", "target", "val", "trained_on", "created", "parameters")


@dataclass(frozen=True)
class Sidecar:
    """What the device needs to know about a model (written by ``convert quantize``)."""
    labels: tuple[str, ...]
    input_size: tuple[int, int]        # height, width
    grayscale: bool
    pixel_scale: float                 # float input = pixel * scale + offset
    pixel_offset: float
    sha256: str | None = None
    # The size the training faces had (FER2013: 48x48). A model trained on faces upscaled to
    # its input size must see crops as soft as those: they go to this size first.
    face_size: tuple[int, int] | None = None
    # What a person choosing a model wants to see: its accuracy, what it was trained on.
    info: dict = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, path: Path) -> "Sidecar":
        d = read_sidecar(path, "the model's sidecar JSON")
        where = f"{_name(path)}: not a valid model sidecar"
        try:
            labels = check_labels(d.get("labels"))
            size = check_size(d.get("input_size"), "input_size")
            face = check_size(d["face_size"], "face_size") if "face_size" in d else None
            if d.get("grayscale") is not True:
                raise ValueError("grayscale: the device classifies gray faces; this model "
                                 "is not marked grayscale: true")
            scale = check_number(d.get("pixel_scale"), "pixel_scale")
            offset = check_number(d.get("pixel_offset"), "pixel_offset")
            if scale == 0:
                raise ValueError("pixel_scale: must not be 0")
            sha = d.get("sha256")
            if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
                raise ValueError("sha256: must be 64 hex digits")
        except ValueError as exc:
            raise ModelError(f"{where} ({exc})") from None
        return cls(labels, size, True, scale, offset, sha, face,
                   {k: d[k] for k in _INFO_KEYS if k in d})


def _name(path: str | Path) -> str:
    return display(str(path))


def _regular_file(path: Path, missing: str) -> None:
    """A one-line ModelError unless ``path`` is a readable regular file."""
    problem = file_problem(path)
    if problem is not None:
        raise ModelError(f"{_name(path)}: {missing if problem == 'missing' else problem}")


MAX_SIDECAR_BYTES = 1024 * 1024


def read_sidecar(path: Path, what: str) -> dict[str, Any]:
    """A sidecar's JSON object, or a one-line ModelError naming the file."""
    _regular_file(path, f"{what} is missing")
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_SIDECAR_BYTES + 1)
        if len(data) > MAX_SIDECAR_BYTES:
            raise ModelError(f"{_name(path)}: not a model sidecar (larger than "
                             f"{MAX_SIDECAR_BYTES // 1024} kB)")
        d = json.loads(data.decode("utf-8"))
    except OSError as exc:
        raise ModelError(f"{_name(path)}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ModelError(f"{_name(path)}: not a model sidecar (not UTF-8 text)") from None
    except ValueError as exc:
        raise ModelError(f"{_name(path)}: not a model sidecar (invalid JSON: {exc})") from None
    if not isinstance(d, dict):
        raise ModelError(f"{_name(path)}: not a model sidecar (not a JSON object)")
    return d


def check_labels(v: Any) -> tuple[str, ...]:
    if not (isinstance(v, list) and 2 <= len(v) <= 1000
            and all(isinstance(x, str) and x.strip() for x in v)):
        raise ValueError("labels: must be a list of at least 2 names")
    if len(set(v)) != len(v):
        raise ValueError("labels: names must be distinct")
    return tuple(v)


def check_size(v: Any, key: str) -> tuple[int, int]:
    if not (isinstance(v, list) and len(v) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) and 8 <= x <= 1024
                    for x in v)):
        raise ValueError(f"{key}: must be [height, width], each 8..1024 pixels, not {v!r}")
    return v[0], v[1]


def check_number(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key}: must be a finite number, not {v!r}")
    return float(v)


def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data``, by Python's own implementation where it has one: hashlib
    would load OpenSSL's libcrypto for this one digest a start, 3.5 MB of the device's
    memory for as long as it runs (nothing else in the frame loop needs it)."""
    try:
        from _sha256 import sha256   # Python 3.11 (Raspberry Pi OS bookworm)
    except ImportError:
        try:
            from _sha2 import sha256  # 3.12 on
        except ImportError:           # a Python built without them
            from hashlib import sha256
    return sha256(data).hexdigest()


def load_interpreter(path: Path, threads: int = 1, sha256: str | None = None):
    """A LiteRT interpreter for ``path``, with a clear error for a missing or corrupt file."""
    path = Path(path)
    _regular_file(path, "model file not found")
    try:
        with path.open("rb") as f:
            litert.check_model_size(os.fstat(f.fileno()).st_size, _name(path))
            content = f.read(litert.MAX_MODEL_BYTES + 1)
        litert.check_model_size(len(content), _name(path))   # it grew meanwhile
    except litert.ModelTooLarge as exc:
        raise ModelError(str(exc)) from None
    except OSError as exc:
        raise ModelError(f"{_name(path)}: cannot read it ({exc.strerror})") from None
    if sha256 and sha256_hex(content) != sha256:
        raise ModelError(f"{path}: file does not match its sidecar's sha256 (corrupt or "
                         f"replaced); reinstall the model files")
    try:
        interp = litert.interpreter(content=content, threads=threads)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{_name(path)}: not a loadable TFLite model "
                         f"({first_line(exc)})") from None
    return interp


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_DTYPES = (np.int8, np.uint8, np.float32)
# Faces a call to the interpreter: its buffers grow with the batch and are kept (a class of
# 30 new faces at once held 4 MB more than 8 do, for the same ms a face).
MAX_BATCH = 8


class EmotionModel:
    """Gray face crops in, probabilities out. Quantization is read from the model itself."""

    def __init__(self, path: str | Path, threads: int = 1, sidecar: str | Path | None = None):
        self.path = Path(path)
        _regular_file(self.path, "model file not found")
        self.sidecar = Sidecar.load(Path(sidecar) if sidecar else self.path.with_suffix(".json"))
        self.interpreter = load_interpreter(self.path, threads, self.sidecar.sha256)
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype = inp["dtype"]
        h, w = self.sidecar.input_size
        name = _name(self.path)
        if len(inp["shape"]) != 4 or inp["shape"][3] != 1:
            raise ModelError(f"{name}: takes input {tuple(inp['shape'])}, not gray faces "
                             f"(N, H, W, 1): not an emotion model")
        if tuple(inp["shape"][1:3]) != (h, w):
            raise ModelError(f"{name}: input is {tuple(inp['shape'][1:3])} but the sidecar "
                             f"says {(h, w)}")
        if inp["dtype"] not in _DTYPES or out["dtype"] not in _DTYPES:
            raise ModelError(f"{name}: tensors of type {np.dtype(inp['dtype']).name} -> "
                             f"{np.dtype(out['dtype']).name}; int8, uint8 or float32 needed")
        if len(out["shape"]) != 2 or out["shape"][1] != len(self.sidecar.labels):
            raise ModelError(f"{name}: the model gives {tuple(out['shape'])} scores but its "
                             f"sidecar names {len(self.sidecar.labels)} labels")
        # Fold pixel scaling and input quantization into one affine map pixel -> int8:
        # q = pixel * a + b. For the shipped models a = 1, b = -128.5 (pixel / 127.5 - 1 on
        # an int8 scale of 2/255): every pixel sits on a rounding tie, settled by float32's
        # last bit, the same on every CPU (no fused multiply-add here).
        s, zp = inp["quantization"]
        if s:
            self._a = self.sidecar.pixel_scale / s
            self._b = self.sidecar.pixel_offset / s + zp
        else:  # float model
            self._a, self._b = self.sidecar.pixel_scale, self.sidecar.pixel_offset
        self._out_q = out["quantization"]
        self._batch = int(inp["shape"][0])
        self.labels = self.sidecar.labels
        face = self.sidecar.face_size
        self._face = np.empty(face, np.uint8) if face and face != (h, w) else None
        self._probe()

    def _probe(self) -> None:
        """One real inference, as ``run`` will do at the first face: a model that loads but
        cannot classify fails here, with one line, not at the first face."""
        fh, fw = self.sidecar.face_size or self.sidecar.input_size
        crop = np.tile(np.linspace(40, 200, fw, dtype=np.uint8), (fh, 1))  # a face-sized crop
        faces = np.empty((2, *self.sidecar.input_size), np.uint8)
        for n in (2, 1):         # several faces in a frame, then one (left as the batch)
            try:
                for f in faces[:n]:
                    self.prepare(crop, f)
                p = self.predict(faces[:n])
            except (ValueError, RuntimeError, cv2.error) as exc:
                raise ModelError(f"{_name(self.path)}: fails on a face "
                                 f"({first_line(exc)})") from None
            if p.shape != (n, len(self.labels)) or not np.all(np.isfinite(p)):
                raise ModelError(f"{_name(self.path)}: gives {p.shape} scores for {n} "
                                 f"face(s), not ({n}, {len(self.labels)}) finite ones")

    @property
    def input_size(self) -> tuple[int, int]:
        return self.sidecar.input_size

    def prepare(self, gray_crop: np.ndarray, out: np.ndarray) -> None:
        """Resize one gray crop into ``out`` (H, W) uint8, as training data was made."""
        if self._face is not None:  # via the training faces' size (convert.preprocess)
            resize_into(gray_crop, self._face)
            gray_crop = self._face
        resize_into(gray_crop, out)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 prepared faces -> (N, classes) float32 probabilities, at most
        ``MAX_BATCH`` a call to the interpreter."""
        if len(faces) > MAX_BATCH:
            return np.concatenate([self._predict(faces[i:i + MAX_BATCH])
                                   for i in range(0, len(faces), MAX_BATCH)])
        return self._predict(faces)

    def _predict(self, faces: np.ndarray) -> np.ndarray:
        n = len(faces)
        if n != self._batch:
            h, w = self.sidecar.input_size
            self.interpreter.resize_tensor_input(self._in_index, [n, h, w, 1])
            self.interpreter.allocate_tensors()
            self._batch = n
        x = faces.astype(np.float32)
        x *= self._a
        x += self._b
        if np.issubdtype(self._in_dtype, np.integer):
            info = np.iinfo(self._in_dtype)
            x = np.clip(np.rint(x), info.min, info.max).astype(self._in_dtype)
        self.interpreter.set_tensor(self._in_index, x[..., None])
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._out_index)
        s, zp = self._out_q
        return (y.astype(np.float32) - zp) * s if s else y.astype(np.float32)

    def predict_faces(self, faces: np.ndarray, batch: int = 64, flip: bool = False) -> np.ndarray:
        """Any number of gray faces of any one size -> probabilities (used by evaluation)."""
        h, w = self.sidecar.input_size
        prepared = np.empty((len(faces), h, w), np.uint8)
        for i, f in enumerate(faces):
            self.prepare(f, prepared[i])
        out = []
        for i in range(0, len(prepared), batch):
            chunk = prepared[i:i + batch]
            p = self.predict(chunk)
            if flip:
                p = (p + self.predict(np.ascontiguousarray(chunk[:, :, ::-1]))) / 2
            out.append(p)
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


def resize_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``src`` resized into ``dst``: area averaging to shrink, bilinear to enlarge. Training
    faces are made by the same function (``convert.preprocess.resize_faces``)."""
    h, w = dst.shape
    interp = cv2.INTER_AREA if src.shape[0] > h else cv2.INTER_LINEAR
    cv2.resize(src, (w, h), dst=dst, interpolation=interp)


def crop_box(box: Box, frame_shape: tuple[int, ...], margin: float) -> Box:
    """The face box grown by ``margin`` (a fraction of its size) into a square, clipped to
    the frame: the crop the classifier sees."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    x1 = min(frame_shape[1], int(cx + side / 2))
    y1 = min(frame_shape[0], int(cy + side / 2))
    return x0, y0, x1 - x0, y1 - y0


@dataclass
class ClassifierConfig:
    """Section ``[classifier]``."""
    model: str = field(default="", metadata={
        "doc": "the int8 .tflite emotion model (its .json sidecar beside it); empty: "
               "emotion_int8.tflite in $EMOTION_EDGE_MODELS or the repo's models/"})
    margin: float = field(default=0.1, metadata={
        "doc": "extra border around each detected face, as a fraction of its size",
        "range": "0..1"})
    flip_average: bool = field(default=False, metadata={
        "doc": "also classify the mirrored face and average (about 2x the cost, a little steadier)"})
    threads: int = field(default=1, metadata={"doc": "LiteRT threads for the classifier",
        "range": "1..64"})
    min_readable: int = field(default=27, metadata={
        "doc": "smallest face side in pixels whose emotion is read; a smaller face is "
               "tracked and counted but 'too small to read' (no emotion). 27: below a "
               "32 px crop (27 px face + margin) the shipped model loses more than 5 points "
               "of FER+ accuracy (bench/results/small_faces.md: 24 px -7.2, 32 px -1.9)",
        "range": ">= 0", "unit": "pixels"})
    faces_per_run: int = field(default=3, metadata={
        "doc": "most faces read per detector run (0: every face on every run). A kiosk's "
               "one to three faces are read on every run; in a room of 30 the faces read "
               "longest ago go first, so each is read on every 10th run (every 2 s at 15 "
               "camera fps): a room's expressions change slowly, and reading 30 faces costs "
               "30 times one (bench/results/classroom.md)",
        "range": ">= 0"})
    background: bool = field(default=True, metadata={
        "doc": "read faces on a second thread while the next frames are decoded and "
               "searched (LiteRT frees Python's lock): a face already read gets its new "
               "emotion one detector run later, a new face at once (edge/reading.py); "
               "false: in the frame loop, on one core"})

    def __post_init__(self):
        check(self)   # the ranges and choices in the fields' metadata

    def model_path(self) -> Path:
        return Path(self.model) if self.model else models_dir() / "emotion_int8.tflite"


class FaceClassifier:
    """Cuts each face out of a frame (with a margin), and classifies all of them at once."""

    def __init__(self, cfg: ClassifierConfig):
        self.cfg = cfg
        self.model = EmotionModel(cfg.model_path(), cfg.threads)
        self.labels = self.model.labels
        h, w = self.model.input_size
        self._buf = np.empty((8, h, w), np.uint8)  # grown on demand, reused across frames

    def crop_box(self, box: Box, frame_shape: tuple[int, ...]) -> Box:
        return crop_box(box, frame_shape, self.cfg.margin)

    def classify(self, frame: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """Probabilities (N, classes) for the faces at ``boxes`` in the frame (gray or BGR)."""
        return self.predict(self.prepare(frame, boxes))

    def prepare(self, frame: np.ndarray, boxes: list[Box]) -> np.ndarray:
        """The faces at ``boxes`` cut out of the gray or BGR frame and resized for the
        model: (N, H, W) uint8, in a buffer reused by the next call. A BGR frame's crops are
        turned gray one by one (the same pixels as the whole frame turned gray, for a few
        faces' area instead of a 720p frame's)."""
        n = len(boxes)
        if n > len(self._buf):
            self._buf = np.empty((n, *self._buf.shape[1:]), np.uint8)
        fh, fw = frame.shape[:2]
        for i, box in enumerate(boxes):
            x, y, w, h = self.crop_box(box, frame.shape)
            if w < 1 or h < 1:   # a box (nearly) outside the frame: its nearest pixel
                x, y = min(max(x, 0), fw - 1), min(max(y, 0), fh - 1)
                w = h = 1
            crop = frame[y:y + h, x:x + w]
            if crop.ndim == 3:
                crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            self.model.prepare(crop, self._buf[i])
        return self._buf[:n]

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for faces ``prepare`` made (any thread, one at a time)."""
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        p = self.model.predict(faces)
        if self.cfg.flip_average:
            p = (p + self.model.predict(np.ascontiguousarray(faces[:, :, ::-1]))) / 2
        return p
