"""Training model B (``micro_flow_net``): one recipe for the LOSO folds and the final model,
so the shipped model is trained exactly as the evaluated ones were.

All 68 LOSO fold models train at once as one stacked network (``StackedFlowNets``): each
conv holds every fold's filters side by side and the dense layer is one matrix per fold.
Fold k's loss is masked to zero on subject k's clips, and nothing couples the folds (no
BatchNorm, Adam is element-wise), so fold k's weights are exactly those of a model trained
without subject k. On a busy CPU that is ~30x faster than 68 separate tiny Keras fits,
which are dominated by per-op overhead.

No validation split and no early stopping: with one subject left out there is nothing honest
to stop on (stopping on the left-out subject is tuning on the test fold), so every fold
trains a fixed number of epochs with a cosine learning-rate decay.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import flowset
from .linear_view import LinearView, fit_selected


@dataclass
class FlowTrainConfig:
    epochs: int = field(default=50, metadata={"doc": "fixed number of epochs (no early stopping)"})
    batch_size: int = field(default=32, metadata={"doc": "mini-batch size"})
    lr: float = field(default=5e-3, metadata={"doc": "peak learning rate (AdamW, cosine decay)"})
    weight_decay: float = field(default=1e-3, metadata={"doc": "AdamW decoupled weight decay"})
    flip: bool = field(default=True, metadata={
        "doc": "mirror a random half of each batch (u sign-flipped): faces are near-symmetric"})
    class_weight: str = field(default="balanced", metadata={
        "doc": "none | balanced: weight classes by inverse frequency (UF1/UAR weigh classes equally)"})
    width: int = field(default=6, metadata={"doc": "conv filters per flow stream"})
    dropout: float = field(default=0.5, metadata={"doc": "dropout before the dense layer"})
    center: bool = field(default=True, metadata={
        "doc": "subtract each image's mean u and v in the model (min-max normalization moved "
               "zero flow; the mean is its in-graph estimate)"})
    label_smoothing: float = field(default=0.0, metadata={"doc": "label smoothing of the loss"})
    linear: bool = field(default=True, metadata={
        "doc": "average the CNN with a logistic regression on block-averaged pixels, chosen "
               "by grouped CV on the training subjects (convert.micro.linear_view)"})
    tta: bool = field(default=False, metadata={
        "doc": "LOSO predictions average each clip and its mirror (u sign-flipped)"})
    nested: bool = field(default=False, metadata={
        "doc": "the recipe's result is the nested choice of epoch snapshot and CNN weight "
               "(2-fold grouped CV on the training subjects, convert.micro.nested) instead of "
               "the last epoch and a plain mean; LOSO reports both either way"})

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
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing: {self.label_smoothing} is outside 0..1")

    def key(self) -> str:
        """A stable description of this recipe (names the result cache). ``nested`` is left
        out: it only changes which of the cached predictions is the result."""
        return "-".join(f"{k}={v}" for k, v in asdict(self).items() if k != "nested")


def class_weights(y: np.ndarray, mode: str, k: int = len(flowset.CLASSES)) -> np.ndarray:
    counts = np.maximum(np.bincount(y, minlength=k), 1).astype(np.float64)
    return np.ones(k) if mode == "none" else counts.sum() / (k * counts)


class StackedFlowNets:
    """``n`` independent copies of ``micro_flow_net`` in one TensorFlow graph."""

    def __init__(self, n: int, cfg: FlowTrainConfig, seed: int):
        import tensorflow as tf

        from ..zoo import micro_flow_net as zoo

        self.n, self.cfg, self.k = n, cfg, len(flowset.CLASSES)
        self.w = cfg.width
        self.feat = zoo.POOLED * zoo.POOLED * len(zoo.CHANNELS) * self.w
        rng = np.random.default_rng(seed)

        def glorot(shape, fan_in, fan_out):
            lim = math.sqrt(6.0 / (fan_in + fan_out))
            return tf.Variable(rng.uniform(-lim, lim, shape).astype(np.float32))

        # Keras's default initializers, per fold model: glorot-uniform kernels, zero biases.
        self.conv_k = [glorot((3, 3, 1, n * self.w), 9, 9 * self.w) for _ in zoo.CHANNELS]
        self.conv_b = [tf.Variable(np.zeros(n * self.w, np.float32)) for _ in zoo.CHANNELS]
        self.dense_k = glorot((n, self.feat, self.k), self.feat, self.k)
        self.dense_b = tf.Variable(np.zeros((n, self.k), np.float32))
        self.params = [*self.conv_k, *self.conv_b, self.dense_k, self.dense_b]
        self.decayed = {id(v) for v in (*self.conv_k, self.dense_k)}
        self._m = [tf.Variable(tf.zeros_like(v)) for v in self.params]
        self._v = [tf.Variable(tf.zeros_like(v)) for v in self.params]
        self._step = tf.Variable(0.0)
        self._tf_seed = int(rng.integers(2**31))
        self._train_step = tf.function(self._train_step_py)
        self._logits = tf.function(lambda x: self._forward(x, False))

    def _forward(self, x, training: bool):
        import tensorflow as tf

        n, w = self.n, self.w
        if self.cfg.center:
            x = tf.concat([x[..., :2] - tf.reduce_mean(x[..., :2], axis=(1, 2), keepdims=True),
                           x[..., 2:]], axis=-1)
        pooled = []
        for i in range(len(self.conv_k)):
            h = tf.nn.conv2d(x[..., i:i + 1], self.conv_k[i], 1, "SAME") + self.conv_b[i]
            pooled.append(tf.nn.max_pool2d(tf.nn.relu(h), 3, 3, "SAME"))       # (B,10,10,n*w)
        h = tf.stack(pooled, axis=3)                                            # (B,10,10,3,n*w)
        b = tf.shape(h)[0]
        h = tf.reshape(h, (b, 5, 2, 5, 2, 3, n, w))
        h = tf.reduce_mean(h, axis=(2, 4))                                      # 2x2 average pool
        h = tf.reshape(tf.transpose(h, (0, 4, 1, 2, 3, 5)), (b, n, self.feat))  # Keras flatten order
        if training and self.cfg.dropout:
            h = tf.nn.dropout(h, self.cfg.dropout)
        return tf.einsum("bnf,nfk->bnk", h, self.dense_k) + self.dense_b      # (B, n, classes)

    def _train_step_py(self, x, y, weight, lr):
        """x (B,28,28,3) float input, y (B,) int, weight (B, n): class weight, 0 = not fold's."""
        import tensorflow as tf

        if self.cfg.flip:
            # Input is pixel/127.5 - 1, so the mirrored image's u (255 - u) is simply -u.
            flipped = tf.concat([-x[:, :, ::-1, :1], x[:, :, ::-1, 1:]], axis=-1)
            x = tf.where(tf.random.uniform((tf.shape(x)[0], 1, 1, 1)) < 0.5, flipped, x)
        with tf.GradientTape() as tape:
            logits = self._forward(x, True)
            eps = self.cfg.label_smoothing
            target = tf.one_hot(y, self.k) * (1 - eps) + eps / self.k
            ce = tf.nn.softmax_cross_entropy_with_logits(
                tf.repeat(target[:, None], self.n, axis=1), logits)
            loss = tf.reduce_sum(ce * weight) / tf.cast(tf.shape(x)[0], tf.float32)
        grads = tape.gradient(loss, self.params)
        self._step.assign_add(1.0)
        b1, b2, eps = 0.9, 0.999, 1e-7
        c1, c2 = 1 - b1 ** self._step, 1 - b2 ** self._step
        for p, g, m, v in zip(self.params, grads, self._m, self._v):
            m.assign(b1 * m + (1 - b1) * g)
            v.assign(b2 * v + (1 - b2) * g * g)
            update = (m / c1) / (tf.sqrt(v / c2) + eps)
            if id(p) in self.decayed:
                update += self.cfg.weight_decay * p
            p.assign_sub(lr * update)
        return loss / self.n

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray, seed: int,
            log=None, on_epoch=None) -> list[float]:
        """Train on uint8 clips ``x``; ``weight`` (N, n) masks each fold's clips. Returns the
        mean loss per epoch. ``on_epoch(e)`` is called after epoch e (1-based), e.g. to keep
        a ``state()`` snapshot or per-epoch predictions."""
        import tensorflow as tf

        tf.random.set_seed(self._tf_seed)
        xi, cfg = flowset.to_input(x), self.cfg
        rng = np.random.default_rng(seed)
        steps = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
        losses, t = [], 0
        for epoch in range(cfg.epochs):
            order, total = rng.permutation(len(x)), 0.0
            for s in range(0, len(x), cfg.batch_size):
                idx = order[s:s + cfg.batch_size]
                lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * t / steps))
                total += float(self._train_step(tf.constant(xi[idx]), tf.constant(y[idx]),
                                                tf.constant(weight[idx]), tf.constant(lr)))
                t += 1
            losses.append(total / math.ceil(len(x) / cfg.batch_size))
            if log:
                log(f"epoch {epoch + 1}/{cfg.epochs}: loss {losses[-1]:.4f}")
            if on_epoch:
                on_epoch(epoch + 1)
        return losses

    def state(self) -> list[np.ndarray]:
        """A copy of every weight (to rebuild a model at this epoch with ``keras_model``)."""
        return [p.numpy().copy() for p in self.params]

    def predict(self, x: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, n, classes) probabilities of every stacked model for uint8 clips ``x``;
        ``tta``: the mean over each clip and its mirror."""
        import tensorflow as tf

        if tta:
            return 0.5 * (self.predict(x) + self.predict(flowset.flip(x)))
        out = [tf.nn.softmax(self._logits(tf.constant(flowset.to_input(x[i:i + 128])))).numpy()
               for i in range(0, len(x), 128)]
        return np.concatenate(out)

    def keras_model(self, j: int, linear: LinearView | None = None,
                    state: list[np.ndarray] | None = None, cnn_weight: float = 0.5):
        """Stacked model ``j`` as a plain ``micro_flow_net`` Keras model (to save, quantize),
        with ``linear`` as its linear branch if given, weighted ``1 - cnn_weight``; ``state``:
        the weights of an earlier epoch (``state()``) instead of the current ones."""
        from ..zoo import micro_flow_net as zoo

        linear = linear if cnn_weight < 1.0 else None
        model = zoo.build(self.k, width=self.w, dropout=self.cfg.dropout, center=self.cfg.center,
                          linear_pool=linear.pool if linear else 0,
                          cnn_weight=cnn_weight if linear else 1.0)
        if linear:
            model.get_layer("linear").set_weights(linear.keras_weights())
        if cnn_weight == 0.0 and linear:
            return model                        # the linear view alone
        ps = state if state is not None else self.state()
        n = len(zoo.CHANNELS)
        conv_k, conv_b, dense_k, dense_b = ps[:n], ps[n:2 * n], ps[2 * n], ps[2 * n + 1]
        sl = slice(j * self.w, (j + 1) * self.w)
        for i, c in enumerate(zoo.CHANNELS):
            model.get_layer(f"{c}_conv").set_weights([conv_k[i][..., sl], conv_b[i][sl]])
        model.get_layer("scores").set_weights([dense_k[j], dense_b[j]])
        return model


def loso_weights(y: np.ndarray, fold: np.ndarray, n_folds: int, mode: str) -> np.ndarray:
    """(N, n_folds): the class weight of clip i in fold k's loss, 0 where clip i is fold k's
    test subject; class weights come from each fold's own training clips."""
    return mask_weights(y, np.stack([fold != k for k in range(n_folds)]), mode)


def mask_weights(y: np.ndarray, train: np.ndarray, mode: str) -> np.ndarray:
    """(N, n): the class weight of clip i in model j's loss where ``train[j, i]``, else 0;
    class weights come from each model's own training clips."""
    w = np.zeros((len(y), len(train)), np.float32)
    for j, m in enumerate(train):
        w[m, j] = class_weights(y[m], mode)[y[m]]
    return w


def train_final(x: np.ndarray, y: np.ndarray, cfg: FlowTrainConfig, seeds: tuple[int, ...],
                log=None, groups: np.ndarray | None = None, dataset: np.ndarray | None = None
                ) -> tuple[list, list[tuple[int, float]]]:
    """Models trained on every clip (one per seed), as plain Keras models, and each one's
    (epoch, CNN weight). ``groups`` (the subjects) are needed for the linear view's grouped
    CV, and with ``dataset`` for the nested choice: the same 2-fold choice as in each LOSO
    fold, here over all subjects (two half models trained beside the final one)."""
    from . import nested

    if (cfg.linear or cfg.nested) and groups is None:
        raise ValueError("train_final needs the subjects (groups) to choose the linear view "
                         "and the epoch")
    if cfg.nested and dataset is None:
        raise ValueError("nested: train_final needs each clip's dataset (the halves are "
                         "balanced per dataset)")
    linear = fit_selected(x, y, groups) if cfg.linear else None
    plan = (nested.final_plan(groups, dataset) if cfg.nested else
            nested.Plan(np.ones((1, len(y)), bool), [("all", np.arange(len(y)), np.arange(len(y)))],
                        [[]]))
    cands = nested.candidate_epochs(cfg.epochs)
    models, choices = [], []
    for seed in seeds:
        net = StackedFlowNets(len(plan.train), cfg, seed)
        at, states = {}, {}

        def on_epoch(e: int) -> None:
            if e in cands:
                at[e], states[e] = net.predict(x, cfg.tta), net.state()

        net.fit(x, y, mask_weights(y, plan.train, cfg.class_weight), seed, log, on_epoch)
        e, w = nested.inner_choices(x, y, plan, at, [linear] if linear else None)[0]
        models.append(net.keras_model(0, linear, states[e], w))
        choices.append((e, w))
    return models, choices
