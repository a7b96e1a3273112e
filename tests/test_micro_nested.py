"""Model B's nested choices: the inner models of a LOSO fold never see its subject, and the
test-subject best-epoch protocol (kept only to measure its inflation) does what it says."""
from __future__ import annotations

import numpy as np
import pytest

from convert.micro import flowset, nested


@pytest.fixture(scope="module")
def fs(micro_npz):
    return flowset.load_flowset(micro_npz)


def test_halves_hold_every_dataset(fs):
    half = nested.halves(fs.subject, fs.dataset)
    for s in fs.subjects():                                   # a subject is in one half
        assert len(set(half[fs.subject == s])) == 1
    for d in flowset.DATASETS:
        n = [len(set(fs.subject[(fs.dataset == d) & (half == h)])) for h in (0, 1)]
        assert abs(n[0] - n[1]) <= 1


def test_inner_models_never_see_the_fold_subject(fs):
    plan = nested.loso_plan(fs.subject, fs.dataset, nested=True)
    assert len(plan.train) == 68 + 2 + 68
    for k, (subject, train, test) in enumerate(plan.folds):
        out = fs.subject == subject
        assert not plan.train[k][out].any() and plan.train[k][train].all()
        val = np.concatenate([v for _, v in plan.inner[k]])
        assert sorted(val) == sorted(train)                  # every training clip, once
        for j, v in plan.inner[k]:
            assert not plan.train[j][out].any()               # never the test subject
            assert not plan.train[j][v].any()                 # nor its own validation clips


def test_not_nested_has_only_the_fold_models(fs):
    plan = nested.loso_plan(fs.subject, fs.dataset, nested=False)
    assert len(plan.train) == 68 and all(not i for i in plan.inner)


def test_choose_prefers_the_fixed_recipe_on_ties():
    y = np.array([0, 1, 2, 0])
    p = np.eye(3)[y]
    e, w, scores = nested.choose(y, {20: p, 50: p}, p)      # everything perfect: a tie
    assert (e, w) == (50, 0.5) and len(scores) == 2 * len(nested.CNN_WEIGHTS)
    wrong = np.eye(3)[[1, 2, 0, 1]]
    assert nested.choose(y, {20: p, 50: wrong}, wrong)[:2] == (20, 0.75)  # nearest 0.5 that works
    assert nested.choose(y, {50: wrong}, p)[:2] == (50, 0.25)


def test_best_epoch_per_subject_looks_at_the_test_labels():
    y = np.array([0, 0, 1, 1])
    subject = np.array(["a", "a", "b", "b"])
    right, wrong = np.eye(3)[y], np.eye(3)[[1, 1, 0, 0]]
    per_epoch = np.stack([right[:, :] * [[1], [1], [0], [0]] + wrong * [[0], [0], [1], [1]],
                          wrong * [[1], [1], [0], [0]] + right * [[0], [0], [1], [1]]])
    # epoch 1 is right for a only, epoch 2 for b only: peeking gets both right
    kept, epoch = nested.best_epoch_per_subject(per_epoch, y, subject)
    assert (kept.argmax(1) == y).all() and epoch.tolist() == [1, 1, 2, 2]


def test_weighted_model_and_snapshot_match_the_stack(fs):
    """A CNN weight other than 0.5 and an earlier epoch's weights must give the same
    probabilities in the Keras (device) model as in the stacked network."""
    from convert.micro import linear_view
    from convert.micro.flow_train import FlowTrainConfig, StackedFlowNets

    idx = np.arange(0, len(fs), 4)
    view = linear_view.fit(fs.x[idx], fs.y[idx], pool=4, c=0.3)
    cfg = FlowTrainConfig(epochs=2, dropout=0.0, flip=False)
    net = StackedFlowNets(2, cfg, seed=3)
    states, probs = {}, {}

    def on_epoch(e):
        states[e], probs[e] = net.state(), net.predict(fs.x[:16])

    net.fit(fs.x[idx], fs.y[idx], np.ones((len(idx), 2), np.float32), 3, on_epoch=on_epoch)
    x = flowset.to_input(fs.x[:16])
    lin = view.predict(fs.x[:16])
    for w in (0.25, 1.0, 0.0):
        model = net.keras_model(1, view, states[1], w)
        want = w * probs[1][:, 1] + (1 - w) * lin
        assert np.allclose(model.predict(x, verbose=0), want, atol=1e-5)
    assert not np.allclose(probs[1], probs[2])


def test_train_final_chooses_like_a_fold(fs):
    """The shipped model's epoch and weight come from the same 2-fold choice, over all the
    subjects it trains on; the fixed recipe is the last epoch and a plain mean."""
    from convert.micro.flow_train import FlowTrainConfig, train_final

    m = np.isin(fs.subject, [s for d in flowset.DATASETS
                             for s in sorted(set(fs.subject[fs.dataset == d]))[:4]])
    x, y, subj, ds = fs.x[m], fs.y[m], fs.subject[m], fs.dataset[m]
    for is_nested in (True, False):
        cfg = FlowTrainConfig(epochs=5, nested=is_nested)
        models, choices = train_final(x, y, cfg, (0,), groups=subj, dataset=ds)
        e, w = choices[0]
        assert e in nested.candidate_epochs(5) and w in nested.CNN_WEIGHTS
        if not is_nested:
            assert (e, w) == (5, 0.5)
        p = models[0].predict(flowset.to_input(x[:8]), verbose=0)
        assert np.allclose(p.sum(1), 1, atol=1e-5)
