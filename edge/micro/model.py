"""Model B on the device: 28x28 flow images (u, v, strain as uint8) in, class probabilities
out, in LiteRT. The host's LOSO int8 check runs through this same class."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import litert
from ..classifier import (ModelError, check_labels, check_number, check_size, first_line,
                          load_interpreter, read_sidecar)
from ..errors import display


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
        d = read_sidecar(path, "the micro model's sidecar JSON")
        try:
            channels = d.get("channels")
            if not (isinstance(channels, list) and channels
                    and all(isinstance(c, str) for c in channels)):
                raise ValueError("channels: must be a list of names")
            sha = d.get("sha256")
            if sha is not None and not isinstance(sha, str):
                raise ValueError("sha256: must be a string")
            return cls(check_labels(d.get("labels")), check_size(d.get("input_size"), "input_size"),
                       tuple(channels), check_number(d.get("pixel_scale"), "pixel_scale"),
                       check_number(d.get("pixel_offset"), "pixel_offset"), sha)
        except ValueError as exc:
            raise ModelError(f"{display(str(path))}: not a valid micro model sidecar "
                             f"({exc})") from None


class FlowModel:
    """Runs one flow image at a time (batch 1: the device sees one event at a time)."""

    def __init__(self, path: str | Path | None = None, *, sidecar: FlowSidecar | None = None,
                 content: bytes | None = None, threads: int = 1):
        if content is None:
            path = Path(path)
            sidecar = sidecar or FlowSidecar.load(path.with_suffix(".json"))
            self.interpreter = load_interpreter(path, threads, sidecar.sha256)
        else:  # host-side checks of a model still in memory
            self.interpreter = litert.interpreter(content=content, threads=threads)
        if sidecar is None:
            raise ModelError("a micro model needs its sidecar (labels, pixel scale)")
        self.sidecar, self.labels = sidecar, sidecar.labels
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        name = display(str(path))
        if tuple(inp["shape"][1:]) != (*sidecar.input_size, len(sidecar.channels)):
            raise ModelError(f"{name}: input is {tuple(inp['shape'][1:])}, the sidecar says "
                             f"{(*sidecar.input_size, len(sidecar.channels))}")
        if len(out["shape"]) != 2 or out["shape"][1] != len(sidecar.labels):
            raise ModelError(f"{name}: the model gives {tuple(out['shape'])} scores but its "
                             f"sidecar names {len(sidecar.labels)} labels")
        self._in, self._out, self._dtype = inp["index"], out["index"], inp["dtype"]
        s, zp = inp["quantization"]
        # pixel -> model input in one affine step (int8: q = pixel * a + b)
        self._a, self._b = ((sidecar.pixel_scale / s, sidecar.pixel_offset / s + zp) if s
                            else (sidecar.pixel_scale, sidecar.pixel_offset))
        self._out_q = out["quantization"]
        self._x = np.empty(inp["shape"], np.float32)
        try:   # one real inference now, not at the first micro-expression
            p = self.predict(np.full((*sidecar.input_size, len(sidecar.channels)), 128, np.uint8))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{name}: fails on a flow image ({first_line(exc)})") from None
        if p.shape != (len(self.labels),) or not np.all(np.isfinite(p)):
            raise ModelError(f"{name}: gives {p.shape} scores, not {len(self.labels)}")

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
