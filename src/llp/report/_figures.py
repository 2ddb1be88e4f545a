"""The report's figures: matplotlib, drawn off-screen (no display needed), saved as PNG.

Every function takes the plain series of :mod:`llp.report._collect` (or the results of
the landscape and meta-model sections) and returns a :class:`matplotlib.figure.Figure`;
nothing here reads the knowledge base.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from llp.report._collect import objective_label
from llp.search._base import format_share

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from llp.report._landscape import SliceResult
    from llp.report._meta import Importances

#: Resolution of the saved PNGs.
DPI = 150
BEST_COLOR = "#d95f02"
FAILED_COLOR = "#c0392b"
INCUMBENT_COLOR = "#1b1b1b"
GROUP_COLORS = {
    "dataset": "#4c72b0",
    "model family": "#8172b2",
    "configuration": "#dd8452",
    "learning curve": "#55a868",
    "landscape": "#c44e52",
}
_STYLE = {
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


@contextmanager
def report_style() -> Iterator[None]:
    """The report's matplotlib style, for the figures drawn inside the block."""
    import matplotlib

    with matplotlib.rc_context(cast(Any, _STYLE)):
        yield


def new_figure(width: float = 7.2, height: float = 4.2) -> Figure:
    """A figure that belongs to no GUI (safe in threads and without a display)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at :data:`DPI`, drawn once.

    ``Figure.savefig`` draws a figure with a layout engine twice (once to lay it out,
    once to render it); here one draw does both (the layout runs at the start of every
    draw) and Pillow writes the pixels, the same ones (tested), in 15 % less time
    (BENCHMARKS.md, "Command-line latency")."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.set_dpi(DPI)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).save(path, format="png", dpi=(DPI, DPI))
    return path


def fraction_colors(fractions: Sequence[float]) -> dict[float, Any]:
    """A colour per data fraction, light (small) to dark (large)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    ordered = sorted(set(fractions))
    if len(ordered) == 1:
        return {ordered[0]: cmap(0.35)}
    return {f: cmap(0.85 - 0.7 * i / (len(ordered) - 1)) for i, f in enumerate(ordered)}


def _fraction_label(fraction: float) -> str:
    return f"{format_share(fraction)} of the data"


def _legend_below(fig: Figure, ax: Axes, ncols: int = 3) -> None:
    """The legend under the axes, where it never hides a point."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    # As many columns as fit the figure's width: long labels get fewer, never clipped.
    for n in range(min(ncols, len(handles)), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=n)
        if n == 1 or legend.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            return
        legend.remove()


def _plain_log_labels(axis: Any) -> None:
    """Tick labels of a log-scaled ``axis`` (an Axes' ``xaxis`` or ``yaxis``, after its
    ``set_*scale("log")``) as plain numbers to three significant digits (``0.04``), as
    the colour bars' are. matplotlib's default labels (``4 x 10^-2``) are typeset as
    maths, which costs a figure about a tenth of a second and loads fonts it may not
    find."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
            return f"{x:.3g}"

    axis.set_major_formatter(Plain())
    axis.set_minor_formatter(Plain(labelOnlyBase=False))


def _mark_failures(ax: Axes, xs: Sequence[float], label: str = "failed") -> None:
    """Failed evaluations as red crosses along the bottom edge (they have no score)."""
    if not xs:
        return
    ax.scatter(
        list(xs),
        [0.03] * len(xs),
        marker="x",
        s=28,
        color=FAILED_COLOR,
        transform=ax.get_xaxis_transform(),
        label=label,
        zorder=4,
        clip_on=False,
    )


# --------------------------------------------------------------------------- figures
def budget_figure(series: Mapping[str, Sequence[Any]], objective: str) -> Figure:
    """Every evaluation's score at the compute spent when it finished, and the study's
    stored answer after each evaluation (its measured score) as a step line."""
    fig = new_figure()
    ax = fig.subplots()
    colors = fraction_colors(series["fraction"] or [1.0])
    for fraction, color in colors.items():
        pts = [
            (c, s)
            for c, s, f in zip(series["cumulative_cost"], series["score"], series["fraction"])
            if f == fraction and s is not None
        ]
        if pts:
            ax.scatter(
                [p[0] for p in pts],
                [p[1] for p in pts],
                s=26,
                color=color,
                alpha=0.85,
                edgecolors="white",
                linewidths=0.5,
                label=f"evaluation on {_fraction_label(fraction)}",
                zorder=3,
            )
    steps = [
        (c, b) for c, b in zip(series["cumulative_cost"], series["incumbent"]) if b is not None
    ]
    if steps:
        ax.step(
            [s[0] for s in steps],
            [s[1] for s in steps],
            where="post",
            color=INCUMBENT_COLOR,
            linewidth=1.8,
            label="the study's answer so far",
            zorder=4,
        )
        ax.annotate(
            f"answer {steps[-1][1]:.4f}",
            xy=steps[-1],
            xytext=(-6, 8),
            textcoords="offset points",
            ha="right",
            fontsize=9,
            fontweight="bold",
        )
    _mark_failures(
        ax,
        [c for c, st in zip(series["cumulative_cost"], series["status"]) if st != "complete"],
        label="failed evaluation",
    )
    ax.set_xlim(left=0)
    ax.set_xlabel("compute spent (full-data epochs: training + landscape probes)")
    ax.set_ylabel(objective_label(objective))
    ax.set_title("The study's answer against budget spent")
    _legend_below(fig, ax, ncols=3)
    return fig


def _draw_rungs(ax: Axes, series: Mapping[str, Any], *, promoted_only: bool) -> None:
    """One panel of the rung diagram (all configurations, or the promoted ones)."""
    fractions: list[float] = list(series["fractions"])
    position = {f: i for i, f in enumerate(fractions)}
    best = series.get("best_trial")
    counts = dict.fromkeys(fractions, 0)
    failed_x: list[float] = []
    promoted_label = dropped_label = True
    for trial in series["trials"]:
        n = int(trial["trial"])
        for f in trial["fractions"]:
            counts[f] += 1
        promoted = len(trial["fractions"]) > 1
        if n == best or (promoted_only and not promoted):
            continue  # the best is drawn last, on top
        jitter = ((n * 7919) % 11 - 5) * 0.012  # deterministic, keeps dots apart
        xs = [position[f] + jitter for f in trial["fractions"]]
        ok = [(x, s) for x, s in zip(xs, trial["scores"]) if s is not None]
        failed_x += [x for x, s in zip(xs, trial["scores"]) if s is None]
        if promoted:
            ax.plot(
                [p[0] for p in ok],
                [p[1] for p in ok],
                "-o",
                color="#4c72b0",
                alpha=0.75,
                markersize=4,
                linewidth=1.2,
                label="promoted configuration" if promoted_label else None,
                zorder=3,
            )
            promoted_label = False
            if promoted_only and ok:
                ax.annotate(
                    str(n), xy=ok[-1], xytext=(4, 0), textcoords="offset points",
                    fontsize=7.5, color="#4c72b0", va="center",
                )  # fmt: skip
        elif ok:
            ax.scatter(
                [p[0] for p in ok],
                [p[1] for p in ok],
                s=18,
                color="#9a9a9a",
                alpha=0.8,
                label="not promoted" if dropped_label else None,
                zorder=2,
            )
            dropped_label = False
    for trial in series["trials"]:
        if int(trial["trial"]) != best:
            continue
        ok = [
            (position[f], s) for f, s in zip(trial["fractions"], trial["scores"]) if s is not None
        ]
        ax.plot(
            [p[0] for p in ok],
            [p[1] for p in ok],
            "-*",
            color=BEST_COLOR,
            markersize=11,
            linewidth=2.2,
            label=f"answer: trial {best}",
            zorder=5,
        )
        ax.annotate(
            str(best) if promoted_only else f"trial {best}: {ok[-1][1]:.4f}",
            xy=ok[-1],
            xytext=(8, 0) if promoted_only else (8, -3),
            textcoords="offset points",
            fontsize=8.5,
            fontweight="bold",
            color=BEST_COLOR,
            va="center" if promoted_only else "top",
        )
    if not promoted_only:
        _mark_failures(ax, failed_x)
    ax.set_xticks(range(len(fractions)))
    ax.set_xticklabels(
        [f"{format_share(f)}\n{counts[f]} evaluated" for f in fractions]
        if not promoted_only
        else [format_share(f) for f in fractions]
    )
    room = 0.2 if promoted_only else 0.45  # for the labels right of the last rung
    ax.set_xlim(-0.4, len(fractions) - 0.4 + (room if best is not None else 0.0))
    ax.set_xlabel("share of the training data (rung)")


def rung_figure(series: Mapping[str, Any], objective: str) -> Figure:
    """Each configuration's score on each data share it was trained on; a line joins
    the rungs of a promoted configuration, the best one is highlighted. The right panel
    zooms in on the promoted configurations (numbered by trial)."""
    fig = new_figure(9.6, 4.4)
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    _draw_rungs(left, series, promoted_only=False)
    left.set_ylabel(objective_label(objective))
    left.set_title("Rung diagram: which configurations were promoted")
    _draw_rungs(right, series, promoted_only=True)
    right.set_title("Promoted configurations (zoom)")
    _legend_below(fig, left, ncols=4)
    return fig


def curves_figure(
    curves: Sequence[Mapping[str, Any]], objective: str, best_trial: int | None
) -> Figure:
    """Learning curves of every evaluation: the validation metric and the training
    loss per epoch, coloured by data share; the best configuration in black."""
    fig = new_figure(9.0, 4.1)
    left, right = fig.subplots(1, 2)
    metric = "val_accuracy" if objective == "val_accuracy" else "val_loss"
    colors = fraction_colors([c["fraction"] for c in curves] or [1.0])
    best_fraction = max(
        (c["fraction"] for c in curves if c["trial"] == best_trial and c["status"] == "complete"),
        default=None,
    )
    for c in curves:
        is_best = c["trial"] == best_trial and c["fraction"] == best_fraction
        if is_best:
            continue
        style = {"color": colors[c["fraction"]], "alpha": 0.45, "linewidth": 1.0}
        left.plot(c["epoch"], _clean(c[metric]), **style)
        right.plot(c["epoch"], _positive(c["train_loss"]), **style)
    for c in curves:
        if c["trial"] == best_trial and c["fraction"] == best_fraction:
            left.plot(c["epoch"], _clean(c[metric]), color=INCUMBENT_COLOR, linewidth=2.4)
            right.plot(c["epoch"], _positive(c["train_loss"]), color=INCUMBENT_COLOR, linewidth=2.4)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=color, linewidth=2, label=_fraction_label(f))
        for f, color in colors.items()
    ]
    if best_trial is not None:
        handles.append(
            Line2D(
                [], [], color=INCUMBENT_COLOR, linewidth=2.4, label=f"answer (trial {best_trial})"
            )
        )
    left.set_xlabel("epoch")
    left.set_ylabel("validation accuracy" if metric == "val_accuracy" else "validation loss")
    left.set_title("Learning curves")
    right.set_xlabel("epoch")
    right.set_ylabel("training loss")
    right.set_yscale("log")
    _plain_log_labels(right.yaxis)
    right.set_title("Training loss")
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def landscape_figure(slices: Sequence[SliceResult]) -> Figure:
    """1-D loss slices of the top configurations and the 2-D slice of the best one."""
    import numpy as np
    from matplotlib.colors import LogNorm

    with_2d = bool(slices) and slices[0].losses_2d is not None
    fig = new_figure(9.0, 3.9) if with_2d else new_figure()
    axes = fig.subplots(1, 2) if with_2d else [fig.subplots()]
    ax = axes[0]
    palette = [BEST_COLOR, "#4c72b0", "#55a868", "#8172b2", "#937860"]
    for i, s in enumerate(slices):
        ax.plot(
            s.alphas,
            _positive(s.losses),
            color=palette[i % len(palette)],
            linewidth=2.2 if i == 0 else 1.4,
            label=f"trial {s.trial} (score {s.stored_score:.4f})",
        )
    ax.axvline(0.0, color="#777777", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    _plain_log_labels(ax.yaxis)
    ax.set_xlabel("step along a filter-normalised random direction (α)")
    ax.set_ylabel("training loss (probe set)")
    ax.set_title("Loss along a random direction")
    ax.legend(loc="upper center")
    if with_2d:
        best = slices[0]
        grid = np.asarray(best.grid)
        span = float(np.max(np.abs(grid)))
        losses = np.asarray(best.losses_2d, dtype=float)
        finite = losses[np.isfinite(losses) & (losses > 0)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (1e-3, 1.0)
        high = max(high, low * 1.01)
        levels = np.geomspace(low, high, 16)
        cax = axes[1]
        filled = cax.contourf(
            grid,
            grid,
            np.clip(losses.T, low, high),
            levels=levels,
            norm=LogNorm(low, high),
            cmap="magma_r",
        )
        cax.contour(
            grid,
            grid,
            np.clip(losses.T, low, high),
            levels=levels[::3],
            colors="white",
            linewidths=0.5,
            alpha=0.6,
        )
        cax.plot([0], [0], marker="+", color="white", markersize=12, markeredgewidth=2)
        cax.set_xticks([-span, -span / 2, 0.0, span / 2, span])
        cax.set_yticks([-span, -span / 2, 0.0, span / 2, span])
        cax.set_xlabel("direction 1 (α)")
        cax.set_ylabel("direction 2 (β)")
        cax.set_title(f"Loss surface around trial {best.trial}")
        cax.set_aspect("equal")
        cax.grid(False)
        from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

        bar = fig.colorbar(filled, ax=cax, shrink=0.9)
        bar.ax.yaxis.set_major_locator(FixedLocator(levels[::3].tolist()))
        bar.ax.yaxis.set_minor_locator(NullLocator())
        bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        bar.set_label("training loss (log scale)")
    return fig


def importance_figure(importances: Importances, top: int = 15) -> Figure:
    """The surrogate's largest feature importances, coloured by kind of input."""
    n = min(top, len(importances.names))
    fig = new_figure(7.2, 0.9 + 0.27 * max(n, 3))
    ax = fig.subplots()
    names = importances.names[:n][::-1]
    values = importances.values[:n][::-1]
    groups = importances.groups[:n][::-1]
    ax.barh(range(n), values, color=[GROUP_COLORS.get(g, "#999999") for g in groups], height=0.7)
    ax.set_yticks(range(n))
    ax.set_yticklabels(names)
    ax.set_xlabel("importance (mean decrease in impurity; all features sum to 1)")
    ax.set_title("Meta-model feature importances")
    ax.grid(axis="y", visible=False)
    from matplotlib.patches import Patch

    present = [g for g in GROUP_COLORS if g in set(groups)]
    ax.legend(
        handles=[Patch(color=GROUP_COLORS[g], label=g) for g in present],
        loc="lower right",
    )
    return fig


def outlier_floor(values: Sequence[float]) -> float | None:
    """Where to cut the y-axis so that a few far-off low scores (a diverged run among
    good ones) do not squash the rest: the lower Tukey fence, ``Q1 - 3 * IQR``; ``None``
    when no value lies below it."""
    import numpy as np

    if len(values) < 4:
        return None
    q1, q3 = np.percentile(values, [25, 75])
    fence = float(q1 - 3 * max(q3 - q1, 1e-3))
    return fence if min(values) < fence else None


def prediction_figure(series: Mapping[str, Sequence[Any]], objective: str) -> Figure:
    """The surrogate's predicted final rank (with its uncertainty) against the score the
    configuration then reached, coloured by the data share it was measured on. Scores
    far below the others are drawn as triangles on the bottom edge, with their value."""
    fig = new_figure()
    ax = fig.subplots()
    measured_fractions = [f for f in series["measured_fraction"] if f is not None]
    colors = fraction_colors(measured_fractions or [1.0])
    measured = [m for m in series["measured"] if m is not None]
    floor = outlier_floor(measured)
    far_label = "far lower score (value shown)"
    markers = (("promoted", "o"), ("carried", "D"), ("runner-up", "^"), ("proposed", "s"))
    for action, marker in markers:
        for fraction, color in colors.items():
            idx = [
                i
                for i, (a, f) in enumerate(zip(series["action"], series["measured_fraction"]))
                if a == action and f == fraction
            ]
            shown = [i for i in idx if floor is None or series["measured"][i] >= floor]
            if shown:
                ax.errorbar(
                    [series["predicted"][i] for i in shown],
                    [series["measured"][i] for i in shown],
                    xerr=[series["uncertainty"][i] for i in shown],
                    fmt=marker,
                    color=color,
                    ecolor=color,
                    elinewidth=0.9,
                    alpha=0.85,
                    markersize=6,
                    markeredgecolor="white",
                    capsize=2,
                    label=f"{action}, measured on {_fraction_label(fraction)}",
                )
            for i in (i for i in idx if i not in shown):
                ax.plot(
                    [series["predicted"][i]], [0.03], marker="v", color=color, markersize=7,
                    transform=ax.get_xaxis_transform(), clip_on=False, linestyle="none",
                    label=far_label,
                )  # fmt: skip
                far_label = "_nolegend_"
                ax.annotate(
                    f"{series['measured'][i]:.2f}", xy=(series["predicted"][i], 0.03),
                    xycoords=ax.get_xaxis_transform(), xytext=(5, 0),
                    textcoords="offset points", fontsize=7.5, va="center", color=color,
                )  # fmt: skip
    never = [i for i, m in enumerate(series["measured"]) if m is None]
    _mark_failures(ax, [series["predicted"][i] for i in never], label="never completed")
    if floor is not None:
        shown_values = [m for m in measured if m >= floor]
        span = max(shown_values) - min(shown_values) or 0.01
        ax.set_ylim(min(shown_values) - 0.25 * span, max(shown_values) + 0.08 * span)
    ax.set_xlabel("predicted final rank among the study's configurations (1 = best)")
    ax.set_ylabel(f"measured {objective_label(objective)}")
    ax.set_title("Meta-model predictions against measured scores")
    _legend_below(fig, ax, ncols=2)
    return fig


def _clean(values: Sequence[Any]) -> list[float]:
    return [float(v) if v is not None and math.isfinite(float(v)) else math.nan for v in values]


def _positive(values: Sequence[Any]) -> list[float]:
    """For log axes: non-positive and non-finite values become gaps."""
    return [v if math.isfinite(v) and v > 0 else math.nan for v in _clean(values)]


__all__ = [
    "DPI",
    "budget_figure",
    "curves_figure",
    "fraction_colors",
    "importance_figure",
    "landscape_figure",
    "new_figure",
    "prediction_figure",
    "report_style",
    "rung_figure",
    "save_figure",
]
