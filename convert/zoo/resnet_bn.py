"""A teacher, not an edge model: a ResNet-18-style network (He et al. 2016) for 48x48 faces.

Four stages of two residual blocks (32-64-128-256 channels, two 3x3 convolutions with
BatchNorm each, stride 2 and a 1x1 projection where a stage starts), global average pooling,
dropout and softmax: about 2.8M parameters and 2.7x vgg_bn's multiply-adds. Every vgg_bn
trained here errs on the same faces (ensembles of six stop at 84.15% on FER+ val), so
distillation needs a teacher built differently; this one is deeper, with shortcuts. Over the
Pi's budget on purpose: it teaches `vgg_bn` (`train --teacher`), it does not ship.
"""
import keras
from keras import layers

NAME = "resnet_bn"
INPUT_SIZE = 48
WIDTHS = (32, 64, 128, 256)


def conv_bn(x, width: int, stride: int = 1, kernel: int = 3):
    x = layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=False)(x)
    return layers.BatchNormalization()(x)


def block(x, width: int, stride: int):
    shortcut = x if stride == 1 and x.shape[-1] == width else conv_bn(x, width, stride, kernel=1)
    y = layers.ReLU()(conv_bn(x, width, stride))
    y = conv_bn(y, width)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def build(num_classes: int = 7, input_size: int = INPUT_SIZE, dropout: float = 0.4) -> keras.Model:
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = layers.ReLU()(conv_bn(inputs, WIDTHS[0]))
    for i, width in enumerate(WIDTHS):
        x = block(x, width, stride=2 if i else 1)
        x = block(x, width, stride=1)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=NAME)
