"""int8 TFLite for the micro models, through ``convert.quantize.to_int8_tflite``.

Model B (flow): full int8, calibrated on real flow images of the set; the sidecar carries
labels, input size, channel order, pixel scale/offset, quantization, sha256 and the LOSO
figures. Model A (CNN+LSTM): ``full_int8=False``, so the converter keeps in float whatever
its int8 kernels cannot do; ``op_types`` says which ops those are.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..quantize import op_types, to_int8_tflite, write_sidecar
from . import flowset


def ensemble(models: list):
    """One Keras model averaging the probabilities of ``models`` (same input)."""
    import keras

    if len(models) == 1:
        return models[0]
    inp = keras.Input(models[0].input_shape[1:], name="flow")
    for i, m in enumerate(models):
        m.name = f"member{i}"
    out = keras.layers.Average(name="scores")([m(inp) for m in models])
    return keras.Model(inp, out, name=f"micro_flow_net_x{len(models)}")


def calibration_flows(fs: flowset.FlowSet, n: int, seed: int = 0) -> np.ndarray:
    """``n`` real flow images spread over the classes (and their mirrors: the model sees
    both in training)."""
    rng = np.random.default_rng(seed)
    per = max(1, n // (2 * len(flowset.CLASSES)))
    idx = np.concatenate([rng.permutation(np.flatnonzero(fs.y == c))[:per]
                          for c in range(len(flowset.CLASSES))])
    return np.concatenate([fs.x[idx], flowset.flip(fs.x[idx])])


def quantize_flow(model, out_path: Path, fs: flowset.FlowSet, *, calib: int = 240,
                  extra: dict | None = None) -> dict:
    """Write ``out_path`` (.tflite) and its sidecar; returns the sidecar's check figures."""
    from edge.micro.model import FlowModel

    from .loso import flow_sidecar
    rep = calibration_flows(fs, calib)
    tflite = to_int8_tflite(model, flowset.to_input(rep), full_int8=True)
    p_float = model.predict(flowset.to_input(fs.x), batch_size=256, verbose=0)
    p_int8 = FlowModel(content=tflite, sidecar=flow_sidecar()).predict_many(fs.x)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(tflite)
    uf_f, ua_f = flowset.uf1_uar(fs.y, p_float.argmax(1))
    uf_q, ua_q = flowset.uf1_uar(fs.y, p_int8.argmax(1))
    check = {"n": len(fs), "note": "all clips, which the shipped model trained on: this checks "
                                   "int8 against float, it is not a generalization figure",
             "float_uf1_uar": [round(uf_f, 4), round(ua_f, 4)],
             "int8_uf1_uar": [round(uf_q, 4), round(ua_q, 4)],
             "argmax_agreement": round(float((p_float.argmax(1) == p_int8.argmax(1)).mean()), 4),
             "max_abs_prob_diff": round(float(np.abs(p_float - p_int8).max()), 4)}
    from ..zoo import micro_flow_net
    write_sidecar(out_path, labels=flowset.CLASSES, input_size=flowset.SIZE, extra={
        "grayscale": False, "channels": list(micro_flow_net.CHANNELS),
        "channel_meaning": "u: horizontal flow (+ right), v: vertical flow (+ down), strain: "
                           "optical strain magnitude; onset -> apex; each channel min-max "
                           "normalized to 0..255 per image at 28x28 (edge.micro.flow)",
        "pixel_scale": flowset.PIXEL_SCALE, "pixel_offset": flowset.PIXEL_OFFSET,
        "model": model.name, "parameters": int(model.count_params()),
        "calibration": f"{len(rep)} real flow images of megc2019_composite_flow28 "
                       f"(balanced over classes, with their mirrors)",
        "int8_check": check, "ops": op_types(tflite), **(extra or {})})
    return check


def quantize_sequence_model(keras_path: Path, out_path: Path, data_root: str | Path,
                            calib: int = 32) -> dict:
    """Model A with as much int8 as the converter allows; float vs int8 on the clips."""
    import keras

    from .sequence_train import evaluate_sequences, to_input
    from .sequences import load_sequences
    model = keras.models.load_model(keras_path)
    frames, size = int(model.input_shape[1]), int(model.input_shape[2])
    k = int(model.output_shape[-1])
    data = load_sequences(data_root, frames, size, "binary" if k == 2 else "composite")
    tflite = to_int8_tflite(model, to_input(data.x[:calib]), full_int8=False)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(tflite)
    f = evaluate_sequences(keras_path, data_root, subjects=[])
    q = evaluate_sequences(out_path, data_root, subjects=[])
    return {"ops": op_types(tflite), "bytes": len(tflite), "float": f, "int8": q}
