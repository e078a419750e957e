"""One ``campaign next``: train on every label so far, then choose and write the next batch.

Round ``r`` does, in order (as a round of :class:`activelora.run.loop.ActiveLearningRun`, with a
person instead of the simulated oracle):

1. **train**  a fresh LoRA adapter on every label given so far (none at first: the adapter's
   B matrices are zero, so the model is the base model);
2. **evaluate** on the dev set, when the campaign has one;
3. **stop set**: the model's answers on the fixed stop set, compared with the previous round's
   (Cohen's kappa, :mod:`activelora.campaign.stopping`);
4. **select** the next batch among the examples neither labelled, skipped nor waiting in an
   earlier batch. With no labels yet the batch is a seeded random draw (the loop's initial
   set: an untrained model's uncertainty is what STAR's "uncertainty gap" warns about); then
   the strategy chooses, from exactly what its :class:`~activelora.strategies.Needs` asks for;
5. **suggest**: the model's own answer for each selected example, for the annotator to correct.

Everything is written into the staging folder and becomes real with one state commit (see
:mod:`activelora.campaign.folder`), so a crash leaves the campaign as before or as after.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from ..config import Config
from ..data.example import Example
from ..data.tasks import get_task
from ..models.evaluation import evaluate
from ..models.lora import reset_lora, save_adapter
from ..run.pool_scoring import PoolScorer, run_seed
from ..run.selection_feedback import answer_checks, greedy_answers
from ..atomic_files import atomic_write_json, atomic_write_text
from ..strategies import Needs, PoolView, get_strategy
from ..strategies.regime import TrainingRegime, decide_regime
from ..run.training import train_lora
from .folder import Campaign, pause_point
from .state import CampaignState, now
from .stopping import cohen_kappa

log = logging.getLogger(__name__)

BATCH_CSV_COLUMNS = ("id", "question", "suggestion", "score", "answer", "skip")
def strategy_inputs(model, tokenizer, task, examples: Sequence[Example], needs: Needs, regime: TrainingRegime,
                    config: Config, *, seed: int, r: int, progress: bool, strategy_name: str,
                    labelled: Sequence[Example] = ()) -> dict[str, np.ndarray]:
    """What ``needs`` asks for, for ``examples``: the arrays of a :class:`PoolView`, computed
    by the loop's own scorer (:meth:`activelora.run.pool_scoring.PoolScorer.strategy_inputs`).
    ``labelled``: the examples already asked for, for ``Needs.labelled_embeddings``."""
    scorer = PoolScorer(model, tokenizer, task, config, needs, regime, seed, strategy_name, progress=progress)
    lists = scorer.strategy_inputs(examples, r, labelled=labelled)
    return {key: np.asarray(lists[key], dtype=np.float64)
            for key in ("full_scores", "base_scores", "embeddings", "labelled_embeddings") if key in lists}


def suggestion_feedback(campaign: Campaign, state: CampaignState, labelled: Sequence[Example],
                        task) -> dict[str, np.ndarray]:
    """``Needs.selection_feedback`` in a campaign: each asked example's suggestion (the model's
    answer when its round chose it, kept in ``batches/batch-<n>.jsonl``) checked against the
    label the person gave, and the round that asked it; aligned with ``labelled``."""
    asked_in = {i: record["round"] for record in state.rounds for i in record["ids"]}
    suggestions: dict[str, str] = {}
    for n in sorted({asked_in[ex.id] for ex in labelled if ex.id in asked_in}):
        path = campaign.batch_path(n)
        if path.is_file():
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            suggestions.update({row["id"]: row["suggestion"] for row in rows})
    return {"labelled_correct": answer_checks(task, labelled, suggestions, state.training_labels()),
            "labelled_rounds": np.asarray([asked_in.get(ex.id, -1) for ex in labelled], dtype=np.int64)}


def batch_csv(rows: list[dict[str, Any]]) -> str:
    """The batch as CSV with empty ``answer`` and ``skip`` columns to fill in."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=BATCH_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "score": "" if row["score"] is None else row["score"], "answer": "", "skip": ""})
    return out.getvalue()


@dataclass
class RoundOutcome:
    record: dict[str, Any]
    batch: list[dict[str, Any]]


def run_round(campaign: Campaign, model, tokenizer, *, labelstudio=None, progress: bool = True) -> RoundOutcome:
    """Build round ``len(rounds)`` and commit it (call inside :meth:`Campaign.locked`)."""
    settings = campaign.settings
    config = settings.build_config()
    task = get_task(settings.task)
    strategy = get_strategy(settings.strategy, config.strategy)
    needs = strategy.needs()
    regime = decide_regime(config, strategy)  # how adapters train, which dropout MC samples
    state: CampaignState = campaign.state.copy()
    r = len(state.rounds)
    seed = settings.seed
    pool_by_id = campaign.pool_by_id
    staging = campaign.staging
    campaign._recover()  # a staging folder without a committed round is a leftover: dropped
    staging.mkdir(parents=True)
    atomic_write_json(staging / "round.json", {"round": r})
    started = time.time()

    # 1. train on every label so far
    labels = state.training_labels()
    reset_lora(model, run_seed(seed, r, salt=1))
    train_info = None
    if labels:
        examples = [replace(pool_by_id[i], answer=a) for i, a in labels.items()]
        result = train_lora(model, tokenizer, task, examples, replace(config.train, seed=run_seed(seed, r, salt=2)),
                            regime.regularization(), chat_template=config.model.chat_template,
                            progress=f"round {r} train" if progress else False)
        save_adapter(model, staging / "adapter")
        train_info = {"examples": result.examples, "steps": result.steps, "final_loss": result.final_loss,
                      "regime": regime.to_dict()}
    model.eval()

    # 2. dev accuracy
    dev_accuracy = None
    if campaign.dev:
        dev = evaluate(model, tokenizer, task, campaign.dev, batch_size=config.eval.batch_size,
                       max_new_tokens=config.eval.max_new_tokens, chat_template=config.model.chat_template,
                       progress=f"round {r} dev" if progress else False)
        dev_accuracy = dev.accuracy
        atomic_write_text(staging / "dev_predictions.jsonl",
                          "".join(json.dumps(p.to_dict()) + "\n" for p in dev.predictions))

    # 3. stabilising predictions on the stop set
    stop_examples = [pool_by_id[i] for i in settings.stop_set]
    stop_texts = greedy_answers(model, tokenizer, task, stop_examples, config, label=f"round {r} stop set",
                                progress=progress)
    stop_answers = [task.extract(text) for text in stop_texts]
    previous = state.rounds[-1].get("stop_answers") if state.rounds else None
    kappa = cohen_kappa(previous, stop_answers) if previous is not None and stop_answers else None
    agreement = (sum(a == b for a, b in zip(previous, stop_answers)) / len(stop_answers)
                 if previous is not None and stop_answers else None)

    # 4. select
    candidates = state.unlabelled(ex.id for ex in campaign.pool)
    asked = len(state.asked_ids())
    stop = settings.stop_settings()
    n = min(settings.batch_size, len(candidates))
    if stop.budget is not None:
        n = max(0, min(n, stop.budget - asked))
    rng = np.random.default_rng([seed, r])
    initial = not labels
    info: dict[str, Any] = {}
    if n == 0:
        ids, scores = [], []
    elif initial:
        selection = get_strategy("random", config.strategy).select(PoolView(ids=candidates, rng=rng, round_index=0), n)
        ids, scores, info = selection.ids, selection.scores, {"initial": True}
    else:
        t = sum(1 for record in state.rounds if not record.get("initial"))
        by_id = [pool_by_id[i] for i in candidates]
        open_ids = set(candidates)
        labelled = [ex for ex in campaign.pool if ex.id not in open_ids] if needs.labelled_embeddings else []
        arrays = {} if strategy.draws_at_random(t) else strategy_inputs(  # a cold start reads no score
            model, tokenizer, task, by_id, needs, regime, config, seed=seed, r=r, progress=progress,
            strategy_name=settings.strategy, labelled=labelled)
        if arrays and needs.selection_feedback:
            arrays.update(suggestion_feedback(campaign, state, labelled, task))
        selection = strategy.select(PoolView(ids=candidates, rng=rng, round_index=t, **arrays), n)
        ids, scores, info = selection.ids, selection.scores, dict(selection.info)
    model.eval()

    # 5. suggestions and the batch files
    chosen = [pool_by_id[i] for i in ids]
    suggestions = greedy_answers(model, tokenizer, task, chosen, config, label=f"round {r} suggest",
                                 progress=progress)
    batch = [{"id": ex.id, "question": ex.question, "suggestion": s, "score": sc}
             for ex, s, sc in zip(chosen, suggestions, scores)]
    if batch:
        atomic_write_text(staging / f"batch-{r}.jsonl",
                          "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in batch))
        atomic_write_text(staging / f"batch-{r}.csv", batch_csv(batch))

    record: dict[str, Any] = {
        "round": r, "at": now(), "strategy": "random" if initial and ids else settings.strategy,
        "initial": initial, "ids": ids, "scores": scores, "lambda": info.get("lambda"), "info": info,
        "trained_on": len(labels), "train": train_info, "dev_accuracy": dev_accuracy,
        "annotation_seconds": state.annotation_seconds(), "asked_before": asked,
        "stop_answers": stop_answers, "stop_kappa": kappa, "stop_agreement": agreement,
        "seconds": round(time.time() - started, 2), "labelstudio_tasks": None,
    }
    if labelstudio is not None and batch:
        pause_point("next:before-push")
        record["labelstudio_tasks"] = labelstudio.push_batch(state, campaign, r, batch)
    pause_point("next:before-commit")
    state.rounds.append(record)
    campaign.commit(state)
    return RoundOutcome(record=record, batch=batch)
