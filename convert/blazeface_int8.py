"""``python -m convert blazeface-int8``: MediaPipe's BlazeFace short range, int8 activations.

    python -m convert blazeface-int8 [--source models/face_detection_short_range.tflite]
        [--out models/face_detection_short_range_int8.tflite] [--samples 120]
        [--float-from-stride 8]

then ``[detector.far] model = "face_detection_short_range_int8.tflite"`` runs it for the
far pass and its refresh. **Not the default, and not shipped**: measured against the float
file in one run (bench/results/classroom.md, "int8 far pass"; 2-core x86 host, busy):

- recall on the mosaics: the same within 1-2 faces a size (24 px 0.79 / 0.77 at 720p /
  1080p, float 0.77 / 0.76; 32 px 0.96 / 0.96, float 0.98 / 0.97; 40-48 px 1.00), the
  same false faces on the cartoon clip (3.2 per 100 frames, all from the near pass);
- memory: the far pass's interpreter at 864x480 adds 56 MB instead of 84 (a 1080p tile
  49 instead of 73, the refresh 14 instead of 16); the 30-face clip's peak RSS 178 MB
  instead of 209 at 720p, 207 instead of 234 at 1080p: still over the 150 MB target;
- **but** the classroom video's 15 people become 17 tracks (float: 15): int8 scores
  jitter by ~0.23 logit (sd) against float's on the same faces, and a far face near the
  threshold comes and goes between passes; and on this x86 host XNNPACK's int8 kernels
  are slower than its float ones (far pass 1.2x the CPU ms, refresh 1.4x), so the
  30-face clip runs at 0.96x float's fps at 720p (65.7 against 68.6), 1.0x at 1080p.

Variants tried while choosing (same data, this session, not re-run by the bench): int8
everywhere but the heads (``--float-from-stride 0``): 20 tracks for the 15 people, scores
+0.25 logit near the threshold (26 boxes over 0.5 on the mosaics where float has none),
the far pass's RSS 55 MB; int8 only to 1/2 (``--float-from-stride 4``): 18 tracks, 63 MB.
On a Pi's Cortex-A72/A76, where int8 kernels are usually faster than float ones, the
trade may differ: it was not measured on one.

The far pass runs short range on a large picture (864x480 for a 720p frame): LiteRT then
holds ~84-95 MB of float32 activations. int8 activations are 4x smaller, so this rebuilds
the verified float model (fp16 weights) and quantizes it:

1. ``rebuild``: the .tflite's graph, read with LiteRT's Interpreter (ops in order, their
   constant tensors), is rebuilt op by op as a Keras functional model with a dynamic
   input (1, None, None, 3): CONV_2D / DEPTHWISE_CONV_2D (stride and padding from the shapes,
   checked numerically), ADD, RELU, PAD (the residual branches' zero channels), MAX_POOL_2D,
   RESHAPE (-1 for the anchor axis, so any input size works), CONCATENATION; DEQUANTIZE of
   the fp16 weights becomes float32 weights. ``check_rebuild`` compares every rebuilt
   layer with the float model's own tensors (``experimental_preserve_all_tensors``) and the
   two outputs at 128x128 and at the far pass's 864x480 (max abs diff 1e-4 / 2e-4 / 1e-3).
2. ``representative``: real pictures fed exactly as edge/detectors/wide.py feeds them
   (scaled by 2/3 with INTER_AREA into a black canvas of multiples of 16, RGB,
   x * 2/255 - 1): the scene photos, the classroom mosaics of bench/classroom_material.py
   at 24-96 px faces (1080p ones cut in the far pass's 496x720 tiles), the classroom
   video's frames, and refresh strips of 64 px cells.
3. ``quantize``: TFLiteConverter with int8 weights and activations, float32 input and
   outputs (the device feeds it as before); the output heads, and the stages at 1/8 and
   1/16 of the input, stay float (QuantizationDebugger's denylisted nodes; see
   ``float_nodes``). The input's default shape is set back to 1x128x128x3 (its signature
   stays dynamic) so that code that expects the 128x128 model runs it unchanged and
   resize_tensor_input works as with the float file. The same TensorFlow makes the same
   bytes (calibration is seeded).

TensorFlow is needed here only (the host toolchain); the device reads the .tflite.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "models" / "face_detection_short_range.tflite"
TARGET = ROOT / "models" / "face_detection_short_range_int8.tflite"
# What wide.py feeds: a frame scaled by 16/smallest_face (2/3 by default) into a canvas whose
# sides are multiples of 16, the rest black.
FAR_SCALE, ALIGN = 2 / 3, 16
REFRESH_CELL = 64


# --- 1. the graph, read and rebuilt ------------------------------------------------------

@dataclass
class Op:
    name: str
    inputs: list[int]
    outputs: list[int]


def read_graph(path: Path):
    """(ops, constants, input index, {output name: index}) of a .tflite, without delegates."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    ops = [Op(o["op_name"], [int(i) for i in o["inputs"] if i >= 0],
              [int(i) for i in o["outputs"]])
           for o in it._get_ops_details() if o["op_name"] != "DELEGATE"]
    produced = {i for op in ops for i in op.outputs}
    (inp,) = it.get_input_details()
    consts = {}
    for t in it.get_tensor_details():
        i = t["index"]
        if i != inp["index"] and i not in produced:
            try:
                consts[i] = np.array(it.get_tensor(i))
            except ValueError:   # a tensor without data (none in this model)
                pass
    outs = {d["name"]: int(d["index"]) for d in it.get_output_details()}
    return ops, consts, int(inp["index"]), outs


def rebuild(path: Path = SOURCE):
    """The .tflite as a Keras functional model with an input of (1, None, None, 3), and
    {tflite tensor index: Keras tensor} (for checking each layer)."""
    import keras

    ops, consts, inp_index, outs = read_graph(path)
    # A batch of one (as the device feeds it): the reshapes' shapes are then constants
    # ([1, -1, 16]) that LiteRT resolves when it allocates, not computed at run time.
    x = keras.Input(batch_shape=(1, None, None, 3), name="input")
    t: dict[int, object] = {inp_index: x}
    value = dict(consts)      # constant tensors, dequantized to float32

    def shape_of(i):
        return tuple(t[i].shape)

    for n, op in enumerate(ops):
        name = f"{op.name.lower()}_{n}"
        if op.name == "DEQUANTIZE":
            value[op.outputs[0]] = value[op.inputs[0]].astype(np.float32)
            continue
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            src, w, b = op.inputs
            w, b = value[w], value[b]
            k = w.shape[1]
            stride = _stride(ops, n, consts, path)
            if op.name == "CONV_2D":     # [out, kh, kw, in] -> [kh, kw, in, out]
                layer = keras.layers.Conv2D(w.shape[0], k, strides=stride,
                                            padding="same" if k > 1 else "valid", name=name)
                kernel = w.transpose(1, 2, 3, 0)
            else:                        # [1, kh, kw, c] -> [kh, kw, c, 1]
                layer = keras.layers.DepthwiseConv2D(k, strides=stride, padding="same",
                                                     name=name)
                kernel = w.transpose(1, 2, 3, 0)
            y = layer(t[src])
            layer.set_weights([kernel, b])
        elif op.name == "RELU":
            y = keras.layers.ReLU(name=name)(t[op.inputs[0]])
        elif op.name == "ADD":
            y = keras.layers.Add(name=name)([t[i] for i in op.inputs])
        elif op.name == "PAD":
            pads = value[op.inputs[1]].astype(int)
            if pads[:3].any():
                raise ValueError(f"{name}: only channel padding is rebuilt, not {pads.tolist()}")
            y = _layers()["ChannelPad"](int(pads[3, 0]), int(pads[3, 1]),
                                        name=name)(t[op.inputs[0]])
        elif op.name == "MAX_POOL_2D":
            y = keras.layers.MaxPooling2D(2, 2, padding="valid", name=name)(t[op.inputs[0]])
        elif op.name == "RESHAPE":
            last = int(_ref_shape(path, op.outputs[0])[-1])
            y = _layers()["AnchorReshape"](last, name=name)(t[op.inputs[0]])
        elif op.name == "CONCATENATION":
            y = keras.layers.Concatenate(axis=1, name=name)([t[i] for i in op.inputs])
        else:
            raise ValueError(f"{path.name}: op {op.name} is not rebuilt (op {n})")
        t[op.outputs[0]] = y
    # regressors (16 a anchor) first, classificators (1) second
    order = sorted(outs, key=lambda k: -int(t[outs[k]].shape[-1]))
    outputs = [keras.layers.Identity(name=k)(t[outs[k]]) for k in order]
    return keras.Model(x, outputs, name="blazeface_short_range"), t


def _ref_shape(path: Path, index: int):
    return {t["index"]: t["shape"] for t in _reference(path).get_tensor_details()}[index]


_REF: dict[Path, object] = {}


def _reference(path: Path):
    if path not in _REF:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        _REF[path] = it
    return _REF[path]


def _stride(ops, n, consts, path: Path) -> int:
    """An op's stride, from its input and output heights in the 128x128 file."""
    shape = {t["index"]: t["shape"] for t in _reference(path).get_tensor_details()}
    return int(shape[ops[n].inputs[0]][1] // shape[ops[n].outputs[0]][1])


_LAYERS: dict = {}


def _layers() -> dict:
    """Two small Keras layers (made on first use: keras is imported only here)."""
    if _LAYERS:
        return _LAYERS
    import keras

    class ChannelPad(keras.layers.Layer):
        """Zeros appended to the channels (a residual branch widened to the next block)."""

        def __init__(self, before: int, after: int, **kw):
            super().__init__(**kw)
            self.before, self.after = before, after

        def call(self, x):
            return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [self.before, self.after]])

        def compute_output_shape(self, s):
            return (*s[:3], None if s[3] is None else s[3] + self.before + self.after)

    class AnchorReshape(keras.layers.Layer):
        """(1, h, w, k * n) -> (1, anchors, n) with a constant shape [1, -1, n]: LiteRT
        resolves it at allocate_tensors (Keras' Reshape computes it at run time, which
        leaves the outputs' shapes unknown until the first invoke)."""

        def __init__(self, last: int, **kw):
            super().__init__(**kw)
            self.last = last

        def call(self, x):
            return keras.ops.reshape(x, (1, -1, self.last))

        def compute_output_shape(self, s):
            return (1, None, self.last)

    _LAYERS.update(ChannelPad=ChannelPad, AnchorReshape=AnchorReshape)
    return _LAYERS


def run_tflite(path_or_bytes, batch: np.ndarray, threads: int = 1) -> list[np.ndarray]:
    """The .tflite's two outputs (regressors, classificators) on ``batch`` (1, h, w, 3)."""
    from ai_edge_litert.interpreter import Interpreter
    kw = {"model_path": str(path_or_bytes)} if isinstance(path_or_bytes, (str, Path)) \
        else {"model_content": path_or_bytes}
    it = Interpreter(num_threads=threads, **kw)
    i = it.get_input_details()[0]["index"]
    it.resize_tensor_input(i, list(batch.shape))
    it.allocate_tensors()
    it.set_tensor(i, batch.astype(np.float32))
    it.invoke()
    outs = sorted(it.get_output_details(), key=lambda d: -int(d["shape"][-1]))  # 16 then 1
    return [it.get_tensor(d["index"]) for d in outs]


def check_rebuild(model, tensors: dict, path: Path = SOURCE,
                  sizes=((128, 128), (864, 480))) -> dict[str, float]:
    """Max abs difference of the rebuilt model against the float .tflite: every layer at
    128x128 (the file's own tensors) and both outputs at each (w, h) of ``sizes``, on a
    real picture fed as wide.py feeds it."""
    import keras
    ref = _reference(path)
    (inp,) = ref.get_input_details()
    photo = feed(_scene_canvas(128, 128))
    ref.set_tensor(inp["index"], photo)
    ref.invoke()
    keys = [i for i in tensors if i != inp["index"]]
    probe = keras.Model(model.input, [tensors[i] for i in keys])
    got = probe.predict(photo, verbose=0)
    layers = max(float(np.max(np.abs(g - ref.get_tensor(i)))) for i, g in zip(keys, got))
    out = {"layers_128": layers}
    for w, h in sizes:
        batch = feed(_scene_canvas(w, h))
        want = run_tflite(path, batch)
        have = model.predict(batch, verbose=0)
        out[f"outputs_{w}x{h}"] = max(float(np.max(np.abs(a - b))) for a, b in zip(have, want))
    return out


# --- 2. representative pictures, fed as wide.py feeds them --------------------------------

def feed(canvas_bgr: np.ndarray) -> np.ndarray:
    """wide.py's _infer: BGR canvas -> RGB, x * 2/255 - 1, a batch of one."""
    return (canvas_bgr[None, :, :, ::-1].astype(np.float32) * np.float32(2.0 / 255.0)) - 1.0


def far_canvas(frame_bgr: np.ndarray, scale: float = FAR_SCALE) -> np.ndarray:
    """The far pass's input for a frame: scaled (INTER_AREA) into the top-left of a black
    canvas whose sides are multiples of 16."""
    h, w = frame_bgr.shape[:2]
    iw = max(ALIGN, -(-round(w * scale) // ALIGN) * ALIGN)
    ih = max(ALIGN, -(-round(h * scale) // ALIGN) * ALIGN)
    rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((ih, iw, 3), np.uint8)
    canvas[:rh, :rw] = cv2.resize(frame_bgr, (rw, rh), interpolation=cv2.INTER_AREA)
    return canvas


def _scene_canvas(w: int, h: int) -> np.ndarray:
    """A real picture (the five-person group photo) filling a w x h canvas."""
    img = cv2.imread(str(material().SHARED / "scenes" / "pyfeat_multi_face.jpg"))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def refresh_strip(frame_bgr: np.ndarray, boxes, cell: int = REFRESH_CELL) -> np.ndarray:
    """The refresh's input: a crop of 64/24 face sides around each box, scaled to a 64 px
    cell, cells side by side in a near-square grid (wide.py's refresh)."""
    import math
    n = len(boxes)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.zeros((rows * cell, cols * cell, 3), np.uint8)
    fh, fw = frame_bgr.shape[:2]
    for i, (x, y, w, h) in enumerate(boxes):
        side = cell / 24 * max(w, h)
        x0, y0 = int(max(0, x + w / 2 - side / 2)), int(max(0, y + h / 2 - side / 2))
        x1, y1 = int(min(fw, x0 + side)), int(min(fh, y0 + side))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        r, c = divmod(i, cols)
        crop = cv2.resize(frame_bgr[y0:y1, x0:x1], (cell, cell), interpolation=cv2.INTER_AREA)
        canvas[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = crop
    return canvas


def representative(limit: int = 120, seed: int = 0) -> list[np.ndarray]:
    """Real inputs at the far pass's sizes: classroom mosaics (720p and 1080p, faces of
    24-96 px, 1080p cut into the far pass's 496x720 strips), the scene photos one by one,
    the classroom video's frames, and refresh strips of the mosaics' faces."""
    mat = material()
    rng = np.random.default_rng(seed)
    canvases: list[np.ndarray] = []
    for px in mat.SIZES:
        for res, size in mat.FRAMES.items():
            fr = mat.mosaic(px, size, seed=int(rng.integers(1000)))
            c = far_canvas(fr.image)
            if res == "1080p":     # the far pass's tiles there: 3 strips of 496x720
                canvases += [c[:, x:x + 496] for x in (0, (c.shape[1] - 496) // 2,
                                                       c.shape[1] - 496)]
            else:
                canvases.append(c)
            faces = [fr.faces[i] for i in rng.permutation(len(fr.faces))[:8]]
            if faces:
                canvases.append(refresh_strip(fr.image, faces))
    canvases.append(far_canvas(mat.six_groups().image))
    for p in sorted((mat.SHARED / "scenes").glob("*.jp*g")):
        img = cv2.imread(str(p))
        if img is not None:
            s = min(1.0, 1280 / max(img.shape[:2]))
            canvases.append(far_canvas(cv2.resize(img, None, fx=s, fy=s,
                                                  interpolation=cv2.INTER_AREA)))
    clip = ROOT / "bench" / ".cache" / "classroom_calib.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    if not clip.exists():
        mat.classroom_clip(clip)
    cap = cv2.VideoCapture(str(clip))
    n = 0
    while len(canvases) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        if n % 15 == 0:
            canvases.append(far_canvas(frame))
        n += 1
    cap.release()
    return canvases[:limit]


def material():
    """bench/classroom_material.py (the classroom mosaics and video), imported by path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("classroom_material",
                                                  ROOT / "bench" / "classroom_material.py")
    mod = sys.modules.get("classroom_material")
    if mod is None:
        mod = importlib.util.module_from_spec(spec)
        sys.modules["classroom_material"] = mod
        spec.loader.exec_module(mod)
    return mod


# --- 3. int8 ------------------------------------------------------------------------------

# The stages at 1/8 and 1/16 of the input stay float: there the depthwise convolutions'
# outputs span up to ~+-1300 (QuantizationDebugger's layer statistics on the 864x480
# inputs: scales of 2.6 to 10.5, one int8 step wider than most values), and they hold
# about a tenth of the activations. In int8 too, the classroom video's 15 people became
# 20 tracks (bench/results/classroom.md, "int8 far pass").
FLOAT_FROM_STRIDE = 8


def float_nodes(float_tflite: bytes, from_stride: int | None = FLOAT_FROM_STRIDE) -> list[str]:
    """The output tensors' names of the ops that stay float: the heads (the 1x1 convs that
    feed the RESHAPEs, the RESHAPEs and the CONCATENATIONs), and (``from_stride``) every op
    whose output is at 1/from_stride of the input or coarser. The heads must: the scores'
    logits span about -800 to +4 (one int8 step would be ~3 logits, every face's score
    would read 0) and the boxes' offsets -190 to +460 input pixels (~2.5 px a step on a
    16 px face)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=float_tflite, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    side = 128
    it.resize_tensor_input(it.get_input_details()[0]["index"], [1, side, side, 3])
    it.allocate_tensors()
    ops = it._get_ops_details()
    details = {t["index"]: t for t in it.get_tensor_details()}
    feeds_reshape = {i for o in ops if o["op_name"] == "RESHAPE" for i in o["inputs"]}
    out = []
    for o in ops:
        if o["op_name"] == "DELEGATE":
            continue
        shape = details[int(o["outputs"][0])]["shape"]
        coarse = from_stride is not None and len(shape) == 4 and shape[1] * from_stride <= side
        if coarse or o["op_name"] in ("RESHAPE", "CONCATENATION") or (
                o["op_name"] == "CONV_2D" and o["outputs"][0] in feeds_reshape):
            out.append(details[int(o["outputs"][0])]["name"])
    return out


def quantize(model, samples: list[np.ndarray], float_heads: bool = True,
             from_stride: int | None = FLOAT_FROM_STRIDE) -> bytes:
    """int8 weights and activations, float32 input and outputs (``float_heads``: the
    output heads and the stages from 1/``from_stride`` float, see float_nodes); the
    input's default shape 1x128x128x3 (dynamic signature)."""
    import tempfile

    import tensorflow as tf
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)

        def converter():
            c = tf.lite.TFLiteConverter.from_saved_model(tmp)
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.representative_dataset = gen
            c.inference_input_type = tf.float32
            c.inference_output_type = tf.float32
            return c

        def gen():
            for c in samples:
                yield [feed(c)]
        if float_heads:
            plain = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
            options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=float_nodes(plain, from_stride))
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter(), debug_dataset=gen, debug_options=options)
            blob = debugger.get_nondebug_quantized_model()
        else:
            c = converter()
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            blob = c.convert()
    return set_input_shape(blob, (1, 128, 128, 3))


def set_input_shape(blob: bytes, shape) -> bytes:
    """The model with its input's default shape set to ``shape`` (signature kept dynamic):
    LiteRT re-plans every op from the input at allocate_tensors."""
    from tensorflow.lite.python import schema_py_generated as schema
    import flatbuffers
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0))
    g = model.subgraphs[0]
    t = g.tensors[g.inputs[0]]
    t.shape = np.array(shape, np.int32)
    t.shapeSignature = np.array([1, -1, -1, 3], np.int32)
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_parser(sub) -> None:
    p = sub.add_parser("blazeface-int8", help="BlazeFace short range with int8 activations "
                       "(the far pass of blazeface-multiscale)")
    p.add_argument("--source", type=Path, default=SOURCE,
                   help="the verified float model (default models/%(default)s)")
    p.add_argument("--out", type=Path, default=TARGET)
    p.add_argument("--samples", type=int, default=120, help="representative pictures")
    p.add_argument("--float-from-stride", type=int, default=FLOAT_FROM_STRIDE,
                   help="ops at 1/N of the input or coarser stay float; 0: all int8 but the "
                        "heads (default %(default)s)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    if not args.source.is_file():
        raise FileNotFoundError(f"{args.source}: run python -m edge.detectors.fetch_models")
    model, tensors = rebuild(args.source)
    diffs = check_rebuild(model, tensors, args.source)
    print("rebuild vs float .tflite, max abs diff:",
          ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    # Outputs are box offsets in input pixels (up to ~100) and logits: 1e-2 is float noise
    # (fp32 sums in another order), a wrong layer is off by 1 or more.
    if max(diffs.values()) > 1e-2:
        raise ValueError(f"the Keras rebuild does not match {args.source.name}: {diffs}")
    samples = representative(args.samples)
    print(f"calibrating on {len(samples)} real pictures "
          f"({sorted({c.shape[:2] for c in samples})[:6]}...)", flush=True)
    blob = quantize(model, samples, from_stride=args.float_from_stride or None)
    args.out.write_bytes(blob)
    for w, h in ((128, 128), (864, 480), (496, 720), (192, 192)):
        run_tflite(blob, np.zeros((1, h, w, 3), np.float32))
    print(f"{args.out}: {len(blob)} bytes, sha256 {sha256(blob)}; resizes to 128x128, "
          "864x480, 496x720 and 192x192")
    return 0
