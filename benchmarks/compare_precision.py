"""Does bfloat16 rank the pool as float32 does? (issue 15, deliver 1: the evidence for model.dtype=auto)

    .venv/bin/python benchmarks/compare_precision.py --pool 200 --labels 64 --name precision200

One adapter is trained in float32 on ``--labels`` arith problems (train rows [0, labels)) with
STAR's hybrid regularisation, as a round of ``star`` would train it. The same adapter weights
are then loaded on the base model in float32 and in bfloat16, and each precision scores the
same ``--pool`` problems (train rows [1000, 1000 + pool), disjoint from the labels) end to end:
its own greedy answers, then every measure on them. Per measure it reports the Spearman
correlation of the two precisions' scores and the overlap of their top ``--top`` (the batch a
round would take), and the seconds each precision took (same process, one after the other).

Measures: ``entropy``, ``pe`` and ``lc`` (one deterministic pass); ``entropy-mc`` and ``bald``
(K = ``--mc`` dropout passes, masks keyed by (seed, example, pass) so both precisions drop the
same units); ``base`` (STAR's base term: the adapter off, on the tuned answer, per token); and
``star`` (λ·norm(base) + (1-λ)·norm(entropy-mc) at the first query round's λ = 0.9).
``vote`` is left out: it samples answers, and two samplings disagree at any precision.
The bar (issue 15): Spearman >= 0.98 and top-32 overlap >= 28 for every measure.
Writes ``benchmarks/results/<name>.json`` and ``<name>.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
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
from activelora.models.lora import attach_lora, load_adapter_weights, save_adapter
from activelora.models.text import encode_prompt
from activelora.run.training import Regularization, train_lora
from activelora.strategies.normalize import min_max_normalize
from activelora.uncertainty import score_pool

RESULTS = Path(__file__).parent / "results"
POOL_START = 1000  # train rows [1000, 1000 + pool): never among the first `labels` rows
FIRST_LAMBDA = 0.9  # STAR's linear schedule at the first query round: 1 - 0.1 * (0 + 1)


def score_all(dtype: str, adapter: Path, pool, task, mc: int, config: Config) -> tuple[dict[str, np.ndarray], float]:
    """Every measure's pool scores under ``dtype``, and the seconds they took."""
    model, tokenizer = load_model(dtype=dtype)
    model = attach_lora(model, config.lora)
    load_adapter_weights(model, adapter)
    common = dict(progress=False, batch_size=config.score.batch_size, generation_batch_size=config.eval.batch_size)
    start = time.perf_counter()
    prompts = [encode_prompt(tokenizer, task.prompt(ex), config.model.chat_template) for ex in pool]
    generations = generate(model, tokenizer, prompts, max_new_tokens=task.max_new_tokens,
                           stop_strings=tuple(getattr(task, "stop_strings", ()) or ()),
                           batch_size=config.eval.batch_size, progress=False)
    scores = {}
    for measure in ("entropy", "pe", "lc"):
        scores[measure] = np.array([s.score for s in score_pool(
            model, tokenizer, task, pool, measure=measure, generations=generations, **common)])
    for name, measure in (("entropy-mc", "entropy"), ("bald", "bald")):
        scores[name] = np.array([s.score for s in score_pool(
            model, tokenizer, task, pool, measure=measure, mc_samples=mc, seed=0, generations=generations, **common)])
    # STAR's base term as `star` scores it: the adapter off, on the tuned answer, per token.
    scores["base"] = np.array([s.score for s in score_pool(
        model, tokenizer, task, pool, measure="entropy", base=True, cache=False, normalize=True,
        generations=generations, **common)])
    seconds = time.perf_counter() - start
    scores["star"] = FIRST_LAMBDA * min_max_normalize(scores["base"]) + (1 - FIRST_LAMBDA) * min_max_normalize(
        scores["entropy-mc"])
    scores["answers_agree"] = np.array([g.text for g in generations], dtype=object)
    return scores, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--labels", type=int, default=64)
    parser.add_argument("--mc", type=int, default=3)
    parser.add_argument("--top", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="precision200")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    config = Config()
    task = get_task("arith")
    rows = generate_arith("train", POOL_START + args.pool, seed=0)
    labels, pool = rows[:args.labels], rows[POOL_START:POOL_START + args.pool]
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_model(dtype="float32")
        model = attach_lora(model, config.lora, seed=0)
        train_lora(model, tokenizer, task, labels, config.train, Regularization.hybrid(config), progress=False)
        save_adapter(model, tmp)
        del model
        results = {dtype: score_all(dtype, Path(tmp), pool, task, args.mc, config) for dtype in ("float32", "bfloat16")}

    (s32, t32), (s16, t16) = results["float32"], results["bfloat16"]
    same_answers = int(sum(a == b for a, b in zip(s32.pop("answers_agree"), s16.pop("answers_agree"))))
    rows_out = []
    for measure in s32:
        rho = float(spearmanr(s32[measure], s16[measure]).statistic)
        top32 = set(np.argsort(-s32[measure], kind="stable")[:args.top])
        top16 = set(np.argsort(-s16[measure], kind="stable")[:args.top])
        overlap = len(top32 & top16)
        rows_out.append({"measure": measure, "spearman": round(rho, 4), "top_overlap": overlap,
                         "passes": rho >= 0.98 and overlap >= round(28 * args.top / 32)})
    report = {"pool": args.pool, "labels": args.labels, "mc": args.mc, "top": args.top, "threads": args.threads,
              "same_greedy_answers": same_answers, "seconds": {"float32": round(t32, 1), "bfloat16": round(t16, 1)},
              "measures": rows_out, "torch": torch.__version__}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"bf16 against float32 on {args.pool} arith pool problems (adapter trained on {args.labels} labels "
             f"in float32, K={args.mc}, {args.threads} threads); greedy answers identical in {same_answers} of "
             f"{args.pool}; scoring took {t32:.0f} s in float32 and {t16:.0f} s in bf16 "
             f"({t32 / t16:.2f}x).", "",
             f"| measure | Spearman | top-{args.top} overlap | meets the bar (>= 0.98, >= 28/32) |", "|---|---|---|---|"]
    lines += [f"| {r['measure']} | {r['spearman']:.4f} | {r['top_overlap']}/{args.top} | "
              f"{'yes' if r['passes'] else 'NO'} |" for r in rows_out]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
