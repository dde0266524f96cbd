"""Property checks shared by the PyTorch and Keras tests of the dropout variants.

Statistical bounds are z = 5 standard errors (the tests are seeded, so
deterministic; the bound is wide enough that a correct implementation passes
whatever the seed).
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.scratch.dropblock import dropblock_expected_fraction

Z = 5.0


def assert_binomial(k: int, n: int, p: float) -> None:
    """``k`` successes out of ``n`` is within ``Z`` standard errors of ``Binomial(n, p)``'s mean."""
    assert abs(k - n * p) <= Z * math.sqrt(n * p * (1 - p)) + 1, f"{k}/{n} vs p={p}"


def assert_dropblock_of_ones(out: np.ndarray, rate: float, block_size: int,
                             spatial_axes: tuple[int, int], eps: float) -> None:
    """Check DropBlock's output for an input of ones, of a float type with machine epsilon ``eps``.

    The output is finite; the fraction dropped per map is within ``Z``
    standard errors of :func:`dropblock_expected_fraction`; every survivor
    equals ``numel / kept`` within half a unit in the last place (the scale
    computed wide and rounded once to the output's dtype).
    """
    out = np.asarray(out, dtype=np.float64)
    assert np.isfinite(out).all(), "non-finite output"
    kept = out != 0
    n_kept = int(kept.sum())
    assert 0 < n_kept < out.size, f"{n_kept} of {out.size} kept"
    h, w = (out.shape[a] for a in spatial_axes)
    per_map = (~kept).mean(axis=spatial_axes).ravel()
    expected = dropblock_expected_fraction(rate, block_size, h, w)
    assert abs(per_map.mean() - expected) <= Z * per_map.std() / math.sqrt(per_map.size), (
        f"dropped {per_map.mean():.4f}, expected {expected:.4f}")
    exact = out.size / n_kept
    half_ulp = eps / 2 * 2.0 ** np.floor(np.log2(exact))
    worst = np.abs(out[kept] - exact).max()
    assert worst <= half_ulp, f"survivors off numel/kept = {exact:.6f} by up to {worst:.3g}"
