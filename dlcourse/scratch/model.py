"""``Sequential``: a stack of layers with one ``train()``/``eval()`` switch, and ``mlp``.

References:
    Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks
    from Overfitting", JMLR 15 (the Linear-ReLU-Dropout networks of its MNIST runs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from dlcourse._checks import as_rng, check_choice, check_positive_int, check_rate
from dlcourse.scratch.dropout import Dropout
from dlcourse.scratch.layers import Layer, Linear, ReLU, Sigmoid, Tanh
from dlcourse.scratch.losses import Loss, SoftmaxCrossEntropy, softmax

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class Sequential:
    """Layers applied one after the other; ``train()``/``eval()`` reach every layer.

    Args:
        *layers: Objects with ``forward``, ``backward``, ``train``, ``eval``,
            ``params`` and ``grads`` (every layer of :mod:`dlcourse.scratch`).

    Attributes:
        layers: The layers, in order.
        training: The mode last set by :meth:`train` / :meth:`eval` (initially ``True``).

    Example:
        >>> model = Sequential(Linear(4, 8, rng=0), ReLU(), Dropout(0.5, rng=1), Linear(8, 3, rng=2))
        >>> model.eval().predict(np.ones((2, 4), dtype=np.float32)).shape
        (2,)
    """

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            missing = [a for a in ("forward", "backward", "train", "eval", "params", "grads")
                       if not hasattr(layer, a)]
            if missing:
                raise TypeError(
                    f"layers must have forward/backward/train/eval/params/grads; received "
                    f"layers[{i}]={layer!r} without {', '.join(missing)}"
                )
        self.layers: list[Layer] = list(layers)
        self.training = True

    def train(self) -> Sequential:
        """Put every layer in training mode (dropout drops).

        Returns:
            ``self``.
        """
        return self._set_mode(True)

    def eval(self) -> Sequential:
        """Put every layer in inference mode (dropout is the identity).

        Returns:
            ``self``.
        """
        return self._set_mode(False)

    def _set_mode(self, training: bool) -> Sequential:
        self.training = training
        for layer in self.layers:
            if training:
                layer.train()
            else:
                layer.eval()
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run ``x`` through every layer in order, in the current mode.

        Each layer caches what :meth:`backward` needs (dropout its mask).

        Args:
            x: Inputs ``(N, D)``.

        Returns:
            The last layer's output, e.g. logits ``(N, C)``.
        """
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Back-propagate through the layers in reverse, filling every layer's ``grads``.

        Args:
            dout: ``dL/dout`` for the last :meth:`forward`'s output, e.g. ``(N, C)``.

        Returns:
            ``dL/dx``, the shape of the last input ``(N, D)``.
        """
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> Iterator[tuple[Layer, str]]:
        """Every parameter, as the layer holding it and its key.

        Returns:
            An iterator of ``(layer, name)`` pairs, one per ``layer.params[name]``,
            in layer order (what an optimiser's ``step`` walks).
        """
        for layer in self.layers:
            for name in layer.params:
                yield layer, name

    def predict_proba(
        self, x: np.ndarray, *, training: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        """Class probabilities ``(N, C)``: softmax of the logits.

        Args:
            x: Inputs ``(N, D)``.
            training: Run in inference mode (``False``, the default) or with
                dropout on (``True``, one Monte-Carlo sample). The model's
                mode is restored afterwards.
            batch_size: Evaluate in chunks of this many rows (``None``: all at once).

        Returns:
            ``softmax(logits)`` of shape ``(N, C)``, each row summing to 1.
        """
        return softmax(self._logits(x, training=training, batch_size=batch_size))

    def predict(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """Predicted labels: the argmax of the logits.

        Args:
            x: Inputs ``(N, D)``.
            training: Inference mode (``False``, the default) or dropout on
                (``True``); the model's mode is restored afterwards.

        Returns:
            Integer labels ``(N,)``.
        """
        return self._logits(x, training=training).argmax(axis=1)

    def _logits(self, x, *, training: bool, batch_size: int | None = None) -> np.ndarray:
        previous = self.training
        self._set_mode(training)
        try:
            if batch_size is None:
                return self.forward(x)
            batch_size = check_positive_int(batch_size, "batch_size")
            return np.concatenate(
                [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
            )
        finally:
            self._set_mode(previous)

    def evaluate(
        self, x: np.ndarray, y: np.ndarray, *, loss: Loss | None = None
    ) -> dict[str, float]:
        """Loss and accuracy on ``(x, y)`` in inference mode (the mode is restored).

        Args:
            x: Inputs ``(N, D)``.
            y: Integer labels ``(N,)``.
            loss: A loss with ``forward(logits, y) -> float`` (default
                :class:`SoftmaxCrossEntropy`).

        Returns:
            ``{"loss": float, "accuracy": float}`` with accuracy in ``[0, 1]``.
        """
        logits = self._logits(x, training=False)
        loss = SoftmaxCrossEntropy() if loss is None else loss
        value = loss.forward(logits, y)
        accuracy = float(np.mean(logits.argmax(axis=1) == np.asarray(y))) if len(y) else 0.0
        return {"loss": float(value), "accuracy": accuracy}

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential(\n{inner}\n)"


def mlp(
    sizes: Sequence[int],
    *,
    rate: float = 0.0,
    input_rate: float = 0.0,
    activation: str = "relu",
    init: str = "he",
    rng: np.random.Generator | int | None = None,
    dtype: npt.DTypeLike = np.float32,
) -> Sequential:
    """Build a multilayer perceptron with dropout after every hidden activation.

    ``mlp([64, 128, 64, 10], rate=0.5, rng=0)`` is
    ``Linear(64,128)-ReLU-Dropout(0.5)-Linear(128,64)-ReLU-Dropout(0.5)-Linear(64,10)``:
    no dropout after the last ``Linear`` (it outputs logits), and none at all
    where a rate is 0. ``input_rate`` puts a ``Dropout`` on the input first
    (the paper used about 0.2 there and 0.5 on hidden units).

    Args:
        sizes: ``[D_in, H_1, ..., H_k, C]``, at least two sizes.
        rate: Drop probability of the hidden units, in ``[0, 1)``.
        input_rate: Drop probability of the input units, in ``[0, 1)``.
        activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"``.
        init: ``"he"`` or ``"glorot"`` (see :class:`~dlcourse.scratch.layers.Linear`).
        rng: Generator or seed; the weights and every dropout layer's masks
            derive from it, so one seed fixes the whole model.
        dtype: Floating dtype of the parameters.

    Returns:
        A :class:`Sequential` in training mode.

    References:
        Srivastava et al. (2014), JMLR 15, §6.1.1 and Appendix A.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size; "
                         f"received sizes={sizes!r}")
    sizes = [check_positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
    rate = check_rate(rate, "rate", allow_one=False)
    input_rate = check_rate(input_rate, "input_rate", allow_one=False)
    act = ACTIVATIONS[check_choice(activation, "activation", tuple(ACTIVATIONS))]
    gen = as_rng(rng)
    layers: list[Layer] = []
    if input_rate > 0:
        layers.append(Dropout(input_rate, rng=gen.spawn(1)[0]))
    n_linear = len(sizes) - 1
    for i in range(n_linear):
        layers.append(Linear(sizes[i], sizes[i + 1], init=init, rng=gen, dtype=dtype))
        if i < n_linear - 1:
            layers.append(act())
            if rate > 0:
                layers.append(Dropout(rate, rng=gen.spawn(1)[0]))
    return Sequential(*layers)
