"""PNG plots of the calibration and uncertainty-gap probes.

Each function draws on its own ``matplotlib.figure.Figure`` with the Agg canvas, so it
works headless and never touches pyplot or the process-wide backend. matplotlib is
imported inside the functions: importing :mod:`activelora.probes` stays cheap.
Every function writes ``path`` (creating its folder) and returns it as a ``Path``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError
from .calibration import _check_bins, _pair, as_1d_float, as_correct, check_same_length, ece, mce, reliability_table
from .gap import auroc, spearman

# Colour-blind-safe pair (Okabe & Ito): blue for right answers, vermillion for wrong ones.
RIGHT, WRONG = "#0072B2", "#D55E00"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def plot_reliability(
    confidence: Any, correct: Any, bins: int, path: str | Path, *, binning: str = "width",
    title: str | None = None,
) -> Path:
    """Reliability diagram (Guo et al. 2017, Fig. 1): accuracy per confidence bin against
    the diagonal, the gap to the bin's mean confidence shaded, and a lower panel with the
    number of examples per bin. ECE and MCE (same binning) are in the title.
    """
    conf, corr = _pair(confidence, correct)
    table = reliability_table(conf, corr, bins, binning)
    e, m = ece(conf, corr, bins, binning), mce(conf, corr, bins, binning)
    full = [r for r in table if r["count"]]

    fig = _figure(5.5, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], ls="--", color="0.4", lw=1, label="perfect calibration")
    if binning == "width":
        lo = np.array([r["lo"] for r in full])
        width = np.array([r["hi"] - r["lo"] for r in full])
        acc = np.array([r["accuracy"] for r in full])
        mean_conf = np.array([r["confidence"] for r in full])
        top.bar(lo, acc, width=width, align="edge", color=RIGHT, edgecolor="white",
                label="accuracy")
        # The gap between accuracy and mean confidence (what ECE averages), hatched and
        # unfilled so that the accuracy bar stays visible where the two overlap.
        top.bar(lo, mean_conf - acc, bottom=acc, width=width, align="edge", facecolor="none",
                edgecolor=WRONG, hatch="///", lw=1, label="gap to mean confidence")
        bottom.bar(lo, [r["count"] for r in full], width=width, align="edge", color="0.5",
                   edgecolor="white")
    else:
        # Equal-mass bins have data-dependent ranges (possibly zero wide): draw points at
        # (mean confidence, accuracy), and below, the confidence histogram with bin limits.
        mean_conf = np.array([r["confidence"] for r in full])
        acc = np.array([r["accuracy"] for r in full])
        top.plot(mean_conf, acc, "o-", color=RIGHT, clip_on=False,
                 label="accuracy vs mean confidence per bin")
        bottom.hist(conf, bins=np.linspace(0.0, 1.0, 21), color="0.6", edgecolor="white")
        for r in full[1:]:
            bottom.axvline(r["lo"], color=WRONG, lw=0.8, ls=":")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title or f"Reliability ({binning} bins={bins}, n={len(conf)})\n"
                  f"ECE={e:.3f}  MCE={m:.3f}", fontsize=10)
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("examples")
    if binning == "mass":
        bottom.set_title("confidence histogram; dotted: equal-mass bin limits", fontsize=8)
    return _save(fig, path)


def plot_confidence_histogram(
    confidence: Any, correct: Any, path: str | Path, *, bins: int = 20, title: str | None = None
) -> Path:
    """Overlaid histograms of the confidence of right and wrong answers (shared bin edges)."""
    conf, corr = _pair(confidence, correct)
    ok = corr.astype(bool)
    edges = np.linspace(0.0, 1.0, _check_bins(bins) + 1)
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    for mask, colour, name in ((ok, RIGHT, "correct"), (~ok, WRONG, "wrong")):
        # A filled histogram plus its outline: where the two overlap both stay readable.
        ax.hist(conf[mask], bins=edges, color=colour, alpha=0.45,
                label=f"{name} (n={int(mask.sum())})")
        ax.hist(conf[mask], bins=edges, color=colour, histtype="step", lw=1.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8)
    ax.set_title(title or f"Confidence of correct vs wrong answers (n={len(conf)})\n"
                 f"accuracy={corr.mean():.3f}  mean confidence={conf.mean():.3f}", fontsize=10)
    return _save(fig, path)


def plot_gap_scatter(
    u_base: Any, u_full: Any, correct: Any, path: str | Path, *, title: str | None = None
) -> Path:
    """Base vs full-model uncertainty per example, coloured by whether the full model was
    right; Spearman's rho and the AUROC of each uncertainty for its errors in the title."""
    ub, uf = as_1d_float(u_base, "u_base"), as_1d_float(u_full, "u_full")
    ok = as_correct(correct, "correct").astype(bool)
    check_same_length(u_base=ub, u_full=uf, correct=ok)
    fig = _figure(5.5, 5.0)
    ax = fig.subplots()
    ax.scatter(ub[ok], uf[ok], s=14, color=RIGHT, alpha=0.7, label="full model correct")
    ax.scatter(ub[~ok], uf[~ok], s=14, color=WRONG, alpha=0.7, marker="x", label="full model wrong")
    ax.set_xlabel("uncertainty, base model")
    ax.set_ylabel("uncertainty, full model (base + LoRA)")
    ax.legend(fontsize=8)
    rho = spearman(ub, uf)
    ax.set_title(title or f"Uncertainty gap (n={len(ub)}): Spearman={_fmt(rho)}\n"
                 f"AUROC(wrong) base={_fmt(auroc(ub, ~ok))}  full={_fmt(auroc(uf, ~ok))}",
                 fontsize=10)
    return _save(fig, path)


def _curve_arrays(points: Sequence[Sequence[Any]], where: str):
    rows = []
    for p in points:
        if len(p) != 3:
            raise DataError(f"{where}: each point must be (labels, mean, std), got {p!r}")
        rows.append([math.nan if v is None else float(v) for v in p])
    if not rows:
        raise DataError(f"{where}: no points")
    arr = np.array(sorted(rows, key=lambda r: r[0]), dtype=np.float64)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def plot_round_curves(
    curves: Mapping[str, Mapping[str, Sequence[Sequence[Any]]]], path: str | Path, *,
    title: str | None = None, references: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """One panel per metric, one line per strategy with a mean ± std band, x = labelled examples.

    ``curves[metric][strategy]`` is a list of ``(labels, mean, std)``. A ``None`` mean
    (e.g. an undefined Spearman) leaves a gap in the line; a ``None`` std draws no band.
    A strategy keeps its colour in every panel. ``references[metric]`` maps a name (e.g.
    ``"zero-shot"``) to a value drawn as a dashed horizontal line in that metric's panel.
    """
    if not curves or not any(curves.values()):
        raise DataError("plot_round_curves: no curves to plot")
    strategies = sorted({s for per in curves.values() for s in per})
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    colour = {s: palette[i % len(palette)] for i, s in enumerate(strategies)}
    metrics = list(curves)
    ncols = min(len(metrics), 2)
    nrows = math.ceil(len(metrics) / ncols)
    fig = _figure(5.0 * ncols, 3.4 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, metric in zip(axes, metrics):
        for strategy, points in curves[metric].items():
            x, mean, std = _curve_arrays(points, f"curves[{metric!r}][{strategy!r}]")
            ax.plot(x, mean, "o-", ms=3, color=colour[strategy], label=strategy)
            ax.fill_between(x, mean - std, mean + std, color=colour[strategy], alpha=0.18, lw=0)
        for name, value in (references or {}).get(metric, {}).items():
            ax.axhline(value, color="0.35", ls="--", lw=1)
            ax.annotate(f"{name} {value:.2f}", (0.01, value), xycoords=("axes fraction", "data"),
                        xytext=(0, 3), textcoords="offset points", fontsize=8, color="0.3")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("labelled examples")
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ms=3, color=colour[s]) for s in strategies]
    fig.legend(handles=handles, labels=strategies, loc="outside lower center",
               ncols=min(len(strategies), 5), fontsize=9)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
