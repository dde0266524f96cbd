"""Learning with the NumPy toolkit on scikit-learn's digits (no download).

Each test trains small networks for a few seconds. BLAS is limited to one
thread: for matrices this small, threads only add contention.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from dlcourse.data import load_digits
from dlcourse.scratch import SGD, Adam, fit, mlp

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("seed", [0, 1])
def test_dropout_mlp_reaches_95_percent_on_digits(seed):
    split = load_digits(seed=seed)
    model = mlp([64, 128, 10], rate=0.2, input_rate=0.1, rng=seed)
    history = fit(model, split.x_train, split.y_train, optimizer=SGD(0.05, momentum=0.9),
                  epochs=20, batch_size=32, validation_data=(split.x_val, split.y_val), rng=seed)
    test = model.evaluate(split.x_test, split.y_test)
    assert test["accuracy"] >= 0.95, test
    assert history.history["val_accuracy"][-1] >= 0.93
    assert model.training is True  # fit restores the mode


def test_dropout_narrows_the_train_test_gap_on_small_data():
    """100 training images, a 256-unit hidden layer: without dropout the network
    memorises the training set; with dropout (0.2 on inputs, 0.5 on hidden units)
    it still fits it, generalises better, and the accuracy gap narrows."""
    seeds = range(4)
    gaps, tests = {0.0: [], 0.5: []}, {0.0: [], 0.5: []}
    for seed in seeds:
        split = load_digits(n_train=100, val_fraction=0.0, scale="standard", seed=seed)
        for rate in (0.0, 0.5):
            model = mlp([64, 256, 10], rate=rate, input_rate=0.4 * rate, rng=seed)
            fit(model, split.x_train, split.y_train, optimizer=Adam(1e-3), epochs=60,
                batch_size=20, rng=seed)
            train = model.evaluate(split.x_train, split.y_train)["accuracy"]
            test = model.evaluate(split.x_test, split.y_test)["accuracy"]
            gaps[rate].append(train - test)
            tests[rate].append(test)
    gap_plain, gap_dropout = np.array(gaps[0.0]), np.array(gaps[0.5])
    assert gap_plain.mean() > 0.05  # the plain network does overfit
    assert gap_dropout.mean() < gap_plain.mean() - 0.005, (gap_plain, gap_dropout)
    assert np.sum(gap_dropout <= gap_plain) >= 3, (gap_plain, gap_dropout)
    # narrower because the test accuracy rose, not because training accuracy fell
    assert np.mean(tests[0.5]) > np.mean(tests[0.0]), tests
