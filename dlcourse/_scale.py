"""The inverted-dropout scale, defined once for NumPy, PyTorch and Keras code.

Inverted dropout divides the survivors by ``keep = 1 - rate`` so that each
unit keeps its expected value. At ``rate = 1`` nothing survives and the
scale is 0 by convention (the output is all zeros, never ``0 * inf = nan``).
"""

from __future__ import annotations


def inverted_scale(rate: float) -> float:
    """``1 / (1 - rate)``, or ``0.0`` when ``rate == 1`` (every unit dropped).

    ``rate`` must already be checked (a float in ``[0, 1]``, see
    :func:`dlcourse._checks.check_rate`).
    """
    keep = 1.0 - float(rate)
    return 1.0 / keep if keep > 0.0 else 0.0
