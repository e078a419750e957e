"""The campaign's five actions, as the CLI calls them: init, next, import, status, export.

Each action that changes a campaign holds its lock, works on a copy of the state and commits
it in one atomic replace (see :mod:`activelora.campaign.folder`).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..config import Config
from ..data.example import Example
from ..data.loaders import load_examples
from ..data.tasks import get_task, infer_task
from ..errors import ConfigError, DataError
from ..atomic_files import atomic_write_text
from ..strategies import get_strategy
from ..strategies.regime import decide_regime
from .folder import Campaign, Settings, pause_point
from .importers import AnswerSheet, read_answers, rows_from_labelstudio, sheet_from_records
from .state import ImportReport, now
from .stopping import StopSettings, stop_reasons

log = logging.getLogger(__name__)

DEFAULT_STOP_SET = 32


def init_campaign(folder: str | Path, *, pool_file: str, config: Config, task: str | None = None,
                  dev_file: str | None = None, strategy: str = "star", batch_size: int = 16,
                  budget: int | None = None, target_accuracy: float | None = None,
                  stop_set_size: int | None = None, kappa_threshold: float = 0.99, window: int = 3,
                  seed: int = 0) -> Campaign:
    """Check everything, then create the campaign folder in one step."""
    task_name = task or infer_task(pool_file)
    get_task(task_name)  # an unknown name lists the valid ones
    chosen = get_strategy(strategy, config.strategy)
    needs = chosen.needs()
    if needs.reads_gold:
        raise ConfigError(f"--strategy {strategy}: an oracle reads gold answers, for headroom studies in "
                          "simulation (activelora run) only; a campaign's pool has none")
    if needs.previous_scores:
        raise ConfigError(f"--strategy {strategy}: decides from the previous round's pool scores, which a "
                          "campaign does not keep (use typiclust or star)")
    if needs.trains_on_whole_pool:
        raise ConfigError(f"--strategy {strategy}: labels the whole pool at once; a campaign asks for "
                          "batches (use random for a random order)")
    decide_regime(config, chosen)  # refuses MC dropout passes an adapter would not train with
    notice = chosen.unapplied_switches_notice()
    if notice:
        log.warning(notice)
    if config.score.temperature_scaling:
        raise ConfigError("score.temperature_scaling: needs a labelled probe set, which a campaign does not have")
    if batch_size <= 0:
        raise ConfigError(f"--batch-size must be a positive integer, got {batch_size}")
    if budget is not None and budget <= 0:
        raise ConfigError(f"--budget must be a positive integer, got {budget}")
    if target_accuracy is not None and not 0 <= target_accuracy <= 1:
        raise ConfigError(f"--target-accuracy must be in [0, 1], got {target_accuracy}")
    if not 0 < kappa_threshold <= 1 or window < 1:
        raise ConfigError("--stop-kappa must be in (0, 1] and --stop-window >= 1")

    pool = load_examples(pool_file, question_field="question", answer_field=None, id_field="id")
    pool = [Example(ex.id, ex.question, None) for ex in pool]
    dev: list[Example] = []
    if dev_file:
        dev = load_examples(dev_file, task=task_name, question_field="question", answer_field="answer",
                            id_field="id")
        unlabelled = [ex for ex in dev if ex.answer is None]
        if unlabelled:
            raise DataError(f"{dev_file}: dev row {unlabelled[0].meta.get('where', unlabelled[0].id)} has no answer")
        shared = sorted({ex.id for ex in dev} & {ex.id for ex in pool})
        if shared:
            raise DataError(f"{dev_file}: id {shared[0]!r} is in the pool too ({len(shared)} shared); the dev "
                            "set must be separate from the examples to label")
    size = min(DEFAULT_STOP_SET, len(pool)) if stop_set_size is None else stop_set_size
    if not 0 <= size <= len(pool):
        raise ConfigError(f"--stop-set must be between 0 and the pool size {len(pool)}, got {size}")
    rng = np.random.default_rng(seed)
    ids = sorted(ex.id for ex in pool)
    stop_set = [ids[i] for i in sorted(rng.choice(len(ids), size=size, replace=False))] if size else []
    saved_config = config.to_dict()
    # Recorded as it resolves today, so that a later change of the strategy's default never
    # changes a campaign halfway.
    saved_config["strategy"]["random_share"] = type(chosen).random_share_for(config.strategy)
    settings = Settings(
        id=uuid.uuid4().hex[:12], task=task_name, strategy=strategy, batch_size=batch_size, seed=seed,
        config=saved_config, stop=asdict(StopSettings(budget, target_accuracy, kappa_threshold, window)),
        stop_set=stop_set, pool_source=str(Path(pool_file).absolute()),
        dev_source=str(Path(dev_file).absolute()) if dev_file else None, created=now(),
    )
    return Campaign.create(folder, settings, pool, dev)


def load_campaign_model(campaign: Campaign):
    """The campaign's base model with a LoRA adapter attached."""
    from ..models.loading import load_model
    from ..models.lora import attach_lora

    config = campaign.settings.build_config()
    model, tokenizer = load_model(config.model.name, dtype=config.model.dtype,
                                  trust_remote_code=config.model.trust_remote_code)
    return attach_lora(model, config.lora, seed=0), tokenizer


def next_round(campaign: Campaign, *, labelstudio=None, progress: bool = True,
               load_model: Callable[[Campaign], tuple[Any, Any]] = load_campaign_model):
    """Train on every label, choose the next batch, and (with ``labelstudio``) push it;
    returns the :class:`~activelora.campaign.round.RoundOutcome`."""
    from .round import run_round  # torch and transformers: only the command that trains loads them

    with campaign.locked():
        if labelstudio is not None:
            labelstudio.check()  # fail on a wrong key or a server down before any slow work
            labelstudio.project(campaign, campaign.state.copy())
        model, tokenizer = load_model(campaign)
        return run_round(campaign, model, tokenizer, labelstudio=labelstudio, progress=progress)


def _apply(campaign: Campaign, sheet: AnswerSheet, replace: bool) -> ImportReport:
    state = campaign.state.copy()
    report = state.apply(sheet.rows, source=sheet.source, sha256=sheet.sha256, replace=replace,
                         annotator_conflicts=sheet.annotator_conflicts)
    if report.changed:
        pause_point("import:before-commit")
        campaign.commit(state)
    return report


def import_file(campaign: Campaign, path: str | Path, *, replace: bool = False) -> tuple[ImportReport, AnswerSheet]:
    """Import an answer file or a Label Studio export file, all or nothing."""
    with campaign.locked():
        saved = campaign.state.data.get("labelstudio") or {}
        sheet = read_answers(path, pool=campaign.pool_by_id, task=get_task(campaign.settings.task),
                             campaign_id=campaign.settings.id, project_id=saved.get("project"))
        return _apply(campaign, sheet, replace), sheet


def import_records(campaign: Campaign, records: Iterable[Mapping[str, Any]], *, replace: bool = False,
                   source: str = "records") -> ImportReport:
    """Import answers given in memory (rows as in an answer file), all or nothing."""
    with campaign.locked():
        sheet = sheet_from_records(records, pool=campaign.pool_by_id, task=get_task(campaign.settings.task),
                                   source=source)
        return _apply(campaign, sheet, replace)


def import_labelstudio(campaign: Campaign, labelstudio, *, replace: bool = False) -> tuple[ImportReport, AnswerSheet]:
    """Pull every annotation of the campaign's Label Studio project and import it."""
    with campaign.locked():
        project_id = labelstudio.saved_project(campaign, campaign.state)
        tasks = labelstudio.export(project_id)
        sheet = rows_from_labelstudio(tasks, pool=campaign.pool_by_id, task=get_task(campaign.settings.task),
                                      campaign_id=campaign.settings.id, project_id=project_id,
                                      source=f"{labelstudio.url} project {project_id}")
        return _apply(campaign, sheet, replace), sheet


def status(campaign: Campaign) -> dict[str, Any]:
    """Everything ``campaign status`` shows, as JSON-able data."""
    state, settings = campaign.state, campaign.settings
    stop = settings.stop_settings()
    asked = state.asked_ids()
    rounds = [{k: record.get(k) for k in ("round", "trained_on", "dev_accuracy", "stop_kappa", "stop_agreement",
                                           "annotation_seconds", "strategy", "lambda")}
              | {"batch": len(record["ids"])} for record in state.rounds]
    reasons = stop_reasons(state.rounds, len(asked), stop)
    pool_ids = [ex.id for ex in campaign.pool]
    adapter = campaign.latest_adapter()
    return {
        "folder": str(campaign.folder), "task": settings.task, "strategy": settings.strategy,
        "model": settings.config["model"]["name"], "batch_size": settings.batch_size,
        "pool": len(pool_ids), "labelled": len(state.labels), "skipped": len(state.skipped),
        "pending": len(state.pending_ids()), "not_asked": len(state.unlabelled(pool_ids)),
        "asked": len(asked), "budget": stop.budget, "target_accuracy": stop.target_accuracy,
        "annotation_seconds": state.annotation_seconds(), "replaced": len(state.data["history"]),
        "conflicts": state.data["conflicts"], "rounds": rounds,
        "stop_set": len(settings.stop_set), "stop_kappa_threshold": stop.kappa_threshold, "stop_window": stop.window,
        "stop": reasons, "latest_adapter": str(adapter) if adapter else None,
        "labelstudio": state.data.get("labelstudio"),
    }


def export_labels(campaign: Campaign, out: str | Path) -> int:
    """Every label given, as JSONL rows ``id, question, answer``; returns the count."""
    pool = campaign.pool_by_id
    rows = [json.dumps({"id": i, "question": pool[i].question, "answer": record["answer"]}, ensure_ascii=False) + "\n"
            for i, record in campaign.state.labels.items()]
    atomic_write_text(out, "".join(rows))
    return len(rows)
