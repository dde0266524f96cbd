"""PyTorch helpers: the dropout variants PyTorch does not ship, and MC prediction.

Built-ins cover spatial dropout (``nn.Dropout1d/2d/3d``) and alpha dropout
(``nn.AlphaDropout``). This package adds, each as a functional form plus a
thin ``nn.Module``, with an optional ``generator=`` (a ``torch.Generator``)
for reproducible masks, one module per variant:

* :mod:`~dlcourse.torch.gaussian`: :func:`gaussian_dropout`, :class:`GaussianDropout`;
* :mod:`~dlcourse.torch.dropconnect`: :func:`dropconnect_linear`,
  :class:`DropConnectLinear` (and the paper's Gaussian inference,
  :func:`dropconnect_gaussian_inference`);
* :mod:`~dlcourse.torch.dropblock`: :func:`drop_block2d`, :class:`DropBlock2d`;
* :mod:`~dlcourse.torch.recurrent`: :func:`variational_rnn`, :class:`VariationalRNN`;
* :mod:`~dlcourse.torch.droppath`: :func:`stochastic_depth`, :class:`DropPath`
  (alias :class:`StochasticDepth`);
* :mod:`~dlcourse.torch.mc`: :func:`mc_predict` (Monte-Carlo dropout,
  BatchNorm kept in eval mode).

Each agrees with its NumPy reference in :mod:`dlcourse.scratch` given the
same mask (the tests check it); the formulas are in those modules'
docstrings, the references in each function's.

Conventions at the ends of the range: ``rate == 0`` returns the input (layers
with weights compute their deterministic function); ``rate == 1`` gives zeros
(DropConnect: ``activation(bias)``), except Gaussian dropout, which raises a
``ValueError`` (infinite variance). The built-in ``nn.AlphaDropout(p=1)``
returns zeros, where the NumPy reference refuses ``rate=1``.
"""

from __future__ import annotations

from dlcourse.torch.dropblock import DropBlock2d, drop_block2d
from dlcourse.torch.dropconnect import (
    DropConnectLinear,
    dropconnect_gaussian_inference,
    dropconnect_linear,
)
from dlcourse.torch.droppath import DropPath, StochasticDepth, stochastic_depth
from dlcourse.torch.gaussian import GaussianDropout, gaussian_dropout
from dlcourse.torch.mc import DROPOUT_MODULES, mc_predict
from dlcourse.torch.recurrent import VariationalRNN, variational_rnn

__all__ = [
    "DROPOUT_MODULES",
    "DropBlock2d",
    "DropConnectLinear",
    "DropPath",
    "GaussianDropout",
    "StochasticDepth",
    "VariationalRNN",
    "drop_block2d",
    "dropconnect_gaussian_inference",
    "dropconnect_linear",
    "gaussian_dropout",
    "mc_predict",
    "stochastic_depth",
    "variational_rnn",
]
