"""PyTorch helpers: the dropout variants PyTorch does not ship, and MC prediction.

Built-ins cover spatial dropout (``nn.Dropout1d/2d/3d``) and alpha dropout
(``nn.AlphaDropout``). This package adds, each as a functional form plus a
thin ``nn.Module``, with an optional ``generator=`` for reproducible masks:

* :class:`GaussianDropout` / :func:`gaussian_dropout`;
* :class:`DropConnectLinear` / :func:`dropconnect_linear` (and the paper's Gaussian
  inference, :func:`dropconnect_gaussian_inference`);
* :class:`DropBlock2d` / :func:`drop_block2d`;
* :class:`VariationalRNN` / :func:`variational_rnn`;
* :class:`DropPath` (alias :class:`StochasticDepth`) / :func:`stochastic_depth`;
* :func:`mc_predict` (Monte-Carlo dropout, BatchNorm kept in eval mode).

Each agrees with its NumPy reference in :mod:`dlcourse.scratch` given the
same mask (the tests check it); the formulas are in those modules' docstrings.

Conventions at the ends of the range: ``rate == 0`` returns the input (layers
with weights compute their deterministic function); ``rate == 1`` gives zeros
(DropConnect: ``activation(bias)``), except Gaussian dropout, which raises a
``ValueError`` (infinite variance). The built-in ``nn.AlphaDropout(p=1)``
returns zeros, where the NumPy reference refuses ``rate=1``.

References:
    Srivastava et al. (2014), JMLR 15 (dropout; Gaussian dropout, section 10).
    Wan et al. (2013), ICML (DropConnect). Ghiasi, Lin & Le (2018), NeurIPS,
    arXiv:1810.12890 (DropBlock). Gal & Ghahramani (2016), NeurIPS,
    arXiv:1512.05287 (variational RNN dropout) and ICML, arXiv:1506.02142
    (MC dropout). Huang et al. (2016), ECCV, arXiv:1603.09382 (stochastic depth).
"""

from __future__ import annotations

from dlcourse.torch.mc import DROPOUT_MODULES, mc_predict
from dlcourse.torch.variants import (
    DropBlock2d,
    DropConnectLinear,
    DropPath,
    GaussianDropout,
    StochasticDepth,
    VariationalRNN,
    drop_block2d,
    dropconnect_gaussian_inference,
    dropconnect_linear,
    gaussian_dropout,
    stochastic_depth,
    variational_rnn,
)

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
