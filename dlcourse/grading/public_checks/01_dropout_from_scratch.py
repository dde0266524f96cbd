"""Public self-checks of exercise 1, dropout from scratch (weaker than the hidden tests)."""

from __future__ import annotations

import numpy as np

from dlcourse.grading.public_checks import attempt, is_pair, need


def _forward_basics(ns):
    """dropout_forward drops about rate of the entries and rescales the survivors"""
    forward = need(ns, "dropout_forward")
    x = np.full((40, 50), 2.0)
    before = x.copy()
    out, _ = is_pair(attempt(forward, x, 0.5, training=True, rng=0, what="dropout_forward(x, 0.5)"),
                     "dropout_forward")
    out = np.asarray(out)
    assert out.shape == x.shape, f"out should have the shape of x {x.shape}; it has {out.shape}."
    assert np.array_equal(x, before), "dropout_forward changed its input x: compute a new array instead."
    dropped = float(np.mean(out == 0))
    assert 0.4 < dropped < 0.6, (
        f"with rate=0.5 about half of the entries should be zero; {dropped:.0%} were."
    )
    kept = out[out != 0]
    assert np.allclose(kept, 4.0), (
        "with rate=0.5 the surviving entries of a constant input 2.0 should all be scaled by "
        f"1/keep; they range over [{kept.min():.3g}, {kept.max():.3g}]."
    )


def _forward_eval(ns):
    """training=False returns the input unchanged"""
    forward = need(ns, "dropout_forward")
    x = np.arange(12.0).reshape(3, 4)
    out, _ = is_pair(attempt(forward, x, 0.5, training=False, what="dropout_forward(x, 0.5, training=False)"),
                     "dropout_forward")
    assert np.array_equal(np.asarray(out), x), (
        "with training=False dropout must return its input unchanged (no mask, no scaling)."
    )


def _forward_bad_rate(ns):
    """a rate outside [0, 1] raises ValueError"""
    forward = need(ns, "dropout_forward")
    try:
        forward(np.ones(3), -0.5)
    except ValueError:
        return
    except NotImplementedError:
        raise AssertionError("dropout_forward raised NotImplementedError: replace the stub.") from None
    except Exception as err:
        raise AssertionError(
            f"a rate outside [0, 1] should raise ValueError; got {type(err).__name__}: {err}"
        ) from None
    raise AssertionError("a rate outside [0, 1] (here -0.5) should raise ValueError; nothing was raised.")


def _backward_mask(ns):
    """dropout_backward lets the gradient through the kept units only"""
    forward = need(ns, "dropout_forward")
    backward = need(ns, "dropout_backward")
    x = np.ones((30, 30))
    out, cache = is_pair(attempt(forward, x, 0.5, rng=1, what="dropout_forward"), "dropout_forward")
    dout = np.full(x.shape, 3.0)
    dx = np.asarray(attempt(backward, dout, cache, what="dropout_backward(dout, cache)"))
    assert dx.shape == x.shape, f"dx should have the shape of x {x.shape}; it has {dx.shape}."
    out = np.asarray(out)
    assert np.all(dx[out == 0] == 0), (
        "the gradient must be zero where the forward pass dropped a unit: multiply by the mask."
    )
    assert np.allclose(dx[out != 0], 6.0), (
        "where a unit was kept the gradient is dout times the same 1/keep scale as the forward pass."
    )


def _layer(ns):
    """the Dropout layer switches between train() and eval()"""
    layer_cls = need(ns, "Dropout", kind="class")
    layer = attempt(layer_cls, 0.5, rng=0, what="Dropout(0.5, rng=0)")
    assert getattr(layer, "training", None) is True, "a new Dropout layer should have training == True."
    x = np.ones((30, 30))
    out = np.asarray(attempt(layer.forward, x, what="Dropout.forward"))
    assert np.any(out == 0), "in training mode Dropout(0.5).forward should zero some entries."
    dx = np.asarray(attempt(layer.backward, np.ones_like(x), what="Dropout.backward"))
    assert np.array_equal(dx == 0, out == 0), (
        "Dropout.backward should use the mask of the last forward pass."
    )
    attempt(layer.eval, what="Dropout.eval")
    assert layer.training is False, "after eval() the layer's training attribute should be False."
    out = np.asarray(attempt(layer.forward, x, what="Dropout.forward after eval()"))
    assert np.array_equal(out, x), "after eval() Dropout.forward should return its input unchanged."
    attempt(layer.train, what="Dropout.train")
    assert layer.training is True, "after train() the layer's training attribute should be True."


CHECKS = {
    "q1": [_forward_basics, _forward_eval, _forward_bad_rate],
    "q2": [_backward_mask],
    "q3": [_layer],
}
