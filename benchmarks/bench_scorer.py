"""Benchmark the pool scorer (issue 3) against a per-example pipeline and a no-scoring floor.

On N GSM8K training rows with the embedded model, for gold and for generated targets, every
variant handles the same token sequences:

  (a) ours: ``activelora.uncertainty.score_pool`` (batched generation with the KV cache, one
      teacher-forced pass, LM head at the answer positions only);
  (b) per-example, in the style of the STAR authors' release: one forward pass per example,
      a softmax per answer position converted to NumPy to sum the entropy; for generated
      targets one ``generate`` call per example first (stopped at the same length as (a));
  (c) the floor, no scoring at all: gold = one batched forward over the same sequences;
      generated = batched greedy generation of the same lengths + one batched forward.

Then the peak resident memory of (a) at two pool sizes, each in its own process (the peak
is reset after loading via /proc/self/clear_refs where Linux allows it).

    .venv/bin/python benchmarks/bench_scorer.py                  # N=200, both targets, memory 200/2000
    .venv/bin/python benchmarks/bench_scorer.py --n 16 --mem-sizes 16,64 --max-new-tokens 16   # smoke

Results: a table on stdout and JSON + text under benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "GSM8K" / "train.jsonl"


def _load(args, n):
    from activelora.data.loaders import load_examples
    from activelora.data.tasks import get_task
    from activelora.models.loading import load_model

    model, tokenizer = load_model(args.model)
    examples = load_examples(str(args.data), "train", task="gsm8k", limit=n)
    return model, tokenizer, get_task("gsm8k"), examples


def _sync(model):
    if next(model.parameters()).device.type == "cuda":
        torch.cuda.synchronize()


def _timed(model, fn):
    _sync(model)
    start = time.perf_counter()
    out = fn()
    _sync(model)
    return time.perf_counter() - start, out


# --------------------------------------------------------------------------- variants


def ours(model, tokenizer, task, examples, target, args):
    from activelora.uncertainty import score_pool

    return score_pool(model, tokenizer, task, examples, measure="entropy", target=target,
                      batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                      progress=False, cache=False)


@torch.no_grad()
def per_example(model, prompts, answers, generated):
    """The authors' style: per example, (generate,) forward, then softmax -> numpy per position."""
    device = next(model.parameters()).device
    scores, produced = [], []
    for p, a in zip(prompts, answers):
        ids = torch.tensor([p], device=device)
        if generated:
            # One generate call per example; no stop strings, capped at (a)'s length, so the
            # same tokens come out (checked by the caller).
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(a),
                                 do_sample=False, pad_token_id=model.generation_config.pad_token_id)
            a = out[0, len(p):].tolist()
            produced.append(a)
        logits = model(input_ids=torch.tensor([p + a], device=device)).logits
        total = 0.0
        for pos in range(len(p) - 1, len(p) + len(a) - 1):
            probs = torch.softmax(logits[0, pos].float(), dim=-1).cpu().numpy()
            total += float(-(probs * np.log(np.clip(probs, 1e-30, None))).sum())
        scores.append(total)
    return scores, produced


@torch.no_grad()
def floor(model, tokenizer, prompts, answers, generated, batch_size):
    """No scoring: (batched greedy generation of the same lengths +) one batched forward."""
    from activelora.models.text import pad_left, pad_right

    device = next(model.parameters()).device
    if generated:
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            ids, mask = pad_left([prompts[i] for i in idx], tokenizer.pad_token_id)
            model.generate(input_ids=torch.tensor(ids, device=device), attention_mask=torch.tensor(mask, device=device),
                           max_new_tokens=max(len(answers[i]) for i in idx), do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)
    seqs = [p + a for p, a in zip(prompts, answers)]
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    for s in range(0, len(order), batch_size):
        ids, mask = pad_right([seqs[i] for i in order[s:s + batch_size]], tokenizer.pad_token_id)
        model(input_ids=torch.tensor(ids, device=device), attention_mask=torch.tensor(mask, device=device)).logits


def run_target(model, tokenizer, task, examples, target, args):
    from activelora.models.generation import generate
    from activelora.models.text import encode_prompt, encode_target

    prompts = [encode_prompt(tokenizer, task.prompt(ex)) for ex in examples]
    if target == "gold":
        answers = [encode_target(tokenizer, task.target(ex)) for ex in examples]
    else:  # the answers (a) will score: same call, same batching (untimed, to fix the sequences)
        gens = generate(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                        stop_strings=task.stop_strings, batch_size=args.batch_size)
        answers = [list(g.token_ids) for g in gens]
    # Warm-up on a few examples so no variant pays first-call costs.
    ours(model, tokenizer, task, examples[:2], target, args)
    per_example(model, prompts[:2], answers[:2], target == "generated")
    floor(model, tokenizer, prompts[:2], answers[:2], target == "generated", args.batch_size)

    t_a, res_a = _timed(model, lambda: ours(model, tokenizer, task, examples, target, args))
    t_b, (scores_b, produced) = _timed(model, lambda: per_example(model, prompts, answers, target == "generated"))
    t_c, _ = _timed(model, lambda: floor(model, tokenizer, prompts, answers, target == "generated", args.batch_size))
    same = [i for i in range(len(answers)) if target == "gold" or produced[i] == answers[i]]
    diff = max((abs(res_a[i].score - scores_b[i]) for i in same), default=float("nan"))
    n = len(examples)
    return {
        "target": target, "n": n, "answer_tokens": sum(map(len, answers)),
        "prompt_tokens": sum(map(len, prompts)),
        "a_s": t_a, "b_s": t_b, "c_s": t_c,
        "a_ex_s": n / t_a, "b_ex_s": n / t_b, "c_ex_s": n / t_c,
        "a_over_b": t_a / t_b, "a_over_c": t_a / t_c,
        "same_sequences_in_b": f"{len(same)}/{n}", "max_abs_score_diff_a_vs_b": diff,
    }


# --------------------------------------------------------------------------- memory


def _vm_hwm_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _vm_rss_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def mem_child(args) -> None:
    model, tokenizer, task, examples = _load(args, args.mem_child)
    if len(examples) < args.mem_child:
        raise SystemExit(f"only {len(examples)} rows in {args.data}")
    rss_before = _vm_rss_kb()
    reset = False
    try:  # reset the high-water mark so the model load does not hide the scoring peak
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        pass
    start = time.perf_counter()
    ours(model, tokenizer, task, examples, args.mem_target, args)
    seconds = time.perf_counter() - start
    peak = _vm_hwm_kb() if reset else None
    print(json.dumps({
        "n": args.mem_child, "target": args.mem_target, "seconds": seconds,
        "rss_before_mb": (rss_before or 0) / 1024,
        "peak_while_scoring_mb": peak / 1024 if peak else None,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
    }))


def memory(args, sizes):
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, "--mem-child", str(n), "--mem-target", args.mem_target,
               "--data", str(args.data), "--model", args.model, "--batch-size", str(args.batch_size),
               "--max-new-tokens", str(args.max_new_tokens)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"memory run at n={n} failed:\n{out.stderr[-2000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--targets", default="gold,generated")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--mem-sizes", default="200,2000", help="pool sizes for peak memory ('' to skip)")
    parser.add_argument("--mem-target", default="gold", choices=["gold", "generated"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--mem-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found (GSM8K train.jsonl)")
    if args.mem_child:
        mem_child(args)
        return

    targets = [t for t in args.targets.split(",") if t]
    model, tokenizer, task, examples = _load(args, args.n if targets else 1)
    device = str(next(model.parameters()).device)
    machine = {
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(), "device": device,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__, "python": platform.python_version(),
    }
    settings = {"n": len(examples) if targets else 0, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
                "measure": "entropy", "model": args.model}
    results = [run_target(model, tokenizer, task, examples, t, args) for t in targets]
    del model
    sizes = [int(s) for s in args.mem_sizes.split(",") if s]
    mem = memory(args, sizes) if sizes else []

    lines = [f"machine: {machine}", f"settings: {settings}", "",
             f"{'target':<10}{'(a) s':>9}{'(b) s':>9}{'(c) s':>9}{'(a) ex/s':>10}{'(b) ex/s':>10}"
             f"{'(c) ex/s':>10}{'a/b':>7}{'a/c':>7}  same seqs  max|a-b|"]
    for r in results:
        lines.append(f"{r['target']:<10}{r['a_s']:>9.1f}{r['b_s']:>9.1f}{r['c_s']:>9.1f}{r['a_ex_s']:>10.2f}"
                     f"{r['b_ex_s']:>10.2f}{r['c_ex_s']:>10.2f}{r['a_over_b']:>7.2f}{r['a_over_c']:>7.2f}"
                     f"  {r['same_sequences_in_b']:>9}  {r['max_abs_score_diff_a_vs_b']:.2e}")
    if mem:
        lines += ["", f"peak memory of (a), {args.mem_target} targets, one process per pool size:"]
        for m in mem:
            peak = m["peak_while_scoring_mb"]
            lines.append(f"  n={m['n']:>5}: rss before {m['rss_before_mb']:.0f} MB, peak while scoring "
                         f"{peak:.0f} MB" if peak else f"  n={m['n']:>5}: ru_maxrss {m['ru_maxrss_mb']:.0f} MB")
        key = "peak_while_scoring_mb" if all(m["peak_while_scoring_mb"] for m in mem) else "ru_maxrss_mb"
        lines.append(f"  ratio largest/smallest: {mem[-1][key] / mem[0][key]:.3f}")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"bench_scorer-{stamp}.txt").write_text(text + "\n")
    (args.out / f"bench_scorer-{stamp}.json").write_text(json.dumps(
        {"machine": machine, "settings": settings, "results": results, "memory": mem}, indent=1))
    print(f"\nwritten to {args.out}/bench_scorer-{stamp}.{{txt,json}}")


if __name__ == "__main__":
    main()
