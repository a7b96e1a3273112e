"""``convert train``: train a zoo model on FER2013-format faces, resumably.

A run lives in one folder (``runs/<name>`` by default, git-ignored):

    best.keras   the model with the best val accuracy so far (what `quantize` takes)
    last.keras   the latest epoch, with optimizer state, to resume from
    state.json   epoch reached, best val accuracy, the run's settings
    log.csv      one row per epoch (loss, accuracy, val_loss, val_accuracy, lr)
    data.json    what the data cleaning did
    swa.keras    with ``--swa N``: the average of the last N epochs' weights (``swa.py``)
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import data as fer
from .augment import Augment
from .binary import BINARY_LABELS, to_binary
from .preprocess import to_model_input
from .sizes import LowRes, at_size
from .swa import WeightAverage, recompute_batch_norm


@dataclass
class TrainConfig:
    model: str = "vgg_bn"
    data: str = ""                     # npz, csv or folder; default: the shared npz
    val: str | None = None             # validation data; default: the npz's val split
    target: str = "ferplus-votes"      # fer2013 | ferplus-majority | ferplus-votes
    classes: str = "seven"             # seven | binary (negative / positive)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    patience: int = 10                 # early stopping on val accuracy
    class_weight: str = "sqrt"         # none | sqrt | balanced
    label_smoothing: float = 0.0
    limit: int = 0                     # use only the first N training faces (smoke runs)
    val_limit: int = 0                 # score only the first N val faces (smoke runs)
    seed: int = 1
    input_size: int = 0                # 0: the model's default
    init: str = ""                     # start from this Keras model's weights (fine-tuning)
    mixup: float = 0.0                 # Beta(a, a) mixing of faces and targets in a batch; 0: off
    teacher: str = ""                  # Keras models (comma-separated) to distill from
    teacher_weight: float = 0.5        # share of each target taken from the teachers
    swa: int = 0                       # average the weights of the last N epochs; 0: off
    swa_lr: float = 2e-4               # the constant learning rate of those N epochs
    low_res: str = ""                  # "12-48": faces also seen brought down to LOW..HIGH px
    low_res_share: float = 0.7         # the share of training faces brought down (sizes.py)
    val_sizes: str = ""                # "24,16": keep the epoch best on the mean val accuracy
                                       # at these face sizes and the full size
    steps_per_epoch: int = 0           # batches an epoch (0: one pass over the faces)
    freeze_bn: bool = False            # fine-tuning: BatchNorm keeps its statistics and scales


def load_run_data(cfg: TrainConfig) -> tuple[fer.FaceSet, fer.FaceSet, np.ndarray, np.ndarray]:
    """Cleaned training faces and val faces with their targets (val: hard labels)."""
    src = cfg.data or str(fer.default_fer_npz())
    train = fer.load_faces(src, "train")
    val = fer.load_faces(cfg.val, "val") if cfg.val else \
        fer.load_faces(src, "val") if not Path(src).is_dir() else None
    if val is None:
        raise fer.DataError("image folders need --val (a second folder of the same layout)")
    if cfg.classes == "binary":
        if cfg.target != "fer2013":
            raise fer.DataError("the binary task trains on FER2013 labels (--target fer2013)")
        train, val = to_binary(train), to_binary(val)
    train = fer.clean_training_set(train, val, target=cfg.target)
    if cfg.limit:
        train = train.subset(np.arange(min(cfg.limit, len(train))), f"limited to {cfg.limit}")
    n_classes = 2 if cfg.classes == "binary" else len(fer.CLASSES)
    y_train = fer.targets(train, cfg.target) if n_classes == 7 else np.eye(2, dtype=np.float32)[train.y]
    if cfg.target.startswith("ferplus"):
        lab = fer.ferplus_majority(val.ferplus)
        val = val.subset(lab >= 0, "val scored against FER+ majority labels")
        val.y = lab[lab >= 0]
    if cfg.val_limit:
        val = val.subset(np.arange(min(cfg.val_limit, len(val))), f"val limited to {cfg.val_limit}")
    y_val = np.eye(n_classes, dtype=np.float32)[val.y]
    return train, val, y_train, y_val


def class_weights(y: np.ndarray, mode: str) -> np.ndarray:
    counts = np.bincount(y.argmax(axis=1), minlength=y.shape[1]).astype(np.float64)
    counts = np.maximum(counts, 1)
    if mode == "none":
        w = np.ones_like(counts)
    elif mode == "sqrt":
        w = np.sqrt(counts.max() / counts)
    elif mode == "balanced":
        w = counts.sum() / (len(counts) * counts)
    else:
        raise ValueError(f"unknown class weighting {mode!r}; use none, sqrt or balanced")
    return (w / (w * counts).sum() * counts.sum()).astype(np.float32)  # mean weight 1


def lr_at(epoch: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to zero at the last epoch (stateless: resumable).
    With ``--swa N`` the decay ends at ``--swa-lr``, N epochs early, and stays there."""
    end = cfg.epochs - cfg.swa
    if cfg.swa and epoch >= end:
        return cfg.swa_lr
    if epoch < cfg.warmup_epochs:
        return cfg.lr * (epoch + 1) / (cfg.warmup_epochs + 1)
    t = (epoch - cfg.warmup_epochs) / max(1, end - cfg.warmup_epochs)
    low = cfg.swa_lr if cfg.swa else 0.0
    return low + (cfg.lr - low) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def make_batches(x: np.ndarray, y: np.ndarray, w: np.ndarray, cfg: TrainConfig, size: int):
    """A tf.data pipeline of augmented batches, reshuffled every epoch.

    tf.data rather than keras.utils.PyDataset: measured here, a PyDataset made each
    training step about twice as slow (23.6 vs 12.0 ms per face, same model and batch),
    while NumPy augmentation costs only 0.08 ms per face either way.
    """
    import tensorflow as tf

    augment = Augment()
    low_res = LowRes.parse(cfg.low_res, cfg.low_res_share) if cfg.low_res else None
    rng = np.random.default_rng(cfg.seed)

    def batch(idx: np.ndarray):
        faces, targets = augment(x[idx], rng), y[idx].astype(np.float32)
        if low_res is not None:  # after the warp: the camera samples the scene as it is
            faces = low_res(faces, rng)
        if cfg.mixup:
            faces, targets = mix(faces, targets, cfg.mixup, rng)
        return to_model_input(faces, size), targets, w[idx].astype(np.float32)

    def with_shapes(faces, targets, weights):
        return (tf.ensure_shape(faces, (None, size, size, 1)),
                tf.ensure_shape(targets, (None, y.shape[1])), tf.ensure_shape(weights, (None,)))

    out = (tf.float32, tf.float32, tf.float32)
    faces = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=cfg.seed,
                                                  reshuffle_each_iteration=True)
    if cfg.steps_per_epoch:  # epochs shorter than a pass: the passes run on across them
        faces = faces.repeat()
    return (faces
            .batch(cfg.batch_size)
            .map(lambda idx: tf.numpy_function(batch, [idx], out))  # one call at a time: rng
            .map(with_shapes)
            .prefetch(2))


def mix(faces: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator):
    """mixup (Zhang et al. 2018): blend each face and its target with another face of the
    batch. The face itself keeps the larger share (lambda >= 0.5), so its class weight
    still applies."""
    lam = rng.beta(alpha, alpha, len(faces)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    other = rng.permutation(len(faces))
    faces = lam[:, None, None] * faces + (1 - lam[:, None, None]) * faces[other]
    return faces, lam[:, None] * targets + (1 - lam[:, None]) * targets[other]


def train(cfg: TrainConfig, run_dir: Path, resume: bool = True, verbose: int = 1) -> dict:
    import keras

    from . import zoo

    run_dir.mkdir(parents=True, exist_ok=True)
    state_path, last_path, best_path = run_dir / "state.json", run_dir / "last.keras", run_dir / "best.keras"
    state = json.loads(state_path.read_text()) if resume and state_path.exists() else {}
    if state:
        cfg = TrainConfig(**{**asdict(cfg), **state["config"], "epochs": cfg.epochs})
    if not 0 <= cfg.swa <= cfg.epochs:
        raise ValueError(f"--swa {cfg.swa}: averages the last N of the run's {cfg.epochs} epochs")
    keras.utils.set_random_seed(cfg.seed)

    train_set, val_set, y_train, y_val = load_run_data(cfg)
    entry = zoo.get(cfg.model)
    size = cfg.input_size or entry.input_size
    weights = class_weights(y_train, cfg.class_weight)
    w_train = weights[y_train.argmax(axis=1)]  # by the data's own labels, not the teachers'
    if cfg.teacher:
        from .distill import distilled_targets
        y_train = distilled_targets(y_train, cfg.teacher.split(","), train_set.x,
                                    cfg.teacher_weight, run_dir / "teacher.npz")
        train_set.notes.append(f"targets: {1 - cfg.teacher_weight:.2f} x {cfg.target} + "
                               f"{cfg.teacher_weight:.2f} x the teachers ({cfg.teacher})")
    (run_dir / "data.json").write_text(json.dumps({
        "train": train_set.source, "train_notes": train_set.notes, "n_train": len(train_set),
        "val": val_set.source, "val_notes": val_set.notes, "n_val": len(val_set),
        "class_weights": weights.round(3).tolist()}, indent=2))
    if verbose:
        print("\n".join(f"data: {n}" for n in train_set.notes + val_set.notes))

    if state and last_path.exists():
        model = keras.models.load_model(last_path)
        initial_epoch = state["epoch"] + 1
        print(f"resuming {run_dir} at epoch {initial_epoch} (best val {state['best']:.4f})")
    else:
        n_classes = y_train.shape[1]
        model = entry.build(n_classes, size)
        if cfg.init:
            model = initial_model(cfg.init, model, cfg.seed)
        if cfg.freeze_bn:
            print(f"{freeze_batch_norm(model)} BatchNorm layers frozen (inference mode)")
        model.compile(
            optimizer=keras.optimizers.AdamW(cfg.lr, weight_decay=cfg.weight_decay),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"])
        initial_epoch, state = 0, {"best": 0.0, "epoch": -1}
    average = WeightAverage(run_dir / "swa.keras", state.get("swa_epochs", 0))
    batches = make_batches(train_set.x, y_train, w_train, cfg, size)
    val_input = to_model_input(val_set.x, size)
    val_sizes = [int(s) for s in cfg.val_sizes.split(",")] if cfg.val_sizes else []
    monitor = "val_size_score" if val_sizes else "val_accuracy"

    def write_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(state_path)

    def finish_average() -> None:
        if average.count and "swa_val" not in state:
            state.update(finish_swa(average, model, batches, val_input, val_set.y))
            write_state()

    if initial_epoch >= cfg.epochs:
        print(f"{run_dir}: already trained {initial_epoch} epochs")
        finish_average()  # a run cut off between its last epoch and the average's BatchNorm
        return state

    class SizeScore(keras.callbacks.Callback):
        """Val accuracy with the faces brought down to each of ``val_sizes`` px (as a far
        camera delivers them), and their mean with the full size's: what a model meant for
        far faces is kept by."""

        def on_epoch_end(self, epoch, logs=None):
            accs = [float(logs["val_accuracy"])]
            for s in val_sizes:
                x = to_model_input(at_size(val_set.x, s), size)
                p = self.model.predict(x, batch_size=256, verbose=0)
                logs[f"val_accuracy_{s}px"] = float((p.argmax(1) == val_set.y).mean())
                accs.append(logs[f"val_accuracy_{s}px"])
            logs["val_size_score"] = float(np.mean(accs))
            print(f"epoch {epoch + 1}: val accuracy " + ", ".join(
                f"{s} px {a:.4f}" for s, a in zip([size] + val_sizes, accs)), flush=True)

    class Checkpoint(keras.callbacks.Callback):
        """Best and last models plus state.json, written so a cut-off run can resume."""

        def on_epoch_end(self, epoch, logs=None):
            acc = float(logs[monitor])
            if acc > state["best"]:
                state.update(best=acc, best_epoch=epoch)
                save_atomically(self.model, best_path)
            save_atomically(self.model, last_path)
            if epoch >= cfg.epochs - cfg.swa:
                average.add(self.model)
                save_atomically(average.model(self.model), average.path)
                state.update(swa_epochs=average.count)
                state.pop("swa_val", None)  # a finished run given more epochs averages on
            state.update(epoch=epoch, config=asdict(cfg), model=cfg.model, input_size=size,
                         labels=list(BINARY_LABELS if y_train.shape[1] == 2 else fer.CLASSES))
            write_state()

    callbacks = [SizeScore()] if val_sizes else []  # first: the others log its figures
    callbacks += [
        keras.callbacks.LearningRateScheduler(lambda e: lr_at(e, cfg)),
        keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=initial_epoch > 0),
        Checkpoint(),
    ]
    if not cfg.swa:  # an averaging run keeps its fixed schedule: the average needs its epochs
        callbacks.append(keras.callbacks.EarlyStopping(monitor, mode="max",
                                                       patience=cfg.patience))
    model.fit(batches, validation_data=(val_input, y_val),
              epochs=cfg.epochs, initial_epoch=initial_epoch, callbacks=callbacks,
              steps_per_epoch=cfg.steps_per_epoch or None,
              shuffle=False, verbose=verbose)  # the dataset shuffles itself, seeded
    finish_average()
    return state


def finish_swa(average: WeightAverage, like, batches, val_input: np.ndarray,
               val_labels: np.ndarray) -> dict:
    """Give the averaged weights their own BatchNorm statistics (one pass over the augmented
    training batches), score them on val and save them as the run's ``swa.keras``."""
    model = average.model(like)
    recompute_batch_norm(model, (faces for faces, _, _ in batches))
    acc = float((model.predict(val_input, batch_size=256, verbose=0).argmax(axis=1)
                 == val_labels).mean())
    save_atomically(model, average.path)
    print(f"weight average of {average.count} epochs: val accuracy {acc:.4f} ({average.path})")
    return {"swa_val": acc}


def save_atomically(model, path: Path) -> None:
    """A run killed while saving keeps its previous checkpoint, never half a file."""
    tmp = path.with_name(path.stem + ".partial.keras")  # Keras insists on the suffix
    model.save(tmp)
    tmp.replace(path)


def initial_model(path: str, fresh, seed: int = 1):
    """A trained model to start from: the same architecture as the run's ``fresh`` model
    (fine-tuning, say a FER+ model on the original labels), or a narrower one of the same
    layer chain, widened so that it still computes what it was trained to (``widen.py``),
    or one trained on another face size (its weights copied into ``fresh``)."""
    import keras

    from .widen import can_widen, widen

    if not Path(path).is_file():
        raise FileNotFoundError(f"--init {path}: no such model file")
    model = keras.models.load_model(path, compile=False)
    if model.output_shape != fresh.output_shape:
        (h, w), n = model.input_shape[1:3], model.output_shape[-1]
        (fh, fw), fn = fresh.input_shape[1:3], fresh.output_shape[-1]
        raise ValueError(f"--init {path}: takes {h}x{w} faces and gives {n} classes; "
                         f"this run needs {fh}x{fw} and {fn}")
    if model.input_shape == fresh.input_shape and model.count_params() == fresh.count_params():
        return model
    if not can_widen(model, fresh):
        raise ValueError(f"--init {path}: a {model.name} model, which cannot start a "
                         f"{fresh.name} run (not the same layers, nor a narrower copy of them)")
    return widen(model, fresh, seed=seed)


def freeze_batch_norm(model) -> int:
    """Keep every BatchNorm layer as the starting model has it: a frozen layer runs in
    inference mode (Keras 3), normalising with its moving statistics and updating neither
    them nor its scale and offset. Fine-tuning on a view the model was not trained on (far,
    blurred faces) would otherwise pull the statistics of every layer toward that view, and
    the sharp faces the model already reads would be normalised with them. The setting is
    saved with the model, so a resumed run keeps it. Returns how many layers were frozen."""
    import keras

    frozen, todo = 0, list(model.layers)
    while todo:
        layer = todo.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            frozen += 1
        todo.extend(getattr(layer, "layers", []))  # nested models
    if not frozen:
        raise ValueError(f"--freeze-bn: {model.name} has no BatchNorm layers to freeze")
    return frozen


def export_model(src: Path, dst: Path) -> Path:
    """A run's checkpoint without its optimizer state: the Keras model that ships."""
    import keras

    model = keras.models.load_model(src, compile=False)  # compile=False: no optimizer state
    dst.parent.mkdir(parents=True, exist_ok=True)
    model.save(dst)
    return dst
