"""Figures of the cached experiments (one function per experiment; each returns the figure).

Every function takes the dict of :func:`dlcourse.experiments.load_result` and
draws means over seeds with error bars of one standard deviation.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import summarize


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _errorbar(ax, rows, x_key, label, **kw):
    x = [r[x_key] for r in rows]
    ax.errorbar(x, [r["mean"] for r in rows], yerr=[r["std"] for r in rows], marker="o",
                capsize=3, label=label, **kw)


def _where(result: dict, **match) -> dict:
    """A copy of ``result`` keeping only the records whose cell matches ``match``."""
    keep = [r for r in result["records"]
            if all(r["cell"].get(k) == v for k, v in match.items())]
    return {**result, "records": keep}


def plot_rate(result: dict):
    """Fig. 9 analogue: test and train error against the rate, n fixed and (1 - rate) n fixed."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    titles = {"n_fixed": f"width n = {result['config']['width']} fixed",
              "pn_fixed": f"(1 - rate) n = {result['config']['kept_units']} fixed"}
    for ax, scheme in zip(axes, ("n_fixed", "pn_fixed"), strict=True):
        part = _where(result, scheme=scheme)
        _errorbar(ax, summarize(part, "test_error", ["rate"]), "rate", "test")
        _errorbar(ax, summarize(part, "train_error", ["rate"]), "rate", "train", ls="--")
        ax.set_title(titles[scheme])
        ax.set_xlabel("dropout rate (paper's p = 1 - rate)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("classification error (%)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def plot_data_size(result: dict):
    """Fig. 10 analogue: test error against the number of training images."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for flag, label in ((False, "no dropout"), (True, "dropout")):
        rows = summarize(_where(result, dropout=flag), "test_error", ["n_train"])
        sizes = {r["cell"]["n_train"]: r["metrics"]["n_images"] for r in result["records"]}
        for r in rows:
            r["n_images"] = sizes[r["n_train"]]
        _errorbar(ax, rows, "n_images", label)
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_sparsity(result: dict):
    """Fig. 8 analogue: how many activations are zero, and the density of the others.

    The bins of the cached histogram have unequal widths (0.01 to 4 units), so
    the right panel divides each bin's fraction by its width and draws it over
    the real activation axis: areas, not bar heights, are the fractions.
    """
    plt = _plt()
    bins = np.asarray(result["config"]["bins"])
    widths = np.diff(bins)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8),
                                      gridspec_kw={"width_ratios": [1, 2.6]})
    rates = ((0.0, "no dropout"), (result["config"]["rate"], "dropout"))
    for j, (rate, name) in enumerate(rates):
        recs = [r["metrics"] for r in result["records"] if r["cell"]["rate"] == rate]
        zero = np.array([m["fraction_zero"] for m in recs])
        left.bar(j, zero.mean(), yerr=zero.std(), capsize=3, color=f"C{j}", label=name)
        density = np.array([m["activation_hist"] for m in recs]) / widths
        # the first bin (0 to 0.01) holds the exact zeros, shown on the left instead
        right.stairs(density.mean(axis=0)[1:], bins[1:], color=f"C{j}", lw=2, label=name)
    left.set_xticks([0, 1], [name for _, name in rates])
    left.set_ylabel("fraction of activations = 0")
    left.set_ylim(0, 1)
    right.set_yscale("log")
    right.set_xlim(0, bins[1:][np.flatnonzero(np.array(
        [r["metrics"]["activation_hist"] for r in result["records"]]).max(axis=0))[-1] + 1])
    right.set_xlabel("activation of a hidden unit on a test image (> 0.01)")
    right.set_ylabel("fraction per unit of activation")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_torch_mnist(result: dict):
    """Test error after each epoch, without and with dropout: mean and one standard deviation."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for j, (flag, name) in enumerate(((False, "no dropout"), (True, "dropout (0.2 in, 0.5 hidden)"))):
        curves = np.array([r["metrics"]["test_error_curve"] for r in result["records"]
                           if r["cell"]["dropout"] == flag])
        epochs = np.arange(1, curves.shape[1] + 1)
        mean, std = curves.mean(axis=0), curves.std(axis=0, ddof=1)
        ax.plot(epochs, mean, color=f"C{j}", label=f"{name}, {len(curves)} seeds")
        ax.fill_between(epochs, mean - std, mean + std, color=f"C{j}", alpha=0.25, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_filters(result: dict):
    """Fig. 7 analogue: the first encoder filters (8x8) without and with dropout (first seed)."""
    plt = _plt()
    recs = [r for r in result["records"] if r["seed"] == result["seeds"][0]]
    n = len(recs[0]["metrics"]["filters"])
    cols = min(n, 12)
    rows_per = int(np.ceil(n / cols))
    fig, axes = plt.subplots(2 * rows_per, cols, figsize=(cols * 0.8, 2 * rows_per * 0.95))
    for block, rec in enumerate(recs):
        filters = np.asarray(rec["metrics"]["filters"])
        for i in range(rows_per * cols):
            ax = axes[block * rows_per + i // cols, i % cols]
            ax.axis("off")
            if i < n:
                side = int(round(len(filters[i]) ** 0.5))  # 8 for digits, 28 for MNIST
                w = filters[i].reshape(side, side)
                lim = np.abs(w).max() or 1.0
                ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
        name = "no dropout" if rec["cell"]["rate"] == 0 else f"rate {rec['cell']['rate']}"
        axes[block * rows_per, 0].set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_mc(result: dict):
    """Fig. 11 analogue: Monte-Carlo test error against k, and the weight-scaling error."""
    plt = _plt()
    ks = np.asarray(result["config"]["ks"])
    mc = np.concatenate([np.asarray(r["metrics"]["mc_errors"]) for r in result["records"]])
    ws = np.array([r["metrics"]["test_error"] for r in result["records"]])
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.errorbar(ks, mc.mean(axis=0), yerr=mc.std(axis=0, ddof=1), marker="o", capsize=3,
                label="Monte-Carlo average of k nets")
    ax.axhline(ws.mean(), color="C1", label="weight scaling (eval mode)")
    ax.axhspan(ws.mean() - ws.std(ddof=1), ws.mean() + ws.std(ddof=1), color="C1", alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("k (number of sampled masks)")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_regularizers(rows: list[dict]):
    """Table 9 analogue: test error of each method at its validation-chosen strength."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    x = np.arange(len(rows))
    ax.bar(x, [r["test_mean"] for r in rows], yerr=[r["test_std"] for r in rows], capsize=4,
           color="C0", alpha=0.7)
    for i, r in enumerate(rows):
        ax.plot([i] * len(r["test_values"]), r["test_values"], "k.", ms=5)
    ax.set_xticks(x, [r["method"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_lr_momentum(result: dict):
    """Test error against the learning rate, per momentum, with and without dropout/max-norm."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, momentum in zip(axes, result["config"]["momenta"], strict=True):
        for dropout, max_norm, label in ((False, result["config"]["max_norm"], "no dropout"),
                                         (True, result["config"]["max_norm"], "dropout"),
                                         (True, None, "dropout, no max-norm")):
            part = _where(result, dropout=dropout, momentum=momentum, max_norm=max_norm)
            rows = summarize(part, "test_error", ["lr"])
            _errorbar(ax, rows, "lr", label, ls=":" if max_norm is None else "-")
        ax.set_xscale("log")
        ax.set_title(f"momentum {momentum}")
        ax.set_xlabel("learning rate")
        ax.grid(alpha=0.3, which="both")
    # A log axis: the 2-10 % errors of the nets that train are as readable as the 90 % of chance.
    axes[0].set_yscale("log")
    ticks = [2, 3, 5, 10, 20, 50, 90]
    axes[0].set_yticks(ticks, [str(t) for t in ticks])
    axes[0].minorticks_off()
    axes[0].set_ylabel("test error (%, log scale)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def plot_bn_order(result: dict):
    """Test error and variance shift of each dropout/batch-norm arrangement."""
    plt = _plt()
    arrangements = result["config"]["arrangements"]
    err = summarize(result, "test_error", ["arrangement"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    x = np.arange(len(arrangements))
    axes[0].bar(x, [r["mean"] for r in err], yerr=[r["std"] for r in err], capsize=4, alpha=0.7)
    axes[0].set_ylabel("test error (%)")
    for i, a in enumerate(arrangements):
        shifts = np.array([r["metrics"]["variance_shift"] for r in result["records"]
                           if r["cell"]["arrangement"] == a])
        if shifts.size:
            axes[1].bar(i, shifts.max(axis=1).mean(), yerr=shifts.max(axis=1).std(),
                        capsize=4, color="C1", alpha=0.7)
    axes[1].axhline(1.0, color="k", lw=0.8)
    axes[1].set_ylabel("running var / actual var (max over BN layers)")
    for ax in axes:
        ax.set_xticks(x, arrangements, rotation=20, ha="right", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_pitfalls(result: dict):
    """Test error of each dropout placement, predicted in eval mode and (wrongly) in train mode."""
    plt = _plt()
    placements = result["config"]["placements"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(placements))
    for j, (key, label) in enumerate((("test_error", "eval() (correct)"),
                                      ("test_error_train_mode", "forgot eval()"))):
        rows = summarize(result, key, ["placement"])
        ax.bar(x + (j - 0.5) * 0.4, [r["mean"] for r in rows], 0.4,
               yerr=[r["std"] for r in rows], capsize=3, label=label)
    ax.set_xticks(x, [f"dropout: {p}" for p in placements], rotation=15)
    ax.set_ylabel("test error (%)")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_spatial_cnn(result: dict):
    """Test and training error of a small CNN per kind of dropout and rate."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    rows = summarize(result, "test_error", ["kind", "rate"])
    train = {(r["kind"], r["rate"]): r for r in summarize(result, "train_error", ["kind", "rate"])}
    x = np.arange(len(rows))
    ax.bar(x, [r["mean"] for r in rows], yerr=[r["std"] for r in rows], capsize=4, alpha=0.7,
           label="test")
    ax.plot(x, [train[(r["kind"], r["rate"])]["mean"] for r in rows], "k_", ms=18,
            label="train")
    ax.set_xticks(x, [r["kind"] if r["kind"] == "none" else f"{r['kind']}\nrate {r['rate']}"
                      for r in rows], fontsize=8)
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_mc_ood(result: dict):
    """Predictive entropy per input set (deterministic vs MC) and reliability diagrams."""
    from dlcourse.experiments.mc_ood import INPUT_SETS

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    recs = [r["metrics"] for r in result["records"]]
    x = np.arange(len(INPUT_SETS))
    for j, (key, label) in enumerate((("det_entropy", "deterministic (eval)"),
                                      ("mc_entropy", "MC dropout"),
                                      ("mc_mutual_information", "MC mutual information"))):
        vals = np.array([[m["sets"][s][key] for s in INPUT_SETS] for m in recs])
        axes[0].bar(x + (j - 1) * 0.27, vals.mean(0), 0.27, yerr=vals.std(0), capsize=2,
                    label=label)
    axes[0].axhline(np.log(10), color="k", lw=0.8, ls=":")
    axes[0].set_xticks(x, INPUT_SETS, rotation=15)
    axes[0].set_ylabel("mean over inputs (nats)")
    axes[0].legend(fontsize=8)
    axes[0].set_title("uncertainty (dotted: log 10, the maximum)")
    ax = axes[1]
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    for key, label in (("det_reliability", "deterministic"), ("mc_reliability", "MC dropout")):
        conf = np.array([m[key]["confidence"] for m in recs])
        acc = np.array([m[key]["accuracy"] for m in recs])
        count = np.array([m[key]["count"] for m in recs]).sum(0)
        ok = (conf >= 0).all(0) & (count > 0)
        ece = np.mean([m[key]["ece"] for m in recs])
        ax.plot(conf[:, ok].mean(0), acc[:, ok].mean(0), "o-", label=f"{label} (ECE {ece:.3f})")
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability on the test digits")
    ax.legend()
    fig.tight_layout()
    return fig
