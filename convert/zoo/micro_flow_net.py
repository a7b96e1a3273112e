"""Micro-expression classifier over one onset-to-apex flow image (28x28: u, v, strain).

In the spirit of STSTNet (Liong et al. 2019): one shallow conv layer, 3x3 max-pooling with
stride 3, 2x2 average pooling and a single dense layer; about 1.5k parameters, so it cannot
memorize 442 clips. Unlike STSTNet each flow feature gets its own stream (horizontal flow,
vertical flow and strain differ in statistics and meaning). The pooled 5x5 map keeps *where*
on the face the motion was. No BatchNorm: it lets LOSO train all 68 fold models as one
stacked network without any left-out clip touching a fold's statistics
(``convert.micro.flow_train``). Only int8-friendly ops; ~130k MACs per clip.
"""
import keras
from keras import layers

NAME = "micro_flow_net"
INPUT_SIZE = 28
CHANNELS = ("u", "v", "strain")
KIND = "flow"
POOLED = 5          # side of the pooled map the dense layer sees


def build(num_classes: int = 3, input_size: int = INPUT_SIZE, width: int = 6,
          dropout: float = 0.5, center: bool = False, linear_pool: int = 0,
          cnn_weight: float = 0.5) -> keras.Model:
    """``center``: subtract each image's mean from u and v (built-in layers only, so the
    converter emits MEAN and SUB): per-image min-max normalization moved zero flow.
    ``linear_pool``: also a softmax regression on ``linear_pool``-averaged pixels, its
    probabilities averaged with the CNN's (``convert.micro.linear_view`` fits it), the CNN's
    weighted ``cnn_weight`` (0: the regression alone; chosen in ``convert.micro.nested``)."""
    if not 0.0 <= cnn_weight <= 1.0:
        raise ValueError(f"cnn_weight: {cnn_weight} is outside 0..1")
    inputs = keras.Input((input_size, input_size, len(CHANNELS)), name="flow")
    if linear_pool:
        lin = layers.AveragePooling2D(linear_pool, name="linear_pool")(inputs)
        lin = layers.Dense(num_classes, activation="softmax", name="linear")(layers.Flatten()(lin))
        if cnn_weight == 0.0:
            return keras.Model(inputs, lin, name=NAME)
    streams = []
    for i, c in enumerate(CHANNELS):
        x = inputs[..., i:i + 1]
        if center and c in ("u", "v"):
            x = layers.Subtract(name=f"{c}_center")(
                [x, layers.GlobalAveragePooling2D(keepdims=True, name=f"{c}_mean")(x)])
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{c}_conv")(x)
        streams.append(layers.MaxPooling2D(3, padding="same", name=f"{c}_pool")(x))  # 28 -> 10
    x = layers.Concatenate(name="streams")(streams)
    x = layers.AveragePooling2D(2, name="avg")(x)                                      # 10 -> 5
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    if linear_pool and cnn_weight == 0.5:
        outputs = layers.Average(name="ensemble")([outputs, lin])
    elif linear_pool and cnn_weight < 1.0:      # a weighted mean: two MULs and an ADD in int8
        outputs = layers.Add(name="ensemble")([
            layers.Rescaling(cnn_weight, name="cnn_share")(outputs),
            layers.Rescaling(1.0 - cnn_weight, name="linear_share")(lin)])
    return keras.Model(inputs, outputs, name=NAME)
