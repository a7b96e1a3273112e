"""The leave-one-subject-out protocol for the flow set: per-fold predictions (cached, so a
rerun or a cut-off run resumes), the logistic-regression floor, and the MEGC 2019 table.

Every prediction for a subject comes from a model that never saw that subject, and nothing
is chosen on the left-out subject (fixed epochs, no best-epoch picking).
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import flowset, nested
from .flow_train import FlowTrainConfig, StackedFlowNets, mask_weights
from .linear_view import LinearView, fit_selected

Log = Callable[[str], None]


@dataclass
class LosoRun:
    name: str
    probs: list[np.ndarray]                 # one (N, 3) array per seed, pooled over folds
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _cache_dir(cache: Path | None, cfg: FlowTrainConfig) -> Path | None:
    if cache is None:
        return None
    digest = hashlib.sha1(cfg.key().encode()).hexdigest()[:10]
    d = cache / f"flow_net-{digest}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.txt").write_text(cfg.key() + "\n")
    return d


@dataclass
class FlowLoso:
    """One ``run_flow_net``: ``runs`` by role (``final`` is the recipe's result, the same
    predictions as ``fixed`` or ``nested``; ``fixed``: last epoch, plain mean; ``nested``:
    epoch and CNN weight chosen on the training subjects; ``cnn``: the CNN alone;
    ``peek``/``peek_cnn``: the test-subject best-epoch protocol, never a result; ``int8``:
    the recipe's fold models in LiteRT), and per seed and fold the nested (epoch, weight)."""
    runs: dict[str, LosoRun]
    choices: list[list[tuple[int, float]]]
    nested: bool = False                       # the recipe's result is the nested choice


def _linear_views(fs: flowset.FlowSet, folds: list, cache: Path | None, log: Log) -> list:
    """Each fold's linear view (chosen and fitted on its training subjects; deterministic,
    so cached on its own)."""
    f = None if cache is None else cache / f"linear-{_grid_digest()}.npz"
    if f is not None and f.exists():
        d = np.load(f)
        return [LinearView(int(d["pool"][k]), float(d["c"][k]), d[f"coef{k}"], d[f"b{k}"])
                for k in range(len(folds))]
    t = time.time()
    views = [fit_selected(fs.x[train], fs.y[train], fs.subject[train]) for _, train, _ in folds]
    log(f"linear view: chosen and fitted inside each of {len(folds)} folds in "
        f"{time.time() - t:.0f} s")
    if f is not None:
        np.savez(f, pool=[v.pool for v in views], c=[v.c for v in views],
                 **{f"coef{k}": v.coef for k, v in enumerate(views)},
                 **{f"b{k}": v.intercept for k, v in enumerate(views)})
    return views


def _grid_digest() -> str:
    from . import linear_view
    text = f"{linear_view.POOLS}{linear_view.CS}{linear_view.INNER_FOLDS}"
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _train_seed(fs: flowset.FlowSet, cfg: FlowTrainConfig, plan: nested.Plan, seed: int,
                keep_states: bool, log: Log):
    """Train every stacked model of ``plan``; returns each clip's per-epoch predictions by
    its own fold (E, N, 3), every model's predictions at the candidate epochs
    {epoch: (N, models, 3)}, and (``keep_states``) the weights at those epochs."""
    n_folds = len(plan.folds)
    fold_of = np.empty(len(fs), np.int64)
    for k, (_, _, test) in enumerate(plan.folds):
        fold_of[test] = k
    cands = nested.candidate_epochs(cfg.epochs)
    net = StackedFlowNets(len(plan.train), cfg, seed)
    per_epoch, at, states = [], {}, {}

    def on_epoch(e: int) -> None:
        p = net.predict(fs.x, cfg.tta)
        per_epoch.append(p[np.arange(len(fs)), fold_of].astype(np.float32))
        if e in cands:
            at[e] = p.astype(np.float32)
            if keep_states:
                states[e] = net.state()

    t = time.time()
    losses = net.fit(fs.x, fs.y, mask_weights(fs.y, plan.train, cfg.class_weight), seed,
                     on_epoch=on_epoch)
    log(f"seed {seed}: {n_folds} folds + {len(plan.train) - n_folds} inner models trained "
        f"together in {time.time() - t:.0f} s (loss {losses[0]:.3f} -> {losses[-1]:.3f})")
    return np.stack(per_epoch), at, net, states


def run_flow_net(fs: flowset.FlowSet, cfg: FlowTrainConfig, seeds: tuple[int, ...],
                 cache: Path | None = None, int8_seeds: tuple[int, ...] = (),
                 calib: int = 200, log: Log = print) -> FlowLoso:
    """LOSO predictions for each seed (the recipe's, and the comparison rows of
    ``FlowLoso``); for ``int8_seeds`` also each fold's chosen model quantized (calibrated on
    that fold's training clips only) and run in LiteRT."""
    cdir = _cache_dir(cache, cfg)
    t0 = time.time()
    # The inner models are always trained (it doubles the cost), so the nested choice is
    # reported beside the fixed recipe whichever one the recipe uses.
    plan = nested.loso_plan(fs.subject, fs.dataset, True)
    views = _linear_views(fs, plan.folds, cache, log) if cfg.linear else None
    lin = np.zeros((len(fs), len(flowset.CLASSES)))
    for k, (_, _, test) in enumerate(plan.folds):
        if views:
            lin[test] = views[k].predict(fs.x[test])
    roles = ("final", "nested", "fixed", "cnn", "peek", "peek_cnn", "int8")
    probs: dict[str, list[np.ndarray]] = {r: [] for r in roles}
    choices = []
    for seed in seeds:
        f = None if cdir is None else cdir / f"seed{seed}.npz"
        f8 = None if cdir is None else \
            cdir / f"seed{seed}-int8-{'nested' if cfg.nested else 'fixed'}.npy"
        want8 = seed in int8_seeds
        net, states = None, {}
        d = np.load(f) if f is not None and f.exists() else None
        if d is not None and (not want8 or f8.exists() or "state_cands" in d):
            per_epoch = d["per_epoch"]
            at = {int(e): d[f"at{int(e)}"] for e in d["cands"]}
            if want8 and not f8.exists():           # int8 from the cached weights
                net = StackedFlowNets(len(plan.train), cfg, seed)
                states = {int(e): [d[f"s{int(e)}_{i}"] for i in range(len(net.params))]
                          for e in d["state_cands"]}
            log(f"seed {seed}: cached in {f.parent}")
        else:
            per_epoch, at, net, states = _train_seed(fs, cfg, plan, seed, True, log)
            if f is not None:
                np.savez(f, per_epoch=per_epoch, cands=sorted(at), state_cands=sorted(states),
                         **{f"at{e}": p for e, p in at.items()},
                         **{f"s{e}_{i}": v for e, st in states.items() for i, v in enumerate(st)})
        inner = nested.inner_choices(fs.x, fs.y, plan, at, views)
        choices.append(inner)
        mix = nested.DEFAULT_WEIGHT if views else 1.0
        chosen = inner if cfg.nested else [(max(at), mix)] * len(plan.folds)
        picked, cnn = np.zeros_like(lin), per_epoch[-1]
        for k, (_, _, test) in enumerate(plan.folds):
            e, w = inner[k]
            picked[test] = w * at[e][test, k] + (1 - w) * lin[test]
        probs["nested"].append(picked)
        probs["fixed"].append(mix * cnn + (1 - mix) * lin)
        probs["final"].append(probs["nested" if cfg.nested else "fixed"][-1])
        probs["cnn"].append(cnn)
        probs["peek"].append(nested.best_epoch_per_subject(
            mix * per_epoch + (1 - mix) * lin[None], fs.y, fs.subject)[0])
        probs["peek_cnn"].append(nested.best_epoch_per_subject(per_epoch, fs.y, fs.subject)[0])
        if want8 and f8 is not None and f8.exists():
            probs["int8"].append(np.load(f8))
        elif want8:
            t = time.time()
            p8 = np.zeros_like(lin)
            for k, (_, train, test) in enumerate(plan.folds):
                e, w = chosen[k]
                model = net.keras_model(k, views[k] if views else None, states[e], w)
                p8[test] = int8_predict(model, fs.x[train], fs.x[test], calib, seed, cfg.tta)
            log(f"seed {seed}: {len(plan.folds)} fold models quantized and run in LiteRT in "
                f"{time.time() - t:.0f} s")
            probs["int8"].append(p8)
            if f8 is not None:
                np.save(f8, p8)
    name = "micro_flow_net" + (" + linear view" if cfg.linear else "")
    how = "nested choice" if cfg.nested else "last epoch, plain mean"
    names = {"final": f"{name}, {how}, float",
             "nested": f"{name}, epoch and CNN weight chosen on training subjects, float",
             "fixed": f"{name}, last epoch, plain mean, float",
             "cnn": "micro_flow_net alone, last epoch, float",
             "peek": f"{name}, BEST EPOCH CHOSEN ON THE TEST SUBJECT (inflated protocol)",
             "peek_cnn": "micro_flow_net alone, BEST EPOCH CHOSEN ON THE TEST SUBJECT "
                         "(inflated protocol)",
             "int8": f"{name}, {how}, int8 (per-fold TFLite)"}
    runs = {r: LosoRun(names[r], p, time.time() - t0, [cfg.key()]) for r, p in probs.items() if p}
    return FlowLoso(runs, choices, cfg.nested)


def int8_predict(model, x_train: np.ndarray, x_test: np.ndarray, calib: int, seed: int,
                 tta: bool = False) -> np.ndarray:
    """Quantize ``model`` (calibrated on training clips only) and run ``x_test`` in LiteRT
    (``tta``: averaged with its mirror, as the float predictions were)."""
    from edge.micro.model import FlowModel

    from ..quantize import to_int8_tflite
    rng = np.random.default_rng(seed)
    rep = x_train[rng.permutation(len(x_train))[:calib]]
    tflite = to_int8_tflite(model, flowset.to_input(rep), full_int8=True)
    m = FlowModel(content=tflite, sidecar=flow_sidecar())
    p = m.predict_many(x_test)
    return 0.5 * (p + m.predict_many(flowset.flip(x_test))) if tta else p


def flow_sidecar():
    from edge.micro.model import FlowSidecar

    from ..zoo import micro_flow_net
    return FlowSidecar(flowset.CLASSES, (flowset.SIZE, flowset.SIZE), micro_flow_net.CHANNELS,
                       flowset.PIXEL_SCALE, flowset.PIXEL_OFFSET)


def run_logreg(fs: flowset.FlowSet, cache: Path | None = None, log: Log = print) -> LosoRun:
    """The floor: scikit-learn's default LogisticRegression (C=1) on raw pixels / 255."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise RuntimeError("the logistic-regression floor needs scikit-learn "
                           "(pip install scikit-learn)") from None
    f = None if cache is None else cache / "logreg_c1.npy"
    if f is not None and f.exists():
        return LosoRun("logistic regression (pixels)", [np.load(f)], 0.0, ["cached"])
    t0 = time.time()
    x = fs.x.reshape(len(fs), -1).astype(np.float64) / 255.0
    probs = np.zeros((len(fs), len(flowset.CLASSES)), np.float32)
    for subject, train, test in flowset.loso_folds(fs.subject):
        m = LogisticRegression(C=1.0, max_iter=5000).fit(x[train], fs.y[train])
        probs[test] = m.predict_proba(x[test])
    log(f"logistic regression LOSO: {time.time() - t0:.0f} s")
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, probs)
    return LosoRun("logistic regression (pixels)", [probs], time.time() - t0)


# --- figures -------------------------------------------------------------------------------

SLICES = ("all", *flowset.DATASETS)


def scores(fs: flowset.FlowSet, probs: np.ndarray) -> dict[str, tuple[float, float]]:
    """UF1, UAR on pooled predictions: for the full set and for each dataset."""
    pred = probs.argmax(1)
    out = {}
    for s in SLICES:
        m = np.ones(len(fs), bool) if s == "all" else fs.dataset == s
        out[s] = flowset.uf1_uar(fs.y[m], pred[m])
    return out


@dataclass
class Summary:
    name: str
    mean: dict[str, tuple[float, float]]
    std: dict[str, tuple[float, float]]
    n_seeds: int
    ensemble: dict[str, tuple[float, float]] | None = None


def summarize(fs: flowset.FlowSet, run: LosoRun) -> Summary:
    per_seed = [scores(fs, p) for p in run.probs]
    mean = {s: tuple(float(np.mean([r[s][i] for r in per_seed])) for i in (0, 1)) for s in SLICES}
    std = {s: tuple(float(np.std([r[s][i] for r in per_seed])) for i in (0, 1)) for s in SLICES}
    ens = scores(fs, np.mean(run.probs, axis=0)) if len(run.probs) > 1 else None
    return Summary(run.name, mean, std, len(run.probs), ens)


# Published full-set UF1 / UAR (not rerun here), with how each was evaluated, as read from
# the authors' public code or from Varanka et al. 2022 (arXiv 2211.11425); see
# docs/micro-expressions.md for each reading and its source.
FIXED, PEEKED, UNKNOWN = ("fixed epochs, tested once", "best epoch chosen on the test subject",
                          "not known (no public code read)")
PUBLISHED = (("STSTNet (Liong et al. 2019), MATLAB release", 0.7353, 0.7605, FIXED),
             ("RCN (Xia et al. 2020)", 0.7432, 0.7190, FIXED),
             ("OFF-ApexNet (Gan et al. 2019)", 0.72, 0.71, UNKNOWN),
             ("EMR, MEGC 2019 winner (Liu et al. 2019)", 0.79, 0.78, UNKNOWN),
             ("HTNet (Wang et al. 2024), main_HTNet.py", 0.8603, 0.8475, PEEKED))

# Protocol of each role of ``FlowLoso.runs`` (and the floor), for the table's column.
PROTOCOL = {"nested": "chosen on training subjects (nested), tested once", "fixed": FIXED,
            "cnn": FIXED, "floor": "fixed settings, tested once",
            "peek": PEEKED + " (inflated, not a result)",
            "peek_cnn": PEEKED + " (inflated, not a result)"}


def _cell(m: tuple[float, float], s: tuple[float, float] | None) -> str:
    if s is None or (s[0] == 0 and s[1] == 0):
        return f"{m[0]:.4f} / {m[1]:.4f}"
    return f"{m[0]:.4f}±{s[0]:.3f} / {m[1]:.4f}±{s[1]:.3f}"


def table(summaries: list[tuple[Summary, str]], published: bool = True) -> str:
    """Markdown: UF1 / UAR, full set and per dataset (mean ± std over seeds), each row with
    its protocol; then the published rows with theirs."""
    head = "| model | protocol | " + " | ".join(f"{s} UF1 / UAR" for s in SLICES) + " |"
    lines = [head, "|" + " --- |" * (len(SLICES) + 2)]
    for sm, protocol in summaries:
        label = sm.name + (f", mean±sd of {sm.n_seeds} seeds" if sm.n_seeds > 1 else "")
        lines.append(f"| {label} | {protocol} | " + " | ".join(
            _cell(sm.mean[s], sm.std[s] if sm.n_seeds > 1 else None) for s in SLICES) + " |")
        if sm.ensemble:
            lines.append(f"| {sm.name}, seed ensemble (mean probabilities) | {protocol} | "
                         + " | ".join(_cell(sm.ensemble[s], None) for s in SLICES) + " |")
    for name, uf1, uar, protocol in PUBLISHED if published else ():
        lines.append(f"| {name} (published) | {protocol} | {uf1:.4f} / {uar:.4f} | | | |")
    return "\n".join(lines)


def figures(floor: Summary, flt: Summary, int8: Summary | None, seeds: tuple[int, ...],
            int8_float: Summary | None = None, extra: dict[str, Summary] | None = None) -> dict:
    """The LOSO figures as JSON-able data (for the shipped model's sidecar);
    ``int8_float``: the float figures of the same seeds as ``int8``; ``extra``: more rows
    by name (their mean)."""
    def r(d):
        return {k: [round(v[0], 4), round(v[1], 4)] for k, v in d.items()}
    out = {"protocol": "leave-one-subject-out, 68 subjects; [UF1, UAR] on pooled predictions",
           "seeds": list(seeds), "float_mean": r(flt.mean), "float_sd": r(flt.std),
           "floor_logreg": r(floor.mean)}
    if flt.ensemble:
        out["seed_ensemble"] = r(flt.ensemble)
    if int8 is not None:
        out["int8_per_fold"] = r(int8.mean)
    if int8_float is not None:
        out["float_same_seeds_as_int8"] = r(int8_float.mean)
    for k, sm in (extra or {}).items():
        out[k] = r(sm.mean)
    return out


def report(fs: flowset.FlowSet, res: FlowLoso, floor: LosoRun, seeds: tuple[int, ...],
           int8_seeds: tuple[int, ...]) -> tuple[str, dict]:
    """The LOSO table (markdown) and figures (JSON) of one ``run_flow_net``: the recipe's
    rows, the comparison rows, the inflated protocol, the published rows."""
    runs = res.runs
    fl, final = summarize(fs, floor), summarize(fs, runs["final"])
    role = "nested" if res.nested else "fixed"
    rows = [(fl, PROTOCOL["floor"]), (final, PROTOCOL[role])]
    q = qf = None
    if "int8" in runs:
        s8 = [s for s in int8_seeds if s in seeds]
        qf = summarize(fs, LosoRun(f"{runs['final'].name}, seed {','.join(map(str, s8))} "
                                   f"(int8 reference)",
                                   [runs["final"].probs[seeds.index(s)] for s in s8]))
        q = summarize(fs, runs["int8"])
        rows += [(qf, PROTOCOL[role]), (q, PROTOCOL[role])]
    extra = {r: summarize(fs, runs[r]) for r in ("nested", "fixed", "cnn", "peek", "peek_cnn")
             if r in runs and r != role}
    rows += [(sm, PROTOCOL[r]) for r, sm in extra.items()]
    figs = figures(fl, final, q, seeds, qf, extra)
    picks = Counter(f"epoch {e}, cnn weight {w}" for per_seed in res.choices for e, w in per_seed)
    if picks:
        figs["nested_choices"] = dict(picks.most_common())
    return table(rows), figs
