"""Model B's linear view: a logistic regression on block-averaged flow pixels, averaged with
the CNN's probabilities.

Why: on 442 clips a linear model on coarse pixels is nearly as good as the CNN (UF1 ~0.72)
and errs differently, so the average of the two beats either. Its two settings (block size,
C) are chosen by grouped 5-fold CV over the *training* subjects only: inside each LOSO fold
for the LOSO figures, over all subjects for the shipped model. In the device model it is
one AveragePooling2D + Dense branch (``micro_flow_net.build(linear_pool=...)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import flowset

POOLS = (2, 4)                    # block sizes tried (28x28 -> 14x14 or 7x7)
CS = (0.1, 0.3, 1.0, 3.0)         # inverse regularization strengths tried
INNER_FOLDS = 5


def features(x: np.ndarray, pool: int) -> np.ndarray:
    """uint8 (N, 28, 28, 3) -> (N, (28/pool)^2 * 3): block means of pixel/255, flattened in
    Keras's (row, column, channel) order."""
    n, h, w, c = x.shape
    blocks = x.astype(np.float64).reshape(n, h // pool, pool, w // pool, pool, c).mean((2, 4))
    return (blocks / 255.0).reshape(n, -1)


@dataclass
class LinearView:
    pool: int
    c: float
    coef: np.ndarray        # (features, classes)
    intercept: np.ndarray   # (classes,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = features(x, self.pool) @ self.coef + self.intercept
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def keras_weights(self) -> list[np.ndarray]:
        """Dense weights for the model input (pixel/127.5 - 1 = 2 * pixel/255 - 1), so the
        branch computes exactly this regression's logits."""
        w = self.coef / 2.0
        return [w.astype(np.float32), (self.intercept + w.sum(0)).astype(np.float32)]


def fit(x: np.ndarray, y: np.ndarray, pool: int, c: float) -> LinearView:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(features(x, pool), y)
    # predict_proba of a multinomial fit is the softmax of these logits
    return LinearView(pool, c, m.coef_.T.copy(), m.intercept_.copy())


def select(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[int, float, dict]:
    """(pool, C) with the best UF1 in grouped CV over ``groups`` (subjects): a choice made
    on training subjects only. Also returns every candidate's score."""
    from sklearn.model_selection import GroupKFold

    splits = list(GroupKFold(INNER_FOLDS).split(x, groups=groups))
    scores = {}
    for pool in POOLS:
        for c in CS:
            pred = np.zeros(len(y), np.int64)
            for tr, te in splits:
                pred[te] = fit(x[tr], y[tr], pool, c).predict(x[te]).argmax(1)
            scores[(pool, c)] = flowset.uf1_uar(y, pred)[0]
    pool, c = max(scores, key=scores.get)
    return pool, c, scores


def fit_selected(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> LinearView:
    pool, c, _ = select(x, y, groups)
    return fit(x, y, pool, c)
