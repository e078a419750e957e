"""Which of STAR's two terms chose a batch: a saved round ranked again under other weights.

    .venv/bin/python benchmarks/star_terms.py RUN_FOLDER [--round R] [--lambdas 1 0.9 0.5 0] [--key skill]

STAR labels the ``query_size`` pool examples with the highest

    score = λ_t · norm(u_base) + (1 − λ_t) · norm(u_full)

(Zhang et al. 2024, dynamic uncertainty; ``norm`` is min-max over the unlabelled pool, u_base the
untuned model's uncertainty, u_full the tuned model's MC-dropout uncertainty). A run keeps both
raw terms of every round in ``round-R/pool_scores.json``, so the same pool can be ranked again
under any λ without a model: λ = 1 is the base model's term alone, λ = 0 the tuned model's alone.

For each λ this prints the batch's composition by ``meta[key]`` (the run's examples rebuilt from
its ``config.json``, as benchmarks/skill_table.py does), and first checks that the run's own λ_t
(``round-{R+1}/selection.json``) picks the batch the run picked. Then the mean normalised term
per value of the key. A diagnostic of one round of one run; nothing here is a result over seeds.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from activelora.strategies import min_max_normalize
from skill_table import meta_values, run_data
from tables import fail


def top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores (ties: the earlier pool position first)."""
    return np.argsort(-score, kind="stable")[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="one run folder, e.g. runs/mix/star/seed-0")
    parser.add_argument("--round", type=int, default=0, help="the round whose pool scores chose round R+1's batch")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[1.0, 0.9, 0.7, 0.5, 0.0])
    parser.add_argument("--key", default="skill", help="the meta key to break down by (default: skill)")
    args = parser.parse_args()
    scores_file = args.run / f"round-{args.round}" / "pool_scores.json"
    selection_file = args.run / f"round-{args.round + 1}" / "selection.json"
    for path in (args.run / "config.json", scores_file, selection_file):
        if not path.is_file():
            fail(f"{path}: not found (a run folder of a base-and-full strategy such as star, after that round)")
    scores = json.loads(scores_file.read_text())
    if scores.get("base_scores") is None or scores.get("full_scores") is None:
        fail(f"{scores_file}: no base_scores and full_scores (the run's strategy does not score both terms)")
    selection = json.loads(selection_file.read_text())
    ids = scores["ids"]
    base = min_max_normalize(scores["base_scores"])
    full = min_max_normalize(scores["full_scores"])
    k = len(selection["ids"])
    pool_meta = meta_values(run_data(args.run, {}).pool, args.key)
    values = sorted({pool_meta.get(i, "?") for i in ids})

    own = selection.get("lambda")
    if own is not None:
        chosen = {ids[i] for i in top_k(own * base + (1 - own) * full, k)}
        print(f"the run's own λ = {own}: {len(chosen & set(selection['ids']))} of its {k} labels picked again")
    print(f"\nbatch of {k} by `{args.key}` (pool of {len(ids)}: {dict(sorted(Counter(pool_meta.get(i, '?') for i in ids).items()))})\n")
    print("| λ | " + " | ".join(values) + " |")
    print("|---|" + "---:|" * len(values))
    for lam in args.lambdas:
        counts = Counter(pool_meta.get(ids[i], "?") for i in top_k(lam * base + (1 - lam) * full, k))
        print(f"| {lam:g} | " + " | ".join(str(counts.get(v, 0)) for v in values) + " |")
    print(f"\nmean normalised term per `{args.key}`\n")
    print("| term | " + " | ".join(values) + " |")
    print("|---|" + "---:|" * len(values))
    for name, term in (("norm(u_base)", base), ("norm(u_full)", full)):
        means = [np.mean([t for i, t in zip(ids, term) if pool_meta.get(i, "?") == v]) for v in values]
        print(f"| {name} | " + " | ".join(f"{m:.2f}" for m in means) + " |")


if __name__ == "__main__":
    main()
