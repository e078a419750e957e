"""Command line: ``activelora <command> ...``. ``main(argv) -> int`` is what tests call.

Each command lives in ``activelora.commands.<name>`` and exposes ``add_arguments(parser)``
and ``run(args) -> int``. User mistakes (ActiveLoraError) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from . import __version__
from .errors import ActiveLoraError
from .registry import import_plugins

# name -> one-line help; the module is activelora.commands.<name>
COMMANDS = {
    "train": "train a LoRA adapter on labelled data",
    "evaluate": "evaluate a model (and optional adapter) on labelled data",
    "score": "score examples by uncertainty (label-free by default)",
    "run": "run an active-learning experiment (resumable)",
    "compare": "compare finished runs: learning curves, AULC, labels to target",
    "probe": "probe the uncertainty gap and calibration of a model",
    "campaign": "label your own data: batches out to a person or Label Studio, answers back in",
}


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (not usage + error) and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="activelora",
        description="Data-efficient LoRA fine-tuning with active learning (STAR).",
    )
    parser.add_argument("--version", action="version", version=f"activelora {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f".commands.{name}", __package__)
        command = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(command)
        command.add_argument("--threads", type=_positive_int, metavar="N",
                             help="compute threads per process (default: the cores this process may use, "
                                  "shared among --jobs; OMP_NUM_THREADS when set)")
        command.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE",
                             help="import a module or .py file that registers your own strategies first "
                                  "(repeatable)")
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        _take_threads(args)
        import_plugins(args.plugins)
        return int(args._run(args) or 0)
    except ActiveLoraError as exc:
        from .multiprocess.distributed import should_report  # under a launcher: one line for all processes

        if should_report(exc):
            print(f"activelora {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"activelora {args.command}: interrupted", file=sys.stderr)
        return 130


def _positive_int(text: str) -> int:
    from .commands.common import positive_int

    return positive_int(text)


def _take_threads(args: argparse.Namespace) -> None:
    """This process's threads by the rule of :mod:`activelora.multiprocess.threads`; with
    ``--jobs`` the workers take theirs from the same plan (this process then only waits)."""
    from .multiprocess.threads import ThreadPlan, apply_threads

    apply_threads(ThreadPlan.decide(args.threads, processes=1).per_process)


def main_entry() -> None:  # console script
    sys.exit(main())


if __name__ == "__main__":
    main_entry()
