"""Micro-expression classifier over one onset-to-apex flow image (28x28: u, v, strain).

In the spirit of STSTNet (Liong et al. 2019: shallow parallel conv streams over the flow,
pooled, concatenated, one dense layer), with one stream per flow feature: horizontal flow,
vertical flow and optical strain have different statistics and different meaning, so each
gets its own two small conv stages before they meet. BatchNorm and dropout because 442 clips
is very little data. Only int8-friendly ops (conv, pool, concat, dense, softmax).
"""
import keras
from keras import layers

NAME = "micro_flow_net"
INPUT_SIZE = 28
CHANNELS = ("u", "v", "strain")
KIND = "flow"


def _stream(x, width: int, name: str):
    for i in range(2):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)      # 28 -> 14 -> 7
    return x


def build(num_classes: int = 3, input_size: int = INPUT_SIZE, width: int = 8,
          dropout: float = 0.5) -> keras.Model:
    inputs = keras.Input((input_size, input_size, len(CHANNELS)), name="flow")
    streams = [_stream(inputs[..., i:i + 1], width, c)
               for i, c in enumerate(CHANNELS)]
    x = layers.Concatenate(name="streams")(streams)                   # 7x7x(3*width)
    x = layers.Conv2D(2 * width, 1, use_bias=False, name="mix")(x)
    x = layers.BatchNormalization(name="mix_bn")(x)
    x = layers.ReLU(name="mix_relu")(x)
    x = layers.AveragePooling2D(2, name="avg")(x)                     # 3x3: keeps where on the face
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=NAME)
