"""Layers of the NumPy toolkit: ``Linear`` and the activations.

Every layer (``Dropout`` included) has the same small interface, the one
PyTorch's ``nn.Module`` made familiar:

* ``forward(x)`` (also ``layer(x)``) computes the output and caches what the
  backward pass needs;
* ``backward(dout)`` takes the gradient of the loss with respect to the output
  and returns the gradient with respect to the input, storing the parameter
  gradients in ``grads``;
* ``params`` / ``grads``: dicts with the same keys (empty for parameter-free
  layers), so an optimiser can update ``params[k]`` with ``grads[k]``;
* ``train()`` / ``eval()`` set ``training`` (only dropout behaves differently).

The dropout layers (every variant) derive from :class:`StochasticLayer`, which
adds ``freeze()`` / ``unfreeze()``: hold the random draw fixed, e.g. for a
gradient check.

References:
    He et al. (2015), "Delving Deep into Rectifiers", ICCV (He initialisation).
    Glorot & Bengio (2010), "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS (Glorot initialisation).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dlcourse._checks import as_float_array, as_rng, check_choice, check_positive_int

INITS = ("he", "glorot")


def as_upstream_gradient(dout: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``dout`` as a floating array, checked to have the forward input's ``shape``.

    The backward passes of the masking layers take ``dL/dout`` of the shape of
    their forward input (their output has that shape).

    Args:
        dout: Upstream gradient ``dL/dout``.
        shape: Shape of the forward input.

    Returns:
        ``dout`` as a floating array (see :func:`dlcourse._checks.as_float_array`).

    Raises:
        ValueError: ``dout`` does not have shape ``shape``.
    """
    dout = as_float_array(dout, "dout")
    if dout.shape != tuple(shape):
        raise ValueError(
            f"dout must have the shape of the forward input {tuple(shape)}; "
            f"received dout of shape {dout.shape}"
        )
    return dout


class Layer:
    """Base class: the interface every layer of :mod:`dlcourse.scratch` shares.

    Attributes:
        params: Parameter arrays by name (empty for parameter-free layers).
        grads: Gradients of the last :meth:`backward`, same keys and shapes as ``params``.
        training: ``True`` after :meth:`train` (the default), ``False`` after :meth:`eval`.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    def train(self) -> Layer:
        """Switch to training mode.

        Returns:
            ``self``, so that ``layer.train().forward(x)`` chains.
        """
        self.training = True
        return self

    def eval(self) -> Layer:
        """Switch to inference mode.

        Returns:
            ``self``.
        """
        self.training = False
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """Compute the output for input ``x`` and cache what :meth:`backward` needs.

        Args:
            x: Input, e.g. ``(N, D)``.

        Returns:
            The layer's output.
        """
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """Back-propagate through the last :meth:`forward` (and fill :attr:`grads`).

        Args:
            dout: ``dL/dout``, the shape of the last output.

        Returns:
            ``dL/dx``, the shape of the last input.

        Raises:
            RuntimeError: Called before :meth:`forward`.
        """
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _cached(self, name: str):
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StochasticLayer(Layer):
    """Base class of the layers that draw random noise in training (the dropout layers).

    What a training-mode forward pass draws is the layer's *draw*: a keep mask
    (:class:`~dlcourse.scratch.dropout.Dropout` and its subclasses,
    :class:`~dlcourse.scratch.alpha.AlphaDropout`,
    :class:`~dlcourse.scratch.dropconnect.DropConnect`), Gaussian noise
    (:class:`~dlcourse.scratch.gaussian.GaussianDropout`), block seeds
    (:class:`~dlcourse.scratch.dropblock.DropBlock2D`) or a pair of masks
    (:class:`~dlcourse.scratch.recurrent.VariationalRNN`).

    Holding the draw fixed:
        A gradient check evaluates the network many times with perturbed
        inputs and must see the *same* function each time, i.e. the same draw.
        After :meth:`freeze`, every training-mode forward reuses one draw:
        the draw of the last training-mode forward if there was one (since the
        layer was created or last unfrozen), otherwise the draw of the next
        one. Inference passes draw nothing and are not affected.
        :meth:`unfreeze` forgets the held draw: every training-mode forward
        draws afresh again. A held draw fits only inputs of the shape it was
        drawn for (DropConnect's one weight mask per batch fits any batch
        size); a frozen layer given an input it does not fit raises
        ``ValueError``.
        :func:`dlcourse.scratch.gradcheck.check_layer` and
        :func:`~dlcourse.scratch.gradcheck.check_model` hold the draws of
        every such layer of the copy they check.

    Attributes:
        rate: The drop rate (every subclass sets it).
        frozen: ``True`` between :meth:`freeze` and :meth:`unfreeze`.

    Example:
        >>> from dlcourse.scratch import Dropout
        >>> layer = Dropout(0.5, rng=0)
        >>> x = np.ones(8)
        >>> first = layer(x)
        >>> bool((layer.freeze()(x) == first).all() and (layer(x) == first).all())
        True
    """

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False
        self._draw = None  # the last training-mode draw, held while frozen

    def freeze(self) -> StochasticLayer:
        """Hold the draw fixed (the last training-mode draw, else the next); returns ``self``."""
        self.frozen = True
        return self

    def unfreeze(self) -> StochasticLayer:
        """Forget the held draw, draw afresh on every training forward; returns ``self``."""
        self.frozen = False
        self._draw = None
        return self

    def _held_draw(self, training: bool):
        """The draw a forward must reuse, or ``None`` to draw afresh."""
        return self._draw if (self.frozen and training) else None

    def _remember_draw(self, draw, training: bool) -> None:
        """Remember the draw of a training-mode forward (what :meth:`freeze` holds)."""
        if training:
            self._draw = draw

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate}, training={self.training})"


class Linear(Layer):
    """Fully connected layer ``y = x W + b``.

    Args:
        in_features: Size ``D`` of each input row.
        out_features: Size ``H`` of each output row.
        init: ``"he"`` draws ``W ~ N(0, 2/D)`` (for ReLU networks);
            ``"glorot"`` draws ``W ~ U(-a, a)`` with ``a = sqrt(6/(D+H))``
            (for sigmoid/tanh networks). Biases start at zero.
        rng: Generator or seed of the initialisation.
        dtype: Floating dtype of the parameters.

    Shapes:
        ``x``: ``(N, D)``; ``W``: ``(D, H)``; ``b``: ``(H,)``; output ``(N, H)``.

    Backward:
        ``dW = x^T dout``, ``db = sum_n dout``, ``dx = dout W^T``.

    References:
        He et al. (2015), ICCV; Glorot & Bengio (2010), AISTATS.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: str = "he",
        rng: np.random.Generator | int | None = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.init = check_choice(init, "init", INITS)
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"dtype must be a floating dtype; received dtype={dtype}")
        gen = as_rng(rng)
        d, h = self.in_features, self.out_features
        if init == "he":
            w = gen.standard_normal((d, h)) * np.sqrt(2.0 / d)
        else:
            limit = np.sqrt(6.0 / (d + h))
            w = gen.uniform(-limit, limit, size=(d, h))
        self.params = {"W": w.astype(dtype), "b": np.zeros(h, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``x W + b`` and cache ``x`` for :meth:`backward`.

        Args:
            x: Input ``(N, D)`` (integer input is converted to float64).

        Returns:
            ``(N, H)`` (float32 for float32 input and parameters; NumPy promotes mixed dtypes).

        Raises:
            ValueError: ``x`` is not of shape ``(N, D)``.
        """
        x = as_float_array(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"x must have shape (N, {self.in_features}); received x of shape {x.shape}"
            )
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Fill ``grads["W"] = x^T dout`` and ``grads["b"] = sum_n dout``; return ``dx``.

        Args:
            dout: ``dL/dout`` of shape ``(N, H)``.

        Returns:
            ``dx = dout W^T`` of shape ``(N, D)``.

        Raises:
            RuntimeError: Called before :meth:`forward`.
            ValueError: ``dout`` is not of shape ``(N, H)``.
        """
        x = self._cached("_x")
        dout = as_float_array(dout, "dout")
        if dout.shape != (x.shape[0], self.out_features):
            raise ValueError(
                f"dout must have shape {(x.shape[0], self.out_features)}; "
                f"received dout of shape {dout.shape}"
            )
        w = self.params["W"]
        self.grads["W"] = (x.T @ dout).astype(w.dtype, copy=False)
        self.grads["b"] = dout.sum(axis=0).astype(w.dtype, copy=False)
        return dout @ w.T

    def __repr__(self) -> str:
        return (f"Linear({self.in_features}, {self.out_features}, init={self.init!r}, "
                f"dtype={self.params['W'].dtype})")


class ReLU(Layer):
    """Rectified linear unit ``y = max(0, x)``, elementwise.

    Shapes:
        Any; output and gradient have the shape and floating dtype of the input.

    Backward:
        ``dx = dout * [x > 0]`` (the subgradient 0 is used at ``x == 0``).

    References:
        Nair & Hinton (2010), "Rectified Linear Units Improve Restricted
        Boltzmann Machines", ICML.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``max(0, x)`` and cache where ``x > 0``.

        Args:
            x: Input of any shape, e.g. ``(N, D)``.

        Returns:
            ``max(0, x)``, with the shape and floating dtype of ``x``.
        """
        x = as_float_array(x)
        self._positive = x > 0
        return np.where(self._positive, x, x.dtype.type(0))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Gradient through the ReLU.

        Args:
            dout: ``dL/dy``, the shape of the last input.

        Returns:
            ``dx = dout * [x > 0]``, with the shape and floating dtype of ``dout``.
        """
        positive = self._cached("_positive")
        dout = as_float_array(dout, "dout")
        return np.where(positive, dout, dout.dtype.type(0))


class Sigmoid(Layer):
    """Logistic sigmoid ``s = 1 / (1 + exp(-x))``, elementwise.

    Computed as ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` for ``x < 0``
    with ``e = exp(-|x|)``, so large ``|x|`` never overflows.

    Shapes:
        Any; output and gradient have the shape and floating dtype of the input.

    Backward:
        ``dx = dout * s * (1 - s)``.

    References:
        Goodfellow, Bengio & Courville (2016), *Deep Learning*, §6.3.2
        (logistic sigmoid and hyperbolic tangent).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``s = 1 / (1 + exp(-x))`` and cache ``s``.

        Args:
            x: Input of any shape, e.g. ``(N, D)``.

        Returns:
            ``s`` in ``[0, 1]``, with the shape and floating dtype of ``x``.
        """
        x = as_float_array(x)
        # exp of a non-positive number only, so large |x| never overflows
        e = np.exp(-np.abs(x))
        s = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        self._s = s
        return s

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Gradient through the sigmoid.

        Args:
            dout: ``dL/ds``, the shape of the last input.

        Returns:
            ``dx = dout * s * (1 - s)``, the shape of ``dout``.
        """
        s = self._cached("_s")
        return as_float_array(dout, "dout") * s * (1 - s)


class Tanh(Layer):
    """Hyperbolic tangent ``t = tanh(x)``, elementwise.

    Shapes:
        Any; output and gradient have the shape and floating dtype of the input.

    Backward:
        ``dx = dout * (1 - t^2)``.

    References:
        LeCun, Bottou, Orr & Müller (1998), "Efficient BackProp", in *Neural
        Networks: Tricks of the Trade*; Goodfellow, Bengio & Courville (2016),
        *Deep Learning*, §6.3.2.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute ``t = tanh(x)`` and cache ``t``.

        Args:
            x: Input of any shape, e.g. ``(N, D)``.

        Returns:
            ``t`` in ``[-1, 1]``, with the shape and floating dtype of ``x``.
        """
        x = as_float_array(x)
        self._t = np.tanh(x)
        return self._t

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Gradient through the tanh.

        Args:
            dout: ``dL/dt``, the shape of the last input.

        Returns:
            ``dx = dout * (1 - t^2)``, the shape of ``dout``.
        """
        t = self._cached("_t")
        return as_float_array(dout, "dout") * (1 - t * t)
