"""Per-round table: plain LoRA against STAR's hybrid regularisation at the same label counts.

    .venv/bin/python benchmarks/calibration_table.py runs/bench/calib-plain runs/bench/calib-hybrid

Each folder is an `activelora run` experiment of the `random` strategy (same seeds, hence the
same labelled sets); prints accuracy, ECE, Brier, mean confidence and the uncertainty-gap
metrics as mean ± std over seeds, one row per round.
"""

from __future__ import annotations

import sys

from activelora.report import curve, find_runs

METRICS = ("accuracy", "mean_confidence", "ece", "brier", "gap_spearman", "gap_auroc_base", "gap_auroc_full")


def fmt(mean, std):
    return "–" if mean is None else f"{mean:.3f} ± {std:.3f}"


def main(plain_dir: str, hybrid_dir: str) -> None:
    runs = {"plain LoRA": find_runs([plain_dir]), "hybrid (STAR)": find_runs([hybrid_dir])}
    print("| training | labels | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 2) + "|")
    rows = []
    for name, by_strategy in runs.items():
        seeds = next(iter(by_strategy.values()))
        curves = {m: curve(seeds, m) for m in METRICS}
        for i, (labels, _, _) in enumerate(curves["accuracy"]):
            cells = [fmt(*curves[m][i][1:]) for m in METRICS]
            rows.append((labels, name, cells))
    for labels, name, cells in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"| {name} | {labels} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
