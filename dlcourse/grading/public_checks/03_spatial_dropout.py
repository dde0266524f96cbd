"""Public self-checks of exercise 3, spatial dropout (weaker than the hidden tests)."""

from __future__ import annotations

import numpy as np

from dlcourse.grading.public_checks import attempt, is_pair, need


def _whole_maps(ns):
    """dropout2d_forward drops whole feature maps and rescales the others."""
    forward = need(ns, "dropout2d_forward")
    x = np.full((8, 6, 5, 5), 2.0)
    out, _ = is_pair(attempt(forward, x, 0.5, rng=0, what="dropout2d_forward(x, 0.5)"),
                     "dropout2d_forward")
    out = np.asarray(out)
    assert out.shape == x.shape, f"out should have the shape of x {x.shape}; it has {out.shape}."
    maps = out.reshape(8, 6, -1)
    zero = np.all(maps == 0, axis=2)
    scaled = np.all(np.isclose(maps, 4.0), axis=2)
    assert np.all(zero | scaled), (
        "each feature map out[n, c] should be either entirely zero or x[n, c] / keep "
        "everywhere: draw one decision per (sample, channel), not one per pixel."
    )
    assert zero.any() and scaled.any(), "with rate=0.5 some maps should be dropped and some kept."


def _eval_and_shape(ns):
    """training=False is the identity; a non 4-D input raises ValueError."""
    forward = need(ns, "dropout2d_forward")
    x = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    out, _ = is_pair(attempt(forward, x, 0.5, training=False, what="dropout2d_forward(x, 0.5, training=False)"),
                     "dropout2d_forward")
    assert np.array_equal(np.asarray(out), x), "with training=False the output must equal the input."
    try:
        forward(np.ones((4, 5)), 0.5)
    except ValueError:
        return
    except NotImplementedError:
        raise AssertionError("dropout2d_forward raised NotImplementedError: replace the stub.") from None
    except Exception as err:
        raise AssertionError(
            f"a 2-D input should raise ValueError; got {type(err).__name__}: {err}"
        ) from None
    raise AssertionError("a 2-D input (N, D) should raise ValueError: spatial dropout needs (N, C, H, W).")


def _backward(ns):
    """dropout2d_backward sends no gradient to dropped maps."""
    forward = need(ns, "dropout2d_forward")
    backward = need(ns, "dropout2d_backward")
    x = np.ones((6, 5, 3, 3))
    out, cache = is_pair(attempt(forward, x, 0.5, rng=3, what="dropout2d_forward"), "dropout2d_forward")
    dx = np.asarray(attempt(backward, np.ones_like(x), cache, what="dropout2d_backward"))
    assert dx.shape == x.shape, f"dx should have shape {x.shape}; it has {dx.shape}."
    assert np.array_equal(dx == 0, np.asarray(out) == 0), (
        "the gradient should be zero exactly on the dropped feature maps."
    )


def _fraction(ns):
    """dropped_channel_fraction counts the maps that are zero everywhere."""
    fraction = need(ns, "dropped_channel_fraction")
    out = np.ones((2, 4, 3, 3))
    out[0, 1] = 0.0
    out[1, 2, 0, 0] = 0.0  # one zero pixel does not make a dropped map
    value = attempt(fraction, out, what="dropped_channel_fraction")
    assert np.isclose(float(value), 1 / 8), (
        "a map counts as dropped only when all of its H x W entries are zero; "
        f"this input has 1 such map out of 8, you returned {float(value):.3f}."
    )


def _cnn(ns):
    """make_cnn builds a network with the requested kind of dropout."""
    import torch
    from torch import nn

    make_cnn = need(ns, "make_cnn")
    for kind, layer in (("channel", nn.Dropout2d), ("element", nn.Dropout)):
        model = attempt(make_cnn, kind, 0.5, what=f"make_cnn({kind!r}, 0.5)")
        assert isinstance(model, nn.Module), "make_cnn should return a torch.nn.Module."
        kinds = [type(m) for m in model.modules()]
        assert layer in kinds, f"make_cnn({kind!r}, ...) should use {layer.__name__} layers."
        model.eval()
        with torch.no_grad():
            logits = model(torch.zeros(5, 1, 8, 8))
        assert tuple(logits.shape) == (5, 10), (
            f"the network should map (5, 1, 8, 8) to (5, 10) logits; it gave {tuple(logits.shape)}."
        )
    try:
        make_cnn("pixel", 0.5)
    except ValueError:
        return
    except Exception as err:
        raise AssertionError(f"an unknown kind should raise ValueError; got {type(err).__name__}") from None
    raise AssertionError("make_cnn('pixel', 0.5) should raise ValueError (kind must be 'channel' or 'element').")


CHECKS = {
    "q1": [_whole_maps, _eval_and_shape],
    "q2": [_backward],
    "q3": [_fraction],
    "q4": [_cnn],
}
