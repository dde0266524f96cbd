"""Predictive uncertainty from Monte-Carlo samples of class probabilities.

Framework-free: every ``mc_predict`` (NumPy, PyTorch, Keras) collects ``T``
stochastic forward passes as an array ``probs`` of shape ``(T, N, C)`` and
calls :func:`summarize` here. With :math:`\\bar p = \\frac1T\\sum_t p_t`:

* predictive mean :math:`\\bar p` ``(N, C)``;
* predictive standard deviation over the samples ``(N, C)``;
* predictive entropy :math:`H[\\bar p] = -\\sum_c \\bar p_c \\log \\bar p_c` ``(N,)``
  (total uncertainty, in nats);
* mutual information (BALD)
  :math:`I = H[\\bar p] - \\frac1T \\sum_t H[p_t]` ``(N,)``: the part of
  the uncertainty due to the weights (epistemic); 0 when every sample agrees.

Where the ``T`` samples agree, the standard deviation and the mutual
information are exactly 0 (not a round-off residue of 1e-7 in float32):
the mean is computed as the first sample plus the mean deviation from it,
which is that sample itself when every deviation is 0, and the mutual
information is computed in its equivalent form
:math:`I = \\frac1T \\sum_t \\mathrm{KL}(p_t \\,\\|\\, \\bar p)`, whose
terms :math:`p_{tc} (\\log p_{tc} - \\log \\bar p_c)` are then exactly 0.

References:
    Gal & Ghahramani (2016), "Dropout as a Bayesian Approximation", ICML,
    arXiv:1506.02142. Houlsby et al. (2011), "Bayesian Active Learning for
    Classification and Preference Learning" (BALD), arXiv:1112.5745.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlcourse._checks import as_float_array


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``: ``exp(z - max z) / sum exp(z - max z)``.

    Args:
        logits: Scores of any shape, e.g. ``(N, C)`` or ``(T, N, C)``.
        axis: The class axis.

    Returns:
        Probabilities, the shape and floating dtype of ``logits``, summing to 1 along ``axis``.
    """
    logits = as_float_array(logits, "logits")
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def entropy(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy ``H[p] = -sum_c p_c log p_c`` in nats along ``axis``, with ``0 log 0 = 0``.

    Args:
        probs: Probabilities, e.g. ``(N, C)`` or ``(T, N, C)``.
        axis: The class axis.

    Returns:
        ``probs`` with ``axis`` removed, e.g. ``(N,)``.

    References:
        Shannon (1948), "A Mathematical Theory of Communication", Bell System
        Technical Journal 27.
    """
    probs = as_float_array(probs, "probs")
    return -(probs * _log0(probs)).sum(axis=axis)


def _log0(probs: np.ndarray) -> np.ndarray:
    """``log p`` where ``p > 0``, 0 elsewhere (so that ``p log p`` is 0 at ``p = 0``)."""
    return np.log(np.where(probs > 0, probs, 1.0))


@dataclass(frozen=True)
class MCPrediction:
    """Summary of Monte-Carlo predictions (see the module docstring).

    Attributes:
        mean: Predictive mean ``(N, C)``.
        std: Standard deviation over samples ``(N, C)``.
        entropy: Predictive entropy ``(N,)`` (nats).
        mutual_information: BALD score ``(N,)`` (nats), ``0 <= MI <= entropy``.
        samples: The sampled probabilities ``(T, N, C)``.

    References:
        Gal & Ghahramani (2016), arXiv:1506.02142 (the predictive mean and
        entropy); Houlsby et al. (2011), arXiv:1112.5745 (mutual information, BALD).
    """

    mean: np.ndarray
    std: np.ndarray
    entropy: np.ndarray
    mutual_information: np.ndarray
    samples: np.ndarray

    def predict(self) -> np.ndarray:
        """Labels ``(N,)`` of the predictive mean."""
        return self.mean.argmax(axis=-1)


def summarize(probs: np.ndarray) -> MCPrediction:
    """Summarise sampled probabilities ``(T, N, C)`` (each row summing to 1).

    Args:
        probs: ``T`` Monte-Carlo samples of the class probabilities of ``N``
            inputs, ``(T, N, C)``.

    Returns:
        :class:`MCPrediction` with ``mean = p_bar``, ``std``, ``entropy =
        H[p_bar]`` and ``mutual_information = H[p_bar] - mean_t H[p_t]``,
        computed as ``mean_t KL(p_t || p_bar)`` (clipped at 0 against
        round-off). Where all samples agree, ``std`` and
        ``mutual_information`` are exactly 0 (see the module docstring).

    Raises:
        ValueError: ``probs`` is not 3-D, has negative entries or rows not summing to 1.

    References:
        Gal & Ghahramani (2016), "Dropout as a Bayesian Approximation", ICML,
        arXiv:1506.02142. Houlsby et al. (2011), "Bayesian Active Learning for
        Classification and Preference Learning", arXiv:1112.5745.
    """
    probs = as_float_array(probs, "probs")
    if probs.ndim != 3:
        raise ValueError(f"probs must have shape (T, N, C); received probs of shape {probs.shape}")
    tol = 1e-3 if probs.dtype == np.float32 else 1e-6
    if probs.size and (probs.min() < -tol or not np.allclose(probs.sum(-1), 1.0, atol=tol)):
        raise ValueError("probs must hold probabilities (non-negative, rows summing to 1); "
                         "pass output='logits' if the model returns logits")
    # first sample + mean deviation: exactly that sample where every sample agrees
    # (probs.mean(axis=0) sums T copies and divides, off by a rounding error)
    mean = probs[0] + (probs - probs[:1]).mean(axis=0) if len(probs) else probs.mean(axis=0)
    deviation = probs - mean
    std = np.sqrt((deviation * deviation).mean(axis=0))
    # H[p_bar] - mean_t H[p_t] written as mean_t KL(p_t || p_bar): every term is
    # exactly 0 where p_t == p_bar, and no two large entropies cancel
    kl = (probs * (_log0(probs) - _log0(mean))).sum(axis=-1)
    mi = np.maximum(kl.mean(axis=0), 0.0)  # clip round-off below 0
    return MCPrediction(mean=mean, std=std, entropy=entropy(mean),
                        mutual_information=mi.astype(mean.dtype, copy=False), samples=probs)
