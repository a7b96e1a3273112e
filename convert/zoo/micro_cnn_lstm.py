"""Model A, the origin's micro-expression design: a small CNN applied to every frame, then
two LSTMs over the frame features.

TimeDistributed(Conv 32 3x3 - MaxPool - Conv 64 3x3 - MaxPool - Flatten) -> LSTM(64, return
sequences) -> LSTM(32) -> softmax, on a fixed number of 64x64 gray frames sampled from onset
to offset (``convert.micro.sequences``). Trained by ``convert.micro.sequence_train``.
"""
import keras
from keras import layers

NAME = "micro_cnn_lstm"
INPUT_SIZE = 64
FRAMES = 10
KIND = "sequence"


def build(num_classes: int = 3, input_size: int = INPUT_SIZE, frames: int = FRAMES) -> keras.Model:
    inputs = keras.Input((frames, input_size, input_size, 1), name="frames")
    x = layers.TimeDistributed(layers.Conv2D(32, 3, activation="relu"), name="conv1")(inputs)
    x = layers.TimeDistributed(layers.MaxPooling2D(), name="pool1")(x)
    x = layers.TimeDistributed(layers.Conv2D(64, 3, activation="relu"), name="conv2")(x)
    x = layers.TimeDistributed(layers.MaxPooling2D(), name="pool2")(x)
    x = layers.TimeDistributed(layers.Flatten(), name="flatten")(x)
    # unroll: a fixed, short sequence; TFLite then gets plain ops instead of a while loop
    x = layers.LSTM(64, return_sequences=True, unroll=True, name="lstm1")(x)
    x = layers.LSTM(32, unroll=True, name="lstm2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=NAME)
