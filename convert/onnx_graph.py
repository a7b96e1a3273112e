"""An ONNX file's nodes and weights, read with no ONNX package: the protobuf wire format,
only the fields a small convolutional network uses (onnx/onnx.proto: ModelProto.graph,
GraphProto.node / initializer, NodeProto, AttributeProto, TensorProto). Enough for
``yunet_tflite``; a file that uses more (external data, other tensor types) is refused
with one line rather than misread.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# TensorProto.DataType -> numpy
_DTYPES = {1: np.float32, 6: np.int32, 7: np.int64, 11: np.float64}


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, object] = field(default_factory=dict)


@dataclass
class Graph:
    nodes: list[Node]
    weights: dict[str, np.ndarray]


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of one message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _ints(wire: int, value) -> list[int]:
    if wire == 0:
        return [_signed(value)]
    out, i = [], 0                      # packed
    while i < len(value):
        v, i = _varint(value, i)
        out.append(_signed(v))
    return out


def _tensor(buf: bytes) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    dtype, name, raw, floats = 0, "", None, []
    for number, wire, value in _fields(buf):
        if number == 1:
            dims += _ints(wire, value)
        elif number == 2:
            dtype = value
        elif number == 8:
            name = value.decode()
        elif number == 9:
            raw = value
        elif number == 4:
            floats += list(struct.unpack(f"<{len(value) // 4}f", value)) if wire == 2 \
                else list(struct.unpack("<f", value))
        elif number in (13, 14):
            raise ValueError(f"tensor {name or '?'}: external data is not supported")
    if dtype not in _DTYPES:
        raise ValueError(f"tensor {name}: data type {dtype} is not supported")
    data = np.frombuffer(raw, _DTYPES[dtype]) if raw is not None \
        else np.asarray(floats, _DTYPES[dtype])
    return name, data.reshape(dims).copy()


def _attribute(buf: bytes) -> tuple[str, object]:
    name, value = "", None
    ints: list[int] = []
    floats: list[float] = []
    for number, wire, v in _fields(buf):
        if number == 1:
            name = v.decode()
        elif number == 2:
            value = struct.unpack("<f", v)[0]
        elif number == 3:
            value = _signed(v)
        elif number == 4:
            value = v.decode()
        elif number == 7:
            floats += list(struct.unpack(f"<{len(v) // 4}f", v)) if wire == 2 \
                else list(struct.unpack("<f", v))
        elif number == 8:
            ints += _ints(wire, v)
    return name, ints or floats or value


def _node(buf: bytes) -> Node:
    node = Node("", [], [])
    for number, _, value in _fields(buf):
        if number == 1:
            node.inputs.append(value.decode())
        elif number == 2:
            node.outputs.append(value.decode())
        elif number == 4:
            node.op = value.decode()
        elif number == 5:
            k, v = _attribute(value)
            node.attrs[k] = v
    return node


def read(path: Path) -> Graph:
    """The nodes (in the file's order, which ONNX keeps topological) and the weights."""
    model = Path(path).read_bytes()
    graph = next((v for n, w, v in _fields(model) if n == 7 and w == 2), None)
    if graph is None:
        raise ValueError(f"{path}: no graph in it: not an ONNX model")
    nodes, weights = [], {}
    for number, _, value in _fields(graph):
        if number == 1:
            nodes.append(_node(value))
        elif number == 5:
            name, array = _tensor(value)
            weights[name] = array
    return Graph(nodes, weights)
