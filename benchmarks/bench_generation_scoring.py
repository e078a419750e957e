"""Issue 8 benchmark: greedy evaluation and STAR pool scoring, pre-issue-8 code against today's,
side by side in one process on the embedded model (interleaved, so both see the same load).

The old path is the frozen copy of the code from commit a0338fe kept as a test oracle in
``tests/reference/`` (legacy_generation, legacy_evaluation, legacy_scorer); nothing in it was
changed except its imports.

  evaluate  N arith test problems, greedy: old (batch 32, unmerged adapter, output_scores)
            against new at each --eval-batch-sizes; checks the answers are identical.
  score     STAR's pool scoring of M arith train examples: entropy over K MC-dropout passes of
            the adapted model, plus one pass of the base model (adapter disabled) with the
            on-disk cache in a fresh folder, so the weight fingerprint is paid as in a first
            round; checks the scores agree to float tolerance.

    .venv/bin/python benchmarks/bench_generation_scoring.py                 # 64 / 128 examples, 2 reps
    .venv/bin/python benchmarks/bench_generation_scoring.py --n-eval 8 --n-pool 8 --reps 1   # smoke
    .venv/bin/python benchmarks/bench_generation_scoring.py --profile score   # where the new time goes

Results: a table on stdout and JSON under benchmarks/out/.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the frozen pre-issue-8 code: tests/reference


def load(args):
    from activelora.config import LoraSection
    from activelora.models.loading import load_model
    from activelora.models.lora import attach_lora, lora_b_parameters

    model, tokenizer = load_model("smollm2-135m")
    model = attach_lora(model, LoraSection(lora_dropout=args.dropout), seed=0)
    if args.adapter:  # a trained adapter (e.g. a run's round-0/adapter): realistic answer lengths
        from activelora.models.lora import load_adapter_weights

        load_adapter_weights(model, args.adapter)
        return model.eval(), tokenizer
    # A trained adapter has non-zero B; small random values keep the answers sensible.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in lora_b_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 1e-3)
    return model.eval(), tokenizer


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_evaluate(model, tok, task, args) -> dict:
    from activelora.data import generate_arith
    from activelora.models.evaluation import evaluate
    from reference.legacy_evaluation import evaluate as legacy_evaluate

    examples = generate_arith("test")[:args.n_eval]
    kw = dict(progress=False)
    variants = {"old b32": lambda: legacy_evaluate(model, tok, task, examples, batch_size=32, **kw)}
    for b in args.eval_batch_sizes:
        variants[f"new b{b}"] = lambda b=b: evaluate(model, tok, task, examples, batch_size=b, **kw)
    times = {name: [] for name in variants}
    answers = {}
    for _ in range(args.reps):
        for name, fn in variants.items():  # interleaved
            seconds, result = timed(fn)
            times[name].append(seconds)
            print(f"evaluate {name}: {seconds:.1f}s", flush=True)
            answers[name] = [p.prediction for p in result.predictions]
    identical = {name: answers[name] == answers["old b32"] for name in variants}
    return {"n": len(examples), "times": times, "identical_answers": identical,
            "tokens": sum(len(a) for a in answers["old b32"])}


def star_scores(score_pool, model, tok, task, examples, args):
    common = dict(measure="entropy", batch_size=args.score_batch, progress=False)
    full = score_pool(model, tok, task, examples, mc_samples=args.k, seed=3, cache=False, **common)
    base = score_pool(model, tok, task, examples, base=True, cache=True, **common)
    return [s.score for s in full], [s.score for s in base]


def bench_score(model, tok, task, args) -> dict:
    from activelora.data import generate_arith
    from activelora.uncertainty.scorer import score_pool
    from reference.legacy_scorer import score_pool as legacy_score_pool

    examples = generate_arith("train")[:args.n_pool]
    variants = {"old": legacy_score_pool, "new": score_pool}
    times = {name: [] for name in variants}
    scores = {}
    for _ in range(args.reps):
        for name, fn in variants.items():
            shutil.rmtree(Path(os.environ["ACTIVELORA_CACHE"]) / "scores", ignore_errors=True)
            seconds, scores[name] = timed(lambda fn=fn: star_scores(fn, model, tok, task, examples, args))
            times[name].append(seconds)
            print(f"score {name}: {seconds:.1f}s", flush=True)
    diff = [float(np.max(np.abs(np.subtract(scores["new"][i], scores["old"][i])))) for i in (0, 1)]
    return {"n": len(examples), "k": args.k, "times": times, "max_abs_diff_full": diff[0],
            "max_abs_diff_base": diff[1], "mean_score_full": float(np.mean(scores["old"][0]))}


def profile(model, tok, task, args) -> None:
    from activelora.data import generate_arith
    from activelora.models.evaluation import evaluate
    from activelora.uncertainty.scorer import score_pool

    if args.profile == "score":
        examples = generate_arith("train")[:args.n_pool]
        fn = lambda: star_scores(score_pool, model, tok, task, examples, args)  # noqa: E731
    else:
        examples = generate_arith("test")[:args.n_eval]
        fn = lambda: evaluate(model, tok, task, examples, batch_size=max(args.eval_batch_sizes), progress=False)  # noqa: E731
    prof = cProfile.Profile()
    prof.runcall(fn)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-eval", type=int, default=64)
    parser.add_argument("--n-pool", type=int, default=128)
    parser.add_argument("--k", type=int, default=3, help="MC-dropout passes of STAR's full-model score")
    parser.add_argument("--dropout", type=float, default=0.1, help="LoRA A-input dropout (STAR's)")
    parser.add_argument("--eval-batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[32, 64])
    parser.add_argument("--score-batch", type=int, default=16, help="score.batch_size (the default 16)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--adapter", help="a saved adapter folder (default LoRA r=16) instead of a random one")
    parser.add_argument("--parts", default="evaluate,score")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", choices=["evaluate", "score"], default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "bench_generation_scoring.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from activelora.data import get_task
    from activelora.models.loading import cache_dir

    model, tok = load(args)  # the converted model stays in the real cache
    task = get_task("arith")
    with tempfile.TemporaryDirectory() as tmp:
        real_cache = cache_dir()
        os.environ["ACTIVELORA_CACHE"] = tmp  # score caches go to a throwaway folder
        try:
            if args.profile:
                profile(model, tok, task, args)
                return
            report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
                                 f"torch threads {torch.get_num_threads()}"}
            parts = args.parts.split(",")
            if "evaluate" in parts:
                report["evaluate"] = bench_evaluate(model, tok, task, args)
            if "score" in parts:
                report["score"] = bench_score(model, tok, task, args)
        finally:
            os.environ["ACTIVELORA_CACHE"] = str(real_cache)
    print(report["machine"])
    print("| what | old s | new s | old/new |\n|---|---|---|---|")
    if "evaluate" in report:
        ev = report["evaluate"]
        old = min(ev["times"]["old b32"])
        for name, ts in ev["times"].items():
            if name != "old b32":
                print(f"| evaluate {ev['n']} arith, {name} (answers identical: {ev['identical_answers'][name]}) "
                      f"| {old:.1f} | {min(ts):.1f} | {old / min(ts):.2f}x |")
    if "score" in report:
        sc = report["score"]
        old, new = min(sc["times"]["old"]), min(sc["times"]["new"])
        print(f"| STAR score {sc['n']} arith (entropy K={sc['k']} + base; max |diff| "
              f"{sc['max_abs_diff_full']:.1e} / {sc['max_abs_diff_base']:.1e}) | {old:.1f} | {new:.1f} | {old / new:.2f}x |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
