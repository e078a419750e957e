"""The default training recipe (issue 9, deliver 7): sweep it on a dev split, then draw the curve on test.

Two modes, both through the library's own ``train_lora`` and ``evaluate``:

    # coordinate search on DEV (never test): each --config is one training recipe
    .venv/bin/python benchmarks/sweep_recipe.py sweep --labels 128 --dev 150 \
        --config lr=5e-4,epochs=2,r=16 --config lr=1e-3,epochs=2,r=16 ... --name sweep128
    # the learning curve on TEST with the chosen recipe
    .venv/bin/python benchmarks/sweep_recipe.py curve --sizes 0 32 64 128 256 512 --test 200 \
        --config lr=1e-3,epochs=3,r=16 --name curve

Splits (all from the generator, so every process sees the same rows):

* training labels: a seeded shuffle of ``arith`` train rows [1000, 1800); a size ``n`` takes
  the first ``n`` of that order, so the sets are nested;
* dev: ``arith`` train rows [1850, 2000), the last 150 of the train side (and of the
  ``dev`` split that ``data.test_split: dev`` reads, rows [1500, 2000));
* test: the first ``--test`` rows of ``arith`` test.

The validity study's pool and probe are train rows [0, probe + pool) (at most 600 here),
so neither the training labels nor dev overlap them, and nothing here looks at test
except ``curve``, which reports and does not choose.

A config key is ``lr``, ``epochs``, ``r``, ``alpha`` (default ``2 * r``, the project's
ratio), ``reg`` (``plain`` = what ``random`` trains with, ``hybrid`` = STAR's), ``bs``.
Each finished config is appended to ``benchmarks/out/<name>.jsonl`` at once (a stopped
sweep keeps its rows and skips them when re-run); the end writes ``<name>.json`` and
``<name>.md`` with Wilson 95% intervals and, against the first config, the paired
difference (problems one got right and the other wrong) with an exact McNemar p-value.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections import defaultdict
from pathlib import Path

import torch

from activelora.config import Config, LoraSection, TrainConfig
from activelora.data.arith import generate_arith
from activelora.data.tasks import get_task
from activelora.models.evaluation import evaluate
from activelora.models.loading import load_model
from activelora.models.lora import adapter_disabled, attach_lora
from activelora.run.training import Regularization, train_lora

LABEL_ROWS = (1000, 1800)  # train-side rows the training labels are drawn from
DEV_ROWS = (1850, 2000)  # train-side rows of the dev split
OUT = Path(__file__).parent / "out"
KEYS = {"lr": float, "epochs": float, "r": int, "alpha": int, "reg": str, "bs": int}


def parse_recipe(text: str) -> dict:
    """``"lr=1e-3,epochs=3,r=16"`` -> a full recipe dict (defaults from ``Config()``)."""
    base = Config()
    recipe = {"lr": base.train.learning_rate, "epochs": base.train.epochs, "r": base.lora.r,
              "alpha": None, "reg": "plain", "bs": base.train.batch_size}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in KEYS:
            raise SystemExit(f"--config {text!r}: unknown key {key!r} (valid: {', '.join(KEYS)})")
        recipe[key] = KEYS[key](value)
    if recipe["alpha"] is None:
        recipe["alpha"] = 2 * recipe["r"]
    if recipe["reg"] not in ("plain", "hybrid"):
        raise SystemExit(f"--config {text!r}: reg must be plain or hybrid")
    return recipe


def recipe_name(recipe: dict) -> str:
    return (f"lr={recipe['lr']:g},epochs={recipe['epochs']:g},r={recipe['r']},alpha={recipe['alpha']},"
            f"reg={recipe['reg']},bs={recipe['bs']}")


def label_rows(n: int, seed: int) -> list:
    rows = generate_arith("train")[LABEL_ROWS[0]:LABEL_ROWS[1]]
    order = list(range(len(rows)))
    random.Random(f"sweep-labels-{seed}").shuffle(order)
    return [rows[i] for i in order[:n]]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: under H0 the b + c discordant pairs split Binomial(b+c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def train_and_eval(recipe: dict, labels: list, eval_rows: list, seed: int, task, eval_batch: int) -> dict:
    config = Config()
    lora = LoraSection(r=recipe["r"], lora_alpha=recipe["alpha"], lora_dropout=config.lora.lora_dropout)
    train = TrainConfig(epochs=recipe["epochs"], learning_rate=recipe["lr"], batch_size=recipe["bs"], seed=seed)
    model, tokenizer = load_model()
    model = attach_lora(model, lora, seed=seed)
    t0 = time.time()
    steps = 0
    loss = None
    if labels:
        reg = Regularization.plain() if recipe["reg"] == "plain" else Regularization.hybrid(config)
        result = train_lora(model, tokenizer, task, labels, train, reg, progress=False)
        steps, loss = result.steps, result.final_loss
        scored = evaluate(model, tokenizer, task, eval_rows, batch_size=eval_batch, progress=False)
    else:
        with adapter_disabled(model):
            scored = evaluate(model, tokenizer, task, eval_rows, batch_size=eval_batch, progress=False)
    t1 = time.time()
    correct = [int(p.correct) for p in scored.predictions]
    fam = defaultdict(list)
    for ex, c in zip(eval_rows, correct):
        fam[ex.meta["family"]].append(c)
    return {"steps": steps, "final_loss": None if loss is None else round(loss, 4),
            "seconds": round(t1 - t0, 1), "k": sum(correct), "n": len(correct),
            "accuracy": sum(correct) / len(correct), "correct": correct,
            "per_family": {f: round(sum(v) / len(v), 3) for f, v in sorted(fam.items())}}


def load_done(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(rows: list[dict], title: str, split: str) -> str:
    """A markdown table: accuracy with Wilson 95% CI; paired difference against the first row
    of the same label count (b = only this one right, c = only the reference right)."""
    lines = [f"### {title}", "",
             f"| labels | recipe | seed | steps | {split} accuracy | 95% CI (Wilson) | vs reference: +b / -c | McNemar p | train+eval s |",
             "|---|---|---|---|---|---|---|---|---|"]
    reference: dict[tuple, dict] = {}
    for row in rows:
        key = (row["labels"], row["seed"])
        ref = reference.setdefault(key, row)
        lo, hi = wilson(row["k"], row["n"])
        if ref is row:
            paired, p = "reference", ""
        else:
            b = sum(1 for x, y in zip(row["correct"], ref["correct"]) if x and not y)
            c = sum(1 for x, y in zip(row["correct"], ref["correct"]) if y and not x)
            paired, p = f"+{b} / -{c} (net {b - c:+d})", f"{mcnemar_exact(b, c):.3f}"
        lines.append(f"| {row['labels']} | {row['recipe']} | {row['seed']} | {row['steps']} | "
                     f"{row['accuracy']:.3f} ({row['k']}/{row['n']}) | {lo:.3f}-{hi:.3f} | {paired} | {p} | {row['seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["sweep", "curve", "report"])
    parser.add_argument("--config", action="append", default=[], help="a recipe, e.g. lr=1e-3,epochs=3,r=16")
    parser.add_argument("--merge", nargs="*", default=[], help="report: names of earlier runs (their .jsonl) to join")
    parser.add_argument("--labels", type=int, nargs="+", default=[128], help="sweep: label counts")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 32, 64, 128, 256, 512], help="curve: label counts")
    parser.add_argument("--dev", type=int, default=150)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-batch", type=int, default=32)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "report":  # join several runs (e.g. parallel workers) into one table
        rows = [row for name in args.merge for row in load_done(OUT / f"{name}.jsonl")]
        table = summarise(rows, f"{args.name}: {', '.join(args.merge)}", rows[0]["split"] if rows else "dev")
        (OUT / f"{args.name}.md").write_text(table)
        (OUT / f"{args.name}.json").write_text(json.dumps({"merged": args.merge, "label_rows": LABEL_ROWS,
                                                            "dev_rows": DEV_ROWS, "rows": rows}))
        print(table)
        return
    if not args.config:
        parser.error("--config is required for sweep and curve")
    task = get_task("arith")
    if args.mode == "sweep":
        eval_rows = generate_arith("train")[DEV_ROWS[0]:DEV_ROWS[1]][: args.dev]
        split, counts = "dev", args.labels
    else:
        eval_rows = generate_arith("test")[: args.test]
        split, counts = "test", args.sizes
    OUT.mkdir(exist_ok=True)
    log = OUT / f"{args.name}.jsonl"
    rows = load_done(log)
    done = {(r["labels"], r["recipe"], r["seed"]) for r in rows}
    recipes = [parse_recipe(c) for c in args.config]
    for seed in args.seed:
        for n in counts:
            for recipe in recipes:
                name = recipe_name(recipe) if n else "zero-shot"
                if (n, name, seed) in done:
                    continue
                row = {"labels": n, "recipe": name, "seed": seed, "split": split, "mode": args.mode,
                       **train_and_eval(recipe, label_rows(n, seed), eval_rows, seed, task, args.eval_batch)}
                rows.append(row)
                done.add((n, name, seed))
                with log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps({k: v for k, v in row.items() if k != "correct"}), flush=True)
    title = f"{args.name}: {args.mode} on {split} ({len(eval_rows)} problems), torch threads {args.threads}"
    table = summarise(rows, title, split)
    (OUT / f"{args.name}.md").write_text(table)
    (OUT / f"{args.name}.json").write_text(json.dumps(
        {"mode": args.mode, "split": split, "eval_rows": len(eval_rows), "label_rows": LABEL_ROWS,
         "dev_rows": DEV_ROWS, "cores": os.cpu_count(), "threads": args.threads, "rows": rows}))
    print(table)


if __name__ == "__main__":
    main()
