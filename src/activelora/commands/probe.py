"""Probe the uncertainty gap and calibration of a model (optionally with an adapter).

Writes DIR/probe.json (ece, ece_equal_mass, mce, brier, nll, spearman, kendall, auroc_base,
auroc_full, ...), DIR/predictions.jsonl (id, confidence, correct, u_base, u_full) and the
plots reliability.png, confidence.png and gap.png. With --calibration-split, a temperature
is fitted on that held-out labelled split and its effect on the ECE is reported.

u_full uses --measure over --mc-samples MC-dropout passes (bald and vote need K >= 2).
u_base is one pass of the base model, which has no dropout: for bald and vote it is the
entropy measure instead (recorded as base_measure in probe.json)."""

from __future__ import annotations

import argparse
import json

from ..errors import DataError
from ..atomic_files import atomic_write_json, atomic_write_text
from . import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_data_args(parser)
    common.add_model_args(parser)
    parser.add_argument("--measure", help="uncertainty measure for the gap (default: entropy)")
    parser.add_argument("--mc-samples", type=common.positive_int, metavar="K",
                        help="MC-dropout passes of the tuned model, sampled answers for vote (default 1; "
                             "bald, vote: K >= 2; "
                             "u_base is one pass, with entropy for bald and vote)")
    parser.add_argument("--bins", type=common.positive_int, default=10, help="calibration bins (default 10)")
    parser.add_argument("--calibration-split", metavar="S",
                        help="held-out labelled split to fit temperature scaling on")
    parser.add_argument("--calibration-limit", type=common.positive_int, metavar="N",
                        help="rows of the calibration split (default: as many as --limit); when it is "
                             "the probed split, the rows after the probed ones, so the two never overlap")
    parser.add_argument("--batch-size", type=common.positive_int, help="generation/scoring batch")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    common.add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    from ..probes.run import probe_measures, run_probe
    from ..strategies.regime import check_adapter_for_scoring

    common.setup_logging()
    config = common.config_from_args(args, {
        "score": {"measure": args.measure, "mc_samples": args.mc_samples, "batch_size": args.batch_size},
        "eval": {"batch_size": args.batch_size}})
    probe_measures(config)  # bald/vote without --mc-samples >= 2: fail before loading anything
    out = common.output_dir(args.out)
    split = args.split or config.data.test_split
    task, examples = common.load_split(config, split, args.limit or config.data.test_limit)
    calibration = None
    if args.calibration_split:
        wanted = args.calibration_limit or args.limit
        if common.same_rows(config, args.calibration_split, split):
            # Fitting T on the rows it is then judged on would flatter it: take the next rows.
            _, rows = common.load_split(config, split, None if wanted is None else len(examples) + wanted)
            calibration = rows[len(examples):]
            if not calibration:
                raise DataError(f"--calibration-split {split}: no rows left after the {len(examples)} probed "
                                f"ones; lower --limit or probe another split")
        else:
            _, calibration = common.load_split(config, args.calibration_split, wanted)
    model, tokenizer = common.load_model_and_adapter(config, args.adapter)
    check_adapter_for_scoring(model, args.adapter, mc_samples=config.score.mc_samples,
                              measure=config.score.measure, where=f"--adapter {args.adapter}")
    report, rows = run_probe(model, tokenizer, task, examples, config, bins=args.bins,
                             calibration_examples=calibration, plots_dir=out)
    report.update({"model": config.model.name, "adapter": args.adapter, "data": config.data.source,
                   "split": split, "task": task.name})
    if calibration is not None:
        report.update({"calibration_split": args.calibration_split, "calibration_n": len(calibration)})
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_json(out / "probe.json", report)
    print(format_report(report))
    print(f"-> {out}/probe.json, {out}/predictions.jsonl, {out}/reliability.png, {out}/confidence.png, {out}/gap.png")
    return 0


def _measures(report: dict) -> str:
    full = report["measure"]
    k = report.get("mc_samples", 1)
    if k > 1:
        full += f", K={k}"
    base = report.get("base_measure", report["measure"])
    return full if base == report["measure"] else f"full {full}, base {base}"


def format_report(report: dict) -> str:
    def f(key):
        value = report.get(key)
        return "n/a" if value is None else f"{value:.4f}"

    lines = [
        f"accuracy {f('accuracy')}  mean confidence {f('mean_confidence')}  (n={report['n']})",
        f"calibration: ECE {f('ece')} (equal-mass {f('ece_equal_mass')})  MCE {f('mce')}  "
        f"Brier {f('brier')}  NLL {f('nll')}",
        f"final-answer confidence: ECE {f('ece_answer')}  mean {f('mean_answer_confidence')}  "
        f"(n={report.get('answer_confidence_n', 0)})",
        f"uncertainty gap ({_measures(report)}): Spearman {f('spearman')}  Kendall {f('kendall')}  "
        f"AUROC base {f('auroc_base')}  AUROC full {f('auroc_full')}",
    ]
    if "temperature" in report:
        lines.append(f"temperature scaling: T={report['temperature']:.3f}  ECE {f('ece')} -> "
                     f"{f('ece_temperature_scaled')}")
    return "\n".join(lines)
