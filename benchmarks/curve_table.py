"""A learning curve from random labels against the majority-class floor (issue 16, deliver 3).

    .venv/bin/python benchmarks/curve_table.py runs/curve_boolq [--out benchmarks/results/curve_boolq]

Reads the folders ``benchmarks/learning_curve.sh`` writes, ``<dir>/n-<size>/random/seed-<n>/``
(round 0 only: ``metrics.jsonl`` and ``round-0/predictions.jsonl``), and reports per size:

* the test accuracy, its mean and 95% Student-t interval over seeds;
* the **majority-class floor**: the share of the test set's commonest gold answer (BoolQ:
  ``true``; OBQA: one letter). A model that always gives that answer scores it, so accuracy
  above it is what the model learnt of the task beyond the label prior;
* the accuracy minus the floor, with its t-interval over seeds, and the number of test
  problems that difference is;
* the share of test answers that are the majority answer, which tells a model that learnt the
  prior (a share near 1) from one that learnt the questions;
* the zero-shot accuracy (``zero_shot.json``), where a run recorded it.

Writes ``<out>.md`` and ``<out>.json`` (default ``<dir>/curve_table``).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from activelora.experiment.paired import t_interval
from activelora.atomic_files import read_jsonl
from tables import fail, fmt, write_table


def seed_result(seed_dir: Path) -> dict | None:
    """Round 0's accuracy, test size and answers of one run, or None before it has finished."""
    rows = read_jsonl(seed_dir / "metrics.jsonl") if (seed_dir / "metrics.jsonl").is_file() else []
    predictions = seed_dir / "round-0" / "predictions.jsonl"
    if not rows or not predictions.is_file():
        return None
    answers = read_jsonl(predictions)
    return {"accuracy": rows[0]["accuracy"], "n_test": rows[0]["n_test"], "labels": rows[0]["labeled"],
            "gold": [a["answer"] for a in answers], "extracted": [a["extracted"] for a in answers]}


def clip_interval(interval: tuple[float, float | None, float | None]) -> tuple[float, float | None, float | None]:
    mean, lo, hi = interval
    return (mean, None, None) if lo is None else (mean, max(0.0, lo), min(1.0, hi))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="the learning curve's folder (benchmarks/learning_curve.sh OUTPUT)")
    parser.add_argument("--out", help="output path without suffix (default: <dir>/curve_table)")
    args = parser.parse_args()
    root = Path(args.dir)
    sizes = sorted((int(m.group(1)), p) for p in root.glob("n-*") if (m := re.fullmatch(r"n-(\d+)", p.name)))
    if not sizes:
        fail(f"{root}: no n-<size> folders (run benchmarks/learning_curve.sh first)")
    zero_shot = next((json.loads(p.read_text())["accuracy"] for _, folder in sizes
                      if (p := folder / "zero_shot.json").is_file()), None)
    result = {"zero_shot": zero_shot, "sizes": {}}
    floor = None
    for size, folder in sizes:
        runs = {int(d.name.removeprefix("seed-")): r for d in sorted((folder / "random").glob("seed-*"))
                if (r := seed_result(d)) is not None}
        if not runs:
            continue
        gold = next(iter(runs.values()))["gold"]
        majority, count = Counter(gold).most_common(1)[0]
        floor = count / len(gold)
        accuracy = [r["accuracy"] for r in runs.values()]
        majority_share = [float(np.mean([e == majority for e in r["extracted"]])) for r in runs.values()]
        above = t_interval([a - floor for a in accuracy])
        result["sizes"][size] = {
            "seeds": sorted(runs), "n_test": len(gold), "majority_answer": majority, "floor": floor,
            "accuracy_per_seed": dict(zip(sorted(runs), accuracy)), "accuracy": t_interval(accuracy),
            "above_floor": above, "above_floor_problems": above[0] * len(gold),
            # A share lies in [0, 1]; the t-interval over few seeds can pass either end.
            "majority_answer_share": clip_interval(t_interval(majority_share))}
    if not result["sizes"]:
        fail(f"{root}: no run has finished its round 0 yet")

    lines = [f"Test problems: {', '.join(sorted({str(v['n_test']) for v in result['sizes'].values()}))}; "
             f"majority-class floor {floor:.3f}" + (f"; zero-shot accuracy {zero_shot:.3f}" if zero_shot is not None else "")
             + ". 95% intervals are Student-t over seeds.", "",
             "| labels | seeds | accuracy | per seed | above the floor | in test problems | answers that are the majority answer |",
             "|---:|---:|---|---|---|---:|---|"]
    for size, info in result["sizes"].items():
        per_seed = ", ".join(f"{a:.3f}" for a in info["accuracy_per_seed"].values())
        lines.append(f"| {size} | {len(info['seeds'])} | {fmt(*info['accuracy'])} | {per_seed} | {fmt(*info['above_floor'])} | "
                     f"{info['above_floor_problems']:+.1f} | {fmt(*info['majority_answer_share'], 2)} |")
    table = "\n".join(lines) + "\n"
    write_table(Path(args.out) if args.out else root / "curve_table", table, result)


if __name__ == "__main__":
    main()
