"""Keras 3 helpers: the dropout variants Keras does not ship, and MC prediction.

Built-ins cover spatial dropout (``keras.layers.SpatialDropout1D/2D/3D``),
Gaussian dropout (``keras.layers.GaussianDropout``), alpha dropout
(``keras.layers.AlphaDropout``) and variational recurrent dropout (the
``dropout``/``recurrent_dropout`` arguments of ``SimpleRNN``/``GRU``/``LSTM``).
This package adds :class:`DropConnectDense`, :class:`DropBlock2D`,
:class:`DropPath` and :func:`mc_predict`. Importing it imports TensorFlow
(quietly: ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3).

Recurrent dropout, as Keras 3 does it (``keras/src/layers/rnn/dropout_rnn_cell.py``,
checked by the tests for ``SimpleRNN``): in each call the cell draws one
inverted-dropout mask for the inputs ``x_t`` (``dropout``, shape ``(N, D)``) and
one for the previous state ``h_{t-1}`` (``recurrent_dropout``, ``(N, H)``)
before the time loop, reuses both at every step and discards them after the
call. That is Gal & Ghahramani's variational dropout (one mask per sequence,
on the inputs and the recurrent state). ``GRU``/``LSTM`` with
``recurrent_dropout > 0`` (which forces ``implementation=1``) draw one mask
per gate (3 or 4, the paper's untied form); with ``recurrent_dropout=0`` and
the default ``implementation=2`` their single input mask is shared by the gates.
The values ``dropout``/``recurrent_dropout`` are clipped to ``[0, 1]``, not
checked.

At the ends of the range: ``rate == 0`` returns the input for every layer
here and for the built-ins; ``rate == 1`` gives zeros (``DropConnectDense``:
``activation(bias)``), but the built-in ``GaussianDropout(1.0)`` and
``AlphaDropout(1.0)`` are accepted and then fail in ``call`` with a
``ZeroDivisionError`` (Keras 3.15): use a rate below 1.

The layers and :func:`mc_predict` give their references in their docstrings.

References:
    Gal & Ghahramani (2016), "A Theoretically Grounded Application of Dropout
    in Recurrent Neural Networks", NeurIPS, arXiv:1512.05287 (recurrent dropout).
    Srivastava et al. (2014), JMLR 15 (Gaussian dropout, section 10).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dlcourse.keras.layers import DropBlock2D, DropConnectDense, DropPath  # noqa: E402
from dlcourse.keras.mc import mc_predict  # noqa: E402

__all__ = ["DropBlock2D", "DropConnectDense", "DropPath", "mc_predict"]
