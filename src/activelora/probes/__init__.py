"""Probes for the two problems STAR diagnoses (Zhang et al. 2024, arXiv 2403.01165).

* calibration: ECE/MCE (equal-width and equal-mass bins), Brier, NLL, reliability tables and
  binary temperature scaling of per-example confidences;
* gap: rank agreement (Spearman, Kendall tau-b) of the base and LoRA-tuned model's
  uncertainties and how well each predicts the tuned model's errors (AUROC);
* plots: reliability diagrams, confidence histograms, gap scatter plots and per-round
  curves (matplotlib, Agg canvas, imported only when a plot is drawn).
"""

from .calibration import (
    apply_temperature,
    brier,
    calibration_report,
    ece,
    fit_temperature,
    mce,
    nll,
    reliability_table,
)
from .gap import auroc, gap_report, kendall_tau, spearman
from .plots import plot_confidence_histogram, plot_gap_scatter, plot_reliability, plot_round_curves

__all__ = [
    "apply_temperature",
    "auroc",
    "brier",
    "calibration_report",
    "ece",
    "fit_temperature",
    "gap_report",
    "kendall_tau",
    "mce",
    "nll",
    "plot_confidence_histogram",
    "plot_gap_scatter",
    "plot_reliability",
    "plot_round_curves",
    "reliability_table",
    "spearman",
]
