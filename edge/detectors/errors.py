"""The detectors' one error type, so the daemon can catch it and print one line."""
from ..errors import EmotionEdgeError


class DetectorModelError(EmotionEdgeError, RuntimeError):
    """A detector model file that is missing or unusable; the message says which and why."""
