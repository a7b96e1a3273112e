"""Training and evaluating model A (``micro_cnn_lstm``) on frame sequences.

``convert train --model micro_cnn_lstm --data <root>`` dispatches here (the zoo module has
``KIND = "sequence"``). ``cfg.data`` is a CASME II / SAMM style folder
(``convert.micro.sequences``); ``cfg.classes == "binary"`` picks the negative/positive
mapping, anything else the MEGC composite three classes. Whole subjects are held out for
validation (``VAL_SHARE`` of them, drawn with ``cfg.seed``), never single clips of a subject
the model trains on. A run folder holds best.keras, last.keras, state.json and log.csv, as
``convert.train`` does, and resumes from last.keras.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..train import TrainConfig, lr_at
from . import flowset, sequences

VAL_SHARE = 0.2
PIXEL_SCALE, PIXEL_OFFSET = 1.0 / 127.5, -1.0   # as the face models: 0..255 -> -1..1


def to_input(x: np.ndarray) -> np.ndarray:
    """(N, T, H, W) uint8 -> (N, T, H, W, 1) float32 model input."""
    return (x.astype(np.float32) * PIXEL_SCALE + PIXEL_OFFSET)[..., None]


def mapping_of(cfg: TrainConfig) -> str:
    return "binary" if cfg.classes == "binary" else "composite"


def split_subjects(subject: np.ndarray, seed: int, share: float = VAL_SHARE) -> np.ndarray:
    """Boolean mask of the validation clips: every clip of ``share`` of the subjects."""
    subjects = np.unique(subject)
    if len(subjects) < 2:
        raise sequences.DataError("need clips of at least two subjects to hold one out")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(share * len(subjects))))
    return np.isin(subject, rng.permutation(subjects)[:n_val])


def train_sequences(cfg: TrainConfig, run_dir: Path, resume: bool = True, verbose: int = 2,
                    frames: int | None = None) -> dict:
    """Train model A; ``frames`` overrides the zoo's frames per clip (smoke runs)."""
    import keras

    from ..zoo import micro_cnn_lstm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path, last_path, best_path = (run_dir / n for n in ("state.json", "last.keras", "best.keras"))
    state = json.loads(state_path.read_text()) if resume and state_path.exists() else {}
    keras.utils.set_random_seed(cfg.seed)
    size = cfg.input_size or micro_cnn_lstm.INPUT_SIZE
    frames = frames or micro_cnn_lstm.FRAMES
    data = sequences.load_sequences(cfg.data, frames, size, mapping_of(cfg))
    if cfg.limit:
        data.x, data.y = data.x[:cfg.limit], data.y[:cfg.limit]
        data.subject = data.subject[:cfg.limit]
    val = split_subjects(data.subject, cfg.seed)
    k = len(data.labels)
    y = np.eye(k, dtype=np.float32)[data.y]
    counts = np.maximum(np.bincount(data.y[~val], minlength=k), 1)
    cw = counts.sum() / (k * counts) if cfg.class_weight != "none" else np.ones(k)

    if state and last_path.exists():
        model = keras.models.load_model(last_path)
        initial_epoch = state["epoch"] + 1
    else:
        model = micro_cnn_lstm.build(k, size, frames)
        model.compile(optimizer=keras.optimizers.AdamW(cfg.lr, weight_decay=cfg.weight_decay),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        initial_epoch, state = 0, {"best": -1.0, "epoch": -1}
    state.update(labels=list(data.labels), val_subjects=sorted(set(data.subject[val])),
                 n_train=int((~val).sum()), n_val=int(val.sum()), notes=data.notes,
                 model=micro_cnn_lstm.NAME, frames=frames, input_size=size)
    if initial_epoch >= cfg.epochs:
        return state

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            score = float(logs.get("val_accuracy", 0.0))
            if score > state["best"]:
                state.update(best=score, best_epoch=epoch)
                self.model.save(best_path)
            self.model.save(last_path)
            state.update(epoch=epoch, config=asdict(cfg), loss=float(logs["loss"]))
            tmp = state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.replace(state_path)

    x = to_input(data.x)
    model.fit(x[~val], y[~val], sample_weight=cw[data.y[~val]].astype(np.float32),
              validation_data=(x[val], y[val]), batch_size=cfg.batch_size, epochs=cfg.epochs,
              initial_epoch=initial_epoch, verbose=verbose,
              callbacks=[keras.callbacks.LearningRateScheduler(lambda e: lr_at(e, cfg)),
                         keras.callbacks.CSVLogger(str(run_dir / "log.csv"),
                                                   append=initial_epoch > 0),
                         Checkpoint()])
    return state


def evaluate_sequences(model_path: Path, data_root: str | Path, subjects: list[str] | None = None,
                       mapping: str | None = None) -> dict:
    """Accuracy, UF1 and UAR of a .keras (or .tflite) model A on the clips of ``data_root``
    (only ``subjects`` when given, e.g. a run's held-out ones from its state.json)."""
    model_path = Path(model_path)
    state_file = model_path.parent / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if subjects is None and "val_subjects" in state:
        subjects = state["val_subjects"]
    if model_path.suffix == ".tflite":
        predict, frames, size, k = _tflite_predictor(model_path)
    else:
        import keras
        model = keras.models.load_model(model_path)
        frames, size, k = int(model.input_shape[1]), int(model.input_shape[2]), int(model.output_shape[-1])
        predict = lambda x: model.predict(to_input(x), batch_size=16, verbose=0)  # noqa: E731
    mapping = mapping or ("binary" if k == 2 else "composite")
    data = sequences.load_sequences(data_root, frames, size, mapping)
    keep = np.isin(data.subject, subjects) if subjects else np.ones(len(data), bool)
    if not keep.any():
        raise sequences.DataError(f"{data_root}: none of the subjects {subjects} has clips")
    pred = predict(data.x[keep]).argmax(1)
    uf1, uar = flowset.uf1_uar(data.y[keep], pred, k)
    return {"n": int(keep.sum()), "accuracy": float((pred == data.y[keep]).mean()),
            "uf1": uf1, "uar": uar, "labels": list(data.labels),
            "subjects": "all" if not subjects else subjects}


def _tflite_predictor(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    frames, size = int(inp["shape"][1]), int(inp["shape"][2])

    def predict(x: np.ndarray) -> np.ndarray:
        rows = []
        for clip in to_input(x):
            q = clip[None]
            s, zp = inp["quantization"]
            if s:
                q = np.clip(np.rint(q / s + zp), -128, 127).astype(inp["dtype"])
            interp.set_tensor(inp["index"], q)
            interp.invoke()
            y = interp.get_tensor(out["index"])[0].astype(np.float32)
            so, zo = out["quantization"]
            rows.append((y - zo) * so if so else y)
        return np.stack(rows)

    return predict, frames, size, int(out["shape"][-1])
