"""Dropout and a small neural-network toolkit, from scratch in NumPy."""

from dlcourse.scratch.dropout import (
    Dropout,
    bernoulli_keep_mask,
    dropout_backward,
    dropout_forward,
    resolve_noise_shape,
)
from dlcourse.scratch.gradcheck import (
    check_layer,
    check_model,
    numerical_gradient,
    relative_error,
)
from dlcourse.scratch.layers import Layer, Linear, ReLU, Sigmoid, Tanh
from dlcourse.scratch.losses import SoftmaxCrossEntropy, softmax
from dlcourse.scratch.model import Sequential, mlp
from dlcourse.scratch.optim import SGD, Adam
from dlcourse.scratch.training import History, fit

__all__ = [
    "SGD",
    "Adam",
    "Dropout",
    "History",
    "Layer",
    "Linear",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "bernoulli_keep_mask",
    "check_layer",
    "check_model",
    "dropout_backward",
    "dropout_forward",
    "fit",
    "mlp",
    "numerical_gradient",
    "relative_error",
    "resolve_noise_shape",
    "softmax",
]
