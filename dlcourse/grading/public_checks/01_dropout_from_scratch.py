"""Public self-checks of exercise 1, dropout from scratch.

Every property the statement asks for is checked here on small inputs; the
hidden tests check the same properties on other, larger inputs.
"""

from __future__ import annotations

import numpy as np

from dlcourse.grading.public_checks import attempt, is_pair, need


def _forward(ns, x, rate, **kwargs):
    forward = need(ns, "dropout_forward")
    args = ", ".join([f"rate={rate}", *(f"{k}={v!r}" for k, v in kwargs.items()
                                        if not isinstance(v, np.random.Generator))])
    out, cache = is_pair(attempt(forward, x, rate, what=f"dropout_forward(x, {args})", **kwargs),
                         "dropout_forward")
    out = np.asarray(out)
    assert out.shape == np.shape(x), f"out: expected shape {np.shape(x)}, received {out.shape}."
    return out, cache


def _forward_basics(ns):
    """dropout_forward drops about rate of the entries and rescales the survivors by 1/keep"""
    x = np.full((40, 50), 2.0)
    for rate in (0.25, 0.5):
        out, _ = _forward(ns, x, rate, training=True, rng=0)
        dropped = float(np.mean(out == 0))
        assert abs(dropped - rate) < 0.06, (
            f"with rate={rate}: expected about {rate:.0%} of the entries zero, received {dropped:.0%}."
        )
        kept = out[out != 0]
        expected = 2.0 / (1.0 - rate)
        assert kept.size and np.allclose(kept, expected), (
            f"with rate={rate} the survivors of a constant input 2.0: expected {expected:.4g} "
            f"(2.0 / keep), received values in [{kept.min() if kept.size else 0:.4g}, "
            f"{kept.max() if kept.size else 0:.4g}]."
        )


def _forward_independent(ns):
    """each entry is dropped independently of the others"""
    out, _ = _forward(ns, np.ones((8, 200)), 0.5, training=True, rng=1)
    rows = [tuple(r == 0) for r in out]
    assert len(set(rows)) == len(rows), (
        "expected every row of the batch to get its own mask; received rows with identical masks."
    )
    columns = (out == 0).mean(axis=0)
    assert 0.0 < float(np.mean((columns > 0) & (columns < 1))), (
        "expected the columns to be dropped in some rows and kept in others; each column was "
        "all dropped or all kept (one decision per column?)."
    )
    counts = {int(np.sum(_forward(ns, np.ones(100), 0.5, training=True, rng=s)[0] == 0))
              for s in range(8)}
    assert len(counts) > 1, (
        f"expected the number of dropped entries to vary between seeds (it is random); received "
        f"{counts.pop()} dropped every time: decide each entry independently."
    )


def _forward_rng(ns):
    """rng is honoured: the same seed gives the same mask, a Generator advances"""
    x = np.ones((20, 20))
    first, _ = _forward(ns, x, 0.5, training=True, rng=7)
    again, _ = _forward(ns, x, 0.5, training=True, rng=7)
    other, _ = _forward(ns, x, 0.5, training=True, rng=8)
    assert np.array_equal(first, again), "rng=7 twice: expected the same mask, received two different ones."
    assert not np.array_equal(first, other), "rng=7 and rng=8: expected different masks, received the same."
    generator = np.random.default_rng(7)
    a, _ = _forward(ns, x, 0.5, training=True, rng=generator)
    b, _ = _forward(ns, x, 0.5, training=True, rng=generator)
    assert np.array_equal(a, first), (
        "rng=np.random.default_rng(7): expected the same mask as rng=7, received another one."
    )
    assert not np.array_equal(a, b), (
        "one Generator used twice: expected two different masks (it advances), received the same."
    )


def _forward_eval(ns):
    """training=False returns the input unchanged"""
    x = np.arange(12.0).reshape(3, 4)
    out, _ = _forward(ns, x, 0.5, training=False)
    assert np.array_equal(out, x), (
        f"training=False: expected out == x, received {np.mean(out != x):.0%} of the entries changed."
    )


def _forward_rate_limits(ns):
    """rate=0 returns x; rate=1 returns zeros (no nan)"""
    x = np.full((5, 6), 3.0)
    out, _ = _forward(ns, x, 0.0, training=True, rng=0)
    assert np.array_equal(out, x), f"rate=0: expected out == x, received {np.mean(out != x):.0%} changed."
    out, _ = _forward(ns, x, 1.0, training=True, rng=0)
    assert np.all(np.isfinite(out)) and np.all(out == 0), (
        f"rate=1: expected all zeros, received {np.sum(out != 0)} nonzero or nan entries."
    )


def _forward_bad_rate(ns):
    """a rate outside [0, 1] raises ValueError that says which rate it received"""
    forward = need(ns, "dropout_forward")
    for rate in (-0.5, 2.0):
        try:
            forward(np.ones(3), rate)
        except ValueError as err:
            assert str(rate) in str(err), (
                f"rate={rate}: expected the message to name the rate received; received {str(err)!r}."
            )
            continue
        except NotImplementedError:
            raise AssertionError("dropout_forward raised NotImplementedError: replace the stub.") from None
        except Exception as err:
            raise AssertionError(
                f"rate={rate}: expected ValueError, received {type(err).__name__}: {err}"
            ) from None
        raise AssertionError(f"rate={rate}: expected ValueError, received no exception.")


def _forward_dtype_and_input(ns):
    """the output has the dtype of x (float32, float64) and x is not modified"""
    for dtype in (np.float32, np.float64):
        x = np.full((10, 10), 1.5, dtype=dtype)
        before = x.copy()
        for training in (True, False):
            out, _ = _forward(ns, x, 0.3, training=training, rng=0)
            assert out.dtype == dtype, (
                f"training={training}: expected {np.dtype(dtype).name} output for "
                f"{np.dtype(dtype).name} input, received {out.dtype}."
            )
        assert np.array_equal(x, before), (
            f"expected x unchanged after dropout_forward; received {np.mean(x != before):.0%} "
            "of its entries changed."
        )


def _backward_mask(ns):
    """dropout_backward lets the gradient through the kept units only, scaled by 1/keep"""
    backward = need(ns, "dropout_backward")
    probe, _ = _forward(ns, np.ones((30, 30)), 0.5, rng=1)
    x = np.ones((30, 30))
    x[::2] = 0.0  # zeros in x: the mask must come from the cache, not from out
    _, cache = _forward(ns, x, 0.5, rng=1)
    dout = np.full(x.shape, 3.0)
    dx = np.asarray(attempt(backward, dout, cache, what="dropout_backward(dout, cache)"))
    expected = 3.0 * (probe != 0) / 0.5
    assert dx.shape == x.shape, f"dx: expected shape {x.shape}, received {dx.shape}."
    wrong = dx != expected
    assert not wrong.any(), (
        f"expected dx = dout * mask / keep (6.0 where kept, 0 where dropped, also where x is 0); "
        f"{wrong.mean():.0%} of the entries differ, e.g. expected {expected[wrong][0]:g}, "
        f"received {dx[wrong][0]:g}."
    )


def _backward_dtype_eval(ns):
    """dx keeps the dtype of dout, dout is not modified, and eval mode passes dout through"""
    backward = need(ns, "dropout_backward")
    x = np.ones((6, 6), dtype=np.float32)
    _, cache = _forward(ns, x, 0.5, rng=2)
    dout = np.ones_like(x)
    dx = np.asarray(attempt(backward, dout, cache, what="dropout_backward"))
    assert dx.dtype == np.float32, f"expected a float32 dx for a float32 dout, received {dx.dtype}."
    assert np.all(dout == 1.0), "expected dout unchanged; dropout_backward modified it."
    _, cache = _forward(ns, x, 0.5, training=False)
    dx = np.asarray(attempt(backward, dout, cache, what="dropout_backward after training=False"))
    assert np.array_equal(dx, dout), (
        f"after training=False: expected dx == dout, received {np.mean(dx != dout):.0%} different."
    )


def _layer(ns):
    """the Dropout layer: modes, the last mask in backward, fresh but seeded masks"""
    layer_cls = need(ns, "Dropout", kind="class")
    layer = attempt(layer_cls, 0.5, rng=0, what="Dropout(0.5, rng=0)")
    assert getattr(layer, "training", None) is True, (
        f"a new layer: expected training == True, received {getattr(layer, 'training', None)!r}."
    )
    x = np.ones((30, 30))
    out = np.asarray(attempt(layer.forward, x, what="Dropout.forward"))
    assert np.any(out == 0), "training mode: expected some zeros, received none."
    dx = np.asarray(attempt(layer.backward, np.ones_like(x), what="Dropout.backward"))
    assert np.array_equal(dx == 0, out == 0), (
        "expected Dropout.backward to be zero exactly where the last forward pass dropped."
    )
    second = np.asarray(attempt(layer.forward, x, what="Dropout.forward"))
    assert not np.array_equal(second == 0, out == 0), (
        "two forward passes: expected two different masks, received the same one."
    )
    twin = attempt(layer_cls, 0.5, rng=0, what="Dropout(0.5, rng=0)")
    assert np.array_equal(np.asarray(twin.forward(x)) == 0, out == 0), (
        "two layers with rng=0: expected the same first mask, received different ones."
    )
    attempt(layer.eval, what="Dropout.eval")
    assert layer.training is False, f"after eval(): expected training == False, received {layer.training!r}."
    out = np.asarray(attempt(layer.forward, x, what="Dropout.forward after eval()"))
    assert np.array_equal(out, x), "after eval(): expected forward(x) == x, received changed entries."
    attempt(layer.train, what="Dropout.train")
    assert layer.training is True, f"after train(): expected training == True, received {layer.training!r}."


def _numerical_gradient(ns):
    """numerical_gradient: centred differences of every entry, x unchanged, float64"""
    grad_fn = need(ns, "numerical_gradient")
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    before = x.copy()
    grad = np.asarray(attempt(grad_fn, lambda z: float(np.sum(z**2)), x, h=0.1,
                              what="numerical_gradient(f, x, h=0.1)"))
    assert grad.shape == x.shape, f"expected shape {x.shape}, received {grad.shape}."
    assert grad.dtype == np.float64, f"expected float64, received {grad.dtype}."
    assert np.allclose(grad, 2 * before, atol=1e-9), (
        f"for f(x) = sum(x**2) with h=0.1 expected exactly 2x = {(2 * before).ravel().tolist()}; "
        f"received {np.round(grad, 4).ravel().tolist()} (a one-sided difference errs by h)."
    )
    assert np.array_equal(x, before), "expected x unchanged after numerical_gradient."


def _concepts(ns):
    """the three answers are set, with the right types (the hidden tests check the values)"""
    for name in ("q5_naive_test_output", "q5_zero_gradient_fraction"):
        value = need(ns, name, kind="variable")
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"{name}: expected a number, received {value!r}."
        )
    choice = need(ns, "q5_inverted_inference", kind="variable")
    assert isinstance(choice, str) and choice.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_inverted_inference: expected one of 'a', 'b', 'c', 'd', received {choice!r}."
    )


CHECKS = {
    "q1": [_forward_basics, _forward_independent, _forward_rng, _forward_eval,
           _forward_rate_limits, _forward_bad_rate, _forward_dtype_and_input],
    "q2": [_backward_mask, _backward_dtype_eval],
    "q3": [_layer],
    "q4": [_numerical_gradient],
    "q5": [_concepts],
}
