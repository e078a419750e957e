"""Score examples by uncertainty. Label-free by default: the model's own greedy answer is
scored (--target generated); --target gold scores the labelled answers (simulation only).
Writes FILE as JSON lines: id, score, samples (per-pass values when --mc-samples > 1),
answer (the scored answer text), target (and votes for --measure vote)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from ..errors import DataError
from ..atomic_files import atomic_write_text
from . import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..uncertainty.measures import MEASURES

    common.add_data_args(parser)
    common.add_model_args(parser)
    parser.add_argument("--base", action="store_true",
                        help="score with the adapter disabled (same weights; cached on disk)")
    parser.add_argument("--measure", choices=MEASURES.names(), help="uncertainty measure (default: entropy)")
    parser.add_argument("--target", choices=["generated", "gold"],
                        help="generated: the model's greedy answer (default, label-free); gold: needs labels")
    parser.add_argument("--mc-samples", type=common.positive_int, metavar="K",
                        help="MC-dropout passes (bald, vote: sampled answers; K >= 2)")
    parser.add_argument("--normalize", action="store_true", default=None,
                        help="mean per answer token instead of the sum")
    parser.add_argument("--max-new-tokens", type=common.positive_int, help="default: the task's own")
    parser.add_argument("--batch-size", type=common.positive_int, help="default 16")
    parser.add_argument("--seed", type=int, default=0, help="dropout masks and samples (default 0)")
    parser.add_argument("--no-cache", action="store_true", help="recompute --base scores even if cached")
    parser.add_argument("--out", required=True, metavar="FILE", help="output .jsonl file")
    common.add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from ..strategies.regime import check_adapter_for_scoring
    from ..uncertainty.scorer import score_pool

    common.setup_logging()
    config = common.config_from_args(args, {"score": {
        "measure": args.measure, "target": args.target, "mc_samples": args.mc_samples,
        "normalize": args.normalize, "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size}})
    sc = config.score
    out = common.output_file(args.out)  # before the (long) scoring, not after it
    split = args.split or config.data.train_split  # the unlabelled pool is the train split
    task, examples = common.load_split(config, split, args.limit or config.data.limit)
    model, tokenizer = common.load_model_and_adapter(config, args.adapter)
    if not args.base:
        check_adapter_for_scoring(model, args.adapter, mc_samples=sc.mc_samples, measure=sc.measure,
                                  where=f"--adapter {args.adapter}")
    if sc.target == "gold":
        print("note: --target gold scores the labelled answers (simulation only)", file=sys.stderr)
    started = time.time()
    results = score_pool(
        model, tokenizer, task, examples, measure=sc.measure, target=sc.target, mc_samples=sc.mc_samples,
        normalize=sc.normalize, batch_size=sc.batch_size, max_new_tokens=sc.max_new_tokens,
        chat_template=config.model.chat_template, base=args.base, cache=not args.no_cache,
        progress=sys.stderr.isatty(), seed=args.seed)
    seconds = time.time() - started
    bad = [r.id for r in results if not math.isfinite(r.score)]
    if bad:
        raise DataError(f"{len(bad)} non-finite scores (first: {bad[0]!r}); the model produced nan/inf")
    target = "sampled" if sc.measure == "vote" else sc.target
    lines = "".join(json.dumps({**r.to_json(), "target": target}, ensure_ascii=False) + "\n" for r in results)
    atomic_write_text(out, lines)  # all or nothing
    rate = len(results) / seconds if seconds > 0 else float("inf")
    print(f"scored {len(results)} examples with {sc.measure} ({target} answers"
          f"{', base model' if args.base else ''}) in {seconds:.1f}s ({rate:.1f} ex/s) -> {out}")
    return 0
