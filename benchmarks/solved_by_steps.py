"""What each strategy's labels taught, by problem difficulty: the validity study's "why" (issue 9).

    .venv/bin/python benchmarks/solved_by_steps.py runs/validity-gpu [--out benchmarks/results/solved_by_steps_gpu]

For every run of an ``arith`` experiment folder (``<dir>/<strategy>/seed-<n>/``), and every round:

* the test problems it solved, split by the problem's number of arithmetic steps (the ``steps``
  field of the generator's metadata; the test rows are regenerated, since ``predictions.jsonl``
  stores only the id);
* what its batch was made of, from ``metrics.jsonl``: mean steps and the one-step share, against
  the pool's.

Then, per strategy and round, the difference from ``random`` in problems solved per step count,
paired by seed (same initial labels, same test set), with a 95% Student-t interval over seeds
(``activelora.experiment.paired.t_interval``). A strategy that buys hard problems shows here as a loss on
the one-step problems and a gain on the multi-step ones. Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from activelora.data.arith import generate_arith
from activelora.experiment.paired import t_interval
from activelora.experiment.report import locate_runs
from activelora.atomic_files import read_jsonl

REFERENCE = "random"


def solved_by_steps(predictions: Path, steps_of: dict[str, int], step_counts: list[int]) -> list[int]:
    """Test problems solved in one round, one count per entry of ``step_counts``."""
    solved = defaultdict(int)
    for row in read_jsonl(predictions):
        solved[steps_of[row["id"]]] += bool(row["correct"])
    return [solved[k] for k in step_counts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="arith experiment folders")
    parser.add_argument("--out", help="output path without suffix (default: <first dir>/solved_by_steps)")
    args = parser.parse_args()
    located = locate_runs(args.dirs)
    n_test = located[0][2][0]["n_test"]
    steps_of = {ex.id: ex.meta["steps"] for ex in generate_arith("test", n_test)}
    step_counts = sorted(set(steps_of.values()))
    per_step_total = [sum(1 for s in steps_of.values() if s == k) for k in step_counts]

    # solved[label][seed][round] = counts per step; batch[label][round] = (mean steps, one-step share) per seed
    solved: dict[str, dict[int, dict[int, list[int]]]] = defaultdict(lambda: defaultdict(dict))
    batch: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    pool = None
    for label, seed, rows, folder in located:
        for row in rows:
            predictions = folder / f"round-{row['round']}" / "predictions.jsonl"
            if predictions.is_file():
                solved[label][seed][row["round"]] = solved_by_steps(predictions, steps_of, step_counts)
            if row.get("batch_mean_steps") is not None:
                batch[label][row["round"]].append((row["batch_mean_steps"], row["batch_share_steps=1"]))
                if row["round"] == 0:  # later rounds describe what is left of the pool
                    pool = (row["pool_mean_steps"], row["pool_share_steps=1"])

    rounds = sorted({r for runs in solved.values() for by_round in runs.values() for r in by_round})
    result: dict = {"test_problems_by_steps": dict(zip(map(str, step_counts), per_step_total)),
                    "pool": {"mean_steps": pool[0], "one_step_share": pool[1]} if pool else None, "strategies": {}}
    lines = ["Test problems by steps: " + ", ".join(f"{k}: {n}" for k, n in zip(step_counts, per_step_total))
             + (f". Pool: mean steps {pool[0]:.2f}, one-step share {pool[1]:.2f}." if pool else "."), "",
             "| strategy | round | seeds | batch mean steps | batch one-step share | solved by steps (mean over seeds) "
             f"| vs {REFERENCE}, paired: Δ solved by steps [95% t-interval] |",
             "|---|---|---|---|---|---|---|"]
    for label in sorted(solved, key=lambda name: (name != REFERENCE, name)):
        result["strategies"][label] = {}
        for r in rounds:
            seeds = sorted(s for s in solved[label] if r in solved[label][s])
            if not seeds:
                continue
            counts = np.array([solved[label][s][r] for s in seeds], dtype=float)
            entry = {"seeds": seeds, "solved_mean": counts.mean(axis=0).round(2).tolist()}
            comp = batch[label].get(r)
            if comp:
                entry["batch_mean_steps"] = round(float(np.mean([c[0] for c in comp])), 3)
                entry["batch_one_step_share"] = round(float(np.mean([c[1] for c in comp])), 3)
            paired_text = "–"
            if label != REFERENCE:
                both = [s for s in seeds if r in solved.get(REFERENCE, {}).get(s, {})]
                if both:
                    diffs = np.array([np.subtract(solved[label][s][r], solved[REFERENCE][s][r]) for s in both], float)
                    cells, entry["vs_reference"] = [], {}
                    for j, k in enumerate(step_counts):
                        mean, lo, hi = t_interval(diffs[:, j].tolist())
                        entry["vs_reference"][str(k)] = {"mean": mean, "lo": lo, "hi": hi, "seeds": both}
                        cells.append(f"{k}: {mean:+.1f}" + (f" [{lo:+.1f}, {hi:+.1f}]" if lo is not None else ""))
                    paired_text = "; ".join(cells)
            result["strategies"][label][str(r)] = entry
            solved_text = ", ".join(f"{k}: {v:.1f}" for k, v in zip(step_counts, entry["solved_mean"]))
            lines.append(f"| {label} | {r} | {len(seeds)} | {entry.get('batch_mean_steps', '–')} | "
                         f"{entry.get('batch_one_step_share', '–')} | {solved_text} | {paired_text} |")
    out = Path(args.out) if args.out else Path(args.dirs[0]) / "solved_by_steps"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
