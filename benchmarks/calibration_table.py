"""Per-round table: plain LoRA against STAR's hybrid regularisation at the same label counts.

    .venv/bin/python benchmarks/calibration_table.py runs/bench/calib-plain runs/bench/calib-hybrid

Each folder is an `activelora run` experiment of the `random` strategy (same seeds, hence the
same labelled sets); prints accuracy, ECE, Brier, mean confidence and the uncertainty-gap
metrics as mean ± std over seeds, one row per round.

``ece`` is over the sequence probability p(y|x), the confidence the loop records. For a
worked answer of 20-40 tokens that probability is tiny even when the answer is right (many
phrasings reach the same number), so its ECE is close to ``accuracy - mean confidence``.
``ece_norm`` is the ECE of the length-normalised confidence exp(mean token log-prob), read
from each round's ``predictions.jsonl``: a confidence on the scale of the accuracy, where
over-confidence can show.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from activelora.probes.calibration import ece
from activelora.experiment.report import curve, find_runs

METRICS = ("accuracy", "mean_confidence", "ece", "ece_norm", "mean_conf_norm", "brier",
           "gap_spearman", "gap_auroc_base", "gap_auroc_full")


def fmt(mean, std):
    if mean is None:
        return "–"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def with_normalized_confidence(experiment: Path, seed_rows: dict[int, list[dict]]) -> dict[int, list[dict]]:
    """Add ``ece_norm`` and ``mean_conf_norm`` to every row from its round's predictions."""
    out = {}
    for seed, rows in seed_rows.items():
        out[seed] = []
        for row in rows:
            path = next(experiment.glob(f"*/seed-{seed}/round-{row['round']}/predictions.jsonl"))
            preds = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            conf = [p["confidence_normalized"] for p in preds]
            correct = [p["correct"] for p in preds]
            out[seed].append({**row, "ece_norm": ece(conf, correct), "mean_conf_norm": sum(conf) / len(conf)})
    return out


def main(plain_dir: str, hybrid_dir: str) -> None:
    experiments = {"plain LoRA": Path(plain_dir), "hybrid (STAR)": Path(hybrid_dir)}
    print("| training | labels | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 2) + "|")
    rows = []
    for name, folder in experiments.items():
        seeds = with_normalized_confidence(folder, next(iter(find_runs([folder]).values())))
        curves = {m: curve(seeds, m) for m in METRICS}
        for i, (labels, _, _) in enumerate(curves["accuracy"]):
            cells = [fmt(*curves[m][i][1:]) for m in METRICS]
            rows.append((labels, name, cells))
    for labels, name, cells in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"| {name} | {labels} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
