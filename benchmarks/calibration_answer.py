"""Does STAR's hybrid regularisation lower the ECE of the final answer's confidence? (issue 9, deliver 4)

    .venv/bin/python benchmarks/calibration_answer.py --labels 128 --dev 150 --seed 0 1 \
        --variant plain --variant hybrid --variant hybrid-decay50 --name calib_answer

Each variant trains a fresh adapter on the same labels (``arith`` train rows drawn as in
sweep_recipe.py) with the recipe given by ``--recipe`` and only the regularisation changed,
then answers the dev split (train rows [1850, 2000)). Per variant and seed: accuracy, the
ECE of the sequence probability p(y|x) (``ece``), the ECE of ``answer_confidence`` = p(final
answer tokens | prompt, own worked solution) (``ece_answer``, the library's
:mod:`activelora.probes.answer_confidence`), its mean, and the Frobenius norm of all B
matrices after training, to show whether the B term acted at all.

Variants: ``plain`` (no dropout, no L2 on B), ``hybrid`` (A-input dropout ``lora.lora_dropout``
and decoupled weight decay ``regularization.b_weight_decay`` on B: the defaults),
``hybrid-decay<W>`` (the same with decay W on B), ``hybrid-penalty<C>`` (dropout and the
penalty C * sum ||B||^2 in the loss), ``dropout`` (dropout only).
Rows are appended to ``benchmarks/out/<name>.jsonl`` as they finish; ``<name>.md`` at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from sweep_recipe import DEV_ROWS, label_rows, parse_recipe  # noqa: E402

from activelora.config import Config, LoraSection, TrainConfig  # noqa: E402
from activelora.data.arith import generate_arith  # noqa: E402
from activelora.data.tasks import get_task  # noqa: E402
from activelora.models.evaluation import evaluate  # noqa: E402
from activelora.models.loading import load_model  # noqa: E402
from activelora.models.lora import attach_lora, lora_b_parameters  # noqa: E402
from activelora.probes.answer_confidence import answer_calibration, answer_confidences  # noqa: E402
from activelora.probes.calibration import ece  # noqa: E402
from activelora.run.training import Regularization, train_lora  # noqa: E402

OUT = Path(__file__).parent / "out"


def regularization(variant: str, config: Config) -> Regularization:
    dropout = config.lora.lora_dropout
    reg = config.regularization
    if variant == "plain":
        return Regularization.plain()
    if variant == "dropout":
        return Regularization(a_dropout=dropout)
    if variant == "hybrid":
        return Regularization(a_dropout=dropout, b_l2_mode="decay", b_weight_decay=reg.b_weight_decay)
    if variant.startswith("hybrid-decay"):
        return Regularization(a_dropout=dropout, b_l2_mode="decay", b_weight_decay=float(variant[12:]))
    if variant.startswith("hybrid-penalty"):
        return Regularization(a_dropout=dropout, b_l2_mode="penalty", b_l2_penalty=float(variant[14:]))
    raise SystemExit(f"--variant {variant!r}: unknown (plain, dropout, hybrid, hybrid-decay<W>, hybrid-penalty<C>)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=128)
    parser.add_argument("--dev", type=int, default=150)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--recipe", default="", help="sweep_recipe.py recipe (lr, epochs, r, alpha); reg is ignored")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="calib_answer")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(exist_ok=True)
    config = Config()
    task = get_task("arith")
    recipe = parse_recipe(args.recipe)
    dev = generate_arith("train")[DEV_ROWS[0]:DEV_ROWS[1]][: args.dev]
    log = OUT / f"{args.name}.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    done = {(r["variant"], r["seed"]) for r in rows}
    for seed in args.seed:
        labels = label_rows(args.labels, seed)
        for variant in args.variant:
            if (variant, seed) in done:
                continue
            reg = regularization(variant, config)
            model, tokenizer = load_model()
            lora = LoraSection(r=recipe["r"], lora_alpha=recipe["alpha"], lora_dropout=config.lora.lora_dropout)
            model = attach_lora(model, lora, seed=seed)
            started = time.time()
            train_lora(model, tokenizer, task, labels,
                       TrainConfig(epochs=recipe["epochs"], learning_rate=recipe["lr"], batch_size=recipe["bs"], seed=seed),
                       reg, progress=False)
            b_norm = math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in lora_b_parameters(model)))
            result = evaluate(model, tokenizer, task, dev, batch_size=32, progress=False)
            correct = [p.correct for p in result.predictions]
            answer_conf = answer_confidences(tokenizer, task, result)
            row = {"variant": variant, "seed": seed, "labels": args.labels, "recipe": recipe, "reg": reg.__dict__,
                   "accuracy": result.accuracy, "n": result.n, "b_frobenius": b_norm,
                   "ece": ece([p.confidence for p in result.predictions], correct),
                   **answer_calibration(answer_conf, correct),
                   "seconds": round(time.time() - started, 1),
                   "correct": [int(c) for c in correct], "answer_confidence": answer_conf}
            rows.append(row)
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps({k: v for k, v in row.items() if k not in ("correct", "answer_confidence")}), flush=True)
    lines = [f"Labels {args.labels}, dev {len(dev)} problems, recipe {recipe}; cores {os.cpu_count()}, threads {args.threads}", "",
             "| variant | seeds | accuracy | ECE p(y|x) | ECE answer_confidence | mean answer_confidence | ||B||_F |",
             "|---|---|---|---|---|---|---|"]
    for variant in args.variant:
        sel = [r for r in rows if r["variant"] == variant]
        if not sel:
            continue

        def m(key):
            vals = [r[key] for r in sel if r[key] is not None]
            return f"{np.mean(vals):.3f}" + (f" ± {np.std(vals, ddof=1):.3f}" if len(vals) > 1 else "")
        lines.append(f"| {variant} | {len(sel)} | {m('accuracy')} | {m('ece')} | {m('ece_answer')} | "
                     f"{m('mean_answer_confidence')} | {m('b_frobenius')} |")
    table = "\n".join(lines) + "\n"
    (OUT / f"{args.name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
