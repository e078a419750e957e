"""What other batch rules would have bought from star's saved pool scores, by ``meta[key]``.

    .venv/bin/python benchmarks/batch_rules.py RUN_FOLDER [RUN_FOLDER ...] [--key skill] [--out X]

Every scored round R of a star run keeps both raw terms in ``round-R/pool_scores.json`` and
its batch in ``round-{R+1}/selection.json``. For each such round this takes a batch of the
same size under each rule below, from the same pool and the same scores, and sums the
batches' composition over all the rounds and runs given. No model runs: it says what a rule
would have *bought*, not what the model would then have learnt, so it can rule a candidate
out (a rule that never buys a skill cannot teach it) but not in. Cold-start rounds (no
scores) are skipped. The rules, with ``s = λ_t·norm(u_base) + (1 − λ_t)·norm(u_full)`` STAR's
score at the run's own λ_t (Zhang et al. 2024; ``norm`` min-max over the pool):

* ``star`` top n of s (checked against the run's own batch: the two must agree);
* ``star, middle band`` n nearest the pool's median of s (``strategy.target_quantile=0.5``);
* ``star, skip top 10%`` (``strategy.skip_top=0.1``);
* ``star, top 4n`` the candidates ``strategy.diversity_factor=4`` thins to n (4n, not n);
* ``tuned term, middle band`` n nearest the median of u_full alone (λ = 0);
* ``MC spread`` top n of the standard deviation of u_full over the K dropout passes;
* ``mixed 50%`` half of the batch by ``star``, half a uniform draw (``strategy.random_share=0.5``;
  a fresh seeded draw here, not the run's);
* ``random`` a uniform draw of n, seeded by the seed and round.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from activelora.strategies import min_max_normalize
from activelora.strategies.remedies import percentile_ranks, random_count
from skill_table import meta_values, run_data
from tables import fail, write_table


def top(score: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores (ties: the earlier pool position first)."""
    return np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")[:k]


def rule_batches(scores: dict, k: int, lam: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each rule's batch (pool positions) for one round's saved scores."""
    base = min_max_normalize(scores["base_scores"])
    full = min_max_normalize(scores["full_scores"])
    star = lam * base + (1 - lam) * full
    n_pool = len(star)
    uniform = rng.permutation(n_pool)
    r = random_count(k, 0.5)
    star_order = top(star, n_pool)
    drawn = uniform[:r]
    mixed = np.concatenate([star_order[~np.isin(star_order, drawn)][:k - r], drawn])
    batches = {
        "star": star_order[:k],
        "star, middle band": top(-np.abs(percentile_ranks(star) - 0.5), k),
        "star, skip top 10%": star_order[min(n_pool // 10, n_pool - k):][:k],
        "star, top 4n": star_order[:4 * k],
        "tuned term, middle band": top(-np.abs(percentile_ranks(full) - 0.5), k),
        "mixed 50%": mixed,
        "random": rng.permutation(n_pool)[:k],
    }
    samples = scores.get("full_samples")
    if samples is not None and np.asarray(samples).ndim == 2 and np.asarray(samples).shape[1] > 1:
        batches["MC spread"] = top(np.asarray(samples, dtype=np.float64).std(axis=1), k)
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="star run folders, e.g. runs/mix/star/seed-0")
    parser.add_argument("--key", default="skill", help="the meta key to break down by (default: skill)")
    parser.add_argument("--out", type=Path, help="output path without suffix (default: <first run>/batch_rules)")
    args = parser.parse_args()
    totals: dict[str, Counter] = {}
    pool_share: Counter = Counter()
    rounds_used, cache = 0, {}
    for run in args.runs:
        if not (run / "config.json").is_file():
            fail(f"{run}: no config.json (a run folder such as runs/mix/star/seed-0)")
        meta = meta_values(run_data(run, cache).pool, args.key)
        seed = json.loads((run / "config.json").read_text()).get("run", {}).get("seed", 0)
        for scores_file in sorted(run.glob("round-*/pool_scores.json"), key=lambda p: int(p.parent.name[6:])):
            r = int(scores_file.parent.name[6:])
            selection_file = run / f"round-{r + 1}" / "selection.json"
            scores = json.loads(scores_file.read_text())
            if scores.get("base_scores") is None or scores.get("full_scores") is None or not selection_file.is_file():
                continue  # a cold-start round, or the last round (nothing was bought from it)
            selection = json.loads(selection_file.read_text())
            ids, k, lam = scores["ids"], len(selection["ids"]), selection.get("lambda")
            if lam is None:
                fail(f"{selection_file}: no lambda (not a star run?)")
            batches = rule_batches(scores, k, lam, np.random.default_rng([int(seed), r]))
            if [ids[i] for i in batches["star"]] != selection["ids"]:
                fail(f"{selection_file}: star's top {k} at λ = {lam} is not the batch the run bought "
                     "(a remedy was on in this run?)")
            for name, positions in batches.items():
                totals.setdefault(name, Counter()).update(meta.get(ids[i], "?") for i in positions)
            pool_share.update(meta.get(i, "?") for i in ids)
            rounds_used += 1
    if not rounds_used:
        fail("no scored rounds in the runs given")
    values = sorted(pool_share)
    pool_total = sum(pool_share.values())
    lines = [f"Labels each rule would have bought, by `{args.key}`, summed over {rounds_used} scored rounds "
             f"of {len(args.runs)} run(s) (benchmarks/batch_rules.py). Last row: the unlabelled pools' "
             "share, as a percentage.", "",
             "| rule | " + " | ".join(values) + " |", "|---|" + "---:|" * len(values)]
    for name, counts in totals.items():
        lines.append(f"| {name} | " + " | ".join(str(counts.get(v, 0)) for v in values) + " |")
    lines.append("| pool (%) | " + " | ".join(f"{100 * pool_share[v] / pool_total:.1f}" for v in values) + " |")
    result = {"rounds": rounds_used, "runs": [str(r) for r in args.runs],
              "rules": {name: dict(c) for name, c in totals.items()}, "pool": dict(pool_share)}
    write_table(args.out or args.runs[0] / "batch_rules", "\n".join(lines) + "\n", result)


if __name__ == "__main__":
    main()
