"""Non-max suppression for detector boxes (x0, y0, x1, y1), plain and weighted.

BlazeFace fires on several neighbouring anchors per face. MediaPipe merges them with
*weighted* NMS: each cluster (boxes overlapping the best remaining one by more than the
threshold) becomes one box, the score-weighted mean of the cluster, keeping the best score.
That gives steadier boxes than dropping the neighbours, which matters for the tracker.
"""
from __future__ import annotations

import numpy as np


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with each of ``boxes`` (N, 4), all as x0, y0, x1, y1."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 weighted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Merged boxes (M, 4) and their scores (M,), best first.

    ``weighted=False`` is ordinary NMS (keep the best box of each cluster as it is).
    """
    if len(scores) == 0:
        return boxes[:0], scores[:0]
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    out_boxes, out_scores = [], []
    alive = np.ones(len(scores), dtype=bool)
    for i in range(len(scores)):
        if not alive[i]:
            continue
        rest = np.flatnonzero(alive)             # includes i itself (IoU 1)
        cluster = rest[iou_one_to_many(boxes[i], boxes[rest]) > iou_threshold]
        alive[cluster] = False
        alive[i] = False
        if weighted and len(cluster) > 1:
            w = scores[cluster]
            out_boxes.append((boxes[cluster] * w[:, None]).sum(axis=0) / w.sum())
        else:
            out_boxes.append(boxes[i])
        out_scores.append(scores[i])
    return np.array(out_boxes, dtype=np.float32), np.array(out_scores, dtype=np.float32)
