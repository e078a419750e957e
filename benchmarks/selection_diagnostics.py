"""What uncertainty buys on `arith` (issue 9, deliver 2 and 3): sum vs per-token mean, and STAR's base term.

    .venv/bin/python benchmarks/selection_diagnostics.py --pool 160 --initial 32 --mc 4 \
        --useful random-0 random-1 random-2 entropy-sum entropy-mean star-own-sum star-tuned-mean \
        --name diag

One adapter is trained on ``--initial`` random labels from the pool (``arith`` train rows
[0, pool)) with STAR's hybrid regularisation (so that MC dropout samples what training had).
On the rest of the pool (the candidates) it computes, from ONE teacher-forced pass per
(model, answer) pair and the library's per-position functions
(:mod:`activelora.uncertainty.measures`), every variant at once:

* ``full:<m>:<sum|mean>``: the tuned model on its own greedy answer, m in entropy, pe, lc;
  ``full-mc:<m>:...``: the same averaged over K MC-dropout passes; ``full-mc:bald:...``;
* ``base-own:<m>:...``: the base model (adapter off) on ITS OWN greedy answer, the answer
  text re-encoded and closed with EOS, as the tuned model's answers are (option i);
  ``base-raw:...``: the same answer as generated (stop-string tokens kept; the old code);
* ``base-tuned:<m>:...``: the base model on the TUNED model's answer (option ii);
* ``star:<own|tuned>:<sum|mean>:<lambda>``: λ·norm(u_base) + (1-λ)·norm(u_full-mc entropy).

Per variant: Spearman with the problem's number of steps and with the scored answer's
length, AUROC for finding the tuned model's wrong answers, and what its top ``--batch``
is made of (one-step share, mean steps, share the tuned model already answers right).
``--useful`` then trains, for each named batch, a fresh adapter on initial + batch with the
default recipe (plain LoRA, the same training seed for every batch: paired) and reports
dev accuracy (``arith`` train rows [1850, 2000), as in sweep_recipe.py), paired against the
random batches. A cross-check compares the summed entropy here with ``score_pool``'s on a
few candidates. Output: ``benchmarks/out/<name>.json`` and ``<name>.md``; each usefulness
row is appended to ``<name>-useful.jsonl`` as it finishes (a re-run skips finished rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from sweep_recipe import DEV_ROWS, mcnemar_exact, parse_recipe, train_and_eval, wilson  # noqa: E402

from activelora.config import Config  # noqa: E402
from activelora.data.arith import generate_arith  # noqa: E402
from activelora.data.tasks import get_task  # noqa: E402
from activelora.models.generation import generate  # noqa: E402
from activelora.models.loading import load_model  # noqa: E402
from activelora.models.lora import adapter_disabled, attach_lora, mc_dropout  # noqa: E402
from activelora.models.text import encode_prompt, encode_target, pad_right  # noqa: E402
from activelora.strategies.normalize import min_max_normalize  # noqa: E402
from activelora.run.training import Regularization, train_lora  # noqa: E402
from activelora.uncertainty import score_pool  # noqa: E402
from activelora.uncertainty.measures import (  # noqa: E402
    reduce_positions, token_entropy, token_logprob, token_mutual_information)
from activelora.uncertainty.scorer import _backbone_and_head  # noqa: E402

OUT = Path(__file__).parent / "out"


@torch.no_grad()
def position_values(model, prompts, answers, *, k: int = 1, batch_size: int = 8) -> dict[str, list[np.ndarray]]:
    """Per example, per answer position: entropy and NLL (mean over K passes when k > 1),
    and BALD's mutual information (k > 1). Logits at the position left of each answer token."""
    backbone, project = _backbone_and_head(model)
    out = {"entropy": [], "nll": [], "mi": []}
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(answers[i]))
    per_example: dict[int, dict[str, np.ndarray]] = {}
    with mc_dropout(model, active=k > 1):
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            seqs = [prompts[i] + answers[i] for i in idx]
            ids, _ = pad_right(seqs, 0)  # right padding: a causal model never sees the pads
            input_ids = torch.tensor(ids)
            rows = torch.tensor([b for b, i in enumerate(idx) for _ in answers[i]])
            cols = torch.tensor([len(prompts[i]) - 1 + t for i in idx for t in range(len(answers[i]))])
            targets = torch.tensor([tok for i in idx for tok in answers[i]])
            logits = torch.stack([project(backbone(input_ids=input_ids, use_cache=False).last_hidden_state[rows, cols])
                                  for _ in range(k)])  # (K, N, V)
            ent = token_entropy(logits).double().mean(0)
            nll = (-token_logprob(logits, targets.expand(logits.shape[:-1]))).double().mean(0)
            mi = token_mutual_information(logits).double() if k > 1 else torch.zeros_like(ent)
            lengths = [len(answers[i]) for i in idx]
            start = 0
            for i, n in zip(idx, lengths):
                per_example[i] = {"entropy": ent[start:start + n].numpy(), "nll": nll[start:start + n].numpy(),
                                  "mi": mi[start:start + n].numpy()}
                start += n
    for i in range(len(prompts)):
        for key in out:
            out[key].append(per_example[i][key])
    return out


def reduce(values: list[np.ndarray], normalize: bool) -> np.ndarray:
    """Sum (or mean) per sequence with the library's own reduction."""
    flat = torch.tensor(np.concatenate(values) if values else np.zeros(0))
    return reduce_positions(flat, [len(v) for v in values], normalize).numpy()


def measures_from(values: dict[str, list[np.ndarray]], prefix: str, mc: bool = False) -> dict[str, np.ndarray]:
    scores = {}
    for norm, tag in ((False, "sum"), (True, "mean")):
        nll = reduce(values["nll"], norm)
        scores[f"{prefix}:entropy:{tag}"] = reduce(values["entropy"], norm)
        scores[f"{prefix}:pe:{tag}"] = nll
        scores[f"{prefix}:lc:{tag}"] = -np.expm1(-nll)
        if mc:
            scores[f"{prefix}:bald:{tag}"] = reduce(values["mi"], norm)
    return scores


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties half (Mann-Whitney)."""
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def top_ids(scores: np.ndarray, n: int, skip: int = 0) -> list[int]:
    """Indices of the highest scores (ties by index), after skipping the ``skip`` highest."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[skip:skip + n]


def composition(idx: list[int], cands, tuned_correct: np.ndarray) -> dict:
    steps = [cands[i].meta["steps"] for i in idx]
    return {"one_step_share": round(float(np.mean([s == 1 for s in steps])), 3),
            "mean_steps": round(float(np.mean(steps)), 3),
            "tuned_right_share": round(float(np.mean(tuned_correct[idx])), 3),
            "mean_gold_chars": round(float(np.mean([len(cands[i].answer) for i in idx])), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=160)
    parser.add_argument("--initial", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--mc", type=int, default=4, help="MC-dropout passes K (bald, STAR's u_full)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", default="", help="sweep_recipe.py recipe for the --useful trainings")
    parser.add_argument("--initial-reg", choices=["hybrid", "plain"], default="hybrid")
    parser.add_argument("--dev", type=int, default=150)
    parser.add_argument("--useful", nargs="*", default=[])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="diag")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(exist_ok=True)
    started = time.time()
    task = get_task("arith")
    config = Config()
    pool = generate_arith("train", args.pool)
    rng = random.Random(f"diag-initial-{args.seed}")
    initial_idx = sorted(rng.sample(range(len(pool)), args.initial))
    initial = [pool[i] for i in initial_idx]
    cands = [ex for i, ex in enumerate(pool) if i not in set(initial_idx)]
    steps = np.array([ex.meta["steps"] for ex in cands])

    model, tokenizer = load_model()
    model = attach_lora(model, config.lora, seed=args.seed)
    reg = Regularization.hybrid(config) if args.initial_reg == "hybrid" else Regularization.plain()
    train_lora(model, tokenizer, task, initial, dataclasses.replace(config.train, seed=args.seed), reg, progress=False)
    prompts = [encode_prompt(tokenizer, task.prompt(ex)) for ex in cands]
    max_new = task.max_new_tokens
    tuned = generate(model, tokenizer, prompts, max_new_tokens=max_new, stop_strings=task.stop_strings, batch_size=16)
    with adapter_disabled(model):
        base = generate(model, tokenizer, prompts, max_new_tokens=max_new, stop_strings=task.stop_strings,
                        batch_size=16)
    tuned_ids = [list(g.token_ids) for g in tuned]
    base_own_ids = [encode_target(tokenizer, g.text) for g in base]  # closed with EOS, as the tuned ones
    base_raw_ids = [list(g.token_ids) for g in base]
    tuned_correct = np.array([bool(task.is_correct(g.text, ex)) for g, ex in zip(tuned, cands)])
    base_correct = np.array([bool(task.is_correct(g.text, ex)) for g, ex in zip(base, cands)])
    t_gen = time.time()

    scores: dict[str, np.ndarray] = {}
    lengths: dict[str, np.ndarray] = {}
    full_values = position_values(model, prompts, tuned_ids)
    scores.update(measures_from(full_values, "full"))
    mc_values = position_values(model, prompts, tuned_ids, k=args.mc)
    scores.update(measures_from(mc_values, "full-mc", mc=True))
    with adapter_disabled(model):
        scores.update(measures_from(position_values(model, prompts, base_own_ids), "base-own"))
        scores.update(measures_from(position_values(model, prompts, base_raw_ids), "base-raw"))
        scores.update(measures_from(position_values(model, prompts, tuned_ids), "base-tuned"))
    tok_len = {"full": [len(a) for a in tuned_ids], "full-mc": [len(a) for a in tuned_ids],
               "base-own": [len(a) for a in base_own_ids], "base-raw": [len(a) for a in base_raw_ids],
               "base-tuned": [len(a) for a in tuned_ids]}
    for key in scores:
        lengths[key] = np.array(tok_len[key.split(":")[0]])
    for target in ("own", "tuned"):
        for tag in ("sum", "mean"):
            for lam in (0.9, 0.8, 0.5):
                key = f"star:{target}:{tag}:{lam}"
                scores[key] = (lam * min_max_normalize(scores[f"base-{target}:entropy:{tag}"])
                               + (1 - lam) * min_max_normalize(scores[f"full-mc:entropy:{tag}"]))
                lengths[key] = np.array(tok_len["full"])
    t_score = time.time()

    # Cross-check against the library's scorer on the first 8 candidates (entropy, sum).
    check = score_pool(model, tokenizer, task, cands[:8], measure="entropy", batch_size=8, progress=False, cache=False)
    same = [j for j in range(8) if check[j].answer == tuned[j].text]
    cross = max((abs(check[j].score - scores["full:entropy:sum"][j]) for j in same), default=float("nan"))

    table = {}
    for key, s in scores.items():
        table[key] = {"spearman_steps": round(float(spearmanr(s, steps).statistic), 3),
                      "spearman_length": round(float(spearmanr(s, lengths[key]).statistic), 3),
                      "auroc_tuned_wrong": round(auroc(s, ~tuned_correct), 3),
                      **composition(top_ids(s, args.batch), cands, tuned_correct)}
    pool_comp = composition(list(range(len(cands))), cands, tuned_correct)

    # Usefulness: train initial + batch, evaluate on dev (paired: one training seed).
    dev = generate_arith("train")[DEV_ROWS[0]:DEV_ROWS[1]][: args.dev]
    recipe = parse_recipe(args.recipe)
    log_path = OUT / f"{args.name}-useful.jsonl"
    useful = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.is_file() else []
    done = {row["batch"] for row in useful}
    summary = {"pool": args.pool, "initial": args.initial, "candidates": len(cands), "mc": args.mc,
               "seed": args.seed, "initial_reg": args.initial_reg, "cores": os.cpu_count(), "threads": args.threads,
               "pool_composition": pool_comp, "tuned_accuracy_on_candidates": float(tuned_correct.mean()),
               "base_accuracy_on_candidates": float(base_correct.mean()),
               "mean_chars": {"tuned": float(np.mean([len(g.text) for g in tuned])),
                              "base": float(np.mean([len(g.text) for g in base]))},
               "mean_tokens": {k: float(np.mean(v)) for k, v in tok_len.items()},
               "crosscheck_entropy_sum_max_abs_diff": cross, "crosscheck_same_answers": len(same),
               "seconds": {"train_generate": round(t_gen - started, 1), "score": round(t_score - t_gen, 1),
                           "total": round(time.time() - started, 1)},
               "variants": table, "useful": useful,
               "per_candidate": {"ids": [ex.id for ex in cands], "steps": steps.tolist(),
                                 "tuned_correct": tuned_correct.tolist(),
                                 "scores": {k: [round(float(x), 5) for x in v] for k, v in scores.items()}}}

    def write() -> None:  # after the statistics and after every usefulness row
        summary["seconds"]["total"] = round(time.time() - started, 1)
        (OUT / f"{args.name}.json").write_text(json.dumps(summary))
        (OUT / f"{args.name}.md").write_text(markdown(summary))

    write()
    print(markdown(summary), flush=True)
    del model
    for name in ["initial-only"] + list(args.useful):
        if name in done:
            continue
        if name == "initial-only":
            idx = []
        elif name.startswith("random-"):
            idx = random.Random(f"diag-batch-{name}").sample(range(len(cands)), args.batch)
        elif name.startswith("mid-"):  # mid-<variant>: the batch nearest the candidates' median score
            s = scores[_key(name[4:])]
            idx = sorted(range(len(s)), key=lambda i: (abs(s[i] - np.median(s)), i))[: args.batch]
        elif name.startswith("skip"):  # skip<k>-<variant>: drop the k highest, take the next batch
            k, _, variant = name[4:].partition("-")
            idx = top_ids(scores[_key(variant)], args.batch, skip=int(k))
        else:
            idx = top_ids(scores[_key(name)], args.batch)
        labels = initial + [cands[i] for i in idx]
        result = train_and_eval(recipe, labels, dev, args.seed, task, 32)
        row = {"batch": name, "labels": len(labels), "recipe": recipe, **(composition(idx, cands, tuned_correct) if idx else {}),
               **{k: result[k] for k in ("accuracy", "k", "n", "steps", "seconds", "correct")}}
        useful.append(row)
        with log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "correct"}), flush=True)
        write()
    print(markdown(summary))



def _key(name: str) -> str:
    """``entropy-mean`` -> ``full:entropy:mean``; ``star-own-sum`` -> ``star:own:sum:0.9``;
    ``star-tuned-mean-0.8`` -> ``star:tuned:mean:0.8``; ``bald-sum`` -> ``full-mc:bald:sum``."""
    if ":" in name:
        return name
    parts = name.split("-")
    if parts[0] == "star":
        lam = parts[3] if len(parts) > 3 else "0.9"
        return f"star:{parts[1]}:{parts[2]}:{lam}"
    prefix = "full-mc" if parts[0] == "bald" else "full"
    return f"{prefix}:{parts[0]}:{parts[1]}"


def markdown(summary: dict) -> str:
    pc = summary["pool_composition"]
    lines = [f"Candidates: {summary['candidates']} (pool {summary['pool']} - {summary['initial']} initial), "
             f"one-step share {pc['one_step_share']}, mean steps {pc['mean_steps']}; tuned-model accuracy on them "
             f"{summary['tuned_accuracy_on_candidates']:.3f}, base {summary['base_accuracy_on_candidates']:.3f}; "
             f"mean answer chars tuned {summary['mean_chars']['tuned']:.1f}, base {summary['mean_chars']['base']:.1f}; "
             f"cross-check vs score_pool (entropy sum, {summary['crosscheck_same_answers']} same answers): "
             f"max |diff| {summary['crosscheck_entropy_sum_max_abs_diff']:.2e}", "",
             "| variant | Spearman steps | Spearman length | AUROC (tuned wrong) | top-32 one-step share | top-32 mean steps | top-32 tuned-right share |",
             "|---|---|---|---|---|---|---|"]
    for key, row in summary["variants"].items():
        lines.append(f"| {key} | {row['spearman_steps']:+.2f} | {row['spearman_length']:+.2f} | {row['auroc_tuned_wrong']:.2f} | "
                     f"{row['one_step_share']:.2f} | {row['mean_steps']:.2f} | {row['tuned_right_share']:.2f} |")
    useful = summary["useful"]
    if useful:
        randoms = [r for r in useful if r["batch"].startswith("random-")]
        lines += ["", "| batch added | labels | one-step share | dev accuracy | 95% CI (Wilson) | vs each random batch: net (+b/-c), McNemar p |",
                  "|---|---|---|---|---|---|"]
        for row in useful:
            lo, hi = wilson(row["k"], row["n"])
            cmp = []
            for ref in randoms:
                if ref is row:
                    continue
                b = sum(1 for x, y in zip(row["correct"], ref["correct"]) if x and not y)
                c = sum(1 for x, y in zip(row["correct"], ref["correct"]) if y and not x)
                cmp.append(f"{ref['batch']}: {b - c:+d} (+{b}/-{c}) p={mcnemar_exact(b, c):.2f}")
            lines.append(f"| {row['batch']} | {row['labels']} | {row.get('one_step_share', '-')} | {row['accuracy']:.3f} "
                         f"({row['k']}/{row['n']}) | {lo:.3f}-{hi:.3f} | {'; '.join(cmp)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
