"""Run an active-learning experiment: every strategy x seed into DIR/<strategy>/seed-<n>/.

With no arguments: the embedded default experiment (SmolLM2-135M on arith, random against
star, a small budget). Re-running the same command resumes after the last completed step;
a changed config is refused unless --restart. At the end it prints the learning-curve
table and writes DIR/curves.png and DIR/report.md.

--jobs N runs the independent (strategy, seed) runs side by side in N worker processes,
each with its share of the CPU cores (and one GPU each where GPUs are present). A run that
fails there is reported in one line naming its folder; the others finish, and the command
then exits non-zero (2 for a user mistake, 1 for a crash). Re-running it resumes."""

from __future__ import annotations

import argparse
import sys
import time

from . import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="runs/default", metavar="DIR", help="experiment folder (default: runs/default)")
    parser.add_argument("--strategy", dest="strategies", action="append", metavar="S",
                        help="query strategy (repeatable; default: random and star)")
    parser.add_argument("--seed", dest="seeds", action="append", type=int, metavar="N",
                        help="seed (repeatable; default: 0)")
    parser.add_argument("--rounds", type=int, metavar="R", help="query rounds after the initial set")
    parser.add_argument("--data", help="arith (default), mix, a .jsonl/.csv file or folder, or a hub dataset")
    parser.add_argument("--task", help="default: inferred from --data")
    common.add_model_args(parser, adapter=False)
    parser.add_argument("--restart", action="store_true", help="start over runs whose config changed")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--jobs", type=common.positive_int, default=1, metavar="N",
                        help="run the (strategy, seed) runs in N worker processes, each with 1/N of the "
                             "cores (default: 1, one after another in this process)")
    parser.add_argument("--report-to", dest="report_to", action="append", metavar="TRACKER",
                        choices=("tensorboard", "wandb", "mlflow", "none"),
                        help="log each run's config, training losses and round metrics through accelerate's "
                             "tracker: tensorboard (offline, DIR/tensorboard/), wandb or mlflow (repeatable; "
                             "default: none)")
    common.add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from ..experiment.runner import run_experiment
    from ..experiment.workers import RunsFailedError
    from ..multiprocess.distributed import is_main_process
    from ..experiment.report import compare
    from ..run.tracking import check_report_to

    common.setup_logging()
    config = common.config_from_args(args, {"loop": {
        "strategies": args.strategies, "seeds": args.seeds, "rounds": args.rounds}})
    output = common.output_dir(args.output, "--output")
    report_to = check_report_to(args.report_to)
    started = time.time()
    try:
        run_experiment(config, output, restart=args.restart, progress=not args.quiet, jobs=args.jobs,
                       threads=args.threads,
                       report_to=report_to)
    except RunsFailedError as failed:
        for failure in failed.failures:
            print(f"activelora run: error: {failure.line()}", file=sys.stderr)
        return failed.exit_code
    if not is_main_process():  # under accelerate launch the main process writes the report
        return 0
    _, table = compare([output], output)
    print(table, end="")
    print(f"finished in {time.time() - started:.0f}s -> {output}/report.md, {output}/curves.png")
    return 0
