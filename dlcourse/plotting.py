"""Figures the book and the exercises draw.

Each function draws measured data that it is given (never made-up curves),
returns the Matplotlib figure, and imports Matplotlib only when called, so
``import dlcourse.plotting`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _history_dict(history) -> Mapping[str, Sequence[float]]:
    """The per-epoch dict of a ``History`` (ours or Keras') or a plain dict."""
    return getattr(history, "history", history)


def plot_history(
    histories: Mapping[str, object],
    *,
    metrics: Sequence[str] = ("loss", "accuracy"),
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    logy: Sequence[str] = (),
):
    """Training and validation curves of one or more runs, one panel per metric.

    Args:
        histories: ``{label: history}``; a history is a
            :class:`dlcourse.scratch.History`, a Keras ``History`` or a dict of
            per-epoch lists with keys like ``"loss"`` and ``"val_loss"``.
        metrics: Metrics to draw; ``"m"`` is drawn dashed (training) and
            ``"val_m"`` solid (validation), in one colour per run.
        figsize: Figure size; default ``(5 * len(metrics), 3.6)``.
        title: Optional title over the panels.
        logy: Metrics drawn on a logarithmic axis, e.g. ``("loss",)``: a training
            loss near zero and a validation loss that turns upwards both stay
            visible, where a linear axis squeezes them onto one line.

    Returns:
        The Matplotlib figure.

    Raises:
        ValueError: ``histories`` is empty, a metric is in none of them, or
            ``logy`` names a metric that is not drawn.
    """
    if not histories:
        raise ValueError("histories must hold at least one run; received histories={}")
    unknown = [m for m in logy if m not in metrics]
    if unknown:
        raise ValueError(f"logy must name drawn metrics {list(metrics)}; received {unknown}")
    plt = _plt()
    metrics = list(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=figsize or (5 * len(metrics), 3.6),
                             squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics, strict=True):
        drawn = False
        for i, (label, history) in enumerate(histories.items()):
            h = _history_dict(history)
            colour = colours[i % len(colours)]
            for key, style, part in ((metric, "--", "train"), (f"val_{metric}", "-", "val")):
                if key in h and len(h[key]):
                    epochs = np.arange(1, len(h[key]) + 1)
                    ax.plot(epochs, h[key], style, color=colour, label=f"{label} ({part})")
                    drawn = True
        if not drawn:
            raise ValueError(f"metrics must name keys of the histories; received metric={metric!r}")
        ax.set_xlabel("epoch")
        if metric in logy:
            ax.set_yscale("log")
            ax.set_ylabel(f"{metric} (log scale)")
        else:
            ax.set_ylabel(metric)
        ax.grid(alpha=0.3, which="both" if metric in logy else "major")
    axes[0][0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_masks(
    masks: Sequence[np.ndarray],
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "Greys_r",
    panel_size: float = 1.8,
):
    """Binary masks (or any 2-D arrays) side by side, kept units light, dropped dark.

    Args:
        masks: 2-D arrays, e.g. ``(H, W)`` keep masks or ``(N, D)`` minibatch masks.
        titles: One title per mask; default ``"kept k/n"`` for each.
        ncols: Panels per row (default: all in one row, at most 8).
        cmap: Colour map (``"Greys_r"``: 1 = white = kept, 0 = black = dropped).
        panel_size: Width of one panel in inches.

    Returns:
        The Matplotlib figure.
    """
    masks = [np.asarray(m) for m in masks]
    if not masks or any(m.ndim != 2 for m in masks):
        raise ValueError("masks must be a non-empty sequence of 2-D arrays; received "
                         f"shapes {[m.shape for m in masks]}")
    if titles is not None and len(titles) != len(masks):
        raise ValueError(f"titles must have one entry per mask ({len(masks)}); "
                         f"received {len(titles)}")
    plt = _plt()
    ncols = min(len(masks), 8) if ncols is None else ncols
    nrows = -(-len(masks) // ncols)
    first = masks[0]
    aspect = first.shape[0] / max(first.shape[1], 1)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size * ncols, panel_size * aspect * nrows + 0.5))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(masks):
            continue
        m = masks[i].astype(float)
        ax.imshow(m, cmap=cmap, vmin=0, vmax=max(1.0, float(m.max())), interpolation="nearest")
        if titles is None:
            ax.set_title(f"kept {int(np.count_nonzero(m))}/{m.size}", fontsize="small")
        else:
            ax.set_title(titles[i], fontsize="small")
    fig.tight_layout()
    return fig


def plot_digits(
    images: np.ndarray,
    labels: Sequence[object] | None = None,
    *,
    ncols: int = 8,
    cmap: str = "Greys",
    panel_size: float = 1.1,
):
    """A grid of small images, e.g. digits ``(N, 64)`` or ``(N, 1, 8, 8)``.

    Args:
        images: ``(N, H*W)`` rows of square images, ``(N, H, W)`` or ``(N, 1, H, W)``.
        labels: Optional title of each image.
        ncols: Images per row.
        cmap: Colour map.
        panel_size: Width of one image in inches.

    Returns:
        The Matplotlib figure.
    """
    images = np.asarray(images, dtype=float)
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"images of shape (N, D) need a square D; received {images.shape}")
        images = images.reshape(len(images), side, side)
    elif images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, D), (N, H, W) or (N, 1, H, W); received {images.shape}")
    plt = _plt()
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size * ncols, (panel_size + 0.2) * nrows))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap=cmap, interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize="small")
    fig.tight_layout()
    return fig


def plot_bars(
    values: Mapping[str, float],
    *,
    errors: Mapping[str, float] | None = None,
    ylabel: str = "",
    title: str | None = None,
    figsize: tuple[float, float] = (6, 3.4),
    fmt: str = "{:.3f}",
):
    """A labelled bar chart of measured values, the value printed on each bar.

    Args:
        values: ``{label: value}`` in drawing order.
        errors: Optional ``{label: error bar half-width}`` (e.g. one standard deviation).
        ylabel: Label of the y axis.
        title: Optional title.
        figsize: Figure size.
        fmt: Format of the printed values.

    Returns:
        The Matplotlib figure.
    """
    if not values:
        raise ValueError("values must hold at least one bar; received values={}")
    plt = _plt()
    labels = list(values)
    heights = [float(values[k]) for k in labels]
    yerr = None if errors is None else [float(errors.get(k, 0.0)) for k in labels]
    fig, ax = plt.subplots(figsize=figsize)
    bars = ax.bar(labels, heights, yerr=yerr, capsize=4 if yerr else 0, color="#4c72b0")
    for bar, h in zip(bars, heights, strict=True):
        ax.annotate(fmt.format(h), (bar.get_x() + bar.get_width() / 2, h),
                    ha="center", va="bottom", fontsize="small",
                    xytext=(0, 2), textcoords="offset points")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
