"""Hidden tests of the seeding fixture: every submission's kernel starts from the same seeds.

The notebooks (``tests/grading_fixtures/seeding/``) record their first draws
in ``DRAWS``; the expected draws are computed here, in the grader, from the
seed the grader gives every kernel, so two submissions that pass saw the same
draws.
"""

import os
import random
import subprocess
import sys

import numpy as np

from dlcourse.grading import points
from dlcourse.grading.kernel import Limits

SEED = Limits().seed  # the seed of every submission's kernel


def _draws(submission, key):
    draws = submission.get("DRAWS")
    assert isinstance(draws, dict) and key in draws, f"DRAWS[{key!r}] is missing"
    return draws[key]


@points(1)
def test_python_random(submission):
    """random starts from the grader's seed"""
    rng = random.Random(SEED)
    expected = [rng.random() for _ in range(3)]
    got = _draws(submission, "random")
    assert got == expected, f"random drew {got}, expected {expected}"


@points(1)
def test_numpy_global_generator(submission):
    """NumPy's global generator starts from the grader's seed"""
    expected = np.random.RandomState(SEED).random_sample(3).tolist()
    got = _draws(submission, "numpy")
    assert got == expected, f"np.random drew {got}, expected {expected}"


@points(1)
def test_torch(submission):
    """PyTorch starts from the grader's seed"""
    import torch

    expected = torch.rand(3, generator=torch.Generator().manual_seed(SEED)).tolist()
    got = _draws(submission, "torch")
    assert got == expected, f"torch drew {got}, expected {expected}"


@points(1)
def test_str_hash(submission):
    """str hashes are those of PYTHONHASHSEED = the grader's seed"""
    env = dict(os.environ, PYTHONHASHSEED=str(SEED))
    expected = int(subprocess.run([sys.executable, "-c", "print(hash('dlcourse'))"], env=env,
                                  capture_output=True, text=True, check=True).stdout)
    got = _draws(submission, "hash")
    assert got == expected, f"hash('dlcourse') was {got}, expected {expected}"
