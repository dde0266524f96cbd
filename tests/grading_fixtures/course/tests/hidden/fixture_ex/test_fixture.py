"""Hidden tests of the grader's fixture exercise (a stand-in for a real one)."""

import numpy as np

from dlcourse.grading import points, visibility

SECRET_EXPECTED = 6.0  # a "secret" the hostile notebook tries to read


@points(1)
def test_double_values(submission):
    """double(x) doubles every element"""
    x = np.arange(4, dtype=np.float32)
    out = submission.call("double", x)
    assert isinstance(out, np.ndarray), f"double must return a NumPy array, not {type(out).__name__}"
    assert np.allclose(out, 2 * x), "double(x) must return 2 * x"


@points(1)
def test_double_dtype(submission):
    """double keeps float32"""
    out = submission.call("double", np.ones(3, dtype=np.float32))
    assert out.dtype == np.float32, f"float32 in must give float32 out; got {out.dtype}"


@points(1)
@visibility("after_published")
def test_counter(submission):
    """Counter accumulates"""
    counter = submission.new("Counter")
    counter.call("add", 2)
    counter.call("add", 4.0)
    assert counter.get("total") == SECRET_EXPECTED, "Counter.total must be the sum of what was added"


@points(2)
def test_dropout_property(submission):
    """dropout zeroes about rate and scales survivors by 1/keep"""
    rate = 0.25
    x = np.ones(20000)
    out = submission.call("dropout", x, rate, 0)
    dropped = np.mean(out == 0)
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / x.size), (
        f"about {rate:.0%} of the units should be dropped; {dropped:.1%} were")
    assert np.allclose(out[out != 0], 1 / (1 - rate)), "survivors must be scaled by 1/keep"


@points(1)
@visibility("hidden")
def test_result_variable(submission):
    """the notebook stores its answer in RESULT"""
    assert submission.has("RESULT"), "define RESULT"
    assert submission.get("RESULT") == {"rate": 0.25, "ok": (True, None)}, "RESULT is not right"
