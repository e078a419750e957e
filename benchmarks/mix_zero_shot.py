"""Zero-shot accuracy of the base model on the ``mix`` test sets, per skill (issue 16).

    nice -n 10 .venv/bin/python benchmarks/mix_zero_shot.py [--model smollm2-135m] [--limit 360] \
        [--no-chat-template] [--out benchmarks/results/mix_zero_shot]

Checks that the skills' difficulty spread is real: some solved zero-shot, some not. Greedy
answers, no adapter, the prompts and answer check of the ``mix`` task, in the model's chat template as
``benchmarks/configs/mix.yaml`` runs it (what a run's learning curve starts from). Writes ``<out>.md`` (a table per test set) and ``<out>.json`` (counts per skill),
and a few answers per skill so that a failure's form is visible (wrong vs. badly formatted).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from activelora.data import SKILLS, get_task, load_examples
from activelora.models.evaluation import evaluate
from activelora.models.loading import load_model

SETS = (("test", "skill-balanced (`accuracy`)"), ("test_pool_like", "pool-like (`accuracy_pool_like`)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=360, help="rows of each test set")
    parser.add_argument("--no-chat-template", dest="chat_template", action="store_false",
                        help="plain Question/Answer prompts instead of the model's chat template")
    parser.add_argument("--seed", type=int, default=0, help="the mix generator's seed")
    parser.add_argument("--out", default="benchmarks/results/mix_zero_shot")
    args = parser.parse_args()

    task = get_task("mix")
    model, tokenizer = load_model(args.model)
    started = time.time()
    results: dict = {}
    lines = [f"Zero-shot, {args.model}, chat template {'on' if args.chat_template else 'off'}, "
             f"mix seed {args.seed}, greedy, no adapter.", ""]
    for split, title in SETS:
        examples = load_examples("mix", split, limit=args.limit, seed=args.seed, task="mix")
        result = evaluate(model, tokenizer, task, examples, batch_size=64, progress=False,
                          chat_template=args.chat_template)
        per = defaultdict(lambda: [0, 0])
        samples = defaultdict(list)
        for ex, p in zip(examples, result.predictions):
            per[ex.meta["skill"]][0] += p.correct
            per[ex.meta["skill"]][1] += 1
            if len(samples[ex.meta["skill"]]) < 3:
                samples[ex.meta["skill"]].append({"question": ex.question, "gold": p.answer,
                                                  "generated": p.prediction.strip()})
        results[split] = {"accuracy": result.accuracy, "n": result.n,
                          "per_skill": {s: {"correct": c, "n": n} for s, (c, n) in per.items()},
                          "samples": samples}
        lines += [f"### {title}: accuracy {result.accuracy:.3f} (n = {result.n})", "",
                  "| skill | level | pool share | correct / n | accuracy |", "|---|---|---|---|---|"]
        for skill in SKILLS:
            c, n = per.get(skill.name, (0, 0))
            lines.append(f"| {skill.name} | {skill.level} | {skill.weight:.2f} | {c} / {n} | "
                         f"{c / n:.2f} |" if n else f"| {skill.name} | {skill.level} | {skill.weight:.2f} | – | – |")
        lines.append("")
    lines.append(f"({time.time() - started:.0f} s of evaluation)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
