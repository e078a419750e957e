"""Compare finished runs: accuracy per round (mean ± std over seeds), normalised area under
the learning curve, labels to reach a target accuracy, ECE and uncertainty-gap curves.
Writes summary.json, report.md and curves.png into --out (default: the first DIR)."""

from __future__ import annotations

import argparse

from . import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="experiment folders written by `activelora run`")
    parser.add_argument("--out", metavar="DIR", help="where to write the report (default: the first DIR)")
    parser.add_argument("--target", type=float, help="target accuracy (default: 90%% of the best final accuracy)")


def run(args: argparse.Namespace) -> int:
    from ..experiment.report import compare

    out = common.output_dir(args.out or args.dirs[0])
    _, table = compare(args.dirs, out, args.target)
    print(table, end="")
    print(f"-> {out}/report.md, {out}/summary.json, {out}/curves.png")
    return 0
