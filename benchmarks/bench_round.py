"""Time one active-learning round, today's code against the baseline, side by side (issue 8).

Two modes.

``--phase round`` (default) times the phases of one round of the embedded demo (SmolLM2-135M
on arith at the ``LoopConfig`` defaults: pool 160, test 80, probe 16, 32 initial labels, the
default train/eval/score settings), each through the loop's own step methods so that it
costs what a round costs a user:

  train_plain      a ``random`` run's round-0 training on 32 labels (plain LoRA)
  train_hybrid     a ``star`` run's round-0 training (STAR's hybrid regularisation)
  evaluate_greedy  greedy answers to the 80 test problems (``evaluation.evaluate``)
  evaluate_step    the loop's whole evaluate step (test answers, calibration, probe gap metrics)
  score_entropy    an ``entropy`` run's pool scoring after round 0 (128 examples, one pass)
  score_star       a ``star`` run's pool scoring after round 0: K Monte-Carlo passes of the
                   tuned model and the base model's scores (computed, as in a run's first query:
                   every child starts from an empty score cache)

The entropy run scores with the adapter the random run trained: both train plain LoRA with
the same seed on the same initial labels (checked), so it is the adapter it would train.

``--phase jobs`` times ``activelora run`` on the demo's two runs (random, star) at reduced
rounds with ``--jobs 1`` and ``--jobs 2``, on the new code, and reports the throughput ratio.

How the old path stays runnable: the baseline commit's ``src/`` is extracted with
``git archive <commit> src`` into ``benchmarks/out/sources/<commit>/`` (git-ignored; reused
on later runs). Every measurement runs in a fresh child process of the same interpreter and
venv, with ``PYTHONPATH`` pointing at the old or the new ``src/`` (it comes before the
editable install's path), so no legacy code is kept in ``src/``. The new code is the working
tree's ``src/`` by default, or ``--new-ref REF`` extracted the same way (a snapshot that other
edits cannot change under a long benchmark). Old and new children alternate (old, new, then
new, old, ...) so that a drift in the machine's load falls on both, or, with
``--concurrent``, each rep's old and new child run at the same time (on an oversubscribed
machine they then get the same share of it). The table gives the median of ``--reps``
repetitions and the ratio old/new of the medians, in wall seconds or (``--clock cpu``) in
each phase's CPU seconds: on a machine shared with other work, the wall clock measures the
scheduler's share as much as the code, while the CPU time at one thread (``--threads 1``)
does not. Every child has its own empty ``ACTIVELORA_CACHE`` (the converted model folder is
linked in) so that no cached score carries over between children.

    .venv/bin/python benchmarks/bench_round.py                        # round phases, 2 reps
    .venv/bin/python benchmarks/bench_round.py --new-ref HEAD --reps 2
    .venv/bin/python benchmarks/bench_round.py --phase jobs --rounds 1 # --jobs 1 vs 2 throughput
    # on a busy shared machine: CPU seconds at one thread, old and new side by side
    .venv/bin/python benchmarks/bench_round.py --threads 1 --concurrent --clock cpu --new-ref HEAD

Results: a markdown table on stdout, JSON and markdown under ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
BASELINE_COMMIT = "a0338fe82857e5f9e71de647d6d38a9378db0a26"  # the code before issue 8's speed work

ROUND_PHASES = ("train_plain", "train_hybrid", "evaluate_greedy", "evaluate_step", "score_entropy", "score_star")
# Issue 8's targets, as speed-ups old/new (None: no target for that phase alone).
TARGETS = {"train_plain": 1.6, "train_hybrid": 1.6, "evaluate_greedy": 2.0, "evaluate_step": None,
           "score_entropy": None, "score_star": 2.5}


# ---------------------------------------------------------------------- sources


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def extracted_source(ref: str) -> tuple[Path, str]:
    """``src/`` of commit ``ref`` under benchmarks/out/sources/<sha>/src (extracted once)."""
    sha = git("rev-parse", f"{ref}^{{commit}}")
    target = OUT / "sources" / sha
    if not (target / "src" / "activelora" / "__init__.py").is_file():
        archive = subprocess.run(["git", "archive", "--format=tar", sha, "src"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        staging = Path(tempfile.mkdtemp(prefix=f"{sha}.", dir=OUT / "sources" if (OUT / "sources").is_dir()
                                        else _mkdir(OUT / "sources")))
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(staging, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target / "src", sha


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def fresh_cache(parent: Path) -> Path:
    """An empty ACTIVELORA_CACHE holding only a link to the converted model folder."""
    real = Path(os.environ.get("ACTIVELORA_CACHE", Path.home() / ".cache" / "activelora"))
    cache = Path(tempfile.mkdtemp(prefix="cache.", dir=parent))
    if (real / "models").is_dir():
        (cache / "models").symlink_to(real / "models", target_is_directory=True)
    return cache


def child_env(src: Path, cache: Path, threads: int | None = None) -> dict[str, str]:
    """The child's environment: the version's src/ first on the path, its own cache, and
    torch's default thread count unless ``threads`` is given."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(PYTHONPATH=str(src), ACTIVELORA_CACHE=str(cache), PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


# ---------------------------------------------------------------------- child: one round


CPU_TIMES: dict[str, float] = {}  # phase -> CPU seconds of this process (all its threads)


def _timed(name: str, fn) -> float:
    """Wall seconds of ``fn()``; its CPU seconds go to CPU_TIMES. On a shared, oversubscribed
    machine the wall clock measures the scheduler's share as much as the code; the CPU time
    at a fixed thread count (``--threads 1``) does not."""
    cpu, start = time.process_time(), time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    CPU_TIMES[name] = time.process_time() - cpu
    print(f"    {os.environ.get('BENCH_ROUND_VERSION', '')} {name}: {seconds:.1f} s wall, {CPU_TIMES[name]:.1f} s CPU",
          file=sys.stderr, flush=True)
    return seconds


def step(run, name: str, *args) -> None:
    """One phase of a run, as the loop runs it, on today's layout or on a baseline's."""
    if hasattr(run, "step_select"):  # before issue 17: ActiveLearningRun.step_<name>
        getattr(run, f"step_{name}")(*args)
        if name == "train":
            run._adapter_round = args[0]  # what the old driver recorded after a train step
        return
    getattr(run, name).run(*args)
    if name in ("label", "train", "score"):  # as the old step methods did (evaluate's is the driver's)
        run.state.set_phase(name)


def hold_adapter(run, r: int) -> None:
    if hasattr(run, "_ensure_adapter"):
        run._ensure_adapter(r)
    else:
        run.ctx.hold_adapter(r)


def child_round(result_path: Path, work: Path, settings: list[str]) -> None:
    """Run in a child process with PYTHONPATH set: time one round's phases, write JSON."""
    import activelora
    from activelora.config import build_config, parse_set
    from activelora.models.loading import load_model
    from activelora.models.lora import attach_lora

    try:  # the layout since issue 17: a run is a driver over phase objects
        from activelora.run.experiment_data import load_experiment_data
        from activelora.models.evaluation import evaluate
        from activelora.run.loop import ActiveLearningRun
    except ImportError:  # a baseline from before it: loop.py's step methods
        from activelora.evaluation import evaluate
        from activelora.loop import ActiveLearningRun, load_experiment_data

    overrides = parse_set(settings)
    overrides.setdefault("loop", {})["strategies"] = ["random", "entropy", "star"]
    config = build_config(None, overrides)
    data = load_experiment_data(config)
    model, tokenizer = load_model(config.model.name, dtype=config.model.dtype,
                                  trust_remote_code=config.model.trust_remote_code)
    model = attach_lora(model, config.lora, seed=0)
    times: dict[str, float] = {}
    facts: dict[str, object] = {"source": str(Path(activelora.__file__).parent)}

    def open_run(strategy: str) -> ActiveLearningRun:
        run = ActiveLearningRun(config, strategy, 0, work / strategy / "seed-0", data, model, tokenizer,
                                progress=False)
        step(run, "select")
        step(run, "label")
        return run

    plain = open_run("random")
    times["train_plain"] = _timed("train_plain", lambda: step(plain, "train", 0))
    answers = {}

    def greedy() -> None:
        result = evaluate(model, tokenizer, data.task, data.test, batch_size=config.eval.batch_size,
                          max_new_tokens=config.eval.max_new_tokens, chat_template=config.model.chat_template,
                          progress=False)
        answers.update({p.id: p.prediction for p in result.predictions})
        facts["accuracy"] = result.accuracy

    times["evaluate_greedy"] = _timed("evaluate_greedy", greedy)
    facts["answers_sha256"] = hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()
    facts["answers"] = answers
    times["evaluate_step"] = _timed("evaluate_step", lambda: step(plain, "evaluate", 0))

    entropy = open_run("entropy")
    if entropy.state.rounds[0].ids != plain.state.rounds[0].ids:
        raise RuntimeError("the entropy and random runs drew different initial labels")
    source, target = work / "random" / "seed-0" / "round-0", work / "entropy" / "seed-0" / "round-0"
    shutil.copytree(source / "adapter", target / "adapter")
    shutil.copy2(source / "train.json", target / "train.json")
    entropy.state.set_phase("train")
    entropy.state.set_phase("evaluate")
    hold_adapter(entropy, 0)  # loaded before the clock starts: in a run it is already there
    times["score_entropy"] = _timed("score_entropy", lambda: step(entropy, "score", 0))

    star = open_run("star")
    times["train_hybrid"] = _timed("train_hybrid", lambda: step(star, "train", 0))
    star.state.set_phase("evaluate")  # its evaluation is timed above on the random run's model
    times["score_star"] = _timed("score_star", lambda: step(star, "score", 0))

    for name, folder in (("entropy", target), ("star", work / "star" / "seed-0" / "round-0")):
        saved = json.loads((folder / "pool_scores.json").read_text())
        facts[f"{name}_scores"] = {k: saved[k] for k in ("ids", "full_scores", "base_scores") if k in saved}
    for name, folder in (("plain", source), ("hybrid", work / "star" / "seed-0" / "round-0")):
        facts[f"train_{name}"] = json.loads((folder / "train.json").read_text())
    result_path.write_text(json.dumps({"times": times, "cpu_times": CPU_TIMES, "facts": facts}))


# ---------------------------------------------------------------------- parent: round mode


def start_child(version: str, src: Path, scratch: Path, settings: list[str], threads: int | None) -> dict:
    cache = fresh_cache(scratch)
    work = Path(tempfile.mkdtemp(prefix=f"{version}.", dir=scratch))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(work / "result.json"), "--work",
               str(work), *[item for setting in settings for item in ("--set", setting)]]
    return {"version": version, "cache": cache, "work": work, "load_before": os.getloadavg()[0],
            "started": time.perf_counter(),
            "process": subprocess.Popen(command, env={**child_env(src, cache, threads), "BENCH_ROUND_VERSION": version})}


def finish_child(child: dict) -> dict:
    if child["process"].wait() != 0:
        raise SystemExit(f"bench_round: the {child['version']} child failed (exit {child['process'].returncode})")
    wall = time.perf_counter() - child["started"]
    data = json.loads((child["work"] / "result.json").read_text())
    shutil.rmtree(child["cache"], ignore_errors=True)
    shutil.rmtree(child["work"], ignore_errors=True)
    return {**data, "version": child["version"], "wall_seconds": wall, "load_before": child["load_before"]}


def alternating(reps: int) -> list[tuple[int, str]]:
    """(rep, version) in the order they run: old, new, then new, old, ..."""
    order = []
    for rep in range(reps):
        pair = ("old", "new") if rep % 2 == 0 else ("new", "old")
        order += [(rep, version) for version in pair]
    return order


def max_abs_difference(a: dict, b: dict, key: str) -> float | None:
    if key not in a or key not in b or a.get("ids") != b.get("ids"):
        return None
    return max((abs(x - y) for x, y in zip(a[key], b[key])), default=0.0)


def round_mode(args, sources: dict[str, tuple[Path, str]], scratch: Path) -> dict:
    results = {"old": [], "new": []}
    order = alternating(args.reps)
    # --concurrent: a rep's old and new children at the same time (on an oversubscribed
    # machine they then get the same share of it); else one after the other.
    batches = [order[i:i + 2] for i in range(0, len(order), 2)] if args.concurrent else [[item] for item in order]
    for batch in batches:
        children = []
        for rep, version in batch:
            src, sha = sources[version]
            print(f"[{time.strftime('%H:%M:%S')}] rep {rep + 1}/{args.reps}: {version} ({sha[:7]})", file=sys.stderr,
                  flush=True)
            children.append(start_child(version, src, scratch, args.settings, args.threads))
        for child in children:
            results[child["version"]].append(finish_child(child))
    key = "cpu_times" if args.clock == "cpu" else "times"
    rows = []
    for phase in ROUND_PHASES:
        old = statistics.median(r[key][phase] for r in results["old"])
        new = statistics.median(r[key][phase] for r in results["new"])
        rows.append({"phase": phase, "old_s": old, "new_s": new, "speedup": old / new, "target": TARGETS[phase],
                     "old_runs": [r[key][phase] for r in results["old"]],
                     "new_runs": [r[key][phase] for r in results["new"]]})
    totals = {v: statistics.median(sum(r[key][p] for p in ("train_plain", "evaluate_step", "score_star"))
                                   for r in results[v]) for v in ("old", "new")}
    old_facts, new_facts = results["old"][0]["facts"], results["new"][0]["facts"]
    checks = {
        "greedy_answers_identical": old_facts["answers"] == new_facts["answers"],
        "greedy_answers_differing": sum(old_facts["answers"][k] != new_facts["answers"].get(k)
                                        for k in old_facts["answers"]),
        "accuracy": {"old": old_facts["accuracy"], "new": new_facts["accuracy"]},
        "train_final_loss": {v: {"plain": results[v][0]["facts"]["train_plain"].get("final_loss"),
                                 "hybrid": results[v][0]["facts"]["train_hybrid"].get("final_loss")}
                             for v in ("old", "new")},
        "entropy_full_max_abs_diff": max_abs_difference(old_facts["entropy_scores"], new_facts["entropy_scores"],
                                                        "full_scores"),
        "star_full_max_abs_diff": max_abs_difference(old_facts["star_scores"], new_facts["star_scores"], "full_scores"),
        "star_base_max_abs_diff": max_abs_difference(old_facts["star_scores"], new_facts["star_scores"], "base_scores"),
        "hybrid_over_plain": {v: statistics.median(r[key]["train_hybrid"] / r[key]["train_plain"]
                                                   for r in results[v]) for v in ("old", "new")},
    }
    for runs in results.values():  # keep the JSON readable: the answers were compared above
        for r in runs:
            for key in ("answers", "entropy_scores", "star_scores"):
                r["facts"].pop(key, None)
    for runs in results.values():
        for r in runs:
            r.pop("process", None)
    return {"clock": args.clock, "rows": rows, "round_total": totals, "checks": checks, "runs": results}


def round_table(report: dict) -> str:
    unit = "CPU s" if report["clock"] == "cpu" else "s"
    lines = [f"| phase | old ({unit}) | new ({unit}) | speed-up old/new | target |", "|---|---:|---:|---:|---:|"]
    for row in report["rows"]:
        target = f">= {row['target']}x" if row["target"] else "-"
        lines.append(f"| {row['phase']} | {row['old_s']:.1f} | {row['new_s']:.1f} | {row['speedup']:.2f}x | {target} |")
    t = report["round_total"]
    lines.append(f"| round (train_plain + evaluate_step + score_star) | {t['old']:.1f} | {t['new']:.1f} | "
                 f"{t['old'] / t['new']:.2f}x | - |")
    c = report["checks"]
    h = c["hybrid_over_plain"]
    lines += ["", f"hybrid / plain training step: old {h['old']:.2f}x, new {h['new']:.2f}x (target <= 1.1x)",
              f"greedy answers old vs new identical: {c['greedy_answers_identical']} ({c['greedy_answers_differing']} differ); "
              f"accuracy old {c['accuracy']['old']:.3f}, new {c['accuracy']['new']:.3f}",
              f"max |score difference| old vs new: entropy {c['entropy_full_max_abs_diff']}, "
              f"star full {c['star_full_max_abs_diff']}, star base {c['star_base_max_abs_diff']}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- jobs mode


def jobs_mode(args, sources: dict[str, tuple[Path, str]], scratch: Path) -> dict:
    src, sha = sources["new"]
    runs = {1: [], 2: []}
    for rep in range(args.reps):
        for jobs in ((1, 2) if rep % 2 == 0 else (2, 1)):
            cache = fresh_cache(scratch)
            out = Path(tempfile.mkdtemp(prefix=f"jobs{jobs}.", dir=scratch)) / "exp"
            command = [sys.executable, "-m", "activelora.cli", "run", "--output", str(out), "--quiet",
                       "--strategy", "random", "--strategy", "star", "--rounds", str(args.rounds), "--jobs", str(jobs),
                       *[item for setting in args.settings for item in ("--set", setting)]]
            load = os.getloadavg()[0]
            print(f"[{time.strftime('%H:%M:%S')}] rep {rep + 1}/{args.reps}: --jobs {jobs} ({sha[:7]})",
                  file=sys.stderr, flush=True)
            started = time.perf_counter()
            subprocess.run(command, env=child_env(src, cache, args.threads), check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - started
            print(f"    {wall:.1f} s", file=sys.stderr, flush=True)
            runs[jobs].append({"seconds": wall, "load_before": load})
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(out.parent, ignore_errors=True)
    one = statistics.median(r["seconds"] for r in runs[1])
    two = statistics.median(r["seconds"] for r in runs[2])
    return {"rounds": args.rounds, "jobs1_s": one, "jobs2_s": two, "throughput_ratio": one / two, "runs": runs}


def jobs_table(report: dict) -> str:
    return ("| runs (random, star), rounds = {rounds} | --jobs 1 (s) | --jobs 2 (s) | throughput --jobs 2 / --jobs 1 "
            "| target |\n|---|---:|---:|---:|---:|\n| wall clock | {jobs1_s:.1f} | {jobs2_s:.1f} | "
            "{throughput_ratio:.2f}x | >= 1.6x |\n").format(**report)


# ---------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=("round", "jobs"), default="round")
    parser.add_argument("--reps", type=int, default=2, help="repetitions per version (default 2)")
    parser.add_argument("--old-ref", default=BASELINE_COMMIT, help="baseline commit (default: before issue 8)")
    parser.add_argument("--new-ref", help="new commit (default: the working tree's src/)")
    parser.add_argument("--rounds", type=int, default=1, help="--phase jobs: query rounds per run (default 1)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both versions (a smoke test: smaller loop.pool_limit, ...); "
                             "figures for the record use none")
    parser.add_argument("--threads", type=int, help="torch threads per child (default: torch's own, all cores); "
                        "--phase jobs: of the --jobs 1 run only, the workers take cores // 2")
    parser.add_argument("--concurrent", action="store_true",
                        help="--phase round: run each rep's old and new child at the same time")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="--phase round: tabulate wall seconds (default) or the child's CPU seconds (use with "
                             "--threads 1 on a shared machine)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_round(args.child, args.work, args.settings)
        return 0
    if args.reps < 1 or args.rounds < 0:
        parser.error("--reps must be >= 1 and --rounds >= 0")
    OUT.mkdir(parents=True, exist_ok=True)
    sources = {"old": extracted_source(args.old_ref)}
    if args.new_ref:
        sources["new"] = extracted_source(args.new_ref)
    else:
        dirty = bool(git("status", "--porcelain", "--", "src"))
        sources["new"] = (ROOT / "src", git("rev-parse", "HEAD") + ("+working-tree" if dirty else ""))
    scratch = Path(tempfile.mkdtemp(prefix="bench_round.", dir=OUT))
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": platform.platform(),
            "cores": os.cpu_count(), "python": platform.python_version(), "phase": args.phase, "reps": args.reps,
            "old": sources["old"][1], "new": sources["new"][1], "settings": args.settings, "threads": args.threads,
            "load_average_at_start": os.getloadavg()}
    try:
        if args.phase == "round":
            report = round_mode(args, sources, scratch)
            table = round_table(report)
        else:
            report = jobs_mode(args, sources, scratch)
            table = jobs_table(report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    versions = f"old {meta['old'][:12]} vs new {meta['new'][:20]}" if args.phase == "round" else f"new {meta['new'][:20]}"
    header = (f"{versions}, {args.reps} reps, medians, {meta['when']}"
              f"{', settings ' + ' '.join(args.settings) if args.settings else ''}\n\n")
    (OUT / f"bench_round-{args.phase}-{stamp}.json").write_text(json.dumps({**meta, **report}, indent=1))
    (OUT / f"bench_round-{args.phase}-{stamp}.md").write_text(header + table)
    print(header + table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
