"""Keras 3 helpers: the dropout variants Keras does not ship, and MC prediction.

Built-ins cover spatial dropout (``keras.layers.SpatialDropout1D/2D/3D``),
Gaussian dropout (``keras.layers.GaussianDropout``), alpha dropout
(``keras.layers.AlphaDropout``) and variational recurrent dropout (the
``dropout``/``recurrent_dropout`` arguments of ``SimpleRNN``/``GRU``/``LSTM``).
This package adds :class:`DropConnectDense`, :class:`DropBlock2D`,
:class:`DropPath` and :func:`mc_predict`. Importing it imports TensorFlow
(quietly: ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dlcourse.keras.layers import DropBlock2D, DropConnectDense, DropPath  # noqa: E402
from dlcourse.keras.mc import mc_predict  # noqa: E402

__all__ = ["DropBlock2D", "DropConnectDense", "DropPath", "mc_predict"]
