"""Figures of the analysis tools. matplotlib is optional: it is imported here, only when a figure is
drawn, so training never needs it. Every figure tells its lines apart by style and marker as well as
colour, so it stays readable in black-and-white print."""
import math
import os

import numpy as np

from ..errors import UserError
from ..storage.files import written_atomically

MARKERS = ("o", "s", "^", "D", "v", "x", "P", "*")


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or a one-line UserError if it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("figures need matplotlib, which is not installed: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path):
    """Write ``fig`` to ``path`` (format from its extension) via a temporary file + rename."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    try:
        with written_atomically(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight")
    except ValueError as err:
        raise UserError(f"{path}: cannot write a figure in this format ({err})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot write the figure ({err.strerror or err})") from None


def save_all(plt, fig, paths):
    try:
        for path in paths:
            save_figure(fig, path)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
def plot_teacher_stats(rows, paths, ats_factors):
    """The paper's Figure 7: e(q) and sigma(q) against temperature, one panel per teacher and scheme.

    ``rows``: the table of ``teacher_stats.temperature_table`` (several teachers may be stacked).
    """
    plt = pyplot()
    teachers = list(dict.fromkeys(r["teacher"] for r in rows))
    schemes = ("TS", "ATS")
    fig, axes = plt.subplots(len(teachers), 2, figsize=(9, 2.8 * len(teachers) + 0.9), squeeze=False,
                             layout="constrained")
    e_all = [r["e_q"] for r in rows]
    s_all = [r["sigma_q"] for r in rows]
    n_classes = rows[0]["n_classes"]
    for i, teacher in enumerate(teachers):
        for j, scheme in enumerate(schemes):
            sel = sorted((r for r in rows if r["teacher"] == teacher and r["scheme"] == scheme),
                         key=lambda r: r["tau"])
            tau = [r["tau"] for r in sel]
            ax = axes[i][j]
            twin = ax.twinx()
            h_e = ax.plot(tau, [r["e_q"] for r in sel], color="black", linestyle="-", marker="o",
                          markersize=4, label="e(q): derived average")
            h_s = twin.plot(tau, [r["sigma_q"] for r in sel], color="tab:red", linestyle="--",
                            marker="s", markerfacecolor="white", markersize=4,
                            label="σ(q): derived spread")
            h_c = ax.axhline(1.0 / n_classes, color="gray", linestyle=":", linewidth=1,
                             label=f"1/C = 1/{n_classes} (uniform)")
            ax.set_xscale("log")
            ticks = [v for v in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if tau[0] <= v <= tau[-1]]
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
            ax.minorticks_off()
            ax.set_ylim(0, max(e_all) * 1.15)
            twin.set_ylim(0, max(s_all) * 1.15)
            if scheme == "TS":
                ax.set_xlabel("temperature τ (all classes)")
                title = f"{teacher}: TS"
            else:
                ax.set_xlabel(f"temperature τ (correct class {ats_factors[0]:g}τ, "
                              f"wrong classes {ats_factors[1]:g}τ)")
                title = f"{teacher}: ATS"
            ax.set_title(f"{title}  (teacher accuracy {100 * sel[0]['accuracy']:.1f}%)", fontsize=10)
            ax.set_ylabel("e(q)  (probability)")
            twin.set_ylabel("σ(q)  (probability)", color="tab:red")
            ax.grid(True, which="major", linewidth=0.3)
    handles = h_e + h_s + [h_c]
    fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncol=3, fontsize=9)
    fig.suptitle("Wrong-class probabilities q of the teacher (correct class removed), "
                 f"mean over {rows[0]['n_samples']} images", fontsize=11)
    save_all(plt, fig, paths)


# ---------------------------------------------------------------------------------------------
def plot_sweep_heatmap(cells, paths, title):
    """The paper's Figure 10: test accuracy over (tp_tau, t_tau), TS on the diagonal, ATS above it.

    ``cells``: dicts with ``tp_tau``, ``t_tau``, ``mean``, ``std`` (NaN for one seed), ``n``
    (accuracies as fractions). The best mean is outlined.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle
    tps = sorted({c["tp_tau"] for c in cells})
    ts = sorted({c["t_tau"] for c in cells})
    grid = np.full((len(tps), len(ts)), np.nan)
    for c in cells:
        grid[tps.index(c["tp_tau"]), ts.index(c["t_tau"])] = 100 * c["mean"]
    best = max(cells, key=lambda c: c["mean"])
    fig, ax = plt.subplots(figsize=(1.3 * len(ts) + 2.2, 0.9 * len(tps) + 1.8))
    cmap = plt.get_cmap("cividis")
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, origin="lower", aspect="auto",
                      vmin=lo, vmax=hi if hi > lo else lo + 1)
    fig.colorbar(image, ax=ax, label="final test accuracy (%)")
    for c in cells:
        i, j = tps.index(c["tp_tau"]), ts.index(c["t_tau"])
        red, green, blue, _ = cmap(image.norm(grid[i, j]))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        text = f"{100 * c['mean']:.2f}"
        if c["n"] > 1:
            text += f"\n±{100 * c['std']:.2f} (n={c['n']})"
        if c["tp_tau"] == c["t_tau"]:
            text += "\nTS"
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if dark else "black",
                fontweight="bold" if c is best else "normal")
    bi, bj = tps.index(best["tp_tau"]), ts.index(best["t_tau"])
    for width, colour in ((4.5, "white"), (2.0, "black")):
        ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, linewidth=width,
                               edgecolor=colour))
    ax.set_xticks(range(len(ts)), [f"{t:g}" for t in ts])
    ax.set_yticks(range(len(tps)), [f"{t:g}" for t in tps])
    ax.set_xlabel("t_tau: teacher temperature of the wrong classes")
    ax.set_ylabel("tp_tau: teacher temperature\nof the correct class")
    ax.set_title(f"{title}\nTS on the diagonal (tp_tau = t_tau), ATS above it; "
                 f"best: outlined, {100 * best['mean']:.2f}% at {best['tp_tau']:g}/{best['t_tau']:g}",
                 fontsize=9)
    fig.tight_layout()
    save_all(plt, fig, paths)


# ---------------------------------------------------------------------------------------------
def plot_run_curves(runs, path):
    """Loss and train/test accuracy per epoch of several runs; ``runs``: (label, records) pairs."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for k, (label, records) in enumerate(runs):
        epochs = [r["epoch"] for r in records]
        style = dict(color=f"C{k % 10}", marker=MARKERS[k % len(MARKERS)], markersize=4,
                     markevery=max(1, math.ceil(len(epochs) / 12)))
        ax_loss.plot(epochs, [r["loss"] for r in records], linestyle="-", label=label, **style)
        ax_acc.plot(epochs, [100 * r["test_acc"] for r in records], linestyle="-", label=label, **style)
        if all("train_acc" in r for r in records):
            ax_acc.plot(epochs, [100 * r["train_acc"] for r in records], linestyle=":",
                        markerfacecolor="white", **style)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (mean over the epoch)")
    ax_loss.set_title("Training loss")
    ax_loss.legend(fontsize=8)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("Accuracy: test (solid, filled markers), train (dotted, open markers)")
    for ax in (ax_loss, ax_acc):
        ax.grid(True, linewidth=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.title.set_fontsize(9)
    fig.tight_layout()
    save_all(plt, fig, [path])
