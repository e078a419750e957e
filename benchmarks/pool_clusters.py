"""Do k-means clusters of the prompts stand in for the tasks? A run's pool clustered, by meta.

    .venv/bin/python benchmarks/pool_clusters.py RUN_FOLDER [--k 8 16] [--key skill] [--seed 0] [--json PATH]

The strategies that split a batch over clusters (``strategy.strata``, ``cluster-weighted``,
``typiclust``) never read ``meta``: they hope that clusters of the prompt embeddings follow the
tasks. This checks that hope on a pool that knows its tasks. It rebuilds the run's pool from its
``config.json`` (as benchmarks/skill_table.py does), embeds every prompt with the untuned base
model (:func:`activelora.uncertainty.embeddings.prompt_embeddings`, mean-pooled last hidden
states, the embeddings ``cluster-weighted`` and ``typiclust`` use), clusters them with the
library's k-means (:func:`activelora.strategies.remedies.kmeans`) for each k, and prints each
cluster's size and its make-up by ``meta[key]``. STAR's strata cluster the hidden states of its
scoring pass instead, so for them this is an approximation. Loads the model: about a minute on
one core for mix's 1000 prompts. ``--json`` also writes each k's clusters as
``{"key": ..., "clusters": {k: [{value: count, ...} per cluster]}}``, which
``allocation_rules.py --clusters`` reads.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from skill_table import run_data
from tables import fail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="one run folder, e.g. runs/mix/random/seed-0")
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16], help="cluster counts (default: 8 16)")
    parser.add_argument("--key", default="skill", help="the meta key to break down by (default: skill)")
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default: 0)")
    parser.add_argument("--json", type=Path, help="also write the clusters' make-up here")
    args = parser.parse_args()
    if not (args.run / "config.json").is_file():
        fail(f"{args.run / 'config.json'}: not found (give one run folder, <output>/<strategy>/seed-<n>)")
    if any(k < 2 for k in args.k):
        fail(f"--k: every cluster count must be at least 2, got {args.k}")

    from activelora.models.loading import load_model
    from activelora.strategies.remedies import kmeans
    from activelora.uncertainty.embeddings import prompt_embeddings

    data = run_data(args.run, {})
    model_section = json.loads((args.run / "config.json").read_text())["model"]
    model, tokenizer = load_model(model_section["name"], dtype=model_section.get("dtype", "float32"))
    pool = list(data.pool)
    embeddings = np.asarray(prompt_embeddings(model, tokenizer, data.task, pool), dtype=np.float64)
    values = [str((ex.meta or {}).get(args.key, "?")) for ex in pool]
    print(f"pool of {len(pool)} by `{args.key}`: {dict(sorted(Counter(values).items()))}")
    made_up: dict[str, list[dict[str, int]]] = {}
    for k in args.k:
        labels = kmeans(embeddings, k, np.random.default_rng(args.seed))
        print(f"\nk = {k}\n\n| cluster | size | make-up by `{args.key}` |\n|---:|---:|---|")
        made_up[str(k)] = []
        for cluster in range(k):
            counts = Counter(v for v, label in zip(values, labels) if label == cluster)
            made_up[str(k)].append(dict(counts.most_common()))
            print(f"| {cluster} | {sum(counts.values())} | "
                  + ", ".join(f"{v} {n}" for v, n in counts.most_common()) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"run": str(args.run), "key": args.key, "seed": args.seed,
                                         "clusters": made_up}, indent=1))


if __name__ == "__main__":
    main()
