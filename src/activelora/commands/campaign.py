"""Label your own data with active learning: a campaign folder, batches out, answers in.

  activelora campaign init DIR --pool prompts.jsonl [--dev dev.jsonl] [--task T] [--strategy S]
  activelora campaign next DIR [--labelstudio]       train on the labels so far, write the next batch
  activelora campaign import DIR FILE | --labelstudio bring answers back (all or nothing)
  activelora campaign status DIR [--json]            labels, rounds, dev accuracy, stopping signal
  activelora campaign export DIR --out labels.jsonl  every label given, ready to train on

Label Studio: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, install the client with
pip install 'activelora[labelstudio]', and add --labelstudio to next and import."""

from __future__ import annotations

import argparse
import json
import sys

from . import common

SUBCOMMANDS = {
    "init": "create a campaign folder from a pool of unlabelled prompts",
    "next": "train on every label so far and write the next batch to label",
    "import": "import answers: a JSONL/CSV file, a Label Studio export, or --labelstudio",
    "status": "labels, rounds, dev accuracy, annotation time and the stopping signal",
    "export": "write every label given as JSONL (id, question, answer)",
}


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="campaign_command", metavar="ACTION", parser_class=type(parser), required=True)
    commands = {name: sub.add_parser(name, help=text, description=text) for name, text in SUBCOMMANDS.items()}

    init = commands["init"]
    init.add_argument("folder", metavar="DIR", help="the campaign folder to create (new or empty)")
    init.add_argument("--pool", required=True, metavar="FILE",
                      help="JSONL or CSV of prompts: 'question' required, 'id' optional")
    init.add_argument("--dev", metavar="FILE", help="a labelled JSONL/CSV (question, answer) to track accuracy per round")
    init.add_argument("--task", help="arith | gsm8k | boolq | obqa | plain (default: inferred from --pool, else plain)")
    common.add_model_args(init, adapter=False)
    init.add_argument("--strategy", default="star", help="query strategy (default: star)")
    init.add_argument("--batch-size", type=common.positive_int, default=16, metavar="N",
                      help="examples per batch (default: 16)")
    init.add_argument("--budget", type=common.positive_int, metavar="N", help="stop asking after N examples in all")
    init.add_argument("--target-accuracy", type=_probability, metavar="X", help="stop once dev accuracy reaches X")
    init.add_argument("--stop-set", type=_non_negative_int, metavar="N",
                      help="unlabelled examples whose answers are compared round to round (default: 32; 0: off)")
    init.add_argument("--stop-kappa", type=_probability, default=0.99, metavar="K",
                      help="stop-set agreement (Cohen's kappa) that counts as stable (default: 0.99)")
    init.add_argument("--stop-window", type=common.positive_int, default=3, metavar="W",
                      help="rounds the agreement must stay stable (default: 3)")
    init.add_argument("--seed", type=int, default=0, help="seed for the stop set, the first batch and training")
    common.add_config_args(init)

    nxt = commands["next"]
    nxt.add_argument("folder", metavar="DIR")
    nxt.add_argument("--labelstudio", action="store_true",
                     help="push the batch to a Label Studio project (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY)")
    nxt.add_argument("--quiet", action="store_true", help="no progress bars")

    imp = commands["import"]
    imp.add_argument("folder", metavar="DIR")
    imp.add_argument("file", metavar="FILE", nargs="?",
                     help="answers: JSONL {id, answer | skip}, CSV id,answer[,skip], or a Label Studio JSON export")
    imp.add_argument("--labelstudio", action="store_true", help="pull the annotations from the campaign's project")
    imp.add_argument("--replace", action="store_true",
                     help="let a new answer replace an existing label (the old one stays in the history)")

    stat = commands["status"]
    stat.add_argument("folder", metavar="DIR")
    stat.add_argument("--json", action="store_true", help="print the status as JSON")

    exp = commands["export"]
    exp.add_argument("folder", metavar="DIR")
    exp.add_argument("--out", required=True, metavar="FILE", help="JSONL file to write")


def run(args: argparse.Namespace) -> int:
    common.setup_logging()
    return {"init": _init, "next": _next, "import": _import, "status": _status, "export": _export}[
        args.campaign_command](args)


def _open(args):
    from ..campaign import Campaign

    return Campaign.open(args.folder)


def _init(args) -> int:
    from ..campaign import init_campaign

    config = common.config_from_args(args)
    campaign = init_campaign(
        args.folder, pool_file=args.pool, config=config, task=args.task, dev_file=args.dev,
        strategy=args.strategy, batch_size=args.batch_size, budget=args.budget,
        target_accuracy=args.target_accuracy, stop_set_size=args.stop_set, kappa_threshold=args.stop_kappa,
        window=args.stop_window, seed=args.seed)
    settings = campaign.settings
    print(f"campaign {campaign.folder}: {len(campaign.pool)} prompts, task {settings.task}, "
          f"strategy {settings.strategy}, batches of {settings.batch_size}"
          f"{f', dev set of {len(campaign.dev)}' if campaign.dev else ''}")
    print(f"next: activelora campaign next {campaign.folder}")
    return 0


def _labelstudio():
    from ..campaign.labelstudio import LabelStudioProject

    return LabelStudioProject.from_env()


def _next(args) -> int:
    from ..campaign import next_round

    campaign = _open(args)
    link = _labelstudio() if args.labelstudio else None
    outcome = next_round(campaign, labelstudio=link, progress=not args.quiet)
    record, folder = outcome.record, campaign.folder
    accuracy = "" if record["dev_accuracy"] is None else f", dev accuracy {record['dev_accuracy']:.3f}"
    kappa = "" if record["stop_kappa"] is None else f", stop-set kappa {record['stop_kappa']:.3f}"
    print(f"round {record['round']}: trained on {record['trained_on']} labels{accuracy}{kappa}")
    if not outcome.batch:
        adapter = campaign.latest_adapter()
        why = "the budget is spent" if campaign.settings.stop["budget"] is not None and \
            len(campaign.state.asked_ids()) >= campaign.settings.stop["budget"] else "every example has been asked"
        print(f"no new batch: {why}; {len(campaign.state.pending_ids())} still pending")
        if adapter:
            print(f"adapter trained on every label: {adapter}")
        return 0
    r = record["round"]
    print(f"batch {r}: {len(outcome.batch)} examples -> {campaign.batch_path(r)} (and {campaign.batch_path(r, '.csv')})")
    if record["labelstudio_tasks"]:
        project = campaign.state.data["labelstudio"]
        print(f"pushed to Label Studio project {project['project']} at {project['url']}")
        print(f"next: annotate there, then: activelora campaign import {folder} --labelstudio")
    else:
        print("next: fill in 'answer' (or set 'skip' to true) in either file, keep the rows you answered, then:")
        print(f"  activelora campaign import {folder} {campaign.batch_path(r, '.csv')}")
    for reason in _stop_lines(campaign):
        print(f"stopping signal: {reason}")
    return 0


def _stop_lines(campaign) -> list[str]:
    from ..campaign import status

    return status(campaign)["stop"]


def _import(args) -> int:
    from ..campaign import import_file, import_labelstudio
    from ..errors import ConfigError

    if bool(args.file) == bool(args.labelstudio):
        raise ConfigError("give either FILE or --labelstudio")
    campaign = _open(args)
    if args.labelstudio:
        report, sheet = import_labelstudio(campaign, _labelstudio(), replace=args.replace)
    else:
        report, sheet = import_file(campaign, args.file, replace=args.replace)
    if report.changed:
        print(f"imported {sheet.source}: {report.summary()}")
    else:
        print(f"nothing new in {sheet.source} ({report.summary()}); the campaign is unchanged")
    if sheet.annotator_conflicts:
        print("several annotations per task: the latest submitted one is kept; disagreements:")
    for conflict in report.conflicts:
        print(f"  conflict {conflict.line()}")
    if any(c.kind == "existing label" for c in report.conflicts) and not args.replace:
        print("  (existing labels kept; import again with --replace to take the new answers, the old ones stay in the history)")
    pending = len(campaign.state.pending_ids())
    waiting = f"; {sheet.pending} tasks not annotated yet" if sheet.pending else ""
    print(f"{len(campaign.state.labels)} labels in all, {pending} pending{waiting}; "
          f"next: activelora campaign next {campaign.folder}")
    return 0


def _status(args) -> int:
    from ..campaign import status

    info = status(_open(args))
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        print()
        return 0
    print(f"campaign {info['folder']}: task {info['task']}, strategy {info['strategy']}, model {info['model']}")
    budget = f" of a budget of {info['budget']}" if info["budget"] else ""
    print(f"pool {info['pool']}: {info['labelled']} labelled, {info['skipped']} skipped, {info['pending']} pending, "
          f"{info['not_asked']} not asked yet ({info['asked']} asked{budget})")
    seconds = info["annotation_seconds"]
    if seconds is not None:
        print(f"annotation time: {seconds / 60:.1f} min")
    if info["conflicts"] or info["replaced"]:
        print(f"conflicts recorded: {len(info['conflicts'])}; labels replaced (history kept): {info['replaced']}")
    if info["rounds"]:
        print("round  labels  dev acc  annot min  stop kappa  batch")
        for row in info["rounds"]:
            acc = "-" if row["dev_accuracy"] is None else f"{row['dev_accuracy']:.3f}"
            minutes = "-" if row["annotation_seconds"] is None else f"{row['annotation_seconds'] / 60:.1f}"
            kappa = "-" if row["stop_kappa"] is None else f"{row['stop_kappa']:.3f}"
            print(f"{row['round']:>5}  {row['trained_on']:>6}  {acc:>7}  {minutes:>9}  {kappa:>10}  {row['batch']:>5}")
    if info["stop_set"]:
        print(f"stop set: {info['stop_set']} examples; stable when kappa >= {info['stop_kappa_threshold']} "
              f"for {info['stop_window']} rounds")
    if info["stop"]:
        for reason in info["stop"]:
            print(f"stop: {reason}")
    else:
        print("stop: no stopping signal yet")
    if info["latest_adapter"]:
        print(f"latest adapter: {info['latest_adapter']}")
    return 0


def _export(args) -> int:
    from ..campaign import export_labels

    out = common.output_file(args.out)
    campaign = _open(args)
    count = export_labels(campaign, out)
    print(f"{count} labels -> {out}")
    return 0
