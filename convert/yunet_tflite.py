"""``python -m convert yunet-tflite``: opencv_zoo's YuNet .onnx as the .tflite the device runs.

    python -m convert yunet-tflite [--source models/face_detection_yunet_2023mar.onnx]
        [--out models/face_detection_yunet_2023mar.tflite]

1. The .onnx's sha256 must be the one opencv_zoo publishes (edge/detectors/registry.py,
   YUNET_FILE): nothing else is converted.
2. Its graph (convert/onnx_graph.py) is rebuilt node by node as a Keras model with a dynamic
   input (1, H, W, 3), NHWC: Conv (1x1, 3x3, depthwise), Relu, MaxPool, nearest 2x
   Resize, Add. The heads end as FaceDetectorYN reads them: per stride (8, 16, 32) each
   cell's score ``sqrt(sigmoid(cls) * sigmoid(obj))`` and its four box values, one
   (1, H/s, W/s, 5) output each; the landmark heads are left out (nothing here uses them).
3. Float32 TFLite (no quantization: this is the network as published, 237 kB), its
   input's default shape 1x64x64x3 (any size works: the device resizes it).
4. Checked against OpenCV's own run of the .onnx (``cv2.dnn``, as FaceDetectorYN runs it)
   on real pictures of three sizes: every score and box value within 1e-4, or nothing is
   written.

Why (edge/detectors/yunet.py, bench/results/classroom.md): on an 853x480 input one
XNNPACK thread takes 14-18 ms of CPU against OpenCV's DNN 35 on one thread, 57 on two.
TensorFlow is needed here only (the host toolchain); the device reads the .tflite. The
same TensorFlow makes the same bytes (registry.py records their sha256).
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import cv2
import numpy as np

from . import onnx_graph
from .blazeface_int8 import set_input_shape
from .data import shared_dir

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "models" / "face_detection_yunet_2023mar.onnx"
TARGET = ROOT / "models" / "face_detection_yunet_2023mar.tflite"
STRIDES = (8, 16, 32)
# Real pictures the check runs on (../shared/data/scenes), at a size each: the far pass's
# 853x480, a refresh strip, a photo as it is.
CHECK_PICTURES = (("pyfeat_multi_face.jpg", (853, 480)), ("facerec_two_people.jpg", (192, 128)),
                  ("intel_headpose_female_f00.png", None))
TOLERANCE = 1e-4


def keras_model(graph: onnx_graph.Graph):
    """The graph as a Keras model: input (1, None, None, 3) BGR 0..255, outputs per stride."""
    import keras
    from keras import layers, ops

    x_in = keras.Input((None, None, 3), batch_size=1, name="bgr")
    t = {graph.nodes[0].inputs[0]: x_in}
    head: dict[str, str] = {}        # an output's name -> the conv tensor it reshapes
    for n in graph.nodes:
        a = n.attrs
        if n.op == "Conv":
            if n.inputs[0] not in t:
                continue
            k, b = graph.weights[n.inputs[1]], graph.weights[n.inputs[2]]
            out_c, in_per_group, kh, kw = k.shape
            stride, pad = a.get("strides", [1, 1])[0], a.get("pads", [0, 0, 0, 0])
            if len(set(pad)) != 1 or pad[0] not in (0, kh // 2) or a.get("group", 1) not in (1, out_c):
                raise ValueError(f"Conv {n.outputs[0]}: pads {pad}, group {a.get('group')}: "
                                 "not a layer this converter knows")
            x = t[n.inputs[0]]
            if pad[0] and stride > 1:        # ONNX pads both sides; Keras 'same' would not
                x, padding = layers.ZeroPadding2D(pad[0])(x), "valid"
            else:
                padding = "same" if pad[0] else "valid"
            if a.get("group", 1) == 1:
                layer = layers.Conv2D(out_c, (kh, kw), stride, padding)
                t[n.outputs[0]] = layer(x)
                layer.set_weights([k.transpose(2, 3, 1, 0), b])
            else:
                if in_per_group != 1:
                    raise ValueError(f"Conv {n.outputs[0]}: grouped, not depthwise")
                layer = layers.DepthwiseConv2D((kh, kw), stride, padding)
                t[n.outputs[0]] = layer(x)
                layer.set_weights([k.transpose(2, 3, 0, 1), b])
        elif n.op == "Relu" and n.inputs[0] in t:
            t[n.outputs[0]] = layers.ReLU()(t[n.inputs[0]])
        elif n.op == "MaxPool":
            if a.get("kernel_shape") != [2, 2] or a.get("strides") != [2, 2]:
                raise ValueError(f"MaxPool {n.outputs[0]}: only 2x2 stride 2 is known")
            t[n.outputs[0]] = layers.MaxPooling2D(2, 2)(t[n.inputs[0]])
        elif n.op == "Resize":
            scales = graph.weights.get(n.inputs[2]) if len(n.inputs) > 2 else None
            if a.get("mode") != "nearest" or scales is None or list(scales) != [1, 1, 2, 2]:
                raise ValueError(f"Resize {n.outputs[0]}: only nearest 2x is known")
            t[n.outputs[0]] = layers.UpSampling2D(2, interpolation="nearest")(t[n.inputs[0]])
        elif n.op == "Add":
            t[n.outputs[0]] = layers.Add()([t[n.inputs[0]], t[n.inputs[1]]])
        elif n.op in ("Transpose", "Reshape", "Sigmoid"):
            head[n.outputs[0]] = head.get(n.inputs[0], n.inputs[0])
        else:
            raise ValueError(f"{n.op} {n.outputs[0]}: not a layer this converter knows")
    outputs = []
    for s in STRIDES:
        cls = layers.Activation("sigmoid")(t[head[f"cls_{s}"]])
        obj = layers.Activation("sigmoid")(t[head[f"obj_{s}"]])
        score = layers.Lambda(lambda c_o: ops.sqrt(c_o[0] * c_o[1]))([cls, obj])
        outputs.append(layers.Concatenate(name=f"stride_{s}")([score, t[head[f"bbox_{s}"]]]))
    return keras.Model(x_in, outputs)


def opencv_outputs(source: Path, padded: np.ndarray) -> dict[int, np.ndarray]:
    """OpenCV's run of the .onnx on a padded BGR image: (rows, cols, 5) per stride."""
    net = cv2.dnn.readNetFromONNX(str(source))
    net.setInput(cv2.dnn.blobFromImage(padded))
    names = [f"{k}_{s}" for k in ("cls", "obj", "bbox") for s in STRIDES]
    out = dict(zip(names, net.forward(names)))
    h, w = padded.shape[:2]
    res = {}
    for s in STRIDES:
        score = np.sqrt(out[f"cls_{s}"][0] * out[f"obj_{s}"][0])
        res[s] = np.concatenate([score, out[f"bbox_{s}"][0]], axis=1).reshape(h // s, w // s, 5)
    return res


def tflite_outputs(tflite: bytes, padded: np.ndarray) -> dict[int, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_content=tflite, num_threads=1)
    index = it.get_input_details()[0]["index"]
    it.resize_tensor_input(index, [1, *padded.shape], strict=False)
    it.allocate_tensors()
    it.set_tensor(index, padded[None].astype(np.float32))
    it.invoke()
    return {padded.shape[0] // int(o["shape"][1]): it.get_tensor(o["index"])[0]
            for o in it.get_output_details()}


def check(source: Path, tflite: bytes, scenes: Path) -> float:
    """The largest difference from OpenCV's outputs on the check pictures."""
    worst = 0.0
    for name, size in CHECK_PICTURES:
        img = cv2.imread(str(scenes / name))
        if img is None:
            raise FileNotFoundError(f"{scenes / name}: a check picture is missing "
                                    "(../shared/data/scenes, or --scenes)")
        if size:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        padded = cv2.copyMakeBorder(img, 0, -h % 32, 0, -w % 32, cv2.BORDER_CONSTANT, 0)
        ref, got = opencv_outputs(source, padded), tflite_outputs(tflite, padded)
        for s in STRIDES:
            worst = max(worst, float(np.abs(ref[s] - got[s]).max()))
    return worst


def convert(source: Path, scenes: Path) -> tuple[bytes, float]:
    import tensorflow as tf

    from edge.detectors.registry import YUNET_FILE
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != YUNET_FILE.sha256:
        raise ValueError(f"{source}: sha256 {digest[:16]}... is not opencv_zoo's "
                         f"{YUNET_FILE.sha256[:16]}...: not converted")
    tf.keras.utils.set_random_seed(0)
    model = keras_model(onnx_graph.read(source))
    # The input's default shape 1x64x64x3, its signature dynamic: Keras leaves 1x1, which
    # LiteRT cannot plan (a 2x2 pool of a 1x1 map) when it loads the file, on arm64.
    tflite = set_input_shape(tf.lite.TFLiteConverter.from_keras_model(model).convert(),
                             (1, 64, 64, 3))
    worst = check(source, tflite, scenes)
    if worst > TOLERANCE:
        raise ValueError(f"the .tflite differs from OpenCV's run of the .onnx by {worst:.2e} "
                         f"(at most {TOLERANCE:g}): not written")
    return tflite, worst


def add_parser(sub) -> None:
    p = sub.add_parser("yunet-tflite", help="opencv_zoo's YuNet .onnx as the .tflite the "
                       "device runs (the far pass of blazeface-multiscale, kind yunet)")
    p.add_argument("--source", type=Path, default=SOURCE)
    p.add_argument("--out", type=Path, default=TARGET)
    p.add_argument("--scenes", type=Path, default=None, help="the real photos the result is "
                   "checked on (default $EMOTION_SHARED_DIR/data/scenes, ../shared's)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    if not args.source.is_file():
        raise FileNotFoundError(f"{args.source}: not found (it ships in models/)")
    tflite, worst = convert(args.source, args.scenes or shared_dir() / "data" / "scenes")
    args.out.write_bytes(tflite)
    print(f"{args.out}: {len(tflite)} bytes, sha256 {hashlib.sha256(tflite).hexdigest()}; "
          f"largest difference from OpenCV's outputs {worst:.1e}")
    return 0
