"""Compare finished runs: learning curves (mean ± std over seeds), the normalised area under
the learning curve, labels needed to reach a target accuracy, and the probe curves.

Reads ``<dir>/<strategy>/seed-<n>/metrics.jsonl`` as written by :mod:`activelora.run.loop`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataError
from ..atomic_files import atomic_write_json, atomic_write_text, read_jsonl

# Per-round metrics drawn beside accuracy when the runs recorded them.
CURVE_METRICS = ("accuracy", "ece", "ece_answer", "gap_spearman", "gap_auroc_full")


def find_runs(directories: Iterable[str | Path]) -> dict[str, dict[int, list[dict]]]:
    """``{label: {seed: rows}}`` for every run under the given experiment folders.

    The label is the strategy's name; a strategy found in more than one experiment folder
    is labelled ``<folder name>:<strategy>`` there, so that two experiments that both ran
    (say) ``random`` with seed 0 can be compared side by side.
    """
    return runs_by_label(locate_runs(directories))


def runs_by_label(located: list[tuple[str, int, list[dict], Path]]) -> dict[str, dict[int, list[dict]]]:
    """``{label: {seed: rows}}`` from :func:`locate_runs`."""
    runs: dict[str, dict[int, list[dict]]] = defaultdict(dict)
    for label, seed, rows, _ in located:
        runs[label][seed] = rows
    return dict(runs)


def locate_runs(directories: Iterable[str | Path]) -> list[tuple[str, int, list[dict], Path]]:
    """``(label, seed, metrics rows, run folder)`` of every run, labelled as :func:`find_runs`."""
    found: list[tuple[Path, str, int, list[dict], Path]] = []
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            raise DataError(f"{directory}: not a folder")
        files = sorted(directory.glob("*/seed-*/metrics.jsonl")) or sorted(directory.glob("seed-*/metrics.jsonl"))
        if not files and (directory / "metrics.jsonl").is_file():
            files = [directory / "metrics.jsonl"]
        for path in files:
            rows = read_jsonl(path)
            if rows:
                found.append((directory, rows[0]["strategy"], int(rows[0]["seed"]), rows, path))
    if not found:
        raise DataError("no runs found (expected <dir>/<strategy>/seed-<n>/metrics.jsonl)")
    folders_of: dict[str, set[Path]] = defaultdict(set)
    for directory, strategy, _, _, _ in found:
        folders_of[strategy].add(directory.resolve())
    located, seen = [], set()
    for directory, strategy, seed, rows, path in found:
        label = strategy if len(folders_of[strategy]) == 1 else f"{directory.resolve().name}:{strategy}"
        if (label, seed) in seen:
            raise DataError(f"{path}: a second run of strategy {strategy!r} seed {seed}")
        seen.add((label, seed))
        located.append((label, seed, rows, path.parent))
    return located


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    # One value has no spread: None, so that a table can tell it from seeds that agree.
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else None


def curve(seed_rows: dict[int, list[dict]], metric: str) -> list[tuple[int, float | None, float | None]]:
    """(labels, mean, std) per round over seeds; a round counts only where every seed has it."""
    by_round: dict[int, list[dict]] = defaultdict(list)
    for rows in seed_rows.values():
        for row in rows:
            by_round[row["round"]].append(row)
    points = []
    for r in sorted(by_round):
        rows = by_round[r]
        if len(rows) < len(seed_rows):
            continue
        labels = int(round(np.mean([row["labeled"] for row in rows])))
        mean, std = _mean_std([row.get(metric) for row in rows])
        points.append((labels, mean, std))
    return points


def normalized_aulc(points: Sequence[tuple[int, float | None, float | None]]) -> float | None:
    """Area under the accuracy-vs-labels curve (trapezoids) over the label range it spans,
    i.e. the mean accuracy across that range; with one point, that point's accuracy."""
    pts = [(x, y) for x, y, _ in points if y is not None]
    if not pts:
        return None
    if len(pts) == 1:
        return pts[0][1]
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))


def labels_to_target(points: Sequence[tuple[int, float | None, float | None]], target: float) -> int | None:
    """The fewest labels at which the mean accuracy reaches ``target`` (None: never)."""
    for labels, mean, _ in points:
        if mean is not None and mean >= target:
            return labels
    return None


ZERO_SHOT_FILE = "zero_shot.json"


def find_zero_shot(directories: Iterable[str | Path]) -> dict[str, float]:
    """``{folder name: accuracy}`` of the base model without labels, where a run recorded it."""
    found = {}
    for directory in directories:
        path = Path(directory) / ZERO_SHOT_FILE
        if path.is_file():
            found[Path(directory).resolve().name] = float(json.loads(path.read_text())["accuracy"])
    return found


def extra_test_metrics(runs: dict[str, dict[int, list[dict]]]) -> list[str]:
    """The ``accuracy_<name>`` keys of the extra test sets the runs evaluated (a task's
    ``extra_test_splits``; mix: ``accuracy_pool_like``), known by their ``n_test_<name>``."""
    names = {key.removeprefix("n_test_") for seeds in runs.values() for rows in seeds.values()
             for row in rows for key in row if key.startswith("n_test_")}
    return [f"accuracy_{name}" for name in sorted(names)]


def predictions_file(metric: str) -> str:
    """A round's answers behind ``metric``: ``predictions.jsonl`` for ``accuracy``,
    ``predictions_<name>.jsonl`` for an extra test set's ``accuracy_<name>``."""
    return "predictions.jsonl" if metric == "accuracy" else f"predictions_{metric.removeprefix('accuracy_')}.jsonl"


def test_size_key(metric: str) -> str:
    return "n_test" if metric == "accuracy" else f"n_test_{metric.removeprefix('accuracy_')}"


def summarize(runs: dict[str, dict[int, list[dict]]], target: float | None = None,
              metric: str = "accuracy") -> dict:
    """Per strategy: the mean curve of ``metric`` over seeds, its final value, normalised
    AULC and the labels it needs to reach ``target``."""
    curves = {s: curve(seeds, metric) for s, seeds in runs.items()}
    finals = {s: pts[-1][1] for s, pts in curves.items() if pts and pts[-1][1] is not None}
    if target is None and finals:
        # Default: 90% of the best final mean accuracy among the compared strategies.
        target = round(0.9 * max(finals.values()), 4)
    strategies = {}
    for name, seeds in sorted(runs.items()):
        pts = curves[name]
        strategies[name] = {
            "seeds": sorted(seeds),
            "curve": [{"labeled": x, "accuracy_mean": m, "accuracy_std": s} for x, m, s in pts],
            "final_accuracy": finals.get(name),
            "aulc": normalized_aulc(pts),
            "labels_to_target": labels_to_target(pts, target) if target is not None else None,
        }
    return {"target_accuracy": target, "strategies": strategies}


REFERENCE = "random"


def paired_against_reference(located: list[tuple[str, int, list[dict], Path]],
                             reference: str = REFERENCE, metric: str = "accuracy") -> dict[str, dict]:
    """Each strategy against ``reference`` on the seeds both ran (same initial labels and
    test set), over the rounds both reached: per-seed differences of the normalised AULC and
    of final accuracy, their mean and 95% t-interval, and the final round's test problems
    that only one of the two solved (McNemar's exact test per seed; :mod:`activelora.experiment.paired`).
    ``metric`` picks the test set: ``accuracy`` or an extra set's ``accuracy_<name>``.
    """
    from .paired import discordance, read_correct, t_interval

    by_label: dict[str, dict[int, tuple[list[dict], Path]]] = defaultdict(dict)
    for label, seed, rows, folder in located:
        by_label[label][seed] = (rows, folder)
    if reference not in by_label:
        return {}
    out = {}
    for label, seeds in sorted(by_label.items()):
        if label == reference:
            continue
        per_seed = []
        for seed in sorted(set(seeds) & set(by_label[reference])):
            (rows, folder), (ref_rows, ref_folder) = seeds[seed], by_label[reference][seed]
            rounds = min(len(rows), len(ref_rows))
            if rounds == 0:
                continue
            rows, ref_rows = rows[:rounds], ref_rows[:rounds]
            last = rows[-1]["round"]
            pred, ref_pred = (f / f"round-{last}" / predictions_file(metric) for f in (folder, ref_folder))
            counts = discordance(read_correct(pred), read_correct(ref_pred)) if pred.is_file() and ref_pred.is_file() else None
            aulc = normalized_aulc([(r["labeled"], r[metric], None) for r in rows])
            ref_aulc = normalized_aulc([(r["labeled"], r[metric], None) for r in ref_rows])
            per_seed.append({"seed": seed, "labels": rows[-1]["labeled"], "diff_aulc": aulc - ref_aulc,
                             "diff_final": rows[-1][metric] - ref_rows[-1][metric],
                             "n_test": rows[-1].get(test_size_key(metric)) or (counts.n if counts else None),
                             "only_strategy": counts.only_strategy if counts else None,
                             "only_reference": counts.only_reference if counts else None,
                             "mcnemar_p": counts.p_value if counts else None})
        if per_seed:
            out[label] = {"seeds": per_seed, "diff_aulc": t_interval([x["diff_aulc"] for x in per_seed]),
                          "diff_final": t_interval([x["diff_final"] for x in per_seed])}
    return out


def paired_sentences(paired: dict[str, dict], reference: str = REFERENCE) -> list[str]:
    """One plain sentence per strategy: is it ahead of, behind, level with, or not
    distinguishable from the reference, on what evidence, and how many test problems the
    difference is.

    With several seeds the verdict reads the 95% t-interval of the paired AULC difference.
    "Level with" is an equivalence margin: the whole interval lies within one test problem,
    ``|difference| < 1 / n_test`` (the normalised AULC is a mean accuracy, so 1 / n_test is
    one problem per round, the smallest step a test set of ``n_test`` can show). A difference
    smaller than that can be consistent over seeds, as with two trainings that differ only
    slightly, without being worth a label.
    """
    lines = []
    for label, info in paired.items():
        seeds = info["seeds"]
        mean, lo, hi = info["diff_aulc"]
        n_test = seeds[0]["n_test"]
        if lo is not None:
            one_problem = 1.0 / n_test if n_test else 0.0
            verdict = ("level with" if -one_problem < lo and hi < one_problem
                       else "ahead of" if lo > 0 else "behind" if hi < 0 else "not distinguishable from")
            evidence = (f"paired AULC difference {mean:+.3f} (95% interval {lo:+.3f} to {hi:+.3f} over "
                        f"{len(seeds)} seeds)")
            if n_test:
                evidence += (f", {mean * n_test:+.1f} of {n_test} test problems per round "
                             f"({lo * n_test:+.1f} to {hi * n_test:+.1f})")
        else:
            seed = seeds[0]
            p = seed["mcnemar_p"]
            verdict = ("not distinguishable from" if p is None or p >= 0.05
                       else "ahead of" if seed["only_strategy"] > seed["only_reference"] else "behind")
            evidence = (f"one seed, so no interval: AULC difference {mean:+.3f}; at {seed['labels']} labels "
                        + (f"it solved {seed['only_strategy']} test problems {reference} missed and missed "
                           f"{seed['only_reference']} that {reference} solved (McNemar p = {p:.2f})"
                           if p is not None else "no predictions to pair"))
        size = (f" Its final accuracy differs by {info['diff_final'][0] * n_test:+.1f} of {n_test} test problems"
                f"{' (mean over seeds)' if len(seeds) > 1 else ''}." if n_test else "")
        lines.append(f"- **{label}** is {verdict} {reference} here: {evidence}.{size}")
    return lines


def _fmt(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def markdown_table(runs: dict[str, dict[int, list[dict]]], summary: dict, metric: str = "accuracy") -> str:
    names = sorted(runs)
    per = {s: {x: (m, sd) for x, m, sd in curve(runs[s], metric)} for s in names}
    labels = sorted({x for s in names for x in per[s]})
    lines = ["| labels | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for x in labels:
        lines.append(f"| {x} | " + " | ".join(_fmt(*per[s].get(x, (None, None))) for s in names) + " |")
    lines += ["", f"| strategy | seeds | final {metric} | AULC (normalised) | labels to {summary['target_accuracy']} |",
              "|---|---|---|---|---|"]
    for s in names:
        info = summary["strategies"][s]
        final = _fmt(info["final_accuracy"], None)
        aulc = "–" if info["aulc"] is None else f"{info['aulc']:.3f}"
        reach = info["labels_to_target"] if info["labels_to_target"] is not None else "not reached"
        lines.append(f"| {s} | {len(info['seeds'])} | {final} | {aulc} | {reach} |")
    return "\n".join(lines) + "\n"


def compare(directories: Sequence[str | Path], out: str | Path | None = None,
            target: float | None = None) -> tuple[dict, str]:
    """Summarise runs; writes summary.json, report.md and curves.png into ``out``."""
    from ..probes.composition import composition_curves, composition_tables, queried_means
    from ..probes.plots import plot_round_curves

    located = locate_runs(directories)
    runs = runs_by_label(located)
    summary = summarize(runs, target)
    table = markdown_table(runs, summary)
    paired = paired_against_reference(located)
    if paired:
        summary["paired_against_random"] = paired
        table += ("\nAgainst random, paired by seed (same initial labels, same test problems):\n\n"
                  + "\n".join(paired_sentences(paired)) + "\n")
    # A task with more test sets (mix: the pool-like one) gets the same table and verdicts for
    # each, after the main set's; docs/results.md says which to read when.
    extra_metrics = extra_test_metrics(runs)
    for metric in extra_metrics:
        extra_summary = summarize(runs, None, metric)
        summary.setdefault("extra_test_sets", {})[metric] = extra_summary
        table += f"\nOn the second test set, `{metric}`:\n\n" + markdown_table(runs, extra_summary, metric)
        extra_paired = paired_against_reference(located, metric=metric)
        if extra_paired:
            extra_summary["paired_against_random"] = extra_paired
            table += ("\nAgainst random on that set, paired by seed:\n\n"
                      + "\n".join(paired_sentences(extra_paired)) + "\n")
    zero_shot = find_zero_shot(directories)
    if zero_shot:
        summary["zero_shot_accuracy"] = zero_shot
        table += "\nzero-shot accuracy (base model, no labels): " + ", ".join(
            f"{v:.3f}" if len(zero_shot) == 1 else f"{k} {v:.3f}" for k, v in zero_shot.items()) + "\n"
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        curves = {}
        for metric in (*CURVE_METRICS[:1], *extra_metrics, *CURVE_METRICS[1:]):
            per = {s: curve(seeds, metric) for s, seeds in runs.items()}
            per = {s: pts for s, pts in per.items() if any(m is not None for _, m, _ in pts)}
            if per:
                curves[metric] = per
        # Folders that share a test set share the zero-shot value: one line for each value.
        by_value: dict[float, list[str]] = defaultdict(list)
        for name, value in zero_shot.items():
            by_value[value].append(name)
        references = {"accuracy": {("zero-shot" if len(by_value) == 1 else f"zero-shot {', '.join(names)}"): v
                                   for v, names in by_value.items()}}
        plot_round_curves(curves, out / "curves.png", title="accuracy and probes per round (mean ± std over seeds)",
                          references=references)
        # What each strategy's batches were made of, against the pool (probes/composition.py).
        composition = composition_tables(runs)
        extra = ""
        if composition:
            summary["composition"] = queried_means(runs)
            batch_curves, pool_lines = composition_curves(runs, curve)
            plot_round_curves(batch_curves, out / "composition.png", references=pool_lines,
                              title="what each batch is made of (mean ± std over seeds; dashed: the pool)")
            extra = "\n## Batch composition\n\n" + composition + "\n![composition](composition.png)\n"
        atomic_write_json(out / "summary.json", summary)
        atomic_write_text(out / "report.md", "# activelora comparison\n\n" + table +
                          "\n![curves](curves.png)\n" + extra)
    return summary, table


def load_summary(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
