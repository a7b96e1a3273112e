"""Edge emotion monitor: source -> detector -> classifier -> tracker -> sinks.

Runs on a Raspberry Pi with numpy, OpenCV, LiteRT and gpiozero; never needs TensorFlow.
"""
__version__ = "0.1.0"
