"""The baseline CNN of the project's origin: two conv/pool stages and a dense layer.

Conv(32, 3x3) - MaxPool - Conv(64, 3x3) - MaxPool - Dense(128) - softmax, on 64x64 grayscale.
Used for the two-class (positive / negative) task as well as for N classes.
"""
import keras
from keras import layers

NAME = "baseline_cnn"
INPUT_SIZE = 64


def build(num_classes: int = 2, input_size: int = INPUT_SIZE) -> keras.Model:
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=NAME)
