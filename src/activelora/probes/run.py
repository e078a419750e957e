"""One probe of a model on labelled data: calibration of its answers and the uncertainty gap
between the base model (adapter disabled, same weights) and the tuned model."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..config import Config
from ..data.example import Example
from ..errors import ConfigError
from ..models.evaluation import evaluate
from .answer_confidence import answer_calibration, answer_confidences
from .calibration import apply_temperature, calibration_report, ece, fit_temperature
from .gap import gap_report


def _confidences(model, tokenizer, task, examples, config: Config, step_values=None):
    result = evaluate(model, tokenizer, task, examples, batch_size=config.eval.batch_size,
                      max_new_tokens=config.eval.max_new_tokens, chat_template=config.model.chat_template,
                      progress="probe: answers", step_values=step_values)
    return result, [p.confidence for p in result.predictions], [p.correct for p in result.predictions]


BASE_MC_MEASURE = "entropy"


def probe_measures(config: Config) -> tuple[str, str]:
    """(full measure, base measure), checked before any work.

    The full model is scored with ``score.measure`` over ``score.mc_samples`` passes; bald
    and vote need K >= 2. The base model (adapter disabled) has no dropout, so its MC passes
    would be identical: it is scored with one pass, and for a measure that needs K >= 2 with
    ``entropy`` instead (bald of one pass is 0).
    """
    from ..uncertainty.measures import get_measure

    measure = get_measure(config.score.measure)
    k = config.score.mc_samples
    if k < measure.min_samples:
        raise ConfigError(f"score.measure {measure.name!r} needs --mc-samples (score.mc_samples) "
                          f">= {measure.min_samples}, got {k}")
    return measure.name, (BASE_MC_MEASURE if measure.mc else measure.name)


def run_probe(model, tokenizer, task, examples: Sequence[Example], config: Config, *, bins: int = 10,
              calibration_examples: Sequence[Example] | None = None,
              plots_dir: str | Path | None = None) -> tuple[dict, list[dict]]:
    """Returns (report, rows). The report holds the calibration and gap metrics; each row
    ``id, confidence, correct, u_base, u_full`` for one example. ``u_full`` uses
    ``score.measure`` over ``score.mc_samples`` passes, ``u_base`` one pass of
    ``report["base_measure"]`` (see :func:`probe_measures`)."""
    from ..uncertainty import score_pool
    from ..uncertainty.measures import get_measure
    from ..uncertainty.scorer import OnePassValues
    from .plots import plot_confidence_histogram, plot_gap_scatter, plot_reliability

    measure, base_measure = probe_measures(config)
    # The answers are generated once: evaluated, then scored (for one pass, from the values
    # recorded while generating them), when both allow the same answer length.
    spec = get_measure(measure)
    reuse = not spec.needs_sampled_answers and (config.eval.max_new_tokens or task.max_new_tokens) == (
        config.score.max_new_tokens or task.max_new_tokens)
    one_pass = reuse and OnePassValues.applies(spec, config.score.mc_samples, "generated", False)
    result, confidence, correct = _confidences(model, tokenizer, task, examples, config,
                                               step_values=OnePassValues(measure) if one_pass else None)
    common = dict(target="generated", normalize=config.score.normalize,
                  batch_size=config.score.batch_size, max_new_tokens=config.score.max_new_tokens,
                  chat_template=config.model.chat_template)
    u_full = [s.score for s in score_pool(model, tokenizer, task, examples, measure=measure,
                                          mc_samples=config.score.mc_samples, base=False, cache=False,
                                          progress=True, generations=result.generations if reuse else None,
                                          **common)]
    u_base = [s.score for s in score_pool(model, tokenizer, task, examples, measure=base_measure,
                                          mc_samples=1, base=True, cache=True, progress=True, **common)]
    report = {"measure": measure, "base_measure": base_measure, "mc_samples": config.score.mc_samples,
              **calibration_report(confidence, correct, bins=bins), **gap_report(u_base, u_full, correct)}
    if calibration_examples:
        _, cal_conf, cal_correct = _confidences(model, tokenizer, task, calibration_examples, config)
        temperature = fit_temperature(cal_conf, cal_correct)
        report["temperature"] = temperature
        report["calibration_n"] = len(calibration_examples)
        report["ece_temperature_scaled"] = ece(apply_temperature(confidence, temperature), correct, bins=bins)
    answer_conf = answer_confidences(tokenizer, task, result)
    report.update(answer_calibration(answer_conf, correct, bins=bins))
    rows = [{"id": p.id, "confidence": c, "answer_confidence": a, "correct": ok, "u_base": b, "u_full": f}
            for p, c, a, ok, b, f in zip(result.predictions, confidence, answer_conf, correct, u_base, u_full)]
    if plots_dir is not None:
        folder = Path(plots_dir)
        folder.mkdir(parents=True, exist_ok=True)
        plot_reliability(confidence, correct, bins, folder / "reliability.png")
        plot_confidence_histogram(confidence, correct, folder / "confidence.png")
        plot_gap_scatter(u_base, u_full, correct, folder / "gap.png")
    return report, rows
