"""What each selected batch is made of, against the pool it was drawn from.

Per round, :func:`batch_composition` gives flat metrics for ``metrics.jsonl``:

* ``batch_answer_tokens`` / ``pool_answer_tokens``: the mean length of the gold answer in
  **tokens of the training target** (``task.target``, the model's tokenizer, no EOS): what
  the model learns to produce and what summed uncertainties grow with. The pool mean is over
  the pool examples whose answer is known (all of them in a simulation; None otherwise).
* for each key of ``Example.meta`` with few distinct values in the pool (at most
  :data:`MAX_CATEGORIES`; for ``arith``: ``family`` and ``steps``), the share of each value:
  ``batch_share_<key>=<value>`` and ``pool_share_<key>=<value>``; and for a numeric key its
  mean, ``batch_mean_<key>`` / ``pool_mean_<key>``. Keys with many values (a file's
  ``where``) say nothing about composition and are left out.

"The pool" is the unlabelled pool the batch was drawn from (before that round's selection),
so a selection that buys nothing in particular has batch values near the pool values.
:func:`composition_tables` and :func:`composition_curves` summarise finished runs for the
report and its plot.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..data.example import Example

MAX_CATEGORIES = 12


def _key_part(value: Any) -> str:
    # Letters, digits, "." and "_" only: "=" separates a meta key from its value.
    return re.sub(r"[^0-9A-Za-z._]+", "_", str(value)).strip("_") or "none"


def _categorical_keys(pool: Sequence[Example]) -> dict[str, list]:
    """meta key -> its sorted distinct values, for keys whose values are scalars and few."""
    values: dict[str, set] = defaultdict(set)
    for ex in pool:
        for key, value in (ex.meta or {}).items():
            if isinstance(value, (str, int, float, bool)):
                values[key].add(value)
            else:
                values[key].add(None)
    keys = {}
    for key, seen in values.items():
        if None in seen or len(seen) > MAX_CATEGORIES:
            continue
        keys[key] = sorted(seen, key=lambda v: (str(type(v)), v))
    return keys


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def answer_tokens(tokenizer, task) -> Callable[[Example], int | None]:
    """``example -> len(tokens of task.target(example))``, None for an unlabelled example."""
    cache: dict[tuple[str, str], int] = {}

    def length(ex: Example) -> int | None:
        if ex.answer is None:
            return None
        key = (ex.id, ex.answer)
        if key not in cache:
            cache[key] = len(tokenizer(task.target(ex), add_special_tokens=False)["input_ids"])
        return cache[key]

    return length


def batch_composition(batch: Sequence[Example], pool: Sequence[Example],
                      length: Callable[[Example], int | None]) -> dict[str, float | int | None]:
    """Flat composition metrics of ``batch`` against ``pool`` (see the module docstring).

    ``pool`` is what the batch was drawn from (it contains the batch). ``batch`` examples
    carry their labels; ``length`` gives an example's answer length (None: unknown).
    """

    def mean(values: Iterable[float | None]) -> float | None:
        known = [float(v) for v in values if v is not None]
        return float(np.mean(known)) if known else None

    row: dict[str, float | int | None] = {
        "batch_n": len(batch),
        "batch_answer_tokens": mean(length(ex) for ex in batch),
        "pool_answer_tokens": mean(length(ex) for ex in pool),
    }
    for key, values in _categorical_keys(pool).items():
        for name, group in (("batch", batch), ("pool", pool)):
            counts = Counter((ex.meta or {}).get(key) for ex in group)
            for value in values:
                row[f"{name}_share_{_key_part(key)}={_key_part(value)}"] = (
                    counts.get(value, 0) / len(group) if group else None)
            if all(_is_number(v) for v in values):
                row[f"{name}_mean_{_key_part(key)}"] = mean((ex.meta or {}).get(key) for ex in group)
    return row


# --------------------------------------------------------------------------- summaries


def _composition_keys(rows: Iterable[dict]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key.startswith("batch_") and key != "batch_n" and key not in keys:
                keys.append(key)
    return keys


def queried_means(runs: dict[str, dict[int, list[dict]]], *, query_rounds_only: bool = True) -> dict[str, dict]:
    """Per strategy: each ``batch_*`` metric averaged over its batches (weighted by batch
    size; the query rounds only by default, round 0 being the shared random initial set),
    plus ``pool_*`` of round 0 (the whole pool) and the number of batches."""
    out: dict[str, dict] = {}
    for name, seeds in runs.items():
        rows = [row for seed_rows in seeds.values() for row in seed_rows
                if "batch_n" in row and (row["round"] > 0 or not query_rounds_only)]
        if not rows:
            continue
        summary: dict[str, Any] = {"batches": len(rows), "labels": sum(int(r["batch_n"]) for r in rows)}
        for key in _composition_keys(rows):
            pairs = [(r[key], r["batch_n"]) for r in rows if r.get(key) is not None]
            if pairs:
                values, weights = zip(*pairs)
                summary[key] = float(np.average(values, weights=weights)) if sum(weights) else None
        first = [row for seed_rows in seeds.values() for row in seed_rows if row["round"] == 0]
        for key in {k for row in first for k in row if k.startswith("pool_")}:
            summary[key] = float(np.mean([row[key] for row in first if row.get(key) is not None] or [np.nan]))
        out[name] = summary
    return out


def composition_tables(runs: dict[str, dict[int, list[dict]]]) -> str:
    """Markdown: what the query rounds bought, per strategy, against the whole pool.

    One table for the answer length and the numeric means, one per meta key for its shares.
    Empty string when no run recorded composition metrics.
    """
    means = queried_means(runs)
    if not means:
        return ""
    names = sorted(means)
    pool_row = means[names[0]]

    def fmt(value):
        return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.2f}"

    scalar = [k for k in _composition_keys([means[n] for n in names])
              if k == "batch_answer_tokens" or k.startswith("batch_mean_")]
    head = ["answer tokens" if k == "batch_answer_tokens" else "mean " + k.removeprefix("batch_mean_") for k in scalar]
    lines = ["What the query rounds bought (all seeds; answer length in tokens of the gold training target):",
             "", "| strategy | batches | labels | " + " | ".join(head) + " |", "|---" * (len(head) + 3) + "|",
             "| pool (round 0) | – | – | " + " | ".join(fmt(pool_row.get("pool_" + k[6:])) for k in scalar) + " |"]
    for name in names:
        m = means[name]
        lines.append(f"| {name} | {m['batches']} | {m['labels']} | " + " | ".join(fmt(m.get(k)) for k in scalar) + " |")
    share_keys = [k for k in _composition_keys([means[n] for n in names]) if k.startswith("batch_share_")]
    by_meta: dict[str, list[str]] = defaultdict(list)
    for key in share_keys:
        by_meta[_meta_of(key)].append(key)
    for meta, keys in by_meta.items():
        values = [k.split("=", 1)[1] for k in keys]
        lines += ["", f"Share of each `{meta}`:", "", "| strategy | " + " | ".join(values) + " |",
                  "|---" * (len(values) + 1) + "|",
                  "| pool (round 0) | " + " | ".join(fmt(pool_row.get("pool" + k[5:])) for k in keys) + " |"]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(fmt(means[name].get(k)) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def _meta_of(share_key: str) -> str:
    """``batch_share_<key>=<value>`` -> ``<key>``."""
    return share_key.removeprefix("batch_share_").split("=", 1)[0]


def composition_curves(runs: dict[str, dict[int, list[dict]]], curve) -> tuple[dict, dict]:
    """``(curves, references)`` for :func:`~activelora.probes.plots.plot_round_curves`: per
    round, the batch's answer length, each numeric meta mean and the share of the pool's most
    common value of each meta key, with the whole pool (round 0) as the dashed reference."""
    rows = [row for seeds in runs.values() for seed_rows in seeds.values() for row in seed_rows]
    keys = _composition_keys(rows)
    if not keys:
        return {}, {}
    first = [row for row in rows if row["round"] == 0]
    wanted = [k for k in keys if k == "batch_answer_tokens" or k.startswith("batch_mean_")]
    share_keys = [k for k in keys if k.startswith("batch_share_")]
    for meta in dict.fromkeys(_meta_of(k) for k in share_keys):
        mine = [k for k in share_keys if _meta_of(k) == meta]
        pool_share = {k: np.mean([r.get("pool" + k[5:]) or 0.0 for r in first]) if first else 0.0 for k in mine}
        if pool_share:
            wanted.append(max(mine, key=lambda k: pool_share[k]))
    curves, references = {}, {}
    for key in wanted:
        per = {s: curve(seeds, key) for s, seeds in runs.items()}
        per = {s: pts for s, pts in per.items() if any(m is not None for _, m, _ in pts)}
        if not per:
            continue
        curves[key] = per
        pool = [r.get("pool" + key[5:]) for r in first if r.get("pool" + key[5:]) is not None]
        if pool:
            references[key] = {"pool": float(np.mean(pool))}
    return curves, references
