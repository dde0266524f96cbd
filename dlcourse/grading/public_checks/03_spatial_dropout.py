"""Public self-checks of exercise 3, spatial dropout.

Every property the statement asks for is checked here on small inputs; the
hidden tests check the same properties on other, larger inputs.
"""

from __future__ import annotations

import numpy as np

from dlcourse.grading.public_checks import attempt, is_pair, need


def _forward(ns, x, rate, **kwargs):
    forward = need(ns, "dropout2d_forward")
    out, cache = is_pair(attempt(forward, x, rate, what=f"dropout2d_forward(x, {rate})", **kwargs),
                         "dropout2d_forward")
    out = np.asarray(out)
    assert out.shape == np.shape(x), f"out: expected shape {np.shape(x)}, received {out.shape}."
    return out, cache


def _maps(out):
    return out.reshape(out.shape[0], out.shape[1], -1)


def _whole_maps(ns):
    """dropout2d_forward drops whole feature maps, about rate of them, and rescales the others"""
    x = np.full((20, 10, 5, 5), 2.0)
    out, _ = _forward(ns, x, 0.5, rng=0)
    maps = _maps(out)
    zero = np.all(maps == 0, axis=2)
    scaled = np.all(np.isclose(maps, 4.0), axis=2)
    assert np.all(zero | scaled), (
        "expected each map entirely zero or entirely x / keep = 4.0; received "
        f"{np.mean(~(zero | scaled)):.0%} of the maps mixed: one decision per (sample, channel)."
    )
    assert 0.3 < zero.mean() < 0.7, f"rate=0.5: expected about 50% of the maps dropped, received {zero.mean():.0%}."
    out, _ = _forward(ns, x, 0.25, rng=1)
    dropped = np.all(_maps(out) == 0, axis=2).mean()
    assert 0.1 < dropped < 0.4, f"rate=0.25: expected about 25% of the maps dropped, received {dropped:.0%}."
    assert len({tuple(row) for row in zero}) > 1 and len({tuple(col) for col in zero.T}) > 1, (
        "expected independent decisions per sample and per channel; received one mask shared by "
        "every sample or every channel."
    )


def _rng(ns):
    """rng is honoured: the same seed gives the same mask, a Generator advances"""
    x = np.ones((10, 8, 2, 2))
    first, _ = _forward(ns, x, 0.5, rng=3)
    again, _ = _forward(ns, x, 0.5, rng=3)
    other, _ = _forward(ns, x, 0.5, rng=4)
    assert np.array_equal(first, again), "rng=3 twice: expected the same mask, received different ones."
    assert not np.array_equal(first, other), "rng=3 and rng=4: expected different masks, received the same."
    generator = np.random.default_rng(3)
    a, _ = _forward(ns, x, 0.5, rng=generator)
    b, _ = _forward(ns, x, 0.5, rng=generator)
    assert np.array_equal(a, first) and not np.array_equal(a, b), (
        "expected rng=np.random.default_rng(3) to give the mask of rng=3, then a new one; "
        "received otherwise."
    )


def _identity_cases(ns):
    """training=False and rate=0 return x; rate=1 returns zeros"""
    x = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2) + 1.0
    for kwargs in ({"training": False}, {}):
        rate = 0.5 if kwargs else 0.0
        out, _ = _forward(ns, x, rate, **kwargs)
        assert np.array_equal(out, x), f"rate={rate}, {kwargs or 'training=True'}: expected out == x."
    out, _ = _forward(ns, x, 1.0, rng=0)
    assert np.all(np.isfinite(out)) and np.all(out == 0), "rate=1: expected all zeros (no nan)."


def _bad_input(ns):
    """a non 4-D input or a rate outside [0, 1] raises ValueError naming what was received"""
    forward = need(ns, "dropout2d_forward")
    for shape, rate, named in (((4, 5), 0.5, "(4, 5)"), ((2, 3, 2, 2), 1.5, "1.5")):
        try:
            forward(np.ones(shape), rate)
        except ValueError as err:
            assert named in str(err), (
                f"shape {shape}, rate {rate}: expected the message to name {named}; received {str(err)!r}."
            )
            continue
        except NotImplementedError:
            raise AssertionError("dropout2d_forward raised NotImplementedError: replace the stub.") from None
        except Exception as err:
            raise AssertionError(
                f"shape {shape}, rate {rate}: expected ValueError, received {type(err).__name__}: {err}"
            ) from None
        raise AssertionError(f"shape {shape}, rate {rate}: expected ValueError, received no exception.")


def _dtype_and_input(ns):
    """the output has the dtype of x (float32, float64) and x is not modified"""
    for dtype in (np.float32, np.float64):
        x = np.full((4, 3, 2, 2), 1.5, dtype=dtype)
        before = x.copy()
        for training in (True, False):
            out, _ = _forward(ns, x, 0.4, training=training, rng=0)
            assert out.dtype == dtype, (
                f"training={training}: expected {np.dtype(dtype).name} output, received {out.dtype}."
            )
        assert np.array_equal(x, before), "expected x unchanged after dropout2d_forward."


def _backward(ns):
    """dropout2d_backward: zero on dropped maps, dout / keep elsewhere, dtype kept, dout unchanged"""
    backward = need(ns, "dropout2d_backward")
    probe, _ = _forward(ns, np.ones((6, 5, 3, 3)), 0.5, rng=3)
    x = np.ones((6, 5, 3, 3), dtype=np.float32)
    x[:, :, 0] = 0.0  # zeros in x: the mask must come from the cache
    _, cache = _forward(ns, x, 0.5, rng=3)
    dout = np.ones_like(x)
    dx = np.asarray(attempt(backward, dout, cache, what="dropout2d_backward"))
    assert dx.shape == x.shape, f"dx: expected shape {x.shape}, received {dx.shape}."
    assert dx.dtype == np.float32, f"a float32 dout: expected a float32 dx, received {dx.dtype}."
    expected = 2.0 * (probe != 0)
    assert np.array_equal(dx, expected), (
        f"expected dx = dout * mask / keep (2.0 on kept maps, also where x is 0; 0 on dropped "
        f"ones); {np.mean(dx != expected):.0%} of the entries differ."
    )
    assert np.all(dout == 1.0), "expected dout unchanged; dropout2d_backward modified it."
    _, cache = _forward(ns, x, 0.5, training=False)
    dx = np.asarray(attempt(backward, dout, cache, what="dropout2d_backward after training=False"))
    assert np.array_equal(dx, dout), "after training=False: expected dx == dout."


def _fraction(ns):
    """dropped_channel_fraction counts the maps that are zero everywhere"""
    fraction = need(ns, "dropped_channel_fraction")
    out = np.ones((2, 4, 3, 3))
    out[0, 1] = 0.0
    out[1, 2, 0, 0] = 0.0  # one zero pixel does not make a dropped map
    value = attempt(fraction, out, what="dropped_channel_fraction")
    assert np.isclose(float(value), 1 / 8), (
        f"1 map out of 8 is zero everywhere: expected 0.125; received {float(value):.3f}."
    )


def _cnn(ns):
    """make_cnn builds two conv layers with the requested kind of dropout, (N,1,8,8) -> (N,10)"""
    import torch
    from torch import nn

    make_cnn = need(ns, "make_cnn")
    for kind, layer in (("channel", nn.Dropout2d), ("element", nn.Dropout)):
        model = attempt(make_cnn, kind, 0.5, what=f"make_cnn({kind!r}, 0.5)")
        assert isinstance(model, nn.Module), f"expected a torch.nn.Module; received {type(model).__name__}."
        kinds = [type(m) for m in model.modules()]
        drops = [k for k in kinds if issubclass(k, nn.modules.dropout._DropoutNd)]
        assert drops == [layer, layer], (
            f"make_cnn({kind!r}, ...): expected two {layer.__name__} layers; received "
            f"{[k.__name__ for k in drops]}."
        )
        assert kinds.count(nn.Conv2d) == 2, f"expected two Conv2d layers; received {kinds.count(nn.Conv2d)}."
        model.eval()
        with torch.no_grad():
            logits = model(torch.zeros(5, 1, 8, 8))
        assert tuple(logits.shape) == (5, 10), (
            f"(5, 1, 8, 8) inputs: expected (5, 10) logits; received {tuple(logits.shape)}."
        )
    try:
        make_cnn("pixel", 0.5)
    except ValueError:
        return
    except Exception as err:
        raise AssertionError(f"kind='pixel': expected ValueError; received {type(err).__name__}") from None
    raise AssertionError("kind='pixel': expected ValueError, received no exception.")


def _train(ns):
    """train_cnn returns train and validation accuracies (one short run)"""
    train_cnn = need(ns, "train_cnn")
    result = attempt(train_cnn, "channel", 0.2, seed=0, epochs=1, what="train_cnn('channel', 0.2, epochs=1)")
    assert isinstance(result, dict), f"expected a dict; received {type(result).__name__}."
    missing = {"train_accuracy", "val_accuracy"} - set(result)
    assert not missing, f"expected the keys train_accuracy and val_accuracy; missing {sorted(missing)}."
    values = [float(result[k]) for k in ("train_accuracy", "val_accuracy")]
    assert all(0.0 <= v <= 1.0 for v in values), f"expected fractions in [0, 1]; received {values}."
    assert values[1] > 0.3, f"expected a validation accuracy above 0.3 after one epoch; received {values[1]:.3f}."


def _concepts(ns):
    """the three answers are set, with the right types (the hidden tests check the values)"""
    for name in ("q5_decisions", "q5_whole_map_probability"):
        value = need(ns, name, kind="variable")
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"{name}: expected a number, received {value!r}."
        )
    choice = need(ns, "q5_why_spatial", kind="variable")
    assert isinstance(choice, str) and choice.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_why_spatial: expected one of 'a', 'b', 'c', 'd', received {choice!r}."
    )


CHECKS = {
    "q1": [_whole_maps, _rng, _identity_cases, _bad_input, _dtype_and_input],
    "q2": [_backward],
    "q3": [_fraction],
    "q4": [_cnn, _train],
    "q5": [_concepts],
}
