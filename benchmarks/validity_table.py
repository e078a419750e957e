"""The validity study's table (issue 9, deliver 9), from run folders, finished or not.

    .venv/bin/python benchmarks/validity_table.py runs/validity [--rounds R] [--out benchmarks/results/validity]
    .venv/bin/python benchmarks/validity_table.py runs/mix --metric accuracy_pool_like
    .venv/bin/python benchmarks/validity_table.py runs/star-only --reference-table benchmarks/results/mix_cpu.json

``--metric`` picks the test set: ``accuracy`` (default; for ``mix`` the skill-balanced set) or
an extra test set's ``accuracy_<name>`` (``mix``: ``accuracy_pool_like``), whose answers are in
``predictions_<name>.jsonl`` and whose size is ``n_test_<name>``.

Reads ``<dir>/<strategy>/seed-<n>/metrics.jsonl`` (``activelora.experiment.report.find_runs``) and reports,
per strategy, over the seeds whose run has reached round ``R`` (default: the most rounds any
run has; ``--rounds`` smaller uses partial results, every curve cut at the same round):

* the normalised area under the learning curve (``report.normalized_aulc``: trapezoids over
  the label range, divided by its width, i.e. the mean accuracy over the range) per seed, its
  mean and a 95% **t-interval over seeds** (Student t with n-1 degrees of freedom);
* the paired difference against ``random`` (same seed = same initial labels and test set):
  AULC and final accuracy, per seed, their mean and 95% t-interval, and the mean final
  difference in test problems (difference x test-set size);
* per seed, the last round's test problems that only the strategy or only random solved,
  with McNemar's exact p (``activelora.experiment.paired``): the only test a single seed allows;
* the labels the strategy's mean curve needs to reach random's final mean accuracy
  (``report.labels_to_target``, whole rounds; "not reached" when it never does), and in
  brackets the same read between rounds (``paired.labels_to_reach``, linear interpolation:
  what ``allocation_bound.py`` and ``allocation_rules.py`` report, so that the scripts' savings compare);
* per seed, the labels it saves against random (``paired.label_saving``: the first round at
  which it reaches that seed's random final accuracy, as a share of random's labels), their
  mean and 95% t-interval over seeds. The interval is given only when every paired seed
  reached the target: a seed that did not needs more labels than were bought, by an unknown
  amount, and no number stands in for it. The same again with each seed's crossing read
  between rounds (``saving_interpolated``), so that a saving of less than one round shows.

Seeds enter a comparison only where both runs have the round, so partial results stay
paired.

``--reference-table T.json`` pairs with ``random`` curves recorded in an earlier table of this
script (its ``per_seed_accuracy``), for the seeds with no ``random`` run folder. That is sound
only because a ``random`` run of a given config and seed reproduces its curve exactly across
commits (checked where a folder and the record share a seed: they must agree, or the script
stops). A recorded seed has no answers, so McNemar's test is left out for it.

Writes ``<out>.md`` and ``<out>.json`` (compact: per seed, per round accuracy).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from activelora.experiment.paired import discordance, label_saving, labels_to_reach, read_correct, t_interval
from activelora.experiment.report import (curve, labels_to_target, locate_runs, normalized_aulc, predictions_file,
                                         runs_by_label, test_size_key)
from tables import fail, fmt, write_table

REFERENCE = "random"


def truncated(rows: list[dict], rounds: int) -> list[dict] | None:
    """The run's first ``rounds`` rounds, or None when it has not reached them yet."""
    by_round = {row["round"]: row for row in rows}
    if any(r not in by_round for r in range(rounds)):
        return None
    return [by_round[r] for r in range(rounds)]


def points(rows: list[dict], metric: str) -> list[tuple[int, float, None]]:
    return [(row["labeled"], row[metric], None) for row in rows]


def recorded_reference(path: Path, metric: str) -> dict[int, list[dict]]:
    """``{seed: rows}`` of ``random`` from an earlier table's JSON, shaped like metrics rows."""
    try:
        table = json.loads(path.read_text())
        # Tables written before --metric existed have no "metric": they are all of `accuracy`.
        recorded_metric = table.get("metric", "accuracy")
        if recorded_metric != metric:
            fail(f"--reference-table {path}: its metric is {recorded_metric}, not {metric}")
        recorded = table["strategies"][REFERENCE]
        (n_test,) = table["n_test"]
        size_key = test_size_key(metric)
        return {int(seed): [{"round": r, "labeled": labels, metric: accuracy, size_key: n_test}
                            for r, (labels, accuracy) in enumerate(zip(recorded["labels"], accuracies))]
                for seed, accuracies in recorded["per_seed_accuracy"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"--reference-table {path}: not a table of this script with {REFERENCE} in it "
             f"({type(exc).__name__}: {exc})")


def with_recorded_reference(runs: dict[str, dict[int, list[dict]]], recorded: dict[int, list[dict]],
                            metric: str, source: Path) -> list[int]:
    """Adds the recorded ``random`` seeds that have no folder to ``runs``; returns them.

    A seed with both must agree round by round, to the float: the pairing rests on ``random``
    reproducing exactly."""
    folders = runs.setdefault(REFERENCE, {})
    for seed in sorted(set(recorded) & set(folders)):
        for row, kept in zip(folders[seed], recorded[seed]):
            if row["labeled"] != kept["labeled"] or abs(row[metric] - kept[metric]) > 1e-12:
                fail(f"--reference-table {source}: {REFERENCE} seed {seed} round {row['round']} has "
                     f"{metric} {row[metric]} at {row['labeled']} labels in its folder and "
                     f"{kept[metric]} at {kept['labeled']} in the record")
    added = sorted(set(recorded) - set(folders))
    folders.update({seed: recorded[seed] for seed in added})
    return added


def accuracy_points(rows: list[dict], metric: str) -> list[tuple[int, float]]:
    return [(row["labeled"], row[metric]) for row in rows]


def saving_text(info: dict, key: str = "label_saving") -> str:
    """The table cell: mean saving (``key``: counted in rounds, or ``label_saving_interpolated``)
    with its interval, or how many seeds reached the target."""
    if "label_saving_reached" not in info:
        return "–"
    k, n = info["label_saving_reached"]
    if info[key] is None:
        return f"{k} of {n} seeds reached"
    mean, lo, hi = info[key]
    return f"{mean:+.0%}" + (f" [{lo:+.0%}, {hi:+.0%}]" if lo is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="experiment folders")
    parser.add_argument("--rounds", type=int, help="cut every curve at this many rounds (default: the most any run has)")
    parser.add_argument("--out", help="output path without suffix (default: <first dir>/validity_table)")
    parser.add_argument("--metric", default="accuracy", help="accuracy (default) or accuracy_<extra test set>")
    parser.add_argument("--reference-table", type=Path,
                        help="an earlier table's JSON whose random curves pair with seeds that have no random folder")
    args = parser.parse_args()
    metric = args.metric
    if metric != "accuracy" and not metric.startswith("accuracy_"):
        fail(f"--metric {metric}: not an accuracy (accuracy or accuracy_<test set>)")
    size_key = test_size_key(metric)
    located = locate_runs(args.dirs)
    runs = runs_by_label(located)
    recorded_seeds = (with_recorded_reference(runs, recorded_reference(args.reference_table, metric), metric,
                                              args.reference_table) if args.reference_table else [])
    folders = {(label, seed): folder for label, seed, _, folder in located}
    most = max(len(rows) for seeds in runs.values() for rows in seeds.values())
    rounds = args.rounds or most
    cut = {s: {seed: rows for seed, rows in ((seed, truncated(rows, rounds)) for seed, rows in seeds.items())
               if rows is not None} for s, seeds in runs.items()}
    in_progress = {s: sorted(set(runs[s]) - set(cut[s])) for s in runs}
    n_test = sorted({row[size_key] for seeds in cut.values() for rows in seeds.values() for row in rows})
    ref = cut.get(REFERENCE, {})
    ref_curve = curve(ref, metric) if ref else []
    target = ref_curve[-1][1] if ref_curve else None
    # The label counts of the rounds used, from random's curve, or any cut run when random has none.
    any_rows = next((rows for seeds in cut.values() for rows in seeds.values()), [])
    labels_used = [p[0] for p in ref_curve] or [row["labeled"] for row in any_rows]

    result = {"metric": metric, "rounds": rounds, "n_test": n_test, "reference": REFERENCE, "reference_final_mean": target,
              "strategies": {}, "in_progress": in_progress}
    for name in sorted(cut, key=lambda s: (s != REFERENCE, s)):
        seeds = cut[name]
        if not seeds:
            continue
        aulc = {seed: normalized_aulc(points(rows, metric)) for seed, rows in seeds.items()}
        final = {seed: rows[-1][metric] for seed, rows in seeds.items()}
        mean_curve = curve(seeds, metric)
        info = {"seeds": sorted(seeds), "labels": [x for x, _, _ in mean_curve],
                "curve_mean": [m for _, m, _ in mean_curve],
                "per_seed_accuracy": {seed: [row[metric] for row in rows] for seed, rows in seeds.items()},
                "aulc_per_seed": aulc, "aulc": t_interval(list(aulc.values())),
                "final": t_interval(list(final.values())),
                "labels_to_reference_final": labels_to_target(mean_curve, target) if target is not None else None,
                "labels_to_reference_final_interpolated":
                    labels_to_reach([(x, m) for x, m, _ in mean_curve], target) if target is not None else None}
        paired = sorted(set(seeds) & set(ref))
        if name != REFERENCE and paired:
            d_aulc = [aulc[s] - normalized_aulc(points(ref[s], metric)) for s in paired]
            d_final = [final[s] - ref[s][-1][metric] for s in paired]
            info["paired_seeds"] = paired
            info["diff_aulc_per_seed"] = dict(zip(paired, d_aulc))
            info["diff_aulc"] = t_interval(d_aulc)
            info["diff_final_per_seed"] = dict(zip(paired, d_final))
            info["diff_final"] = t_interval(d_final)
            info["diff_final_problems"] = float(np.mean([d * seeds[s][-1][size_key] for d, s in zip(d_final, paired)]))
            savings = {s: label_saving(accuracy_points(seeds[s], metric), accuracy_points(ref[s], metric)) for s in paired}
            info["label_saving_per_seed"] = {s: vars(v) for s, v in savings.items()}
            reached = [v.saving for v in savings.values() if v.saving is not None]
            info["label_saving_reached"] = [len(reached), len(paired)]
            info["label_saving"] = t_interval(reached) if len(reached) == len(paired) else None
            reached = [v.saving_interpolated for v in savings.values() if v.saving_interpolated is not None]
            info["label_saving_interpolated"] = t_interval(reached) if len(reached) == len(paired) else None
            # Per seed, the last round's test problems only one of the two solved (McNemar).
            last = f"round-{rounds - 1}/{predictions_file(metric)}"
            info["last_round_discordance"] = {}
            for s in paired:
                if s in recorded_seeds:
                    continue  # a recorded curve has no answers to pair
                mine, theirs = folders[(name, s)] / last, folders[(REFERENCE, s)] / last
                if mine.is_file() and theirs.is_file():
                    d = discordance(read_correct(mine), read_correct(theirs))
                    info["last_round_discordance"][s] = [d.only_strategy, d.only_reference, d.p_value]
        result["strategies"][name] = info

    lines = [f"Metric: `{metric}`. Rounds used: {rounds} (labels {', '.join(str(x) for x in labels_used)}); "
             f"test problems per run: {', '.join(map(str, n_test))}; 95% intervals are Student-t over seeds.", "",
             "| strategy | seeds | AULC (normalised) | final accuracy | paired ΔAULC vs random | paired Δfinal vs random | Δfinal in test problems | labels to random's final (interpolated) | labels saved vs random (paired) | interpolated |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, info in result["strategies"].items():
        reach, between = info["labels_to_reference_final"], info["labels_to_reference_final_interpolated"]
        lines.append(
            f"| {name} | {len(info['seeds'])} | {fmt(*info['aulc'])} | {fmt(*info['final'])} | "
            + (f"{fmt(*info['diff_aulc'], digits=3)} | {fmt(*info['diff_final'])} | {info['diff_final_problems']:+.1f} | "
               if "diff_aulc" in info else "– | – | – | ")
            + (f"{reach} ({between:.0f})" if reach is not None else "not reached")
            + f" | {saving_text(info)} | {saving_text(info, 'label_saving_interpolated')} |")
    lines += ["", "Per-seed AULC (paired ΔAULC vs random; at the last round, the test problems only the strategy solved (+) and only random solved (−)):", ""]
    for name, info in result["strategies"].items():
        def seed_text(s, v):
            text = f"s{s}: {v:.3f}"
            if s in info.get("diff_aulc_per_seed", {}):
                text += f" ({info['diff_aulc_per_seed'][s]:+.3f}"
                if s in info.get("last_round_discordance", {}):
                    b, c, p = info["last_round_discordance"][s]
                    text += f"; last round +{b}/−{c} test problems, McNemar p = {p:.2f}"
                text += ")"
            return text

        per = ", ".join(seed_text(s, v) for s, v in sorted(info["aulc_per_seed"].items()))
        lines.append(f"- {name}: {per}")
    lines += ["", "Labels saved per seed (the first round at or above that seed's random final accuracy; "
              "in brackets, the saving against the first round at which random itself had it, and the "
              "labels and saving read between rounds):", ""]
    for name, info in result["strategies"].items():
        if "label_saving_per_seed" in info:
            lines.append(f"- {name}: " + ", ".join(
                f"s{s}: " + ("not reached" if v["labels"] is None else
                             f"{v['labels']} labels, {v['saving']:+.0%} ({v['saving_vs_reference_first']:+.0%}; "
                             f"{v['labels_interpolated']:.0f}, {v['saving_interpolated']:+.0%})")
                for s, v in sorted(info["label_saving_per_seed"].items())))
    if recorded_seeds:
        lines += ["", f"{REFERENCE}'s seeds {', '.join(map(str, recorded_seeds))} are the curves recorded in "
                  f"{args.reference_table} (no answers, so no McNemar for them)."]
    result["reference_recorded_seeds"] = recorded_seeds
    waiting = {s: v for s, v in in_progress.items() if v}
    if waiting:
        lines += ["", "Not yet at round " + str(rounds) + " (left out): "
                  + "; ".join(f"{s}: seeds {', '.join(map(str, v))}" for s, v in sorted(waiting.items()))]
    table = "\n".join(lines) + "\n"
    write_table(Path(args.out) if args.out else Path(args.dirs[0]) / "validity_table", table, result)


if __name__ == "__main__":
    main()
