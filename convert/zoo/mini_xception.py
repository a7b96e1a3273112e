"""mini-Xception (Arriaga, Ploeger, Valdenegro 2017, "Real-time Convolutional Neural Networks
for Emotion and Gender Classification"), as published: a two-conv stem, four residual blocks
of depthwise-separable convolutions with BatchNorm and ReLU, a conv to the classes, global
average pooling and softmax. About 60k parameters.
"""
import keras
from keras import layers, regularizers

NAME = "mini_xception"
INPUT_SIZE = 48


def build(num_classes: int = 7, input_size: int = INPUT_SIZE, l2: float = 0.01) -> keras.Model:
    reg = regularizers.l2(l2)
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = inputs
    for _ in range(2):
        x = layers.Conv2D(8, 3, use_bias=False, kernel_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    for filters in (16, 32, 64, 128):
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        residual = layers.BatchNormalization()(residual)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add()([x, residual])
    x = layers.Conv2D(num_classes, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Softmax(name="scores")(x)
    return keras.Model(inputs, outputs, name=NAME)
