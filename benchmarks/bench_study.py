"""Time a study, not a step: old code against new, per phase (issue 15, deliver 4).

    .venv/bin/python benchmarks/bench_study.py                       # both experiments, full size
    .venv/bin/python benchmarks/bench_study.py --experiment validity --set loop.rounds=1 --name study-r1

Two experiments, each run end to end by ``activelora run`` in a fresh child process:

  validity   one seed (``--seed``, default 0) of ``benchmarks/configs/validity.yaml`` with the
             strategies random, entropy, star and random-hybrid, one after another (--jobs 1);
  demo       ``make demo``'s experiment: the default config (random and star on arith).

Each is run by the old code (``--old``, default the commit before issue 15) and by the new
(the working tree's ``src/``, or ``--new REF``), alternating old and new so that a drift in the
machine's load falls on both. ``src/`` of a commit is extracted with ``git archive``
(:func:`bench_round.extracted_source`), and the child finds it first on ``PYTHONPATH``; each
child has its own empty score cache. The child wraps the library's phase functions with
timers before the run starts, found by what they are in either layout:

  train      ``train_lora`` (one adapter's training)
  evaluate   ``evaluate`` of the evaluation module (test answers and their metrics; the
             zero-shot baseline included)
  score      ``PoolScorer.strategy_inputs`` (everything a round computes on the pool)

Nested calls count once, in the outermost phase; ``other`` is the rest of the wall time
(model loading, selection, files). Each version runs with its own defaults, on ``--threads``
threads (default: all cores of this process). ``--set`` reaches both versions; ``--new-set``
only the new code, for the settings the old code does not know: the speed-ups issue 15 left as
opt-ins (``model.dtype=auto``, ``strategy.mc_estimator=answer``) are timed that way. The table
gives seconds per phase and the ratio old/new.
Results: ``benchmarks/results/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_round import OUT, ROOT, child_env, extracted_source, fresh_cache  # noqa: E402

OLD_COMMIT = "45e8ca5"  # main before issue 15: float32, the full-sequence MC estimator
VALIDITY = ROOT / "benchmarks" / "configs" / "validity.yaml"
STUDY_STRATEGIES = ("random", "entropy", "star", "random-hybrid")
PHASES = ("train", "evaluate", "score")
RESULTS = ROOT / "benchmarks" / "results"


# ---------------------------------------------------------------------- child


def _install_timers(totals: dict[str, float]):
    """Wrap the phase functions of whichever activelora is on the path; return the wrappers."""
    import activelora

    for info in pkgutil.walk_packages(activelora.__path__, "activelora."):
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional module (a tracker, Label Studio) is not a phase
            continue
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("activelora") and m is not None]
    active: list[str] = []

    def timed(phase: str, fn):
        def wrapper(*args, **kwargs):
            if active:  # nested: the outer phase's clock is running
                return fn(*args, **kwargs)
            active.append(phase)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[phase] = totals.get(phase, 0.0) + time.perf_counter() - start
                active.pop()
        return wrapper

    originals, found = {}, set()
    for module in modules:
        for name, value in list(vars(module).items()):
            if name == "train_lora" and callable(value):
                originals[value] = "train"
            elif name == "evaluate" and callable(value) and getattr(value, "__module__", "").endswith("evaluation"):
                originals[value] = "evaluate"
            elif name == "PoolScorer" and isinstance(value, type) and "strategy_inputs" in vars(value):
                if not getattr(value.strategy_inputs, "phase_timer", False):  # a class re-exported twice
                    value.strategy_inputs = timed("score", value.strategy_inputs)
                    value.strategy_inputs.phase_timer = True
                found.add("score")
    found.update(originals.values())
    wrappers = {fn: timed(phase, fn) for fn, phase in originals.items()}
    for module in modules:
        for name, value in list(vars(module).items()):
            if value in wrappers.keys() if _hashable(value) else False:
                setattr(module, name, wrappers[value])
    if found != set(PHASES):
        raise RuntimeError(f"bench_study: no phase function found for {sorted(set(PHASES) - found)}")


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def child(result: Path, argv: list[str]) -> None:
    totals: dict[str, float] = {}
    start = time.perf_counter()
    _install_timers(totals)
    from activelora.cli import main

    code = main(argv)
    wall = time.perf_counter() - start
    result.write_text(json.dumps({"code": code, "wall": wall, "phases": totals}))


# ---------------------------------------------------------------------- parent


def experiment_argv(name: str, output: Path, seed: int, settings: list[str]) -> list[str]:
    """``activelora run`` arguments for one experiment, with ``settings`` as ``--set`` flags."""
    argv = ["run", "--output", str(output), "--quiet", "--jobs", "1"]
    if name == "validity":
        argv += ["--config", str(VALIDITY), "--seed", str(seed)]
        for strategy in STUDY_STRATEGIES:
            argv += ["--strategy", strategy]
    for setting in settings:
        argv += ["--set", setting]
    return argv


def run_child(version: str, src: Path, scratch: Path, argv: list[str], threads: int | None) -> dict:
    cache = fresh_cache(scratch)
    result = Path(tempfile.mkstemp(prefix=f"{version}.", suffix=".json", dir=scratch)[1])
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(result), "--", *argv]
    print(f"[{time.strftime('%H:%M:%S')}] {version}: activelora {' '.join(argv)}", file=sys.stderr, flush=True)
    subprocess.run(command, env=child_env(src, cache, threads), check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(cache, ignore_errors=True)
    out = json.loads(result.read_text())
    if out["code"] != 0:
        raise SystemExit(f"bench_study: the {version} run exited with {out['code']}")
    out["phases"]["other"] = out["wall"] - sum(out["phases"].get(p, 0.0) for p in PHASES)
    print(f"    {out['wall']:.0f} s: " + ", ".join(f"{k} {v:.0f}" for k, v in out["phases"].items()),
          file=sys.stderr, flush=True)
    return out


def table(report: dict) -> str:
    lines = [f"Old code {report['old'][:7]}, new code {report['new'][:7]}; {report['threads'] or 'default'} "
             f"threads; settings {report['settings'] or 'none'}; new code only {report['new_settings'] or 'none'}.",
             ""]
    for name, result in report["experiments"].items():
        old, new = result["old"], result["new"]
        lines += [f"### {name}", "", "| phase | old (s) | new (s) | old / new |", "|---|---:|---:|---:|"]
        for phase in (*PHASES, "other"):
            o, n = old["phases"].get(phase, 0.0), new["phases"].get(phase, 0.0)
            lines.append(f"| {phase} | {o:.0f} | {n:.0f} | {o / n:.2f}x |" if n else f"| {phase} | {o:.0f} | {n:.0f} | – |")
        lines += [f"| **whole run** | {old['wall']:.0f} | {new['wall']:.0f} | {old['wall'] / new['wall']:.2f}x |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        child(Path(argv[1]), argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", choices=("validity", "demo"), action="append")
    parser.add_argument("--old", default=OLD_COMMIT)
    parser.add_argument("--new", default=None, help="a commit (default: the working tree's src/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--new-set", dest="new_settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for the new code only (one the old code does not know)")
    parser.add_argument("--name", default="bench_study")
    args = parser.parse_args(argv)
    old_src, old_sha = extracted_source(args.old)
    new_src, new_sha = extracted_source(args.new) if args.new else (ROOT / "src", "working tree")
    scratch = Path(tempfile.mkdtemp(prefix="bench_study.", dir=OUT if OUT.is_dir() else None))
    report = {"old": old_sha, "new": new_sha, "threads": args.threads, "settings": args.settings,
              "new_settings": args.new_settings, "experiments": {}}
    settings = {"old": args.settings, "new": args.settings + args.new_settings}
    try:
        for i, name in enumerate(args.experiment or ["validity", "demo"]):
            order = (("old", old_src), ("new", new_src)) if i % 2 == 0 else (("new", new_src), ("old", old_src))
            results = {}
            for version, src in order:
                output = Path(tempfile.mkdtemp(prefix=f"{name}-{version}.", dir=scratch)) / "exp"
                results[version] = run_child(version, src, scratch,
                                             experiment_argv(name, output, args.seed, settings[version]), args.threads)
            report["experiments"][name] = results
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
            (RESULTS / f"{args.name}.md").write_text(table(report) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
