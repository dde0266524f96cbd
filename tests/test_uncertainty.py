"""Monte-Carlo summaries are exactly 0 where the samples agree, unchanged elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from dlcourse.scratch import mc_predict, mlp
from dlcourse.uncertainty import entropy, softmax, summarize

DTYPES = [np.float32, np.float64]


def _probs(shape, dtype, seed=0):
    return softmax(np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t", [1, 2, 3, 7, 10, 50])
def test_identical_samples_give_exactly_zero_std_and_bald(dtype, t):
    one = _probs((1, 40, 10), dtype)
    s = summarize(np.repeat(one, t, axis=0))
    assert s.std.dtype == dtype and s.mutual_information.dtype == dtype
    assert np.all(s.std == 0) and np.all(s.mutual_information == 0)
    assert np.array_equal(s.mean, one[0])  # the mean of identical samples is that sample
    assert np.array_equal(s.entropy, entropy(one[0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_exactly_where_samples_agree_positive_where_they_do_not(dtype):
    probs = _probs((8, 6, 5), dtype, seed=1)
    probs[:, :3] = probs[0, :3]  # inputs 0-2: every sample agrees
    probs[:, 3, 0] = dtype(0.5)  # input 3: class 0 agrees, the rest still vary
    probs[:, 3, 1:] *= dtype(0.5) / probs[:, 3, 1:].sum(-1, keepdims=True)
    s = summarize(probs)
    assert np.all(s.std[:3] == 0) and np.all(s.mutual_information[:3] == 0)
    assert s.std[3, 0] == 0 and np.all(s.std[3, 1:] > 0)
    assert np.all(s.std[3:, 1:] > 0) and np.all(s.mutual_information[3:] > 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_disagreeing_samples_still_give_the_textbook_values(dtype):
    probs = np.random.default_rng(2).dirichlet(np.ones(10) * 0.5, size=(30, 50)).astype(dtype)
    s = summarize(probs)
    mean = probs.astype(np.float64).mean(axis=0)
    bald = entropy(mean) - entropy(probs.astype(np.float64)).mean(axis=0)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}
    assert np.allclose(s.mean, mean, **tol)
    assert np.allclose(s.std, probs.astype(np.float64).std(axis=0), **tol)
    assert np.allclose(s.entropy, entropy(mean), **tol)
    assert np.allclose(s.mutual_information, bald, **tol)
    assert np.all(s.std > 0) and np.all(s.mutual_information > 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nearly_identical_samples_are_not_rounded_to_zero(dtype):
    one = _probs((1, 4, 3), dtype, seed=3)
    probs = np.repeat(one, 5, axis=0)
    eps = np.finfo(dtype).eps
    probs[1, :, 0] += dtype(4 * eps)  # one sample differs by a few ulps
    probs[1, :, 1] -= dtype(4 * eps)
    s = summarize(probs)
    assert np.all(s.std[:, :2] > 0) and np.all(s.std[:, 2] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_mc_predict_at_rate_zero_has_exactly_zero_uncertainty(dtype):
    net = mlp([8, 16, 4], rate=0.0, rng=0, dtype=dtype)
    x = np.random.default_rng(4).standard_normal((5, 8)).astype(dtype)
    s = mc_predict(net, x, 20, rng=0)
    assert np.all(s.std == 0) and np.all(s.mutual_information == 0)
    positive = mc_predict(mlp([8, 16, 4], rate=0.5, rng=0, dtype=dtype), x, 20, rng=0)
    assert np.all(positive.mutual_information > 0)
