"""Choices for model B made on the training subjects only, and the protocol that is not.

Nested: for each LOSO fold, the epoch snapshot and the CNN's weight against the linear view
are chosen by 2-fold grouped CV over that fold's *training* subjects. The subjects are split
once into two halves (balanced per dataset); fold k's inner models are "train on the other
half" (shared by every fold whose subject is in this half: it never saw the subject) and
"train on my half minus my subject". So each fold costs one extra stacked model, not five,
and every training clip gets one out-of-fold prediction to choose on. Measured (issue #29):
it lost to the fixed recipe (UF1 0.714 vs 0.737), because at half the training subjects the
CNN beats the linear view and at all of them it does not, so it is an option
(``--nested true``), not the default.

Peeking (``best_epoch_per_subject``): for each held-out subject keep the epoch that scored
best *on that subject*, as several public LOSO scripts do. It is here only to show how much
that choice inflates the figures on this data; it is never a result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import flowset
from .linear_view import LinearView, fit

EPOCH_SHARES = (0.4, 0.6, 0.8, 1.0)        # snapshots of the one cosine schedule
CNN_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # CNN share of the average (0: linear view alone)
DEFAULT_WEIGHT = 0.5                       # issue #5's fixed recipe: last epoch, plain mean


def candidate_epochs(epochs: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, round(s * epochs)) for s in EPOCH_SHARES}))


def halves(subject: np.ndarray, dataset: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N,) 0/1: which half each clip's subject is in; subjects alternate within each
    dataset in a fixed shuffled order, so both halves hold all three datasets."""
    rng = np.random.default_rng(seed)
    half = np.zeros(len(subject), np.int64)
    for d in sorted(set(dataset)):
        subs = sorted(set(subject[dataset == d]))
        for i, s in enumerate(rng.permutation(subs)):
            half[subject == s] = i % 2
    return half


@dataclass
class Plan:
    train: np.ndarray                                  # (models, N) bool: training clips
    folds: list[tuple[str, np.ndarray, np.ndarray]]    # outer folds; model k is fold k's
    inner: list[list[tuple[int, np.ndarray]]]          # per fold: (model, validation clips)


def loso_plan(subject: np.ndarray, dataset: np.ndarray, nested: bool) -> Plan:
    """The stacked models of one LOSO run: the 68 fold models, then (``nested``) the two
    half models and one inner model per fold."""
    folds = list(flowset.loso_folds(subject))
    train = [subject != s for s, _, _ in folds]
    inner: list[list[tuple[int, np.ndarray]]] = [[] for _ in folds]
    if nested:
        half = halves(subject, dataset)
        on_half = []
        for h in (0, 1):
            train.append(half == h)
            on_half.append(len(train) - 1)
        for k, (s, _, test) in enumerate(folds):
            g, out = half[test[0]], subject == s
            train.append((half == g) & ~out)
            inner[k] = [(on_half[1 - g], np.flatnonzero((half == g) & ~out)),
                        (len(train) - 1, np.flatnonzero(half != g))]
    return Plan(np.stack(train), folds, inner)


def final_plan(subject: np.ndarray, dataset: np.ndarray) -> Plan:
    """For the model trained on every subject: model 0 on all clips, 1 and 2 on one half
    each, validated on the other."""
    half = halves(subject, dataset)
    everything = np.arange(len(subject))
    return Plan(np.stack([np.ones(len(subject), bool), half == 0, half == 1]),
                [("all", everything, everything)],
                [[(1, np.flatnonzero(half == 1)), (2, np.flatnonzero(half == 0))]])


def choose(y: np.ndarray, cnn: dict[int, np.ndarray], lin: np.ndarray | None
           ) -> tuple[int, float, dict[tuple[int, float], float]]:
    """(epoch, CNN weight) with the best UF1 of ``w * cnn[epoch] + (1 - w) * lin`` on inner
    out-of-fold predictions ``y``; ties go to the fixed recipe (last epoch, 0.5) and its
    neighbours. ``lin`` None: the CNN alone, only the epoch is chosen."""
    weights = CNN_WEIGHTS if lin is not None else (1.0,)
    last = max(cnn)
    order = sorted(((e, w) for e in cnn for w in weights),
                   key=lambda c: (c[0] != last, abs(c[1] - DEFAULT_WEIGHT), -c[0], c[1]))
    scores = {}
    for e, w in order:
        p = cnn[e] if lin is None else w * cnn[e] + (1 - w) * lin
        scores[(e, w)] = flowset.uf1_uar(y, p.argmax(1))[0]
    best = order[0]
    for c in order[1:]:
        if scores[c] > scores[best]:
            best = c
    return best[0], best[1], scores


def inner_choices(x: np.ndarray, y: np.ndarray, plan: Plan, at: dict[int, np.ndarray],
                  views: list[LinearView] | None) -> list[tuple[int, float]]:
    """(epoch, CNN weight) per fold of ``plan``, chosen on the fold's inner out-of-fold
    predictions: ``at[e]`` (N, models, classes) is every stacked model's prediction after
    epoch e; each fold's linear settings are refitted on its inner training clips. A fold
    without inner models (not nested) gets the fixed recipe."""
    fixed = (max(at), DEFAULT_WEIGHT if views else 1.0)
    out, memo = [], {}
    for k, inner in enumerate(plan.inner):
        if not inner:
            out.append(fixed)
            continue
        val = np.concatenate([v for _, v in inner])
        cnn = {e: np.concatenate([p[v, j] for j, v in inner]) for e, p in at.items()}
        lin = None
        if views:
            parts = []
            for j, v in inner:
                key = (j, views[k].pool, views[k].c)
                if key not in memo:
                    tr = plan.train[j]
                    memo[key] = fit(x[tr], y[tr], views[k].pool, views[k].c)
                parts.append(memo[key].predict(x[v]))
            lin = np.concatenate(parts)
        e, w, _ = choose(y[val], cnn, lin)
        out.append((e, w))
    return out


def best_epoch_per_subject(per_epoch: np.ndarray, y: np.ndarray, subject: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """THE TEST-SUBJECT PROTOCOL, for comparison only: ``per_epoch`` (E, N, classes) are
    each clip's predictions after every epoch; for each subject keep the epoch with the best
    accuracy on that subject's own clips (the last such epoch, as HTNet's ``<=`` keeps).
    Returns the kept predictions and each clip's kept epoch (1-based)."""
    out, kept = np.empty_like(per_epoch[0]), np.zeros(len(y), np.int64)
    for s in np.unique(subject):
        m = subject == s
        acc = (per_epoch[:, m].argmax(-1) == y[m]).mean(1)
        e = len(acc) - 1 - int(np.argmax(acc[::-1]))
        out[m], kept[m] = per_epoch[e, m], e + 1
    return out, kept
