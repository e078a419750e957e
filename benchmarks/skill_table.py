"""Per skill: what each strategy labelled and what it learned (issue 16, the `mix` study).

    .venv/bin/python benchmarks/skill_table.py runs/mix [--rounds R] [--key skill] [--out PATH]

For every run in the folders (``<dir>/<strategy>/seed-<n>/``) that has reached round ``R``
(default: the most rounds any run has), it joins the run's own examples (rebuilt from its
``config.json`` with :func:`activelora.run.experiment_data.load_experiment_data`, so nothing but the
generator is trusted) on their ``meta[key]`` and reports, as means over seeds:

* **labels**: how many of the labels up to round ``R`` fall in each value of the key
  (``state.json``'s rounds): what the strategy bought;
* **accuracy**: round ``R``'s accuracy on each value, for the main test set
  (``predictions.jsonl``) and for every extra test set (``predictions_<name>.jsonl``);
* **confidence**: on the same sets, the mean per-token confidence of the adapter's answers
  (``confidence_normalized``); where it sits far above the accuracy the model is sure of
  wrong answers, and an uncertainty strategy will not buy that skill.

A strategy that saves labels on a skewed pool should buy the rare skills that random misses,
and its gain should show in the skills it bought. Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from activelora.config import config_from_dict, without_run_record
from activelora.run.experiment_data import load_experiment_data
from activelora.experiment.paired import read_correct
from activelora.experiment.report import locate_runs, predictions_file


def meta_values(examples, key: str) -> dict[str, str]:
    """``{example id: str(meta[key])}`` for the examples that carry the key."""
    return {ex.id: str(ex.meta[key]) for ex in examples if ex.meta and key in ex.meta}


def run_data(folder: Path, data_cache: dict):
    """The pool and test sets a run folder was built from, rebuilt from its ``config.json``.

    Runs with the same data and loop sections share one load through ``data_cache``.
    """
    config_json = without_run_record(json.loads((folder / "config.json").read_text()))
    data_key = json.dumps(config_json.get("data"), sort_keys=True) + json.dumps(config_json.get("loop"), sort_keys=True)
    if data_key not in data_cache:
        data_cache[data_key] = load_experiment_data(config_from_dict(config_json))
    return data_cache[data_key]


def run_breakdown(folder: Path, rounds: int, key: str, data_cache: dict) -> dict:
    """One run's labels and accuracies per value of ``meta[key]`` at round ``rounds - 1``."""
    data = run_data(folder, data_cache)
    pool_meta = meta_values(data.pool, key)
    tests = {"accuracy": meta_values(data.test, key)}
    tests.update({f"accuracy_{name}": meta_values(rows, key) for name, rows in data.extra_tests.items()})
    state = json.loads((folder / "state.json").read_text())
    labelled = [i for record in state["rounds"] if record["round"] < rounds for i in record["ids"]]
    result = {"labels": dict(Counter(pool_meta.get(i, "?") for i in labelled)), "accuracy": {}, "confidence": {}}
    last = folder / f"round-{rounds - 1}"
    for metric, ids in tests.items():
        path = last / predictions_file(metric)
        correct = read_correct(path)
        by_value: dict[str, list[bool]] = defaultdict(list)
        for test_id, ok in correct.items():
            by_value[ids.get(test_id, "?")].append(ok)
        result["accuracy"][metric] = {v: float(np.mean(oks)) for v, oks in by_value.items()}
        # Beside the accuracy, how sure the adapter was of its answers: a skill answered with
        # more confidence than accuracy is one an uncertainty strategy will not buy.
        sure: dict[str, list[float]] = defaultdict(list)
        for test_id, confidence in read_confidence(path).items():
            sure[ids.get(test_id, "?")].append(confidence)
        result["confidence"][metric] = {v: float(np.mean(c)) for v, c in sure.items()}
    return result


def read_confidence(predictions: Path) -> dict[str, float]:
    """``{test id: exp(mean token log-prob) of the adapter's answer}`` from a predictions file
    (``confidence_normalized``, the per-token confidence the calibration metrics also report)."""
    rows = (json.loads(line) for line in predictions.read_text().splitlines() if line.strip())
    return {str(row["id"]): float(row["confidence_normalized"]) for row in rows}


def mean_over_seeds(per_seed: list[dict[str, float]]) -> dict[str, float]:
    values = sorted({v for d in per_seed for v in d})
    return {v: float(np.mean([d.get(v, 0.0) for d in per_seed])) for v in values}


def write_table(out: Path, table: str, summary: dict) -> None:
    """``<out>.md`` (the table) and ``<out>.json`` (the numbers behind it), then the table on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n")
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="experiment folders")
    parser.add_argument("--rounds", type=int, help="use round R-1 of every run (default: the most rounds any run has)")
    parser.add_argument("--key", default="skill", help="the meta key to break down by (default: skill)")
    parser.add_argument("--out", help="output path without suffix (default: <first dir>/skill_table)")
    args = parser.parse_args()
    located = locate_runs(args.dirs)
    rounds = args.rounds or max(len(rows) for _, _, rows, _ in located)
    data_cache: dict = {}
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    seeds: dict[str, list[int]] = defaultdict(list)
    for label, seed, rows, folder in located:
        if len(rows) < rounds:
            continue
        by_strategy[label].append(run_breakdown(folder, rounds, args.key, data_cache))
        seeds[label].append(seed)
    if not by_strategy:
        raise SystemExit(f"skill_table: no run has reached round {rounds - 1}")
    names = sorted(by_strategy, key=lambda s: (s != "random", s))
    summary = {"key": args.key, "rounds": rounds, "strategies": {}}
    for name in names:
        runs = by_strategy[name]
        metrics = sorted({m for run in runs for m in run["accuracy"]})
        summary["strategies"][name] = {
            "seeds": sorted(seeds[name]),
            "labels": mean_over_seeds([{k: float(v) for k, v in run["labels"].items()} for run in runs]),
            "accuracy": {m: mean_over_seeds([run["accuracy"][m] for run in runs]) for m in metrics},
            "confidence": {m: mean_over_seeds([run["confidence"][m] for run in runs]) for m in metrics}}
    values = sorted({v for info in summary["strategies"].values() for v in info["labels"]}
                    | {v for info in summary["strategies"].values() for acc in info["accuracy"].values() for v in acc})
    lines = [f"Per `{args.key}`, at round {rounds - 1}: means over each strategy's seeds "
             f"({', '.join(f'{n}: {len(by_strategy[n])}' for n in names)}).", ""]

    def block(title: str, cell) -> None:
        lines.extend([f"### {title}", "", "| " + args.key + " | " + " | ".join(names) + " |",
                      "|---|" + "---:|" * len(names)])
        for value in values:
            lines.append(f"| {value} | " + " | ".join(cell(summary["strategies"][n], value) for n in names) + " |")
        lines.append("")

    block("labels bought (up to this round)", lambda info, v: f"{info['labels'].get(v, 0.0):.1f}")
    for metric in sorted({m for info in summary["strategies"].values() for m in info["accuracy"]}):
        block(f"`{metric}` per {args.key}",
              lambda info, v, m=metric: (f"{info['accuracy'][m][v]:.2f}" if v in info["accuracy"].get(m, {}) else "–"))
    for metric in sorted({m for info in summary["strategies"].values() for m in info["confidence"]}):
        block(f"`{metric}`'s mean answer confidence (per token) per {args.key}",
              lambda info, v, m=metric: (f"{info['confidence'][m][v]:.2f}" if v in info["confidence"].get(m, {}) else "–"))
    table = "\n".join(lines)
    write_table(Path(args.out) if args.out else Path(args.dirs[0]) / "skill_table", table, summary)


if __name__ == "__main__":
    main()
