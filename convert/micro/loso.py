"""The leave-one-subject-out protocol for the flow set: per-fold predictions (cached, so a
rerun or a cut-off run resumes), the logistic-regression floor, and the MEGC 2019 table.

Every prediction for a subject comes from a model that never saw that subject, and nothing
is chosen on the left-out subject (fixed epochs, no best-epoch picking).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import flowset
from .flow_train import FlowTrainConfig, StackedFlowNets, loso_weights
from .linear_view import fit_selected

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


def run_flow_net(fs: flowset.FlowSet, cfg: FlowTrainConfig, seeds: tuple[int, ...],
                 cache: Path | None = None, int8_seeds: tuple[int, ...] = (),
                 calib: int = 200, log: Log = print) -> tuple[LosoRun, LosoRun | None]:
    """Float LOSO predictions for each seed; for ``int8_seeds`` also each fold's model
    quantized (calibrated on that fold's training clips only) and run in LiteRT."""
    cdir = _cache_dir(cache, cfg)
    t0 = time.time()
    folds = list(flowset.loso_folds(fs.subject))
    fold_of = np.empty(len(fs), np.int64)
    for k, (_, _, test) in enumerate(folds):
        fold_of[test] = k
    runs, runs8 = [], []
    views: list | None = None          # the linear view of each fold, fitted when first needed

    def linear_views() -> list:
        nonlocal views
        if views is None:
            t = time.time()
            views = [fit_selected(fs.x[train], fs.y[train], fs.subject[train])
                     for _, train, _ in folds]
            log(f"linear view: chosen and fitted inside each of {len(folds)} folds in "
                f"{time.time() - t:.0f} s")
        return views

    for seed in seeds:
        f = None if cdir is None else cdir / f"seed{seed}.npy"
        f8 = None if cdir is None else cdir / f"seed{seed}-int8.npy"
        want8 = seed in int8_seeds
        if f is not None and f.exists() and (not want8 or f8.exists()):
            runs.append(np.load(f))
            if want8:
                runs8.append(np.load(f8))
            log(f"seed {seed}: cached in {f.parent}")
            continue
        t = time.time()
        net = StackedFlowNets(len(folds), cfg, seed)
        weight = loso_weights(fs.y, fold_of, len(folds), cfg.class_weight)
        losses = net.fit(fs.x, fs.y, weight, seed)
        probs = net.predict(fs.x, cfg.tta)[np.arange(len(fs)), fold_of]  # each clip by its fold
        if cfg.linear:
            lin = np.zeros_like(probs)
            for k, (_, _, test) in enumerate(folds):
                lin[test] = linear_views()[k].predict(fs.x[test])
            probs = 0.5 * (probs + lin)
        log(f"seed {seed}: {len(folds)} folds trained together in {time.time() - t:.0f} s "
            f"(loss {losses[0]:.3f} -> {losses[-1]:.3f})")
        runs.append(probs)
        if want8:
            t = time.time()
            probs8 = np.zeros_like(probs)
            for k, (subject, train, test) in enumerate(folds):
                model = net.keras_model(k, linear_views()[k] if cfg.linear else None)
                probs8[test] = int8_predict(model, fs.x[train], fs.x[test], calib, seed, cfg.tta)
            log(f"seed {seed}: {len(folds)} fold models quantized and run in LiteRT in "
                f"{time.time() - t:.0f} s")
            runs8.append(probs8)
        if f is not None:
            np.save(f, probs)
            if want8:
                np.save(f8, runs8[-1])
    name = "micro_flow_net" + (" + linear view" if cfg.linear else "")
    out = LosoRun(f"{name} float", runs, time.time() - t0, [cfg.key()])
    out8 = LosoRun(f"{name} int8 (per-fold TFLite)", runs8, 0.0,
                   [f"per-fold int8, calibrated on {calib} training clips of the fold"]) \
        if runs8 else None
    return out, out8


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


# Full-set UF1 / UAR as quoted in the shared README (published LOSO results, not rerun here).
PUBLISHED = (("STSTNet (Liong et al. 2019)", 0.7353, 0.7605),
             ("OFF-ApexNet (Gan et al. 2019)", 0.72, 0.71),
             ("EMR, MEGC 2019 winner (Liu et al. 2019)", 0.79, 0.78),
             ("HTNet (Wang et al. 2024)", 0.8603, 0.8475))


def _cell(m: tuple[float, float], s: tuple[float, float] | None) -> str:
    if s is None or (s[0] == 0 and s[1] == 0):
        return f"{m[0]:.4f} / {m[1]:.4f}"
    return f"{m[0]:.4f}±{s[0]:.3f} / {m[1]:.4f}±{s[1]:.3f}"


def table(summaries: list[Summary]) -> str:
    """Markdown: UF1 / UAR, full set and per dataset (mean ± std over seeds)."""
    head = "| model | " + " | ".join(f"{s} UF1 / UAR" for s in SLICES) + " |"
    lines = [head, "|" + " --- |" * (len(SLICES) + 1)]
    for sm in summaries:
        label = sm.name + (f", mean±sd of {sm.n_seeds} seeds" if sm.n_seeds > 1 else "")
        lines.append(f"| {label} | " + " | ".join(
            _cell(sm.mean[s], sm.std[s] if sm.n_seeds > 1 else None) for s in SLICES) + " |")
        if sm.ensemble:
            lines.append(f"| {sm.name}, seed ensemble (mean probabilities) | " + " | ".join(
                _cell(sm.ensemble[s], None) for s in SLICES) + " |")
    for name, uf1, uar in PUBLISHED:
        lines.append(f"| {name} (published) | {uf1:.4f} / {uar:.4f} | | | |")
    return "\n".join(lines)


def figures(floor: Summary, flt: Summary, int8: Summary | None, seeds: tuple[int, ...],
            int8_float: Summary | None = None) -> dict:
    """The LOSO figures as JSON-able data (for the shipped model's sidecar);
    ``int8_float``: the float figures of the same seeds as ``int8``."""
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
    return out
