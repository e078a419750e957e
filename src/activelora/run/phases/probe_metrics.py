"""Round metrics measured on the held-out labelled probe set: the uncertainty gap between
the base and the tuned model (Zhang et al. 2024, Sec. 3.1), and post-hoc temperature scaling."""

from __future__ import annotations

import math
from typing import Sequence

from ...data.example import Example
from ..sharded import evaluate_sharded
from ...probes import gap_report
from ..context import RunContext
from ...models.evaluation import EvalResult

GAP_KEYS = ("spearman", "kendall", "auroc_base", "auroc_full")


class ProbeMetrics:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def gap(self, r: int) -> dict:
        """Uncertainty-gap metrics of round r's model on the probe set."""
        from ...uncertainty.scorer import OnePassValues

        ctx = self.ctx
        probe = ctx.data.probe
        measure = self.gap_measure()
        # The probe's answers are generated once: evaluated, and scored from the values
        # recorded while generating them (no second generation, no teacher-forced pass).
        full = evaluate_sharded(ctx.model, ctx.tokenizer, ctx.data.task, probe,
                                batch_size=ctx.config.eval.batch_size, max_new_tokens=ctx.config.eval.max_new_tokens,
                                chat_template=ctx.config.model.chat_template, progress=False,
                                step_values=OnePassValues(measure))
        u_full = self._score(probe, base=False, mc_samples=1, r=r, label="probe", measure=measure,
                             generations=self.reusable_answers(full))
        u_base = self._score(probe, base=True, mc_samples=1, r=r, label="probe base", measure=measure)
        gap = gap_report([s.score for s in u_base], [s.score for s in u_full],
                         [p.correct for p in full.predictions])
        return {f"gap_{k}": gap[k] for k in GAP_KEYS} | {"probe_accuracy": full.accuracy, "gap_measure": measure}

    def gap_measure(self) -> str:
        """The measure both gap terms use: the strategy's, unless it is defined only over
        several MC passes (bald, vote). The base model has no dropout to sample, so those
        would be constant for it; entropy is then used for both sides."""
        from ...uncertainty.measures import MEASURES

        name = self.ctx.needs.measure or self.ctx.config.strategy.measure
        return "entropy" if MEASURES.get(name).mc else name

    def temperature(self, r: int, result: EvalResult) -> dict:
        """Fit T on the probe set; report the test ECE of the answers' confidence before and
        after scaling. The pool is then scored with the same T (the score phase reads it)."""
        from ...probes.calibration import ece
        from ...probes.temperature import fit_logit_temperature

        ctx = self.ctx
        temperature = fit_logit_temperature(ctx.model, ctx.tokenizer, ctx.data.task, ctx.data.probe,
                                            batch_size=ctx.config.score.batch_size,
                                            chat_template=ctx.config.model.chat_template)
        # Greedy answers do not depend on T, so the evaluated answers are rescored (one
        # teacher-forced pass over them, not a second generation).
        scaled = self._score(ctx.data.test, base=False, mc_samples=1, r=r, label="rescale",
                             temperature=temperature, measure="pe", generations=self.reusable_answers(result))
        confidence = [math.exp(-s.score) for s in scaled]
        correct = [p.correct for p in result.predictions]
        return {"temperature": temperature, "ece_temperature_scaled": ece(confidence, correct)}

    def reusable_answers(self, result: EvalResult):
        """The evaluated greedy answers, for a scorer of the same model, when evaluation and
        scoring allow the same answer length (else None: the scorer generates its own)."""
        config, task = self.ctx.config, self.ctx.data.task
        same_length = (config.eval.max_new_tokens or task.max_new_tokens) == (
            config.score.max_new_tokens or task.max_new_tokens)
        return result.generations if same_length and result.generations else None

    def _score(self, examples: Sequence[Example], **kwargs):
        """One scorer call with this run's needs, regime and seeds (:meth:`PoolScorer.score`)."""
        return self.ctx.scorer.score(examples, **kwargs)
