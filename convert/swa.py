"""Stochastic weight averaging (Izmailov et al. 2018, "Averaging weights leads to wider
optima and better generalization").

``train --swa N`` trains the run's last N epochs at a constant learning rate (``--swa-lr``)
and averages the weights reached at the end of each. At a constant rate the weights keep
wandering around a wide, flat valley of the loss; their average sits nearer its middle,
which holds up better on unseen faces than any single point the run passed through. It costs
nothing on the device: the averaged model has the same layers and the same speed.

Averaged weights need BatchNorm statistics of their own (the running ones belong to the
weights that produced them), so they are recomputed with one pass over the training faces.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


class WeightAverage:
    """The running mean of a model's weights, one snapshot per epoch, kept in a Keras file
    (``swa.keras`` in the run folder) so that a cut-off run resumes with it."""

    def __init__(self, path: Path, count: int = 0):
        self.path, self.count = path, count
        self.mean: list[np.ndarray] | None = None

    def add(self, model) -> None:
        weights = model.get_weights()
        if self.mean is None and self.count:  # resuming: go on from the saved average
            self.mean = self._saved(model)
        self.count += 1
        if self.mean is None:
            self.mean = weights
            return
        for m, w in zip(self.mean, weights):
            m += (w - m) / self.count  # in place: the mean of all snapshots so far

    def model(self, like):
        """A copy of ``like`` carrying the averaged weights (BatchNorm not yet recomputed)."""
        if self.mean is None:
            self.mean = self._saved(like)
        out = like.__class__.from_config(like.get_config())  # uncompiled: no optimizer state
        out.set_weights(self.mean)
        return out

    def _saved(self, like) -> list[np.ndarray]:
        import keras

        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: the run's weight average is missing; "
                                    f"start the run again with --fresh")
        return keras.models.load_model(self.path, compile=False).get_weights()


def batch_norm_layers(model) -> list:
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):  # a nested model
            found.extend(batch_norm_layers(layer))
    return found


def recompute_batch_norm(model, batches: Iterable) -> int:
    """Replace every BatchNorm layer's running statistics with the plain mean of its batch
    statistics over ``batches`` (PyTorch's ``update_bn``), returning the faces seen."""
    layers = batch_norm_layers(model)
    saved = [layer.momentum for layer in layers]
    seen = 0
    try:
        for k, x in enumerate(batches):
            for layer in layers:  # moving = m * moving + (1 - m) * batch: a running mean
                layer.momentum = k / (k + 1)
            model(x, training=True)
            seen += len(x)
    finally:
        for layer, m in zip(layers, saved):
            layer.momentum = m
    return seen
