"""The emotion models a monitor can use: one place that reads their sidecars and builds a
classifier for a path. The frame loop, the page's model list and its photo desk all ask it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classifier import ClassifierConfig, FaceClassifier, ModelError, Sidecar


@dataclass(frozen=True)
class ModelEntry:
    """One model in the folder, as a person choosing a model sees it."""
    path: Path
    labels: tuple[str, ...]
    accuracy: float | None          # int8 accuracy on its validation set, from the sidecar
    scored_against: str | None      # which labels that accuracy was scored against

    def as_dict(self, in_use: bool) -> dict[str, Any]:
        return {"file": self.path.name, "labels": list(self.labels),
                "accuracy": self.accuracy, "scored_against": self.scored_against,
                "in_use": in_use}


class ModelCatalogue:
    """The ``*.tflite`` emotion models of ``folder`` (each with a valid sidecar), and
    classifiers for them built with the ``[classifier]`` settings (margin, threads ...)."""

    def __init__(self, cfg: ClassifierConfig, folder: Path | None = None):
        self.cfg = cfg
        self.folder = Path(folder) if folder else cfg.model_path().parent

    def entries(self) -> list[ModelEntry]:
        """Every emotion model in the folder; a file whose sidecar is missing or is not an
        emotion model's (a face detector, the micro-expression model) is not one."""
        out = []
        for path in sorted(self.folder.glob("*.tflite")):
            try:
                side = Sidecar.load(path.with_suffix(".json"))
            except ModelError:
                continue
            val = side.info.get("val") if isinstance(side.info.get("val"), dict) else {}
            acc = val.get("int8_accuracy")
            out.append(ModelEntry(path, side.labels,
                                  acc if isinstance(acc, (int, float)) else None,
                                  val.get("scored_against") if isinstance(
                                      val.get("scored_against"), str) else None))
        return out

    def find(self, name: str) -> Path | None:
        """The model called ``name`` in the folder (a bare file name, nothing else)."""
        return next((e.path for e in self.entries() if e.path.name == name), None)

    def classifier(self, path: str | Path | None = None) -> FaceClassifier:
        """A classifier for ``path`` (default: the configured model); a bad model raises
        ``ModelError`` with a one-line reason."""
        cfg = self.cfg if path is None else dataclasses.replace(self.cfg, model=str(path))
        return FaceClassifier(cfg)
