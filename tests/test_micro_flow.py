"""The device's onset-to-apex flow image on real video frames: the channel layout and value
ranges of the training set (measured on megc2019_composite_flow28.npz)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.micro.flow import FlowImager, minmax_uint8

BOX = (175, 66, 238, 238)      # the face in pyfeat_single_face.mp4 (Haar box + margin)


@pytest.fixture(scope="module")
def crops(videos) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(videos / "pyfeat_single_face.mp4"))
    out = []
    x, y, w, h = BOX
    while True:
        ok, f = cap.read()
        if not ok:
            break
        g = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[y:y + h, x:x + w]
        out.append(cv2.resize(g, (96, 96), interpolation=cv2.INTER_AREA))
    return out


def _mirror_corr(c: np.ndarray) -> float:
    a = c.astype(float) - np.median(c)
    return float(np.corrcoef(a.ravel(), a[:, ::-1].ravel())[0, 1])


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_smile_flow_has_the_training_layout(crops, method):
    """Neutral (frame 0) -> smile (frame 40). A smile is left-right symmetric, so like the
    training images: u is mirror-antisymmetric, v mirror-symmetric, and the mouth corners move
    apart (u lower on the image's left than on its right, as in the set's positive clips)."""
    img = FlowImager(96, method)(crops[0], crops[40])
    assert img.shape == (28, 28, 3) and img.dtype == np.uint8
    for c in range(3):                                  # per-channel min-max, as in the set
        assert img[..., c].min() == 0 and img[..., c].max() == 255
    assert _mirror_corr(img[..., 0]) < -0.2
    assert _mirror_corr(img[..., 1]) > 0.2
    u = img[..., 0].astype(float) - np.median(img[..., 0])
    assert u[17:25, 4:12].mean() < u[17:25, 16:24].mean() - 20
    assert np.median(img[..., 2]) < 64                  # strain is skewed (set: median ~13)


def test_training_set_has_the_same_properties(micro_npz):
    """The claims the device code relies on, checked on the data itself."""
    d = np.load(micro_npz)
    x, y = d["x"], d["y"]
    flat = x.reshape(len(x), -1, 3)
    assert (flat.min(1) == 0).all() and (flat.max(1) == 255).all()
    assert np.median([_mirror_corr(i[..., 0]) for i in x]) < -0.1
    assert np.median([_mirror_corr(i[..., 1]) for i in x]) > 0.3
    pos = x[y == 1, ..., 0].astype(float) - np.median(x[y == 1, ..., 0], axis=(1, 2))[:, None, None]
    assert pos[:, 17:25, 4:12].mean() < pos[:, 17:25, 16:24].mean() - 10
    assert np.median(x[..., 2]) < 32


def test_flat_channel_becomes_zero():
    x = np.zeros((28, 28, 3), np.float32)
    x[..., 1] = np.arange(28)[None, :]
    out = minmax_uint8(x)
    assert out[..., 0].max() == 0 and out[..., 1].min() == 0 and out[..., 1].max() == 255


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="flow method"):
        FlowImager(96, "tvl1")
