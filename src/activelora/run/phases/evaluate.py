"""Evaluate: round r's model on the test split, and the round's metrics row.

Writes ``round-<r>/predictions.jsonl`` and ``round-<r>/metrics.json`` (accuracy, calibration,
the probe-set metrics of :mod:`.probe_metrics`, the batch's composition, the accuracy on any
extra test set the task declares), then rebuilds the
run's ``metrics.jsonl`` from the per-round files.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from ..sharded import evaluate_sharded
from ...probes import calibration_report
from ...probes.answer_confidence import answer_calibration, answer_confidences
from ..context import METRICS_FILE, RunContext
from ...models.evaluation import EvalResult
from ...atomic_files import atomic_write_json, atomic_write_text
from .probe_metrics import ProbeMetrics

CALIBRATION_KEYS = ("ece", "ece_equal_mass", "mce", "brier", "nll", "mean_confidence")


class EvaluatePhase:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.probe = ProbeMetrics(ctx)
        self._answer_tokens = None  # example -> gold answer length in tokens, built on first use

    def run(self, r: int) -> dict:
        """Evaluate round r's model; returns (and writes) the round's metrics row."""
        ctx = self.ctx
        ctx.hold_adapter(r)
        folder = ctx.round_dir(r)
        started = time.time()
        result: EvalResult = evaluate_sharded(
            ctx.model, ctx.tokenizer, ctx.data.task, ctx.data.test,
            batch_size=ctx.config.eval.batch_size, max_new_tokens=ctx.config.eval.max_new_tokens,
            chat_template=ctx.config.model.chat_template, progress=ctx.progress_label(r, "evaluate"))
        answer_conf = answer_confidences(ctx.tokenizer, ctx.data.task, result)
        atomic_write_text(folder / "predictions.jsonl", "".join(
            json.dumps({**p.to_dict(), "answer_confidence": a}) + "\n" for p, a in zip(result.predictions, answer_conf)))
        correct = [p.correct for p in result.predictions]
        row = {
            "round": r, "labeled": len(ctx.state.training_labels()), "accuracy": result.accuracy,
            "n_test": result.n, "strategy": ctx.strategy_name, "seed": ctx.seed,
            "lambda": ctx.state.rounds[r].lambda_,
            "train_loss": json.loads((folder / "train.json").read_text()).get("final_loss"),
        }
        calib = calibration_report([p.confidence for p in result.predictions], correct)
        row.update({k: calib[k] for k in CALIBRATION_KEYS})
        # Beside the sequence ECE: the ECE of p(final answer | own worked solution).
        row.update(answer_calibration(answer_conf, correct))
        if ctx.data.probe:
            row.update(self.probe.gap(r))
            if ctx.config.score.temperature_scaling:
                row.update(self.probe.temperature(r, result))
        row.update(self.batch_composition(r))
        row.update(self.evaluate_extra_tests(r))
        row["eval_seconds"] = round(time.time() - started, 2)
        atomic_write_json(folder / "metrics.json", row)
        self.rewrite_metrics_log()
        ctx.tracker.log_round(row)
        return row

    def evaluate_extra_tests(self, r: int) -> dict:
        """``accuracy_<name>`` and ``n_test_<name>`` on each extra test set the task declares
        (mix: ``pool_like``), with its answers in ``predictions_<name>.jsonl``."""
        ctx = self.ctx
        row: dict = {}
        for name, examples in ctx.data.extra_tests.items():
            result = evaluate_sharded(
                ctx.model, ctx.tokenizer, ctx.data.task, examples,
                batch_size=ctx.config.eval.batch_size, max_new_tokens=ctx.config.eval.max_new_tokens,
                chat_template=ctx.config.model.chat_template, progress=ctx.progress_label(r, f"evaluate {name}"))
            atomic_write_text(ctx.round_dir(r) / f"predictions_{name}.jsonl",
                              "".join(json.dumps(p.to_dict()) + "\n" for p in result.predictions))
            row.update({f"accuracy_{name}": result.accuracy, f"n_test_{name}": result.n})
        return row

    def batch_composition(self, r: int) -> dict:
        """Round r's batch against the unlabelled pool it was drawn from
        (:func:`~activelora.probes.composition.batch_composition`)."""
        from ...probes.composition import answer_tokens, batch_composition

        ctx = self.ctx
        if self._answer_tokens is None:
            self._answer_tokens = answer_tokens(ctx.tokenizer, ctx.data.task)
        earlier = {i for record in ctx.state.rounds[:r] for i in record.ids}
        labels = ctx.state.training_labels()
        batch = [replace(ctx.pool_by_id[i], answer=labels[i]) for i in ctx.state.rounds[r].ids if i in labels]
        pool = [ex for ex in ctx.data.pool if ex.id not in earlier]
        return batch_composition(batch, pool, self._answer_tokens)

    def rewrite_metrics_log(self) -> None:
        """metrics.jsonl from the per-round files: idempotent, so a resume never duplicates."""
        rows = []
        for record in self.ctx.state.rounds:
            path = self.ctx.round_dir(record.round) / "metrics.json"
            if path.is_file():
                rows.append(json.loads(path.read_text()))
        atomic_write_text(self.ctx.run_dir / METRICS_FILE, "".join(json.dumps(row) + "\n" for row in rows))
