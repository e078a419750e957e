"""One process against two on the same cores: pool scoring and evaluation (issue 11).

Each measurement is a fresh launch of this file in ``--worker`` mode: once as a plain process
(torch uses every core) and once under ``accelerate launch --multi_gpu --num_processes 2``
(torchrun; on a machine without GPUs the processes talk over gloo and each gets
cores / 2 threads). The worker loads the embedded model with a LoRA adapter (B drawn at
random so the adapter and its dropout matter), then times, on ``arith`` problems:

* evaluation: greedy answers of the test set, sharded by id and gathered
  (``map_sharded(evaluate)``);
* STAR pool scoring: greedy answers + K Monte-Carlo dropout passes (keyed masks), sharded
  and gathered (``map_sharded(score_pool)``).

The timed region starts after a barrier and ends after the gather, on the main process.
The launches alternate (1, 2, 1, 2, ...) so that load from other work on the machine hits
both alike; the ratio is taken per pair. The scores are checked equal between the runs.

    .venv/bin/python benchmarks/bench_distributed.py                 # 64 test, 64 pool, K=3, 2 pairs
    .venv/bin/python benchmarks/bench_distributed.py --n 8 --pairs 1  # smoke
    .venv/bin/python benchmarks/bench_distributed.py --mask-cost      # keyed vs stream MC masks

``--mask-cost`` instead times, in one process and interleaved, STAR's MC pool scoring with
the keyed masks (the default) against the same scoring with masks drawn from one random
stream (the keyed context replaced by a no-op): the price of split-invariant masks.

Results: a table on stdout and JSON under benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"


def worker(args) -> None:
    import torch

    from activelora.config import LoraSection
    from activelora.data.loaders import load_examples
    from activelora.data.tasks import get_task
    from activelora.multiprocess.distributed import barrier, map_sharded, process_info
    from activelora.models.evaluation import evaluate
    from activelora.models.loading import load_model
    from activelora.models.lora import attach_lora
    from activelora.uncertainty import score_pool

    info = process_info()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    model = attach_lora(model, LoraSection(lora_dropout=0.1), seed=0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.01)
    task = get_task("arith")
    test = load_examples("arith", "test", task="arith", limit=args.n)
    pool = load_examples("arith", "train", task="arith", limit=args.n)
    timings, outputs = {}, {}

    def timed(name, fn):
        barrier("benchmark start")
        start = time.perf_counter()
        value = fn()
        barrier("benchmark end")
        timings[name] = time.perf_counter() - start
        return value

    evaluated = timed("evaluate", lambda: map_sharded(
        lambda share: evaluate(model, tokenizer, task, share, batch_size=args.batch_size, progress=False).predictions,
        test, what="evaluate"))
    outputs["evaluate"] = [p.prediction for p in evaluated]
    scored = timed("score_star", lambda: map_sharded(
        lambda share: score_pool(model, tokenizer, task, share, measure="entropy", mc_samples=args.k,
                                 batch_size=args.score_batch_size, cache=False, progress=False, seed=5),
        pool, what="score"))
    outputs["score_star"] = [s.samples for s in scored]
    if info.is_main:
        Path(args.result).write_text(json.dumps({
            "processes": info.world_size, "threads_per_process": torch.get_num_threads(),
            "seconds": timings, "outputs": outputs}))


def mask_cost(args) -> None:
    import contextlib

    import torch

    import activelora.uncertainty.scorer as scorer_module
    from activelora.config import LoraSection
    from activelora.data.loaders import load_examples
    from activelora.data.tasks import get_task
    from activelora.models.loading import load_model
    from activelora.models.lora import attach_lora
    from activelora.uncertainty import score_pool

    model, tokenizer = load_model(args.model)
    model = attach_lora(model, LoraSection(lora_dropout=0.1), seed=0)
    task = get_task("arith")
    pool = load_examples("arith", "train", task="arith", limit=args.n)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Gold answers: no generation, so only the K teacher-forced passes are timed. One call
    # first, untimed, to warm up.
    score_pool(model, tokenizer, task, pool[:4], measure="entropy", mc_samples=2, target="gold", cache=False,
               progress=False)
    keyed = scorer_module.keyed_dropout

    @contextlib.contextmanager
    def stream_masks(model):
        yield None  # no row keys: the LoRA dropout draws from torch's generator

    timings = {"keyed": [], "stream": []}
    for _ in range(args.pairs):
        for name, context in (("keyed", keyed), ("stream", stream_masks)):
            scorer_module.keyed_dropout = context
            start = time.perf_counter()
            score_pool(model, tokenizer, task, pool, measure="entropy", mc_samples=args.k, target="gold",
                       batch_size=args.score_batch_size, cache=False, progress=False, seed=5)
            timings[name].append(time.perf_counter() - start)
    scorer_module.keyed_dropout = keyed
    lines = [f"# MC scoring of {args.n} arith gold answers, K={args.k}, {torch.get_num_threads()} thread(s)",
             "| pair | keyed masks (s) | stream masks (s) | keyed / stream |", "|---|---|---|---|"]
    for i, (a, b) in enumerate(zip(timings["keyed"], timings["stream"])):
        lines.append(f"| {i} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    print("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_distributed_mask_cost.md").write_text("\n".join(lines) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, processes: int, threads: int, result: Path) -> dict:
    worker_args = [str(Path(__file__).resolve()), "--threads", str(threads), "--worker", "--result", str(result), "--n", str(args.n),
                   "--k", str(args.k), "--model", args.model, "--batch-size", str(args.batch_size),
                   "--score-batch-size", str(args.score_batch_size)]
    if processes == 1:
        command = [sys.executable, *worker_args]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                   str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(_free_port()), *worker_args]
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return json.loads(result.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--mask-cost", action="store_true", help="time keyed against stream MC masks instead")
    parser.add_argument("--n", type=int, default=64, help="test problems and pool problems (default 64)")
    parser.add_argument("--k", type=int, default=3, help="MC dropout passes (default 3, STAR's)")
    parser.add_argument("--pairs", type=int, default=2, help="alternating 1-process/2-process pairs")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=32, help="evaluation batch (default 32)")
    parser.add_argument("--score-batch-size", type=int, default=16, help="scoring batch (default 16)")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.mask_cost:
        mask_cost(args)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    # (processes, torch threads per process; 0 = torch's default: all cores for one
    # process, cores / processes under the launcher). The 1-process, 1-thread run shows how
    # much of a difference comes from threads rather than processes (OpenMP threads suffer
    # most when other work shares the cores).
    configs = [(1, 0), (2, 0), (1, 1)]
    runs = []
    for pair in range(args.pairs):
        for processes, threads in configs:
            result = launch(args, processes, threads, OUT / f"bench_distributed_{processes}p{threads}t_{pair}.json")
            runs.append({"pair": pair, "threads_asked": threads, **result})
            print(f"pair {pair}, {processes} process(es) x {result['threads_per_process']} thread(s): " +
                  ", ".join(f"{k} {v:.1f}s" for k, v in result["seconds"].items()), flush=True)
    one = [r for r in runs if r["processes"] == 1 and r["threads_asked"] == 0]
    two = [r for r in runs if r["processes"] == 2]
    one_thread = [r for r in runs if r["processes"] == 1 and r["threads_asked"] == 1]
    same = all(a["outputs"]["evaluate"] == b["outputs"]["evaluate"] for a, b in zip(one, two))
    max_diff = max(abs(x - y) for a, b in zip(one, two)
                   for sa, sb in zip(a["outputs"]["score_star"], b["outputs"]["score_star"])
                   for x, y in zip(sa, sb))
    lines = [f"# 1 vs 2 processes on {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
             f"{args.n} test + {args.n} pool arith problems, K={args.k}",
             f"| phase | pair | 1 process x {one[0]['threads_per_process']} threads (s) | 2 processes x "
             f"{two[0]['threads_per_process']} thread (s) | speed-up | 1 process x 1 thread (s) |",
             "|---|---|---|---|---|---|"]
    for phase in ("evaluate", "score_star"):
        for a, b, c in zip(one, two, one_thread):
            t1, t2, t3 = a["seconds"][phase], b["seconds"][phase], c["seconds"][phase]
            lines.append(f"| {phase} | {a['pair']} | {t1:.1f} | {t2:.1f} | {t1 / t2:.2f}x | {t3:.1f} |")
    lines.append(f"greedy answers identical: {same}; largest |MC score difference| between the runs: {max_diff:.2e}")
    print("\n".join(lines))
    (OUT / "bench_distributed.json").write_text(json.dumps(
        {"args": vars(args), "runs": [{k: v for k, v in r.items() if k != "outputs"} for r in runs],
         "answers_identical": same, "max_mc_score_difference": max_diff}, indent=1))
    (OUT / "bench_distributed.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
