"""Model B on the device: 28x28 flow images (u, v, strain as uint8) in, class probabilities
out, in LiteRT. The host's LOSO int8 check runs through this same class."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classifier import ModelError, load_interpreter


@dataclass(frozen=True)
class FlowSidecar:
    labels: tuple[str, ...]
    input_size: tuple[int, int]
    channels: tuple[str, ...]
    pixel_scale: float      # float input = pixel * scale + offset
    pixel_offset: float
    sha256: str | None = None

    @classmethod
    def load(cls, path: Path) -> "FlowSidecar":
        try:
            d = json.loads(path.read_text())
            return cls(tuple(d["labels"]), tuple(d["input_size"]), tuple(d["channels"]),
                       float(d["pixel_scale"]), float(d["pixel_offset"]), d.get("sha256"))
        except FileNotFoundError:
            raise ModelError(f"{path}: the micro model's sidecar JSON is missing") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: not a valid micro model sidecar ({exc!r})") from None


class FlowModel:
    """Runs one flow image at a time (batch 1: the device sees one event at a time)."""

    def __init__(self, path: str | Path | None = None, *, sidecar: FlowSidecar | None = None,
                 content: bytes | None = None, threads: int = 1):
        if content is None:
            path = Path(path)
            sidecar = sidecar or FlowSidecar.load(path.with_suffix(".json"))
            self.interpreter = load_interpreter(path, threads, sidecar.sha256)
        else:  # host-side checks of a model still in memory
            from ai_edge_litert.interpreter import Interpreter
            self.interpreter = Interpreter(model_content=content, num_threads=threads)
            self.interpreter.allocate_tensors()
        if sidecar is None:
            raise ModelError("a micro model needs its sidecar (labels, pixel scale)")
        self.sidecar, self.labels = sidecar, sidecar.labels
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        if tuple(inp["shape"][1:]) != (*sidecar.input_size, len(sidecar.channels)):
            raise ModelError(f"{path}: input is {tuple(inp['shape'][1:])}, the sidecar says "
                             f"{(*sidecar.input_size, len(sidecar.channels))}")
        self._in, self._out, self._dtype = inp["index"], out["index"], inp["dtype"]
        s, zp = inp["quantization"]
        # pixel -> model input in one affine step (int8: q = pixel * a + b)
        self._a, self._b = ((sidecar.pixel_scale / s, sidecar.pixel_offset / s + zp) if s
                            else (sidecar.pixel_scale, sidecar.pixel_offset))
        self._out_q = out["quantization"]
        self._x = np.empty(inp["shape"], np.float32)

    def predict(self, flow: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 flow image -> (classes,) float32 probabilities."""
        x = self._x
        np.multiply(flow, self._a, out=x[0], casting="unsafe")
        x += self._b
        if np.issubdtype(self._dtype, np.integer):
            info = np.iinfo(self._dtype)
            self.interpreter.set_tensor(self._in, np.clip(np.rint(x), info.min, info.max)
                                        .astype(self._dtype))
        else:
            self.interpreter.set_tensor(self._in, x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._out)[0]
        s, zp = self._out_q
        return (y.astype(np.float32) - zp) * s if s else y.astype(np.float32)

    def predict_many(self, flows: np.ndarray) -> np.ndarray:
        return np.stack([self.predict(f) for f in flows]) if len(flows) else \
            np.zeros((0, len(self.labels)), np.float32)
