"""Evaluate a model (optionally with an adapter): prints the accuracy and writes
DIR/metrics.json and DIR/predictions.jsonl (id, prediction, answer, correct, confidence)."""

from __future__ import annotations

import argparse
import json
import time

from ..atomic_files import atomic_write_json, atomic_write_text
from . import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_data_args(parser)
    common.add_model_args(parser)
    parser.add_argument("--batch-size", type=common.positive_int, help="generation batch (default 64)")
    parser.add_argument("--max-new-tokens", type=common.positive_int, help="default: the task's own")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    common.add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from ..models.evaluation import evaluate
    from ..probes.answer_confidence import answer_calibration, answer_confidences

    common.setup_logging()
    config = common.config_from_args(args, {"eval": {
        "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}})
    out = common.output_dir(args.out)
    split = args.split or config.data.test_split
    task, examples = common.load_split(config, split, args.limit or config.data.test_limit)
    model, tokenizer = common.load_model_and_adapter(config, args.adapter)
    started = time.time()
    result = evaluate(model, tokenizer, task, examples, batch_size=config.eval.batch_size,
                      max_new_tokens=config.eval.max_new_tokens, chat_template=config.model.chat_template)
    seconds = time.time() - started
    metrics = {**result.metrics(), "model": config.model.name, "adapter": args.adapter,
               "data": config.data.source, "split": split, "task": task.name,
               "mean_confidence": sum(p.confidence for p in result.predictions) / result.n,
               "seconds": round(seconds, 2)}
    answer_conf = answer_confidences(tokenizer, task, result)
    metrics.update(answer_calibration(answer_conf, [p.correct for p in result.predictions]))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "predictions.jsonl", "".join(
        json.dumps({**p.to_dict(), "answer_confidence": a}) + "\n" for p, a in zip(result.predictions, answer_conf)))
    atomic_write_json(out / "metrics.json", metrics)
    print(f"accuracy {result.accuracy:.4f} on {result.n} examples ({seconds:.0f}s) -> {out}")
    return 0
