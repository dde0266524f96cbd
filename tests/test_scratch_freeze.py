"""Holding the random draw fixed: one behaviour for every dropout layer of dlcourse.scratch.

freeze() holds the draw of the last training-mode forward (since the layer was
created or last unfrozen), else the next one's; unfreeze() forgets it. See
dlcourse.scratch.layers.StochasticLayer.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlcourse.scratch as scratch
from dlcourse.scratch import (
    AlphaDropout,
    DropBlock2D,
    DropConnect,
    Dropout,
    DropPath,
    GaussianDropout,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    VariationalRNN,
    check_layer,
)
from dlcourse.scratch.layers import StochasticLayer

# name -> (a fresh layer, an input shape, another batch size's shape)
LAYERS = {
    "dropout": (lambda: Dropout(0.5, rng=0), (6, 20), (3, 20)),
    "dropout_readable": (lambda: Dropout(0.5, rng=0, draw="readable"), (6, 20), (3, 20)),
    "dropout_weight_scaling": (lambda: Dropout(0.5, rng=0, mode="weight_scaling"), (6, 20), (3, 20)),
    "spatial1d": (lambda: SpatialDropout1D(0.5, rng=0), (6, 8, 5), (3, 8, 5)),
    "spatial2d": (lambda: SpatialDropout2D(0.5, data_format="channels_last", rng=0),
                  (6, 4, 4, 8), (3, 4, 4, 8)),
    "spatial3d": (lambda: SpatialDropout3D(0.5, rng=0), (6, 8, 2, 3, 2), (3, 8, 2, 3, 2)),
    "droppath": (lambda: DropPath(0.5, rng=0), (30, 4), (7, 4)),
    "gaussian": (lambda: GaussianDropout(0.3, rng=0), (6, 20), (3, 20)),
    "alpha": (lambda: AlphaDropout(0.3, rng=0), (6, 20), (3, 20)),
    "dropconnect": (lambda: DropConnect(20, 7, 0.5, activation="tanh", rng=0), (6, 20), (3, 20)),
    "dropconnect_example": (lambda: DropConnect(20, 7, 0.5, sampling="example", rng=0),
                            (6, 20), (3, 20)),
    "dropblock": (lambda: DropBlock2D(0.3, 2, rng=0), (4, 3, 8, 8), (2, 3, 8, 8)),
    "rnn": (lambda: VariationalRNN(10, 6, rate=0.5, recurrent_rate=0.5, rng=0), (6, 5, 10), (3, 5, 10)),
}


def _x(shape, seed=0):
    # positive inputs: a dropped unit (0) is never confused with a kept one
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_every_dropout_layer_of_the_package_is_a_stochastic_layer_tested_here():
    public = {obj for obj in vars(scratch).values()
              if isinstance(obj, type) and issubclass(obj, StochasticLayer) and obj is not StochasticLayer}
    package = {c for c in _all_subclasses(StochasticLayer) if c.__module__.startswith("dlcourse.scratch")}
    tested = {type(make()) for make, _, _ in LAYERS.values()}
    assert public <= package
    assert package - {scratch.spatial.SpatialDropout} == tested
    for name in ("freeze", "unfreeze", "_held_draw", "_remember_draw"):  # defined once
        assert all(name not in vars(c) for c in package), name


@pytest.mark.parametrize("name", list(LAYERS))
def test_freeze_before_any_forward_holds_the_next_draw(name):
    make, shape, _ = LAYERS[name]
    layer = make()
    assert layer.freeze() is layer and layer.frozen
    x = _x(shape)
    first = layer(x)
    assert np.array_equal(layer(x), first)
    g = np.ones_like(first)
    dx = layer.backward(g)
    layer(x)
    assert np.array_equal(layer.backward(g), dx)


@pytest.mark.parametrize("name", list(LAYERS))
def test_freeze_after_a_forward_holds_that_forward_s_draw(name):
    make, shape, _ = LAYERS[name]
    layer, x = make(), _x(shape)
    first = layer(x)
    assert not layer.frozen
    assert not np.array_equal(layer(x), first)  # unfrozen: a new draw each time
    held = layer(x)
    layer.freeze()
    assert np.array_equal(layer(x), held) and np.array_equal(layer(x), held)


@pytest.mark.parametrize("name", list(LAYERS))
def test_inference_passes_leave_the_held_draw_alone(name):
    make, shape, _ = LAYERS[name]
    layer, x = make().freeze(), _x(shape)
    first = layer(x)
    layer.eval()
    layer(x)
    layer.train()
    assert np.array_equal(layer(x), first)


@pytest.mark.parametrize("name", list(LAYERS))
def test_unfreeze_forgets_the_held_draw(name):
    make, shape, _ = LAYERS[name]
    layer, x = make().freeze(), _x(shape)
    first = layer(x)
    assert layer.unfreeze() is layer and not layer.frozen
    a, b = layer(x), layer(x)
    assert not np.array_equal(a, first) and not np.array_equal(a, b)
    # freeze right after unfreeze: nothing is held, the next draw is
    layer.unfreeze().freeze()
    nxt = layer(x)
    assert not np.array_equal(nxt, b) and np.array_equal(layer(x), nxt)


@pytest.mark.parametrize("name", [n for n in LAYERS if n != "dropconnect"])
def test_a_held_draw_does_not_fit_another_batch_size(name):
    make, shape, other = LAYERS[name]
    layer = make().freeze()
    layer(_x(shape))
    with pytest.raises(ValueError, match="mask|seeds|noise"):
        layer(_x(other))
    layer.unfreeze()
    assert layer(_x(other)).shape[0] == other[0]


def test_a_held_batch_mask_of_dropconnect_fits_every_batch_size():
    layer = DropConnect(20, 7, 0.5, rng=0).freeze()  # one (D, H) mask for the whole batch
    x = _x((6, 20))
    out = layer(x)
    assert np.array_equal(layer(x[:3]), out[:3])


@pytest.mark.parametrize("name", list(LAYERS))
def test_gradient_check_after_training_on_another_batch_size(name):
    make, shape, other = LAYERS[name]
    layer = make()
    layer(_x(shape))  # the last draw has another batch size than the check's input
    errors = check_layer(layer, _x(other, seed=1), rng=2)
    assert max(errors.values()) < 1e-6, errors
    assert not layer.frozen


class _Recording(Dropout):
    masks: list = []  # a class attribute: shared with the deep copy check_layer makes

    def forward(self, x):
        out = super().forward(x)
        _Recording.masks.append(self.cache["mask"])
        return out


@pytest.mark.parametrize("frozen", [False, True])
def test_gradient_check_holds_one_mask_the_caller_s_if_the_layer_is_frozen(frozen):
    layer, x = _Recording(0.5, rng=0), _x((4, 30))
    last = layer(x)
    if frozen:
        layer.freeze()
    _Recording.masks.clear()
    assert max(check_layer(layer, x, rng=1).values()) < 1e-6
    used = _Recording.masks
    assert len(used) > 2 * x.size and all(np.array_equal(m, used[0]) for m in used)
    assert np.array_equal(used[0], last != 0) == frozen
    assert layer.frozen == frozen
