"""Run an active-learning experiment: every strategy x seed into DIR/<strategy>/seed-<n>/.

With no arguments: the embedded default experiment (SmolLM2-135M on arith, random against
star, a small budget). Re-running the same command resumes after the last completed step;
a changed config is refused unless --restart. At the end it prints the learning-curve
table and writes DIR/curves.png and DIR/report.md."""

from __future__ import annotations

import argparse
import time

from . import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="runs/default", metavar="DIR", help="experiment folder (default: runs/default)")
    parser.add_argument("--strategy", dest="strategies", action="append", metavar="S",
                        help="query strategy (repeatable; default: random and star)")
    parser.add_argument("--seed", dest="seeds", action="append", type=int, metavar="N",
                        help="seed (repeatable; default: 0)")
    parser.add_argument("--rounds", type=int, metavar="R", help="query rounds after the initial set")
    parser.add_argument("--data", help="arith (default), a .jsonl/.csv file or folder, or a hub dataset")
    parser.add_argument("--task", help="default: inferred from --data")
    common.add_model_args(parser, adapter=False)
    parser.add_argument("--restart", action="store_true", help="start over runs whose config changed")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from ..loop import run_experiment
    from ..report import compare

    common.setup_logging()
    config = common.config_from_args(args, {"loop": {
        "strategies": args.strategies, "seeds": args.seeds, "rounds": args.rounds}})
    output = common.output_dir(args.output, "--output")
    started = time.time()
    run_experiment(config, output, restart=args.restart, progress=not args.quiet)
    _, table = compare([output], output)
    print(table, end="")
    print(f"finished in {time.time() - started:.0f}s -> {output}/report.md, {output}/curves.png")
    return 0
