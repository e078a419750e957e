"""Does the model's own uncertainty find the examples the gold-loss oracle buys? (issue 16, `mix`)

    .venv/bin/activelora score --data mix --adapter RUN/round-R/adapter --set model.chat_template=true \\
        --measure pe --normalize --out OWN.jsonl         # label-free: the adapter's own greedy answers
    .venv/bin/python benchmarks/uncertainty_vs_gold_loss.py RUN R OWN.jsonl [--key skill] [--top 32] --out PATH

``oracle-loss`` ranks the pool by the gold answer's mean per-token loss under the round's adapter
(``RUN/round-R/pool_scores.json``, which reads labels no real pool has). A label-free strategy can
only score the adapter's *own* answer. This compares the two under the same adapter, on the same
unlabelled examples, per ``meta[key]`` group. Score with the prompt format the run trained with
(``mix.yaml`` sets ``model.chat_template: true``); adapters trained since the seventeenth session
record it and ``score`` refuses another.

- the Spearman rank correlation of the own-answer score with the gold loss;
- how well the own-answer score tells the adapter's wrong answers from its right ones, as the
  AUROC ``P(u_wrong > u_right) + ½·P(u_wrong = u_right)`` (0.5: no better than chance);
- which groups each ranking's top ``--top`` examples come from, and how many they share.

Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from skill_table import meta_values, run_data  # noqa: E402  (sibling scripts)
from tables import fail, write_table  # noqa: E402

from activelora.probes.gap import auroc, spearman  # noqa: E402


def compare(ids: list[str], own: np.ndarray, gold: np.ndarray, wrong: np.ndarray, group: list[str], top: int) -> dict:
    """The per-group and overall statistics of the module docstring, for aligned arrays (the
    probes' :func:`~activelora.probes.gap.spearman` and :func:`~activelora.probes.gap.auroc`;
    None where a group is too small or all right or all wrong)."""
    out: dict = {"groups": {}}
    for name in sorted(set(group)):
        mask = np.array([g == name for g in group])
        w = wrong[mask]
        out["groups"][name] = {
            "n": int(mask.sum()), "accuracy": float(1 - w.mean()),
            "spearman": spearman(own[mask], gold[mask]) if mask.sum() > 2 else None,
            "auroc": auroc(own[mask], w)}
    out["spearman_all"] = spearman(own, gold)
    by_gold = [ids[i] for i in np.argsort(-gold, kind="stable")[:top]]
    by_own = [ids[i] for i in np.argsort(-own, kind="stable")[:top]]
    where = dict(zip(ids, group))
    out["top"] = {"k": top, "shared": len(set(by_gold) & set(by_own)),
                  "gold_loss": dict(Counter(where[i] for i in by_gold).most_common()),
                  "own_score": dict(Counter(where[i] for i in by_own).most_common())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an oracle-loss run folder, <output>/oracle-loss/seed-<n>")
    parser.add_argument("round", type=int, help="the round whose adapter scored the pool")
    parser.add_argument("own", type=Path, help="`activelora score` output for that adapter (JSON lines)")
    parser.add_argument("--key", default="skill", help="the meta key to group by (default: skill)")
    parser.add_argument("--top", type=int, default=32, help="the batch size to compare the rankings' heads at (default 32)")
    parser.add_argument("--out", required=True, help="output path without suffix")
    args = parser.parse_args()
    scores_path = args.run / f"round-{args.round}" / "pool_scores.json"
    try:
        pool_scores = json.loads(scores_path.read_text())
        gold_by_id = dict(zip(pool_scores["ids"], pool_scores["full_scores"]))
        own_by_id = {row["id"]: row for row in map(json.loads, args.own.read_text().splitlines())}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"uncertainty_vs_gold_loss: {exc}")
    metrics = args.run / "metrics.jsonl"
    strategy = json.loads(metrics.read_text().splitlines()[0]).get("strategy") if metrics.is_file() else None
    if strategy != "oracle-loss":
        fail(f"uncertainty_vs_gold_loss: {args.run} is not an oracle-loss run ({metrics}: strategy {strategy!r}); "
             "only its pool scores are gold losses")
    ids = [i for i in pool_scores["ids"] if i in own_by_id]
    if len(ids) < len(pool_scores["ids"]):
        fail(f"uncertainty_vs_gold_loss: {args.own} lacks {len(pool_scores['ids']) - len(ids)} of the "
             f"{len(pool_scores['ids'])} pool ids scored in {scores_path}")
    data = run_data(args.run, {})
    examples = {ex.id: ex for ex in data.pool}
    group = meta_values(data.pool, args.key)
    own = np.array([float(own_by_id[i]["score"]) for i in ids])
    gold = np.array([float(gold_by_id[i]) for i in ids])
    wrong = np.array([not data.task.is_correct(own_by_id[i]["answer"], examples[i]) for i in ids])
    result = {"run": str(args.run), "round": args.round, "own": str(args.own), "key": args.key,
              **compare(ids, own, gold, wrong, [group[i] for i in ids], args.top)}
    lines = [f"Own-answer score ({args.own.name}) against the gold loss, under {args.run}'s round-{args.round} "
             f"adapter, on its {len(ids)} unlabelled examples. Spearman over all: {result['spearman_all']:+.2f}.", "",
             f"| {args.key} | examples | adapter's accuracy | Spearman (own, gold loss) | AUROC of own score for a wrong answer |",
             "|---|---:|---:|---:|---:|"]
    for name, info in result["groups"].items():
        cells = [f"{info[k]:+.2f}" if k == "spearman" and info[k] is not None else
                 (f"{info[k]:.2f}" if info[k] is not None else "–") for k in ("spearman", "auroc")]
        lines.append(f"| {name} | {info['n']} | {info['accuracy']:.2f} | {cells[0]} | {cells[1]} |")
    head = result["top"]
    lines += ["", f"Top {head['k']} by gold loss: {head['gold_loss']}; by own score: {head['own_score']}; "
                  f"shared: {head['shared']}."]
    write_table(Path(args.out), "\n".join(lines), result)


if __name__ == "__main__":
    main()
