"""How many labels could a perfect split of the budget across skills save? (issue 16, `mix`)

    .venv/bin/python benchmarks/allocation_bound.py DIR [DIR ...] [--reference random] [--out PATH]

Issue 16 asks a label-free strategy to reach random's final skill-balanced accuracy with 30%
fewer labels. Whether that much is there to be had was unmeasured: the only headroom runs on
`mix` are oracles over one seed. This script estimates it from the runs already made, with a
model of how each skill is learnt, instead of new training runs.

**The model.** A `mix` run retrains from the base model every round (cold start), so round
``r``'s adapter depends on its label set only. Summarise that set by its size ``N`` and the labels
it holds of each skill, ``n_s``, and model the skill-balanced accuracy (the same number of test
problems per skill; on another test set, each skill weighted by its share ``w_s`` of that set) as
additive:

    acc(n) = Σ_s w_s · f_s(n_s) + c_N,

where ``f_s`` is the isotonic (non-decreasing, least-squares) fit of skill ``s``'s test accuracy
against ``n_s`` over every run and round in the folders, whatever strategy bought them, and ``c_N``
the mean residual of the runs at set size ``N`` (a skill's labels teach more in a larger set).
It ignores what labels of one skill do for another and which items within a skill were bought.
Below the fewest labels of a skill any run had, ``f_s`` holds that level's value; above the most,
it stays flat.

**The bound.** For a budget ``B`` and a seed whose initial labels hold ``n0_s`` of skill ``s``,
the best split is

    best(B) = max { acc(n) : Σ_s n_s = B, n0_s ≤ n_s ≤ pool_s },

solved exactly by dynamic programming over the skills. It is an oracle's bound: it knows the
skills and the curves, which no label-free strategy does.

**Held out by seed, and scored twice.** The split for seed ``k`` is chosen on curves fitted to
the other seeds' runs, so a seed's own test noise cannot flatter it. Its value on those same curves
is still biased upwards (the maximum over noisy curves); so it is scored again on curves fitted to
seed ``k``'s runs alone. That second score is biased the other way: one seed's runs rarely bought
as many labels of a skill as the split asks for, and the fit stays flat beyond them. The truth
lies between the two. The held-out curves also predict every run's measured accuracy from its
label counts; the error of those predictions, in test problems, says how far to trust the model.

Per seed it reports the labels ``best`` needs to reach the reference strategy's measured final
accuracy (and its modelled one), and the saving ``1 − B / final labels``, interpolated between
the round sizes. Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from skill_table import meta_values, run_data, write_table  # noqa: E402  (a sibling script, not a package)
from tables import fail  # noqa: E402

from activelora.errors import DataError  # noqa: E402
from activelora.experiment.paired import labels_to_reach, read_correct, t_interval  # noqa: E402
from activelora.experiment.report import locate_runs, predictions_file  # noqa: E402


def isotonic_fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing least-squares fit of ``y`` on ``x`` (pool adjacent violators).

    Returns ``(levels, fitted)``: the sorted distinct ``x`` and the fitted value at each.
    Equal ``x`` are first merged into their weighted mean.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    weight = np.ones_like(y) if weight is None else np.asarray(weight, dtype=np.float64)
    levels, inverse = np.unique(x, return_inverse=True)
    w = np.bincount(inverse, weights=weight)
    means = np.bincount(inverse, weights=weight * y) / w
    # Each block: [weighted mean, weight, how many levels]; merge backwards while out of order.
    blocks: list[list[float]] = []
    for m, wt in zip(means, w):
        blocks.append([m, wt, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    fitted = np.concatenate([np.full(int(c), m) for m, _, c in blocks])
    return levels, fitted


def step_curve(levels: np.ndarray, fitted: np.ndarray, upto: int) -> np.ndarray:
    """The fit as a table ``f(n)`` for ``n = 0..upto``: the value at the largest observed level
    ``≤ n``; below the smallest level, the smallest level's value; above the largest, flat (no
    extrapolated gain)."""
    n = np.arange(upto + 1)
    index = np.searchsorted(levels, n, side="right") - 1
    return fitted[np.clip(index, 0, len(levels) - 1)]


def split_table(curves: list[np.ndarray], lower: list[int], upper: list[int], budget: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Dynamic programming over the skills: ``value[b] = max Σ_s curves[s][n_s]`` over integers
    ``lower_s ≤ n_s ≤ upper_s`` with ``Σ n_s = b``, for every ``b ≤ budget`` (``-inf`` where no
    ``n`` fits), and each skill's maximising choice per ``b`` for :func:`split_at`."""
    value = np.full(budget + 1, -np.inf)  # value[b]: the best sum over the skills so far using b labels
    value[0] = 0.0
    choices = []
    for curve, lo, hi in zip(curves, lower, upper):
        new = np.full(budget + 1, -np.inf)
        pick = np.zeros(budget + 1, dtype=int)
        for b in range(lo, budget + 1):
            n = np.arange(lo, min(hi, b) + 1)
            candidates = value[b - n] + curve[n]
            best = int(np.argmax(candidates))  # the fewest labels of this skill among ties
            new[b], pick[b] = candidates[best], n[best]
        value = new
        choices.append(pick)
    return value, choices


def split_at(choices: list[np.ndarray], budget: int) -> list[int]:
    """The maximising ``n`` of :func:`split_table` for one budget, read back skill by skill."""
    allocation, b = [], budget
    for pick in reversed(choices):
        allocation.append(int(pick[b]))
        b -= allocation[-1]
    return allocation[::-1]


def best_allocation(curves: list[np.ndarray], lower: list[int], upper: list[int], budget: int) -> tuple[float, list[int]]:
    """``max Σ_s curves[s][n_s]`` over integers ``lower_s ≤ n_s ≤ upper_s`` with ``Σ n_s = budget``,
    and one maximising ``n``. Raises ValueError when no ``n`` meets the bounds."""
    if sum(lower) > budget or sum(upper) < budget:
        raise ValueError(f"budget {budget} outside [{sum(lower)}, {sum(upper)}]")
    value, choices = split_table(curves, lower, upper, budget)
    return float(value[budget]), split_at(choices, budget)


def observations(dirs: list[str], metric: str) -> list[dict]:
    """One row per run and round: strategy, seed, round, labels, labels per skill, accuracy per skill."""
    rows, cache = [], {}
    for strategy, seed, metric_rows, folder in locate_runs(dirs):
        folder = Path(folder)
        folder = folder.parent if folder.name == "metrics.jsonl" else folder
        data = run_data(folder, cache)
        pool_skill = meta_values(data.pool, "skill")
        name = metric.removeprefix("accuracy_")
        if metric != "accuracy" and name not in data.extra_tests:
            raise DataError(f"{folder}: no test set behind --metric {metric}")
        test_skill = meta_values(data.test if metric == "accuracy" else data.extra_tests[name], "skill")
        if not test_skill:
            raise DataError(f"{folder}: its test examples carry no meta['skill'] (the model is for a study like mix)")
        # The run's pool and test composition: the same for each of its rounds.
        pool = dict(Counter(pool_skill.values()))
        test_share = {k: v / len(test_skill) for k, v in Counter(test_skill.values()).items()}
        state = json.loads((folder / "state.json").read_text())
        for record in metric_rows:
            r = int(record["round"])
            predictions = folder / f"round-{r}" / predictions_file(metric)
            if not predictions.is_file():
                continue
            labelled = [i for rec in state["rounds"] if rec["round"] <= r for i in rec["ids"]]
            by_skill: dict[str, list[bool]] = defaultdict(list)
            for test_id, ok in read_correct(predictions).items():
                by_skill[test_skill[test_id]].append(ok)
            rows.append({"strategy": strategy, "seed": seed, "round": r, "labels": len(labelled),
                         "folder": str(folder), "accuracy": float(record[metric]),
                         "n_skill": dict(Counter(pool_skill[i] for i in labelled)),
                         "acc_skill": {s: float(np.mean(v)) for s, v in by_skill.items()},
                         "pool": pool, "test_share": test_share})
    return rows


def fit_curves(rows: list[dict], skills: list[str], upto: int) -> list[np.ndarray]:
    """Per skill, its isotonic curve times its share of the test set, so that the curves add up
    to the test set's accuracy."""
    curves = []
    for s in skills:
        x = [row["n_skill"].get(s, 0) for row in rows]
        y = [row["acc_skill"][s] for row in rows]
        curves.append(rows[0]["test_share"][s] * step_curve(*isotonic_fit(np.array(x), np.array(y)), upto))
    return curves


def fit_model(rows: list[dict], skills: list[str], upto: int) -> tuple[list[np.ndarray], dict[int, float]]:
    """The curves (:func:`fit_curves`) and, per set size, the offset ``c_N``: the mean residual of
    the runs of that size. A skill's n labels teach more in a larger set (more optimiser steps,
    more of the answer format), which curves pooled over set sizes miss."""
    curves = fit_curves(rows, skills, upto)
    sizes = sorted({row["labels"] for row in rows})
    offsets = {n: float(np.mean([row["accuracy"] - predict(curves, skills, row["n_skill"])
                                 for row in rows if row["labels"] == n])) for n in sizes}
    return curves, offsets


def require_two_seeds(rows: list[dict], script: str) -> None:
    """Exit 2 unless the runs span two seeds or more: each seed's curves are fitted on the others."""
    seeds = sorted({row["seed"] for row in rows})
    if len(seeds) < 2:
        fail(f"{script}: the runs hold seed{'s' if len(seeds) != 1 else ''} {seeds} only; the curves for a seed "
             "are fitted on the other seeds' runs, so give runs of two seeds or more")


def predict(curves: list[np.ndarray], skills: list[str], n_skill: dict[str, int]) -> float:
    """The modelled accuracy of a label set with ``n_skill`` labels per skill, before the offset."""
    return float(sum(curve[min(n_skill.get(s, 0), len(curve) - 1)] for curve, s in zip(curves, skills)))


def seed_bound(reference: list[dict], own: list[dict], model: tuple[list[np.ndarray], dict[int, float]],
               skills: list[str], pool: dict[str, int], upto: int) -> dict:
    """One seed's bound: the best split at each set size from the seed's initial labels up to the
    reference run's final size, chosen on ``model`` (fitted on the other seeds), scored on it
    and on curves fitted to the seed's ``own`` runs, and the labels each needs to reach the
    reference's final accuracy."""
    curves, offsets = model
    initial = reference[0]["n_skill"]
    lower = [initial.get(s, 0) for s in skills]
    upper = [pool[s] for s in skills]
    final_labels = reference[-1]["labels"]
    measured_final = reference[-1]["accuracy"]
    modelled_final = predict(curves, skills, reference[-1]["n_skill"]) + offsets[final_labels]
    # The split is chosen on the other seeds' curves; scoring it on those same curves favours it
    # (a maximum over noisy curves is biased upwards). Scored again on curves fitted to this
    # seed's runs alone, which took no part in choosing it, that bias is gone (another, downwards,
    # takes its place: see the module's docstring).
    own_curves, own_offsets = fit_model(own, skills, upto)
    bound, crossed = {}, {}
    for n in sorted(offsets):
        if n <= sum(lower) or n > final_labels:
            continue  # the initial labels are everyone's: no split to choose at their size
        total, allocation = best_allocation(curves, lower, upper, n)
        bound[n] = (total + offsets[n], allocation)
        if n in own_offsets:
            crossed[n] = predict(own_curves, skills, dict(zip(skills, allocation))) + own_offsets[n]
    info = {
        "final_labels": final_labels, "measured_final": measured_final, "modelled_final": modelled_final,
        "best_at_final": bound[final_labels][0],
        "best_curve": {str(n): acc for n, (acc, _) in bound.items()},
        "reference_curve": {str(row["labels"]): row["accuracy"] for row in reference},
        "best_allocation_at_final": dict(zip(skills, bound[final_labels][1])),
        "reference_allocation_at_final": {s: reference[-1]["n_skill"].get(s, 0) for s in skills},
        "crossed_curve": {str(n): acc for n, acc in crossed.items()},
        "crossed_at_final": crossed.get(final_labels)}
    best_curve = [(n, acc) for n, (acc, _) in bound.items()]
    for key, curve, target in (("measured", best_curve, measured_final), ("modelled", best_curve, modelled_final),
                               ("crossed", sorted(crossed.items()), measured_final)):
        reach = labels_to_reach(curve, target)
        info[f"labels_to_{key}_final"] = reach
        info[f"saving_{key}"] = None if reach is None else 1 - reach / final_labels
    return info


def even_split(rows: list[dict], skills: list[str], upto: int, reference: str, result: dict) -> list[str]:
    """What an even split (``B // S`` labels per skill, the remainder to the first skills in name
    order) is modelled to reach at each set size, beside the reference strategy's runs modelled
    the same way: curves and offsets fitted on all ``rows``. A balanced oracle buys about this."""
    curves, offsets = fit_model(rows, skills, upto)
    lines = ["", f"An even split against {reference}, both modelled on curves fitted to all the runs:", "",
             f"| labels | even split | {reference} (mean of its runs) | {reference} measured |", "|---:|---:|---:|---:|"]
    result["even_split"] = {}
    for n, offset in offsets.items():
        at_n = [row for row in rows if row["labels"] == n]
        base, extra = divmod(n, len(skills))
        even = predict(curves, skills, {s: base + (i < extra) for i, s in enumerate(skills)}) + offset
        ref = [row for row in at_n if row["strategy"] == reference]
        if not ref:
            continue
        modelled = float(np.mean([predict(curves, skills, row["n_skill"]) + offset for row in ref]))
        measured = float(np.mean([row["accuracy"] for row in ref]))
        result["even_split"][str(n)] = {"even": even, "reference_modelled": modelled, "reference_measured": measured}
        lines.append(f"| {n} | {even:.3f} | {modelled:.3f} | {measured:.3f} |")
    return lines


def check_elsewhere(rows: list[dict], skills: list[str], upto: int, skills_json: str, table_json: str,
                    metric: str, n_test: int, result: dict) -> list[str]:
    """The model out of sample: curves and final-size offset fitted on all ``rows`` predict the
    final accuracy of each strategy of another study from its mean labels per skill there.
    Strategies that split the budget unlike any of the fitting runs test the extrapolation."""
    final = max(row["labels"] for row in rows)
    curves, offsets = fit_model(rows, skills, upto)
    offset = offsets[final]
    breakdown = json.loads(Path(skills_json).read_text())["strategies"]
    table = json.loads(Path(table_json).read_text())
    if table.get("metric", "accuracy") != metric:
        fail(f"allocation_bound: --check {table_json} is a table of {table.get('metric', 'accuracy')!r}, not {metric!r}")
    lines = ["", f"Out of sample: {Path(table_json).name}'s strategies at {final} labels, predicted from their mean "
                 f"labels per skill ({Path(skills_json).name}) by curves fitted on all the runs above:", "",
             "| strategy | seeds | copy labels | predicted | measured | predicted − measured |", "|---|---|---:|---:|---:|---:|"]
    checked = result.setdefault("check", {}).setdefault(Path(table_json).name, {})
    for name, info in breakdown.items():
        if name not in table["strategies"]:
            continue
        allocation = {s: int(round(info["labels"].get(s, 0.0))) for s in skills}
        predicted = predict(curves, skills, allocation) + offset
        measured = float(table["strategies"][name]["final"][0])
        checked[name] = {"seeds": info["seeds"], "allocation": allocation, "predicted": predicted, "measured": measured}
        lines.append(f"| {name} | {len(info['seeds'])} | {allocation.get('copy', 0)} | {predicted:.3f} | {measured:.3f} | "
                     f"{predicted - measured:+.3f} |")
    lines += per_skill_residuals(rows, skills, curves, breakdown, metric, n_test, checked)
    return lines


def per_skill_residuals(rows: list[dict], skills: list[str], curves: list[np.ndarray], breakdown: dict, metric: str,
                        n_test: int, checked: dict) -> list[str]:
    """Where the model misses a checked strategy: per skill, the measured accuracy minus the
    fitted curve's at that strategy's mean labels, in test problems of the skill. A ``*`` marks
    labels beyond the most any fitting run bought, where the curve is held flat."""
    most = {s: max(row["n_skill"].get(s, 0) for row in rows) for s in skills}
    share = rows[0]["test_share"]
    names = list(checked)
    lines = ["", "Measured − modelled accuracy per skill, in test problems of that skill (labels bought; `*`: more "
                 "than any fitting run bought, where the curve is held flat):", "",
             "| skill | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for index, s in enumerate(skills):
        cells = []
        for name in names:
            labels = breakdown[name]["labels"].get(s, 0.0)
            modelled = curves[index][min(int(round(labels)), len(curves[index]) - 1)] / share[s]
            measured = breakdown[name]["accuracy"][metric][s]
            checked[name].setdefault("per_skill", {})[s] = {"labels": labels, "modelled": modelled, "measured": measured}
            cells.append(f"{(measured - modelled) * share[s] * n_test:+.1f} ({labels:.0f}{'*' if labels > most[s] else ''})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="experiment folders of the same task and test set")
    parser.add_argument("--reference", default="random", help="the strategy whose final accuracy to reach (default: random)")
    parser.add_argument("--metric", default="accuracy", help="accuracy (skill-balanced, the default) or accuracy_pool_like")
    parser.add_argument("--out", required=True, help="output path without suffix")
    parser.add_argument("--check", nargs=2, action="append", default=[], metavar=("SKILLS_JSON", "TABLE_JSON"),
                        help="also predict, from curves fitted on all the runs, each strategy's final accuracy in "
                             "another study from its mean labels per skill (a skill_table.py JSON) and set it beside "
                             "the measured mean (a validity_table.py JSON of the same test set); may be repeated")
    args = parser.parse_args()
    try:
        rows = observations(args.dirs, args.metric)
    except DataError as exc:
        fail(f"allocation_bound: {exc}")
    if not rows:
        fail(f"allocation_bound: no run in {', '.join(args.dirs)} has a finished round")
    if not any(row["strategy"] == args.reference for row in rows):
        fail(f"allocation_bound: no {args.reference!r} run in {', '.join(args.dirs)} (--reference)")
    skills = sorted({s for row in rows for s in row["acc_skill"]})
    require_two_seeds(rows, "allocation_bound")
    pool = rows[0]["pool"]
    seeds = sorted({row["seed"] for row in rows})
    final_round = max(row["round"] for row in rows if row["strategy"] == args.reference)
    upto = max(pool.values())
    n_test = sum(1 for _ in (Path(rows[0]["folder"]) / "round-0" / predictions_file(args.metric)).open())
    result = {"metric": args.metric, "skills": skills, "pool": pool, "reference": args.reference,
              "runs": len({row["folder"] for row in rows}), "observations": len(rows), "seeds": {}}
    errors = []
    by_strategy_round: dict[tuple[str, int], list[float]] = defaultdict(list)
    for seed in seeds:
        curves, offsets = fit_model([row for row in rows if row["seed"] != seed], skills, upto)
        own = [row for row in rows if row["seed"] == seed]
        for row in own:
            errors.append(predict(curves, skills, row["n_skill"]) + offsets[row["labels"]] - row["accuracy"])
            by_strategy_round[(row["strategy"], row["round"])].append(errors[-1])
        reference = sorted((row for row in own if row["strategy"] == args.reference), key=lambda row: row["round"])
        if reference and reference[-1]["round"] == final_round:
            result["seeds"][str(seed)] = seed_bound(reference, own, (curves, offsets), skills, pool, upto)
    errors_arr = np.array(errors)
    result["held_out_error"] = {"mean": float(errors_arr.mean()), "mean_abs": float(np.abs(errors_arr).mean()),
                                "sd": float(errors_arr.std(ddof=1)), "n": len(errors)}
    # Where the model errs: a bias against one strategy's allocations (say random's many labels of
    # a skill already learnt) would carry into the bound.
    result["held_out_error_by_strategy_round"] = {
        f"{strategy}@{r}": {"mean": float(np.mean(v)), "n": len(v)} for (strategy, r), v in sorted(by_strategy_round.items())}
    lines = [f"Skill allocation bound on `{args.metric}`, {result['runs']} runs ({result['observations']} run-rounds), "
             f"seeds {seeds}; curves held out by seed.", ""]
    scale = f" (of {n_test} problems)"
    err = result["held_out_error"]
    lines += [f"Held-out prediction error of the additive model{scale}: mean {err['mean']:+.3f}, "
              f"mean absolute {err['mean_abs']:.3f}, sd {err['sd']:.3f}, over {err['n']} run-rounds.", "",
              f"| seed | {args.reference} final (labels, measured / modelled) | best split at those labels | "
              f"labels to reach measured final (saving) | labels to reach modelled final (saving) | "
              f"best split scored on the seed's own runs: at final labels | labels to reach measured final (saving) |",
              "|---|---|---|---|---|---|---|"]
    for seed, info in result["seeds"].items():
        def reach(key_labels: str, key_saving: str) -> str:
            return "not reached" if info[key_labels] is None else f"{info[key_labels]:.0f} ({info[key_saving]:.0%})"
        lines.append(f"| {seed} | {info['final_labels']}, {info['measured_final']:.3f} / {info['modelled_final']:.3f} | "
                     f"{info['best_at_final']:.3f} | {reach('labels_to_measured_final', 'saving_measured')} | "
                     f"{reach('labels_to_modelled_final', 'saving_modelled')} | "
                     f"{info['crossed_at_final']:.3f} | {reach('labels_to_crossed_final', 'saving_crossed')} |")
    strategies = sorted({strategy for strategy, _ in by_strategy_round})
    rounds = sorted({r for _, r in by_strategy_round})
    lines += ["", "Mean held-out error (modelled − measured accuracy) by strategy and round:", "",
              "| strategy | " + " | ".join(f"round {r}" for r in rounds) + " |", "|---|" + "---:|" * len(rounds)]
    for strategy in strategies:
        cells = [f"{np.mean(by_strategy_round[(strategy, r)]):+.3f}" if (strategy, r) in by_strategy_round else "–" for r in rounds]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    for key, words in (("measured", "chosen and scored on the other seeds' curves"),
                       ("crossed", "chosen on the other seeds' curves, scored on the seed's own")):
        savings = [info[f"saving_{key}"] for info in result["seeds"].values() if info[f"saving_{key}"] is not None]
        unreached = sum(info[f"saving_{key}"] is None for info in result["seeds"].values())
        if len(savings) > 1:
            mean, low, high = t_interval(savings)
            result[f"saving_{key}_mean"] = {"mean": mean, "low": low, "high": high,
                                            "n": len(savings), "not_reached": unreached}
            lines += ["", f"Saving against {args.reference}'s measured final, split {words}: mean {mean:.0%}, "
                          f"95% t-interval [{low:.0%}, {high:.0%}] over {len(savings)} seeds"
                          + (f" ({unreached} more never reach it)" if unreached else "") + "."]
    lines += ["", "Best split at the final budget against the reference's (labels per skill):", "",
              "| seed | " + " | ".join(skills) + " |", "|---|" + "---:|" * len(skills)]
    for seed, info in result["seeds"].items():
        lines.append(f"| {seed} best | " + " | ".join(str(info["best_allocation_at_final"][s]) for s in skills) + " |")
        lines.append(f"| {seed} {args.reference} | " + " | ".join(str(info["reference_allocation_at_final"][s]) for s in skills) + " |")
    lines += even_split(rows, skills, upto, args.reference, result)
    for skills_json, table_json in args.check:
        lines += check_elsewhere(rows, skills, upto, skills_json, table_json, args.metric, n_test, result)
    write_table(Path(args.out), "\n".join(lines), result)


if __name__ == "__main__":
    main()
