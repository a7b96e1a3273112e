"""Function-preserving widening of a trained conv-BN-ReLU chain (Net2WiderNet, Chen et al. 2016).

Each new channel copies an existing one (its conv filter and its BatchNorm parameters and
statistics); the next layer divides the weights it reads from a copied channel by the
number of copies, so the wider model gives the same outputs as the trained one before it
takes a single step. Small noise on the copies breaks their symmetry so they can diverge.
BatchNorm in training mode normalises a copy exactly as its original (same batch
statistics), so this holds during training as well as at inference.
"""
from __future__ import annotations

import numpy as np


def _chain(model) -> list:
    """The model's Conv2D / BatchNormalization / Dense layers in order."""
    kinds = ("Conv2D", "BatchNormalization", "Dense")
    return [layer for layer in model.layers if type(layer).__name__ in kinds]


def can_widen(src, dst) -> bool:
    """True when ``dst`` is ``src`` with at least as many channels in every layer (its input
    may be larger: convolutions and global pooling do not depend on the image size)."""
    a, b = _chain(src), _chain(dst)
    if [type(x).__name__ for x in a] != [type(x).__name__ for x in b]:
        return False
    if src.input_shape[-1] != dst.input_shape[-1] or src.output_shape != dst.output_shape:
        return False
    return all(wa.shape[-1] <= wb.shape[-1] and wa.ndim == wb.ndim
               for x, y in zip(a, b) for wa, wb in zip(x.get_weights(), y.get_weights()))


def widen(src, dst, seed: int = 1, noise: float = 0.01):
    """Copy ``src``'s trained weights into the wider ``dst`` (same layer chain); returns ``dst``.

    ``noise``: standard deviation of the symmetry-breaking noise, relative to each
    layer's weight spread; 0 keeps the outputs identical to ``src``'s.
    """
    if not can_widen(src, dst):
        raise ValueError(f"{dst.name} is not a wider copy of {src.name}: their layers differ")
    rng = np.random.default_rng(seed)
    mapping = np.arange(src.input_shape[-1])           # new channel -> old channel of the input
    for old, new in zip(_chain(src), _chain(dst)):
        weights = old.get_weights()
        kind = type(old).__name__
        if kind == "BatchNormalization":                # per-channel vectors: follow the conv
            new.set_weights([w[mapping] for w in weights])
            continue
        kernel, rest = weights[0], weights[1:]
        counts = np.bincount(mapping, minlength=kernel.shape[-2])
        # Input side: read each old channel through all its copies, each at 1/copies weight.
        kernel = kernel[..., mapping, :] / counts[mapping][:, None]
        if noise:
            copied = counts[mapping] > 1
            kernel[..., copied, :] += rng.normal(0, noise * kernel.std(), kernel[..., copied, :].shape)
        n_old, n_new = kernel.shape[-1], new.get_weights()[0].shape[-1]
        if kind == "Dense":                             # the classes: never widened
            mapping = np.arange(n_old)
        else:                                           # output side: new channels copy old ones
            mapping = np.concatenate([np.arange(n_old), rng.integers(0, n_old, n_new - n_old)])
        new.set_weights([kernel[..., mapping]] + [w[mapping] for w in rest])
    return dst
