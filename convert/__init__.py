"""Host toolchain: train, evaluate and int8-quantize the emotion models (needs TensorFlow)."""
