"""Building the stages a configuration asks for: source, detector, classifier, the optional
face stages, and the sinks. Nothing here runs a frame (that is ``analysis`` and
``pipeline``); a bad model fails here, before a camera is opened.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .analysis import FaceStage
from .catalogue import ModelCatalogue
from .classifier import FaceClassifier
from .config import Config
from .detectors import create_detector
from .detectors.base import FaceDetector
from .sinks import SECTIONS as SINK_SECTIONS, make_sink
from .sinks.base import Sink
from .sinks.faces import FaceCropSink
from .sources import FrameSource, create_source


def build_sinks(cfg: Config) -> list[Sink]:
    """Every output the config turns on, each a sink: the sink sections' ``enabled`` flags,
    and ``[monitor] save_faces`` for face crops."""
    sinks = [make_sink(section, getattr(cfg, section)) for section in SINK_SECTIONS
             if getattr(cfg, section).enabled]
    if cfg.monitor.save_faces:
        sinks.append(FaceCropSink(cfg.monitor.faces_dir or Path(cfg.log.dir) / "faces",
                                  cfg.classifier.margin))
    return sinks


@dataclass
class Stages:
    """What one monitor runs. Parts given to ``build`` (tests put a flaky source in front
    of a real video) are used as they are."""
    catalogue: ModelCatalogue
    classifier: FaceClassifier
    detector: FaceDetector
    source: FrameSource
    sinks: list[Sink]
    micro_model: object | None = None       # loaded early; its stage needs the source's fps
    face_stages: list[FaceStage] = field(default_factory=list)

    def start_face_stages(self, cfg: Config, fps: float) -> list[FaceStage]:
        """The face stages, made once the source's frame rate is known."""
        if self.micro_model is not None and not self.face_stages:
            from .micro import MicroStage
            self.face_stages.append(MicroStage(cfg.micro, fps=fps or cfg.source.fps,
                                               model=self.micro_model))
        return self.face_stages


def build(cfg: Config, *, source: FrameSource | None = None,
          detector: FaceDetector | None = None, classifier: FaceClassifier | None = None,
          sinks: list[Sink] | None = None) -> Stages:
    # Model and detector first: a bad model must fail before a camera is opened.
    catalogue = ModelCatalogue(cfg.classifier, Path(cfg.web.models_dir) if cfg.web.models_dir
                               else None)
    classifier = classifier or catalogue.classifier()
    detector = detector or create_detector(cfg.detector)
    micro_model = None
    if cfg.micro.enabled:
        from .micro.model import FlowModel
        micro_model = FlowModel(cfg.micro.model_path(), threads=cfg.micro.threads)
    # Never the sample clip here: only the CLI may choose it, for a person at a terminal.
    source = source or create_source(cfg.source, demo=False)
    return Stages(catalogue, classifier, detector, source,
                  sinks if sinks is not None else build_sinks(cfg), micro_model)
