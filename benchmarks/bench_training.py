"""Training speed, issue 8: today's training path beside the pre-issue-8 one, in one process.

    .venv/bin/python benchmarks/bench_training.py [--reps 6] [--round 96] [--epochs 2] [--threads 2] [--profile]

The old path is the frozen pre-issue-8 code in ``tests/reference/legacy_training.py``
(full-vocabulary logits through ``model(**batch).loss``, peft's ``nn.Dropout`` on the A
inputs, batches as consecutive slices of the shuffled order); nothing in it was changed to
make it slower. Both paths run on the same loaded SmolLM2-135M with LoRA r=16 on all seven
projections (the defaults), fp32.

1. One training step (forward + backward) of the same padded batch of 8 ``arith`` examples,
   plain (no dropout) and hybrid (A-input dropout 0.1; the B decay lives in the optimiser and
   costs nothing here), old and new, interleaved in rotating order; medians over ``--reps``.
2. One round's training: ``train_lora`` on ``--round`` examples for ``--epochs`` epochs with
   STAR's hybrid regularisation (dropout 0.1 + decoupled decay 0.5 on B), old then new then
   new then old (ABBA, so slow drift of a shared machine cancels); the adapter is reset to the
   same initialisation before each run.

Prints a table of seconds and ratios and writes benchmarks/out/bench_training.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the frozen pre-issue-8 code: tests/reference


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=6, help="timed steps per variant (0: skip)")
    parser.add_argument("--round", type=int, default=96, help="examples in the round's training (0: skip)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true",
                        help="also print torch.profiler's top operators for one step of each variant")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "bench_training.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from reference import legacy_training
    from activelora.config import Config
    from activelora.data.arith import generate_arith
    from activelora.data.tasks import get_task
    from activelora.models.loading import load_model
    from activelora.models.lora import attach_lora, lora_input_dropout, reset_lora, set_lora_dropout_rate
    from activelora.run.training import Regularization, _collate, build_features, target_token_loss, train_lora

    config = Config()
    task = get_task("arith")
    examples = generate_arith("train", seed=config.data.seed)
    base, tokenizer = load_model()
    model = attach_lora(base, config.lora, seed=0)
    with torch.no_grad():  # a trained-looking adapter (B = 0 would make A's gradient zero)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(0))
    features = build_features(tokenizer, task, examples[:8], config.train.max_length)
    batch = _collate(features, tokenizer.pad_token_id, "cpu")
    rate = config.lora.lora_dropout

    def old_step(p: float) -> None:
        set_lora_dropout_rate(model, p)  # peft's nn.Dropout, as before issue 8
        model.train()
        model(**batch).loss.backward()
        model.zero_grad(set_to_none=True)

    def new_step(p: float) -> None:
        with lora_input_dropout(model, p):
            model.train()
            target_token_loss(model, batch).backward()
            model.zero_grad(set_to_none=True)

    variants = {} if args.reps <= 0 else {
        "plain old": lambda: old_step(0.0), "plain new": lambda: new_step(0.0),
        "hybrid old": lambda: old_step(rate), "hybrid new": lambda: new_step(rate),
    }
    for run in variants.values():  # warm-up
        run()
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for rep in range(args.reps):
        for name in names[rep % 4:] + names[:rep % 4]:
            started = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - started)
        print(f"rep {rep + 1}/{args.reps}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    if args.profile:
        from torch.profiler import profile

        for name, run in variants.items():
            with profile() as prof:
                run()
            print(f"\n=== {name}: top operators by self CPU time")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    set_lora_dropout_rate(model, rate)
    model.eval()
    step = {k: statistics.median(v) for k, v in times.items()}
    if not step:  # --reps 0: the round only
        step = {k: float("nan") for k in ("plain old", "plain new", "hybrid old", "hybrid new")}
    result = {
        "threads": args.threads, "batch_shape": list(batch["input_ids"].shape),
        "step_seconds_median": step, "step_seconds_all": times,
        "ratios": {
            "hybrid/plain new (target <= 1.1)": step["hybrid new"] / step["plain new"],
            "hybrid/plain old": step["hybrid old"] / step["plain old"],
            "plain old/new": step["plain old"] / step["plain new"],
            "hybrid old/new": step["hybrid old"] / step["hybrid new"],
        },
    }

    if args.round:
        reg = Regularization.hybrid(config)
        round_examples = examples[: args.round]
        train_cfg = dataclasses.replace(config.train, epochs=args.epochs)  # length grouping on (default)
        legacy_cfg = dataclasses.replace(config.train, epochs=args.epochs, group_by_length=False)
        rounds: dict[str, list[float]] = {"old": [], "new": []}
        losses: dict[str, list[float]] = {"old": [], "new": []}
        for which in ("old", "new", "new", "old"):
            reset_lora(model, seed=0)
            set_lora_dropout_rate(model, rate)
            trainer = legacy_training.train_lora if which == "old" else train_lora
            started = time.perf_counter()
            out = trainer(model, tokenizer, task, round_examples, legacy_cfg if which == "old" else train_cfg,
                          reg, progress=False)
            rounds[which].append(time.perf_counter() - started)
            losses[which].append(out.final_loss)
            print(f"round {which}: {rounds[which][-1]:.1f}s, {out.steps} steps, final loss {out.final_loss:.4f}",
                  flush=True)
        set_lora_dropout_rate(model, rate)
        result["round"] = {
            "examples": args.round, "epochs": args.epochs, "regularization": reg.__dict__,
            "seconds": rounds, "final_loss": losses,
            "old/new (target >= 1.6)": statistics.mean(rounds["old"]) / statistics.mean(rounds["new"]),
        }

    print("\n| measure | seconds old | seconds new | old/new |\n|---|---|---|---|")
    print(f"| step, plain (batch {tuple(batch['input_ids'].shape)}) | {step['plain old']:.2f} | "
          f"{step['plain new']:.2f} | {step['plain old'] / step['plain new']:.2f} |")
    print(f"| step, hybrid | {step['hybrid old']:.2f} | {step['hybrid new']:.2f} | "
          f"{step['hybrid old'] / step['hybrid new']:.2f} |")
    if args.round:
        r = result["round"]
        print(f"| round training ({args.round} ex, {args.epochs:g} epochs, hybrid) | "
              f"{statistics.mean(r['seconds']['old']):.1f} | {statistics.mean(r['seconds']['new']):.1f} | "
              f"{r['old/new (target >= 1.6)']:.2f} |")
    print(f"\nhybrid/plain step: old {result['ratios']['hybrid/plain old']:.3f}, "
          f"new {result['ratios']['hybrid/plain new (target <= 1.1)']:.3f}")
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
