"""Labels saved against random, read between rounds, from validity tables already written (issue 16).

    .venv/bin/python benchmarks/saving_table.py TABLE.json[@LABEL] [TABLE.json[@LABEL] ...] --out PATH

Issue 16's target is a label saving: the labels a strategy needs to reach random's final
accuracy, against random's. ``validity_table.py`` counts them in whole rounds, where a user
can stop; with rounds of 32 up to 192 labels, that rounds every saving to 0%, 17%, 33% and
so on, and a saving of 10% shows as none. This script reads the same crossing between rounds
(``activelora.experiment.paired.labels_to_reach``, linear interpolation), the convention of
``allocation_bound.py`` and ``allocation_rules.py``, so that measured and modelled savings
compare. It works from the tables' JSON (each strategy's ``per_seed_accuracy``), so run
folders need not be kept.

Per strategy and seed paired with random (the same seed in any of the tables):
``1 − L_s / L_ref``, with ``L_ref`` random's last label count and ``L_s`` where the strategy's
curve first reaches that seed's random final accuracy; their mean and 95% t-interval over
seeds when every seed reaches it (a seed that does not needs more labels than were bought, by
an unknown amount). Also the labels at which the strategy's *mean* curve reaches random's
mean final accuracy. Random's curves found in several tables must agree (a random run of a
seed reproduces exactly), and so must any other strategy's, unless ``@LABEL`` after a table
names its strategies ``<strategy> (LABEL)`` (a study of ``star`` with other settings, say);
the tables must be of one metric. Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import fail, write_table  # noqa: E402  (a sibling script, not a package)

from activelora.experiment.paired import label_saving, labels_to_reach, t_interval  # noqa: E402

REFERENCE = "random"


def read_curves(tables: list[str]) -> tuple[str, dict[str, dict[int, list[tuple[int, float]]]]]:
    """The tables' metric and ``{strategy: {seed: [(labels, accuracy), ...]}}``."""
    metrics, curves = set(), {}
    for table_arg in tables:
        path_text, _, label = table_arg.partition("@")
        path = Path(path_text)
        try:
            table = json.loads(path.read_text())
            metrics.add(table.get("metric", "accuracy"))
            for strategy, info in table["strategies"].items():
                name = f"{strategy} ({label})" if label and strategy != REFERENCE else strategy
                for seed, accuracies in info["per_seed_accuracy"].items():
                    curve = list(zip(info["labels"], accuracies))
                    known = curves.setdefault(name, {}).get(int(seed))
                    if known is not None and known != curve:
                        fail(f"{path}: {name} seed {seed} differs from the same run in an earlier table")
                    curves[name][int(seed)] = curve
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail(f"{path}: not a validity_table.py JSON ({type(exc).__name__}: {exc})")
    if len(metrics) != 1:
        fail(f"the tables are of different metrics ({', '.join(sorted(metrics))}): give tables of one")
    if REFERENCE not in curves:
        fail(f"no {REFERENCE} curves in {', '.join(tables)}")
    return metrics.pop(), curves


def savings(curves: dict[str, dict[int, list[tuple[int, float]]]]) -> dict[str, dict]:
    """Per strategy: per-seed interpolated savings, their interval, and the mean curve's crossing."""
    reference = curves[REFERENCE]
    target = float(np.mean([curve[-1][1] for curve in reference.values()]))
    result = {}
    for name, seeds in sorted(curves.items()):
        if name == REFERENCE:
            continue
        paired = sorted(set(seeds) & set(reference))
        if not paired:
            continue
        per_seed = {s: label_saving(seeds[s], reference[s]).saving_interpolated for s in paired}
        reached = [v for v in per_seed.values() if v is not None]
        labels = [n for n, _ in seeds[paired[0]]]
        mean_curve = [(n, float(np.mean([seeds[s][i][1] for s in paired]))) for i, n in enumerate(labels)]
        result[name] = {"seeds": paired, "saving_per_seed": per_seed,
                        "saving": t_interval(reached) if len(reached) == len(paired) else None,
                        "reached": [len(reached), len(paired)],
                        "mean_curve_labels": labels_to_reach(mean_curve, target),
                        "reference_labels": reference[paired[0]][-1][0]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="+", help="validity_table.py JSON files, each optionally @LABEL")
    parser.add_argument("--out", required=True, help="output path without suffix")
    args = parser.parse_args()
    metric, curves = read_curves(args.tables)
    result = savings(curves)
    lines = [f"Metric: `{metric}`. Labels saved against {REFERENCE}, each seed's crossing of its {REFERENCE} final "
             "accuracy read between rounds; 95% Student-t intervals over seeds.", "",
             f"| strategy | seeds | labels saved (paired) | per seed | mean curve reaches {REFERENCE}'s mean final at |",
             "|---|---|---|---|---|"]
    for name, info in result.items():
        if info["saving"] is None:
            saved = f"{info['reached'][0]} of {info['reached'][1]} seeds reached"
        else:
            mean, lo, hi = info["saving"]
            saved = f"{mean:+.0%}" + (f" [{lo:+.0%}, {hi:+.0%}]" if lo is not None else "")
        per = ", ".join(f"s{s}: " + ("never" if v is None else f"{v:+.0%}") for s, v in info["saving_per_seed"].items())
        reach = info["mean_curve_labels"]
        at = "never" if reach is None else f"{reach:.0f} of {info['reference_labels']}"
        lines.append(f"| {name} | {len(info['seeds'])} | {saved} | {per} | {at} |")
    lines += ["", "Tables read: " + ", ".join(f"`{p}`" for p in args.tables)]
    write_table(Path(args.out), "\n".join(lines) + "\n", {"metric": metric, "strategies": result})


if __name__ == "__main__":
    main()
