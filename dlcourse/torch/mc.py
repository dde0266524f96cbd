"""Monte-Carlo dropout prediction for PyTorch models."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import torch
from torch import nn

from dlcourse._checks import check_choice, check_positive_int
from dlcourse.torch.dropblock import DropBlock2d
from dlcourse.torch.dropconnect import DropConnectLinear
from dlcourse.torch.droppath import DropPath
from dlcourse.torch.gaussian import GaussianDropout
from dlcourse.torch.recurrent import VariationalRNN
from dlcourse.uncertainty import MCPrediction, summarize

#: Modules switched to training mode for MC prediction. ``_DropoutNd`` covers
#: ``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout`` and ``FeatureAlphaDropout``;
#: ``nn.RNNBase`` covers ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``, whose only
#: training-mode behaviour is their ``dropout=`` between stacked layers.
DROPOUT_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.dropout._DropoutNd, nn.RNNBase, GaussianDropout, DropConnectLinear, DropBlock2d,
    DropPath, VariationalRNN,
)


def _accelerator_devices(model: nn.Module, x: torch.Tensor) -> dict[str, list[int]]:
    """Indices of the non-CPU devices holding ``x`` or the model's tensors, by device type.

    These are the devices whose global generators the forward passes draw from.
    """
    found: dict[str, set[int]] = {}
    for t in itertools.chain((x,), model.parameters(), model.buffers()):
        device = t.device
        if device.type in ("cpu", "meta"):
            continue
        index = device.index
        if index is None:  # "cuda" without an index means the current device
            module = torch.get_device_module(device.type)
            index = module.current_device() if hasattr(module, "current_device") else 0
        found.setdefault(device.type, set()).add(index)
    return {kind: sorted(indices) for kind, indices in found.items()}


@contextlib.contextmanager
def _seeded_global_rng(seed: int, devices: dict[str, list[int]]) -> Iterator[None]:
    """Seed the CPU generator and those of ``devices``; restore all of them on exit.

    ``torch.manual_seed`` is avoided on purpose: it also seeds every CUDA (and
    MPS, XPU) device, including devices ``fork_rng`` did not save, whose state
    would then be lost.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=[]))  # the CPU generator
        for kind, indices in devices.items():
            stack.enter_context(torch.random.fork_rng(devices=indices, device_type=kind))
        torch.default_generator.manual_seed(seed)
        for kind, indices in devices.items():
            module = torch.get_device_module(kind)
            for index in indices:
                if hasattr(module, "default_generators"):  # cuda, xpu: one per device
                    module.default_generators[index].manual_seed(seed)
                else:  # mps: a single device
                    module.manual_seed(seed)
        yield


def _module_device(module: nn.Module, default: torch.device) -> torch.device:
    """The device of the module's first parameter or buffer, else ``default``."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        return t.device
    return default


@torch.no_grad()
def mc_predict(model: nn.Module, x: torch.Tensor, n_samples: int = 50, *, seed: int | None = None,
               output: str = "logits") -> MCPrediction:
    """Monte-Carlo dropout predictions of a PyTorch classifier.

    The model is put in ``eval()`` mode and then **only** the modules of
    :data:`DROPOUT_MODULES` in training mode (each module itself, not its
    children), so BatchNorm keeps using (and does not update) its running
    statistics. Every module's mode is restored afterwards.

    ``nn.RNN``/``nn.LSTM``/``nn.GRU`` are in :data:`DROPOUT_MODULES`: their
    ``dropout=`` argument **is** switched on during the passes (the model was
    trained with it, so it is part of the approximate posterior). That is
    PyTorch's dropout on the outputs of each stacked layer but the last, with
    a new mask at every time step; it never touches the recurrent state, so
    it is not the variational dropout of Gal & Ghahramani (2016b): use
    :class:`dlcourse.torch.VariationalRNN` for that. With one layer (or
    ``dropout=0``) the training mode of these modules changes nothing.

    Args:
        model: A classifier returning ``(N, C)`` logits (or probabilities).
        x: Input batch ``(N, ...)``.
        n_samples: Number ``T`` of stochastic forward passes.
        seed: If given, the passes draw from the global generators of the CPU
            and of every device holding ``x`` or the model's parameters and
            buffers, seeded with ``seed``; those generators' states are saved
            before and restored after (``torch.random.fork_rng``), and no other
            device's generator is touched: the global RNG state is left as it
            was. Our modules' ``generator`` attributes are temporarily replaced
            by generators seeded from ``seed``, on the module's device. The same
            seed gives the same result (on CUDA, PyTorch may use
            non-deterministic kernels; see ``torch.use_deterministic_algorithms``).
        output: ``"logits"`` (softmax applied) or ``"probs"``.

    Returns:
        :class:`dlcourse.uncertainty.MCPrediction` of the samples ``(T, N, C)``
        (NumPy arrays; the fields and their shapes are in its docstring).

    References:
        Gal & Ghahramani (2016a), arXiv:1506.02142 (the full entry in
        :mod:`dlcourse.uncertainty`); (2016b), arXiv:1512.05287 (in
        :func:`dlcourse.torch.variational_rnn`).
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    output = check_choice(output, "output", ("logits", "probs"))
    modules = list(model.modules())
    modes = [m.training for m in modules]
    stochastic = [m for m in modules if isinstance(m, DROPOUT_MODULES)]
    generators = [getattr(m, "generator", None) for m in stochastic]
    steps = [getattr(m, "step", None) for m in stochastic]
    rng = (contextlib.nullcontext() if seed is None
           else _seeded_global_rng(seed, _accelerator_devices(model, x)))
    try:
        model.eval()
        for m in stochastic:
            m.training = True  # this module only: m.train() would also switch its children
        with rng:
            if seed is not None:
                for i, m in enumerate(stochastic):
                    if hasattr(m, "generator"):
                        device = _module_device(m, x.device)
                        m.generator = torch.Generator(device=device).manual_seed(seed + 1 + i)
            samples = []
            for _ in range(n_samples):
                out = model(x).float()
                samples.append(torch.softmax(out, dim=-1) if output == "logits" else out)
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.training = mode
        for m, gen, step in zip(stochastic, generators, steps, strict=True):
            if hasattr(m, "generator"):
                m.generator = gen
            if step is not None:
                m.step = step  # MC passes are not training steps of a schedule
    return summarize(torch.stack(samples).cpu().numpy())  # one copy to the host, at the end
