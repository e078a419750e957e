"""The three costs issue 15 targets, each old against new in one process, alternating.

    .venv/bin/python benchmarks/bench_kernels.py --reps 3 --name kernels

SmolLM2-135M on arith, ``--threads`` threads (default 2), the medians of ``--reps`` alternating
repetitions (old, new, new, old, ...), and their ratio:

  train step   one LoRA training step (forward + backward + AdamW, batch 8 of arith targets,
               STAR's A-input dropout), float32 against bfloat16 base weights (the LoRA
               weights float32 in both);
  generate     greedy answers to 32 arith problems, float32 against bfloat16;
  mc scoring   STAR's full term on 32 tuned answers, K = 3 dropout passes, float32:
               ``strategy.mc_estimator=sequence`` (the whole prompt + answer in every pass)
               against ``answer`` (one prompt pass, the K passes over the answer positions).

Writes ``benchmarks/results/<name>.json`` and ``.md``. ``--profile`` then runs each side of
each cost once more under ``torch.profiler`` and writes the operators that take the most self
CPU time, with their share, to ``<name>_profile.md``: where the time goes when a ratio falls
short of the bare model's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from activelora.config import Config
from activelora.data.arith import generate_arith
from activelora.data.tasks import get_task
from activelora.models.generation import generate
from activelora.models.loading import load_model
from activelora.models.lora import attach_lora, lora_b_parameters, lora_input_dropout
from activelora.models.text import encode_prompt
from activelora.run.training import _collate, build_features, target_token_loss
from activelora.uncertainty import score_pool

RESULTS = Path(__file__).parent / "results"


def lora_model(dtype: str, config: Config):
    model, tokenizer = load_model(dtype=dtype)
    model = attach_lora(model, config.lora, seed=0)
    with torch.no_grad():  # a trained-looking adapter: B non-zero, so dropout changes outputs
        for p in lora_b_parameters(model):
            p.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(0))
    return model, tokenizer


def time_it(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def operator_shares(fn, top: int) -> list[str]:
    """A markdown table of the ``top`` operators by self CPU time in one call of ``fn``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    lines = [f"total self CPU time {total / 1e6:.2f} s", "", "| operator | calls | self CPU (s) | share |",
             "|---|---:|---:|---:|"]
    lines += [f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e6:.2f} | {e.self_cpu_time_total / total:.0%} |"
              for e in events[:top]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="kernels")
    parser.add_argument("--profile", action="store_true", help="also profile each side once (torch.profiler)")
    parser.add_argument("--top", type=int, default=12, help="operators per profile (default 12)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config, task = Config(), get_task("arith")
    rows = generate_arith("train", 64, seed=0)
    models = {dtype: lora_model(dtype, config) for dtype in ("float32", "bfloat16")}
    tokenizer = models["float32"][1]
    features = build_features(tokenizer, task, rows[:8], config.train.max_length, False)
    batch = _collate(features, tokenizer.pad_token_id, torch.device("cpu"))
    prompts = [encode_prompt(tokenizer, task.prompt(ex), False) for ex in rows[32:64]]
    answers = generate(models["float32"][0], tokenizer, prompts, max_new_tokens=task.max_new_tokens,
                       stop_strings=tuple(task.stop_strings), batch_size=32, progress=False)

    def train_step(dtype: str):
        model = models[dtype][0]
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)

        def step():
            with lora_input_dropout(model, config.lora.lora_dropout):
                model.train()
                target_token_loss(model, batch).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                model.eval()
        return step

    def greedy(dtype: str):
        return lambda: generate(models[dtype][0], tokenizer, prompts, max_new_tokens=task.max_new_tokens,
                                stop_strings=tuple(task.stop_strings), batch_size=32, progress=False)

    def mc(estimator: str):
        return lambda: score_pool(models["float32"][0], tokenizer, task, rows[32:64], measure="entropy",
                                  mc_samples=3, seed=0, generations=answers, progress=False,
                                  mc_estimator=estimator)

    cases = {"train step": (train_step("float32"), train_step("bfloat16"), "float32", "bfloat16"),
             "generate (32 prompts)": (greedy("float32"), greedy("bfloat16"), "float32", "bfloat16"),
             "mc scoring (32 answers, K=3)": (mc("sequence"), mc("answer"), "sequence", "answer")}
    report = {"threads": args.threads, "reps": args.reps, "torch": torch.__version__, "cases": {}}
    for name, (old, new, old_label, new_label) in cases.items():
        old(), new()  # warm-up: first calls pay for allocations and oneDNN kernel selection
        times = {"old": [], "new": []}
        for rep in range(args.reps):
            for which in (("old", "new") if rep % 2 == 0 else ("new", "old")):
                times[which].append(time_it(old if which == "old" else new))
        o, n = statistics.median(times["old"]), statistics.median(times["new"])
        report["cases"][name] = {"old": old_label, "new": new_label, "old_s": o, "new_s": n, "ratio": o / n,
                                 "times": times}
        print(f"{name}: {old_label} {o:.2f} s, {new_label} {n:.2f} s, {o / n:.2f}x", file=sys.stderr, flush=True)
    lines = [f"{args.threads} threads, median of {args.reps} alternating repetitions, torch {torch.__version__}.", "",
             "| cost | old | new | old (s) | new (s) | old / new |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {name} | {c['old']} | {c['new']} | {c['old_s']:.2f} | {c['new_s']:.2f} | {c['ratio']:.2f}x |"
              for name, c in report["cases"].items()]
    RESULTS.mkdir(exist_ok=True)
    if args.profile:
        profiles = ["Self CPU time per operator, one profiled call of each side (after the timed ones).", ""]
        for name, (old, new, old_label, new_label) in cases.items():
            for label, fn in ((old_label, old), (new_label, new)):
                profiles += [f"### {name}: {label}", "", *operator_shares(fn, args.top), ""]
        (RESULTS / f"{args.name}_profile.md").write_text("\n".join(profiles))
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
