"""The edge model: a compact VGG-style CNN with BatchNorm, sized for a Raspberry Pi.

Four stages of two 3x3 convolutions (32-64-128-256 channels, BatchNorm, ReLU) with max
pooling between, global average pooling, dropout and softmax. Plain 3x3 convolutions
quantize to int8 with almost no loss and run fast in LiteRT's XNNPACK kernels; global
pooling instead of VGG's large dense layers keeps it about 1.2 MB as int8.
"""
import keras
from keras import layers

NAME = "vgg_bn"
INPUT_SIZE = 48
WIDTHS = (32, 64, 128, 256)


def build(num_classes: int = 7, input_size: int = INPUT_SIZE,
          widths: tuple[int, ...] = WIDTHS, dropout: float = 0.4) -> keras.Model:
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = inputs
    for i, w in enumerate(widths):
        if i:
            x = layers.MaxPooling2D()(x)
        for _ in range(2):
            x = layers.Conv2D(w, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=NAME)
