"""The model zoo: one small module per architecture, each with ``build()`` and its defaults."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import (baseline_cnn, micro_cnn_lstm, micro_flow_net, mini_xception, resnet_bn, vgg_bn,
               vgg_bn_wide)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    module: ModuleType

    @property
    def input_size(self) -> int:
        return self.module.INPUT_SIZE

    def build(self, num_classes: int, input_size: int | None = None):
        return self.module.build(num_classes=num_classes, input_size=input_size or self.input_size)


ZOO = {m.NAME: ZooEntry(m.NAME, m) for m in (baseline_cnn, mini_xception, vgg_bn, vgg_bn_wide,
                                             resnet_bn, micro_cnn_lstm, micro_flow_net)}


def get(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; the zoo has {', '.join(ZOO)}") from None
