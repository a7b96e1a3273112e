"""Where two machines' `classify` part: each photo's stages, hashed, as JSON lines.

    python bench/system/stages.py PHOTO...     (the device's Python; edge importable)

pixels: the decoded photo; crops: the classifier's input faces; xnnpack: its raw int8
outputs (LiteRT's default XNNPACK kernels, what the monitor uses); reference: LiteRT's
reference kernels on the same crops (plain C++, the same arithmetic on every CPU).
arm64.py runs it on both machines to tell decoding, resizing and kernel rounding apart.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edge import config
from edge.classifier import EmotionModel, FaceClassifier
from edge.detectors import create_detector
from edge.sources.images import read_image


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def main(photos: list[str]) -> None:
    cfg = config.load(None)
    classifier, detector = FaceClassifier(cfg.classifier), create_detector(cfg.detector)
    reference = EmotionModel(cfg.classifier.model_path())   # the same model and code...
    reference.interpreter = Interpreter(                     # ...on the reference kernels
        model_path=str(reference.path), num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    reference.interpreter.allocate_tensors()
    step = reference.interpreter.get_output_details()[0]["quantization"][0] or 1.0
    for path in photos:
        image = read_image(path)
        boxes = [d.box for d in detector.detect(image)]
        classifier.classify(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), boxes)
        faces = classifier._buf[:len(boxes)].copy()   # the crops it was given
        row = {"image": Path(path).name, "pixels": digest(image), "crops": digest(faces),
               "xnnpack": [], "reference": []}
        if boxes:   # scores in int8 output steps
            for key, model in (("xnnpack", classifier.model), ("reference", reference)):
                row[key] = np.rint(model.predict(faces) / step).astype(int).tolist()
        print(json.dumps(row))


if __name__ == "__main__":
    main(sys.argv[1:])
