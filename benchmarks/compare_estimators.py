"""Does the cheaper Monte-Carlo estimator rank the pool as the old one does? (issue 15, deliver 2)

    nice -n 10 .venv/bin/python benchmarks/compare_estimators.py --labels 64 --pool 200 --k 3

One adapter is trained on ``--labels`` arith problems (train rows [0, labels)) with the
default recipe and STAR's training (hybrid regularisation: A-input dropout, L2 on B), in
float32. Its greedy answers to the next ``--pool`` problems are generated once; then, in
the same process and on the same answers, the full term is scored with K dropout passes
(same seed: the same keyed masks per example and pass) by both estimators:

* ``sequence``: each pass samples dropout over the whole ``prompt + answer`` (the old one);
* ``answer``: the prompt once without dropout, the K passes over its shared KV cache with
  dropout at the answer positions only (:mod:`activelora.uncertainty.answer_passes`).

Per measure (entropy, STAR's full term, summed as star sums it; pe; bald): the Spearman
correlation of the two estimators' scores, the overlap of their top 32, and the time of
each. Then STAR's own score ``λ·norm(u_base) + (1-λ)·norm(u_full)`` (star's defaults: the
base term on the tuned answer, averaged per token) at λ = 0.9 (its first query) and 0.5,
and the whole pool-scoring step of a star round (answers + full term + base term) with each
estimator. The bar (the one the issue sets for bf16): Spearman >= 0.98 and top-32 overlap
>= 28 of 32. Timings are from a shared machine: read the ratios, not the seconds.
Output: ``benchmarks/results/estimator_compare.{json,md}`` (``--name``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from activelora.config import Config
from activelora.data.arith import generate_arith
from activelora.data.tasks import get_task
from activelora.models.generation import generate
from activelora.models.loading import load_model
from activelora.models.lora import attach_lora, set_lora_dropout_rate
from activelora.models.text import encode_prompt
from activelora.run.training import train_lora
from activelora.strategies import get_strategy
from activelora.strategies.normalize import min_max_normalize
from activelora.strategies.regime import decide_regime
from activelora.strategies.scored_answers import without_values
from activelora.uncertainty import score_pool

RESULTS = Path(__file__).parent / "results"
BAR = {"spearman": 0.98, "top_overlap": 28}


def top_set(scores: np.ndarray, n: int) -> set[int]:
    """Indices of the n highest scores (ties by index)."""
    return set(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:n])


def agreement(old: np.ndarray, new: np.ndarray, top: int) -> dict:
    rho = spearmanr(old, new).statistic
    overlap = len(top_set(old, top) & top_set(new, top))
    return {"spearman": round(float(rho), 4), "top_overlap": overlap, "top": top,
            "meets_bar": bool(rho >= BAR["spearman"] and overlap >= BAR["top_overlap"] * top / 32),
            "max_abs_diff": float(np.max(np.abs(old - new))), "mean_old": float(np.mean(old)),
            "mean_new": float(np.mean(new))}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--k", type=int, default=3, help="MC-dropout passes")
    parser.add_argument("--top", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measures", nargs="+", default=["entropy", "pe", "bald"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="estimator_compare")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()

    config = Config()
    task = get_task("arith")
    rows = generate_arith("train", args.labels + args.pool)
    labels, pool = rows[:args.labels], rows[args.labels:]
    model, tokenizer = load_model(config.model.name, dtype="float32")
    model = attach_lora(model, config.lora, seed=args.seed)
    star = get_strategy("star", config.strategy)
    regime = decide_regime(config, star)
    _, t_train = timed(lambda: train_lora(model, tokenizer, task, labels,
                                          dataclasses.replace(config.train, seed=args.seed),
                                          regime.regularization(), progress=False))
    set_lora_dropout_rate(model, regime.mc_dropout_rate)
    model.eval()

    prompts = [encode_prompt(tokenizer, task.prompt(ex)) for ex in pool]
    sc = config.score
    gens, t_answers = timed(lambda: generate(
        model, tokenizer, prompts, max_new_tokens=sc.max_new_tokens or task.max_new_tokens,
        stop_strings=task.stop_strings, batch_size=max(sc.batch_size, config.eval.batch_size), progress=False))
    answers = [without_values(g) for g in gens]
    answer_tokens = [len(g.token_ids) for g in answers]
    common = dict(generations=answers, batch_size=sc.batch_size, progress=False, cache=False)

    def full(measure: str, estimator: str) -> np.ndarray:
        out = score_pool(model, tokenizer, task, pool, measure=measure, mc_samples=args.k, seed=args.seed,
                         normalize=sc.normalize if star.needs().normalize is None else star.needs().normalize,
                         mc_estimator=estimator, **common)
        return np.array([s.score for s in out])

    prompt_tokens = [len(p) for p in prompts]
    results: dict = {"measures": {}, "setup": {
        "command": "nice -n 10 .venv/bin/python benchmarks/compare_estimators.py " + " ".join(sys.argv[1:]),
        "labels": args.labels, "pool": args.pool, "k": args.k, "seed": args.seed, "threads": args.threads,
        "model": config.model.name, "dtype": "float32", "lora": dataclasses.asdict(config.lora),
        "regime": regime.why, "train_seconds": round(t_train, 1),
        "mean_prompt_tokens": round(float(np.mean(prompt_tokens)), 1),
        "mean_answer_tokens": round(float(np.mean(answer_tokens)), 1),
        "tokens_per_example_sequence": round(args.k * float(np.mean(prompt_tokens) + np.mean(answer_tokens)), 1),
        "tokens_per_example_answer": round(float(np.mean(prompt_tokens)) + args.k * float(np.mean(answer_tokens)), 1),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "total_seconds": None, "finished": False, "bar": BAR,
    }}

    def save() -> None:  # after every stage: a run cut short still leaves what it measured
        results["setup"]["total_seconds"] = round(time.time() - started, 1)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / f"{args.name}.md").write_text(markdown(results, args))

    scores: dict[str, dict[str, np.ndarray]] = {}
    needs = star.needs()

    def star_round() -> None:
        """STAR's combined score, with star's base term (one pass of the base model on the tuned answers)."""
        base_out, t_base = timed(lambda: score_pool(
            model, tokenizer, task, pool, measure=needs.resolved_base_measure(), normalize=bool(needs.base_normalize),
            base=True, seed=0, **common))
        base = min_max_normalize(np.array([s.score for s in base_out]))
        results["star"] = {}
        for lam in (0.9, 0.5):
            combined = {e: lam * base + (1 - lam) * min_max_normalize(scores["entropy"][e]) for e in scores["entropy"]}
            results["star"][f"lambda={lam}"] = agreement(combined["sequence"], combined["answer"], args.top)
        entropy = results["measures"]["entropy"]
        results["round"] = {
            "answers_seconds": round(t_answers, 2), "base_term_seconds": round(t_base, 2),
            "sequence_seconds": round(t_answers + entropy["seconds_sequence"] + t_base, 2),
            "answer_seconds": round(t_answers + entropy["seconds_answer"] + t_base, 2)}
        results["round"]["speedup"] = round(results["round"]["sequence_seconds"] / results["round"]["answer_seconds"], 3)

    for i, measure in enumerate(args.measures):
        # Alternate which estimator runs first, so that a drift in the machine's load does not
        # favour one of them throughout.
        order = ("sequence", "answer") if i % 2 == 0 else ("answer", "sequence")
        got, seconds = {}, {}
        for estimator in order:
            got[estimator], seconds[estimator] = timed(lambda: full(measure, estimator))
            print(f"{measure} {estimator}: {seconds[estimator]:.1f} s", file=sys.stderr, flush=True)
        scores[measure] = got
        results["measures"][measure] = {
            **agreement(got["sequence"], got["answer"], args.top),
            "seconds_sequence": round(seconds["sequence"], 2), "seconds_answer": round(seconds["answer"], 2),
            "speedup": round(seconds["sequence"] / seconds["answer"], 3), "first": order[0]}
        if measure == "entropy":  # STAR's full term: its combined score and round next
            star_round()
        save()

    results["setup"]["finished"] = True
    save()
    print(markdown(results, args))
    return 0


def markdown(results: dict, args) -> str:
    setup = results["setup"]
    lines = [
        "# The `answer` MC estimator against the `sequence` one (issue 15)", "",
        f"`{setup['command']}`", "",
        f"One adapter: {setup['labels']} arith labels, the default recipe, {setup['regime']}, "
        f"{setup['model']} in {setup['dtype']}; its greedy answers to {setup['pool']} pool problems "
        f"(mean {setup['mean_prompt_tokens']} prompt + {setup['mean_answer_tokens']} answer tokens), "
        f"scored with K = {setup['k']} dropout passes, seed {setup['seed']}, {setup['threads']} threads, "
        "both estimators in one process on a shared machine (timings: read the ratios). "
        f"Tokens through the decoder per example: {setup['tokens_per_example_sequence']} (sequence) vs "
        f"{setup['tokens_per_example_answer']} (answer).", "",
        f"Bar: Spearman >= {BAR['spearman']} and top-{args.top} overlap >= {BAR['top_overlap']} of 32.", "",
        "| full term | Spearman | top-32 overlap | meets bar | sequence (s) | answer (s) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for measure, r in results["measures"].items():
        lines.append(f"| {measure} (K={setup['k']}) | {r['spearman']:.4f} | {r['top_overlap']}/{r['top']} | "
                     f"{'yes' if r['meets_bar'] else 'no'} | {r['seconds_sequence']:.1f} | {r['seconds_answer']:.1f} | "
                     f"{r['speedup']:.2f}x |")
    if results.get("star"):
        lines += ["", "STAR's score, λ·norm(u_base) + (1-λ)·norm(u_full entropy), star's defaults:", "",
                  "| λ | Spearman | top-32 overlap | meets bar |", "|---|---|---|---|"]
        for key, r in results["star"].items():
            lines.append(f"| {key.split('=')[1]} | {r['spearman']:.4f} | {r['top_overlap']}/{r['top']} | "
                         f"{'yes' if r['meets_bar'] else 'no'} |")
    if results.get("round"):
        r = results["round"]
        lines += ["", f"A star round's pool scoring (answers {r['answers_seconds']:.1f} s + full term + base term "
                  f"{r['base_term_seconds']:.1f} s): sequence {r['sequence_seconds']:.1f} s, answer "
                  f"{r['answer_seconds']:.1f} s, {r['speedup']:.2f}x."]
    lines += ["", f"Training took {setup['train_seconds']} s; the whole run {setup['total_seconds']} s "
              f"(torch {setup['torch']}){'' if setup['finished'] else '; UNFINISHED: the stages above only'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
