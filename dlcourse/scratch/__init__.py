"""Dropout and a small neural-network toolkit, from scratch in NumPy."""

from dlcourse.scratch.alpha import AlphaDropout, alpha_dropout_backward, alpha_dropout_forward
from dlcourse.scratch.dropblock import (
    DropBlock2D,
    dropblock_backward,
    dropblock_forward,
    linear_rate_schedule,
)
from dlcourse.scratch.dropconnect import (
    DropConnect,
    dropconnect_backward,
    dropconnect_forward,
    dropconnect_gaussian_inference,
)
from dlcourse.scratch.dropout import (
    Dropout,
    bernoulli_keep_mask,
    dropout_backward,
    dropout_forward,
    fast_keep_mask,
    resolve_noise_shape,
)
from dlcourse.scratch.droppath import DropPath, drop_path_backward, drop_path_forward
from dlcourse.scratch.gaussian import (
    GaussianDropout,
    gaussian_dropout_backward,
    gaussian_dropout_forward,
)
from dlcourse.scratch.gradcheck import (
    check_layer,
    check_model,
    numerical_gradient,
    relative_error,
)
from dlcourse.scratch.layers import Layer, Linear, ReLU, Sigmoid, StochasticLayer, Tanh
from dlcourse.scratch.losses import SoftmaxCrossEntropy, softmax
from dlcourse.scratch.mc import mc_predict
from dlcourse.scratch.model import Sequential, mlp
from dlcourse.scratch.optim import SGD, Adam
from dlcourse.scratch.recurrent import VariationalRNN, rnn_backward, rnn_forward
from dlcourse.scratch.spatial import (
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    spatial_dropout_backward,
    spatial_dropout_forward,
)
from dlcourse.scratch.training import History, fit

__all__ = [
    "AlphaDropout",
    "DropBlock2D",
    "DropConnect",
    "DropPath",
    "GaussianDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "VariationalRNN",
    "alpha_dropout_backward",
    "alpha_dropout_forward",
    "drop_path_backward",
    "drop_path_forward",
    "dropblock_backward",
    "dropblock_forward",
    "dropconnect_backward",
    "dropconnect_forward",
    "dropconnect_gaussian_inference",
    "gaussian_dropout_backward",
    "gaussian_dropout_forward",
    "linear_rate_schedule",
    "mc_predict",
    "rnn_backward",
    "rnn_forward",
    "spatial_dropout_backward",
    "spatial_dropout_forward",
    "SGD",
    "Adam",
    "Dropout",
    "History",
    "Layer",
    "StochasticLayer",
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
    "fast_keep_mask",
    "fit",
    "mlp",
    "numerical_gradient",
    "relative_error",
    "resolve_noise_shape",
    "softmax",
]
