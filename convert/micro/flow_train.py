"""Training model B (``micro_flow_net``) on flow images: one recipe for LOSO folds and the final
model, so the shipped model is trained exactly as the evaluated ones were.

No validation split and no early stopping: with one subject left out there is nothing honest
to stop on (stopping on the left-out subject is tuning on the test fold), so every fold
trains a fixed number of epochs with a cosine learning-rate decay.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import flowset


@dataclass
class FlowTrainConfig:
    epochs: int = field(default=40, metadata={"doc": "fixed number of epochs (no early stopping)"})
    batch_size: int = field(default=32, metadata={"doc": "mini-batch size"})
    lr: float = field(default=5e-3, metadata={"doc": "peak learning rate (AdamW, cosine decay)"})
    weight_decay: float = field(default=1e-3, metadata={"doc": "AdamW weight decay"})
    flip: bool = field(default=True, metadata={
        "doc": "mirror a random half of each batch (u sign-flipped): faces are near-symmetric"})
    class_weight: str = field(default="balanced", metadata={
        "doc": "none | balanced: weight classes by inverse frequency (UF1/UAR weigh classes equally)"})
    width: int = field(default=6, metadata={"doc": "conv filters per flow stream"})
    dropout: float = field(default=0.5, metadata={"doc": "dropout before the dense layer"})

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs: must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be at least 1, not {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be positive, not {self.lr}")
        if self.class_weight not in ("none", "balanced"):
            raise ValueError(f"class_weight: {self.class_weight!r} is not none or balanced")
        if self.width < 1:
            raise ValueError(f"width: must be at least 1, not {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: {self.dropout} is outside 0..1")

    def key(self) -> str:
        """A short stable name for caching results of this recipe."""
        return "-".join(f"{k}={v}" for k, v in asdict(self).items())


def training_arrays(x: np.ndarray, y: np.ndarray, cfg: FlowTrainConfig
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs, one-hot targets and per-sample class weights."""
    k = len(flowset.CLASSES)
    counts = np.maximum(np.bincount(y, minlength=k), 1).astype(np.float64)
    w = np.ones(k) if cfg.class_weight == "none" else counts.sum() / (k * counts)
    return flowset.to_input(x), np.eye(k, dtype=np.float32)[y], w[y].astype(np.float32)


class FlowTrainer:
    """Builds and compiles the model once and resets it for every fold: re-tracing the
    training step per fold would cost more than training the tiny model."""

    def __init__(self, cfg: FlowTrainConfig, seed: int, n_train: int):
        import keras

        from ..zoo import micro_flow_net

        self.cfg = cfg
        self.seed = seed
        keras.utils.set_random_seed(seed)
        self.model = micro_flow_net.build(len(flowset.CLASSES), width=cfg.width,
                                          dropout=cfg.dropout)
        steps = cfg.epochs * int(np.ceil(n_train / cfg.batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=steps)
        self.model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
                           loss="categorical_crossentropy")
        self._init = self.model.get_weights()

    def fit(self, x: np.ndarray, y: np.ndarray, fold_seed: int = 0):
        """Train from the initial weights on uint8 flow images ``x`` and labels ``y``."""
        import keras

        keras.utils.set_random_seed(self.seed * 1000 + fold_seed)
        self.model.set_weights(self._init)
        for v in self.model.optimizer.variables:  # moments and the step count (the schedule)
            v.assign(np.zeros(v.shape, v.dtype))
        self.model.fit(self._dataset(x, y, fold_seed), epochs=self.cfg.epochs, verbose=0)
        return self.model

    def _dataset(self, x: np.ndarray, y: np.ndarray, fold_seed: int):
        import tensorflow as tf

        xi, yi, wi = training_arrays(x, y, self.cfg)
        ds = tf.data.Dataset.from_tensor_slices((xi, yi, wi)).shuffle(
            len(xi), seed=self.seed * 1000 + fold_seed, reshuffle_each_iteration=True)
        ds = ds.batch(self.cfg.batch_size)
        if self.cfg.flip:
            def mirror(xb, yb, wb):
                # Input space is pixel/127.5 - 1, so 255 - u (the mirrored u) is simply -u.
                flipped = tf.concat([-xb[:, :, ::-1, :1], xb[:, :, ::-1, 1:]], axis=-1)
                pick = tf.random.uniform((tf.shape(xb)[0], 1, 1, 1)) < 0.5
                return tf.where(pick, flipped, xb), yb, wb
            ds = ds.map(mirror)
        return ds

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(flowset.to_input(x), batch_size=512, verbose=0)
