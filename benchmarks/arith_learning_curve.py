"""How much SmolLM2-135M learns `arith` with LoRA: zero-shot vs 64/128/256 training examples.

    .venv/bin/python benchmarks/arith_learning_curve.py [--sizes 64 128 256] [--test 200]

Uses the project's defaults (LoRA r=16 on all projections, 2 epochs, lr 5e-4, batch 8,
hybrid regularisation) and prints accuracy, per-family accuracy and wall time; writes
benchmarks/out/arith_learning_curve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import torch

from activelora.config import Config
from activelora.data.arith import generate_arith
from activelora.data.tasks import get_task
from activelora.models.evaluation import evaluate
from activelora.models.loading import load_model
from activelora.models.lora import adapter_disabled, attach_lora, reset_lora
from activelora.run.training import Regularization, train_lora


def per_family(examples, result) -> dict[str, float]:
    hits = defaultdict(list)
    for ex, p in zip(examples, result.predictions):
        hits[ex.meta["family"]].append(p.correct)
    return {f: round(sum(v) / len(v), 3) for f, v in sorted(hits.items())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = Config()
    task = get_task("arith")
    train = generate_arith("train", seed=config.data.seed)
    test = generate_arith("test", seed=config.data.seed)[: args.test]
    model, tokenizer = load_model()
    model = attach_lora(model, config.lora, seed=args.seed)
    rows = []
    started = time.time()
    with adapter_disabled(model):
        zero = evaluate(model, tokenizer, task, test, batch_size=config.eval.batch_size)
    rows.append({"train_examples": 0, "accuracy": zero.accuracy, "train_s": 0.0,
                 "eval_s": round(time.time() - started, 1), "per_family": per_family(test, zero)})
    print(json.dumps(rows[-1]), flush=True)
    for n in args.sizes:
        reset_lora(model, seed=args.seed)
        t0 = time.time()
        result = train_lora(model, tokenizer, task, train[:n], config.train, Regularization.hybrid(config))
        t1 = time.time()
        scored = evaluate(model, tokenizer, task, test, batch_size=config.eval.batch_size)
        rows.append({"train_examples": n, "accuracy": scored.accuracy, "steps": result.steps,
                     "final_loss": round(result.final_loss, 4), "train_s": round(t1 - t0, 1),
                     "eval_s": round(time.time() - t1, 1), "per_family": per_family(test, scored)})
        print(json.dumps(rows[-1]), flush=True)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "arith_learning_curve.json").write_text(json.dumps(
        {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "test": len(test), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
