"""The Raspberry Pi camera through picamera2 (from Raspberry Pi OS's apt, imported lazily)."""
from __future__ import annotations

import numpy as np

from .base import FrameSource, SourceError, SourceUnavailable


class PiCameraSource(FrameSource):
    name = "picamera"
    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30):
        self.width, self.height, self.fps = width, height, float(fps)
        self.cam = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError("picamera2 is not installed (on Raspberry Pi OS: "
                              "sudo apt install python3-picamera2)") from None
        try:
            cam = Picamera2()
            # "RGB888" is stored B, G, R per pixel: exactly OpenCV's BGR.
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"},
                controls={"FrameRate": self.fps}, buffer_count=4)
            cam.configure(config)
            cam.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise SourceUnavailable(f"no Pi camera found or it is busy ({exc})") from None
        self.cam = cam

    def read(self) -> np.ndarray:
        try:
            return self.cam.capture_array("main")
        except Exception as exc:  # picamera2 raises assorted errors when the camera drops
            raise SourceUnavailable(f"picamera read failed ({exc})") from None

    def close(self) -> None:
        if self.cam is not None:
            try:
                self.cam.stop()
                self.cam.close()
            finally:
                self.cam = None


def available() -> bool:
    try:
        from picamera2 import Picamera2
        return bool(Picamera2.global_camera_info())
    except Exception:
        return False
