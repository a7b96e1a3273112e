"""Model B's protocol: LOSO folds on the real flow set, the metrics, and the stacked fold
training (fold k must never be influenced by subject k)."""
from __future__ import annotations

import numpy as np
import pytest

from convert.micro import flowset


@pytest.fixture(scope="module")
def fs(micro_npz):
    return flowset.load_flowset(micro_npz)


def test_real_set_shape(fs):
    assert fs.x.shape == (442, 28, 28, 3) and fs.x.dtype == np.uint8
    assert np.bincount(fs.y).tolist() == [250, 109, 83]
    assert len(fs.subjects()) == 68


def test_loso_never_shares_a_subject(fs):
    seen = np.zeros(len(fs), int)
    folds = list(flowset.loso_folds(fs.subject))
    assert len(folds) == 68
    for subject, train, test in folds:
        assert set(fs.subject[test]) == {subject}
        assert subject not in set(fs.subject[train])
        assert len(train) + len(test) == len(fs)
        seen[test] += 1
    assert (seen == 1).all()                 # every clip is tested exactly once


def test_uf1_uar_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 1, 2, 1, 1, 2, 0])
    # per class: F1 = 2TP/(2TP+FP+FN): c0 4/(4+1+2)=.5714, c1 4/(4+1+0)=.8, c2 2/(2+1+1)=.5
    uf1, uar = flowset.uf1_uar(y, p)
    assert uf1 == pytest.approx((4 / 7 + 0.8 + 0.5) / 3)
    assert uar == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_flip_mirrors_and_negates_horizontal_flow(fs):
    f = flowset.flip(fs.x[:5])
    assert np.array_equal(f[..., 1], fs.x[:5, :, ::-1, 1])
    assert np.array_equal(f[..., 0], 255 - fs.x[:5, :, ::-1, 0])
    assert f[..., 0].min() == 0 and f[..., 0].max() == 255    # still min-max normalized
    assert np.array_equal(flowset.flip(f), fs.x[:5])


def test_stacked_folds_are_independent(fs):
    """Changing fold 0's left-out clips must leave fold 0's weights unchanged (and change fold
    1's, which trains on them); the extracted Keras model must predict like the stack."""
    from convert.micro.flow_train import FlowTrainConfig, StackedFlowNets, loso_weights

    idx = np.concatenate([np.flatnonzero(fs.subject == s)[:12] for s in fs.subjects()[:6]])
    x, y, subj = fs.x[idx].copy(), fs.y[idx], fs.subject[idx]
    fold = np.where(subj == fs.subjects()[0], 0, 1)       # fold 0 leaves subject 0 out
    cfg = FlowTrainConfig(epochs=2, batch_size=16, dropout=0.0, flip=False)  # deterministic
    w = loso_weights(y, fold, 2, cfg.class_weight)
    assert (w[fold == 0, 0] == 0).all() and (w[fold == 0, 1] > 0).all()

    def train(xx):
        net = StackedFlowNets(2, cfg, seed=5)
        net.fit(xx, y, w, seed=5)
        return net

    a = train(x)
    x2 = x.copy()
    x2[fold == 0] = np.random.default_rng(0).integers(0, 256, x2[fold == 0].shape, dtype=np.uint8)
    b = train(x2)
    k = cfg.width
    for ka, kb in zip(a.conv_k, b.conv_k):
        assert np.allclose(ka.numpy()[..., :k], kb.numpy()[..., :k], atol=1e-6)   # fold 0 same
        assert not np.allclose(ka.numpy()[..., k:], kb.numpy()[..., k:])            # fold 1 not
    model = a.keras_model(0)
    assert np.allclose(model.predict(flowset.to_input(x[:8]), verbose=0),
                       a.predict(x[:8])[:, 0], atol=1e-5)


def test_linear_view_branch_is_the_regression(fs):
    """The device model's linear branch (pooled input -> Dense) must compute exactly the
    fitted regression, and the whole model the mean of the CNN's and its probabilities."""
    from convert.micro import linear_view
    from convert.micro.flow_train import FlowTrainConfig, StackedFlowNets

    idx = np.arange(0, len(fs), 3)
    view = linear_view.fit(fs.x[idx], fs.y[idx], pool=2, c=0.3)
    p = view.predict(fs.x[:20])
    assert np.allclose(p.sum(1), 1) and p.shape == (20, 3)
    net = StackedFlowNets(1, FlowTrainConfig(), seed=1)            # untrained is enough
    model = net.keras_model(0, view)
    want = 0.5 * (net.predict(fs.x[:20])[:, 0] + p)
    assert np.allclose(model.predict(flowset.to_input(fs.x[:20]), verbose=0), want, atol=1e-5)


def test_linear_view_is_chosen_on_the_given_subjects_only(fs):
    from convert.micro import linear_view

    subjects = fs.subjects()[:15]
    m = np.isin(fs.subject, subjects)
    pool, c, scores = linear_view.select(fs.x[m], fs.y[m], fs.subject[m])
    assert set(scores) == {(p_, c_) for p_ in linear_view.POOLS for c_ in linear_view.CS}
    assert scores[(pool, c)] == max(scores.values())


def test_center_ignores_where_minmax_put_zero_flow(fs):
    """With ``center`` the model sees u and v relative to their image mean, so shifting u or
    v by a constant (what per-image min-max does to zero flow) changes nothing."""
    from convert.zoo import micro_flow_net

    model = micro_flow_net.build(center=True, dropout=0.0)
    x = flowset.to_input(fs.x[:8])
    shifted = x.copy()
    shifted[..., 0] += 0.3
    shifted[..., 1] -= 0.2
    assert np.allclose(model.predict(x, verbose=0), model.predict(shifted, verbose=0), atol=1e-5)
    strain = x.copy()
    strain[..., 2] += 0.3                                     # strain is not centred
    assert not np.allclose(model.predict(x, verbose=0), model.predict(strain, verbose=0))
