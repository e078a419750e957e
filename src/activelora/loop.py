"""The active-learning loop: one resumable run per (strategy, seed).

Round ``r`` of a run (see :mod:`activelora.rundir` for the durable state machine):

1. **select**  the batch: round 0 is the seeded random initial set (the whole pool for
   passive learning); later rounds ask the strategy, from the scores of step 5 before;
2. **label**   the batch through the oracle (the simulation reveals the gold answers);
3. **train**   LoRA on every label so far: a fresh adapter each round (cold start, as in
   the paper) or the previous one (warm start);
4. **evaluate** on the test split: accuracy, calibration; gap metrics on the probe set;
5. **score**   the unlabelled pool with what the strategy declared it needs.

Every step writes its outputs atomically and then records itself in ``state.json``, so
re-running the same command after a crash (even SIGKILL) continues after the last
completed step with the same selections. The loop never looks at a strategy's type: it
computes what ``Strategy.needs()`` asks for.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from .config import Config
from .data.example import Example
from .distributed import check_agreement, is_main_process, main_only, open_mirrored, process_info
from .errors import ConfigError, PoolExhaustedError, RunStateError
from .evaluation import EvalResult
from .models.lora import load_adapter_weights, reset_lora, save_adapter
from .oracle import Oracle, SimulatedOracle
from .pool_scoring import PoolScorer, run_seed
from .probes import calibration_report, gap_report
from .probes.answer_confidence import answer_calibration, answer_confidences
from .rundir import RunState, atomic_write_json, atomic_write_text, read_jsonl
from .sharded import evaluate_sharded
from .tracking import RunTracker
from .strategies import Needs, PoolView, Strategy, get_strategy
from .strategies.regime import TrainingRegime, decide_regime
from .training import Regularization, train_lora

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class ExperimentData:
    """The three disjoint example sets of an experiment."""

    task: object
    pool: list[Example]  # unlabelled pool (answers hidden behind the oracle)
    test: list[Example]  # evaluation split
    probe: list[Example]  # held-out labelled probe for the uncertainty-gap metrics

    def fingerprint(self) -> dict:
        return {"pool": len(self.pool), "test": len(self.test), "probe": len(self.probe)}


def round_dir(run_dir: Path, r: int) -> Path:
    return run_dir / f"round-{r}"


class ActiveLearningRun:
    """One strategy with one seed, in its own run directory, on a shared loaded model."""

    def __init__(self, config: Config, strategy_name: str, seed: int, run_dir: Path,
                 data: ExperimentData, model, tokenizer, *, oracle: Oracle | None = None,
                 restart: bool = False, progress: bool = True, tracker: RunTracker | None = None):
        self.config = config
        self.strategy: Strategy = get_strategy(strategy_name, config.strategy)
        self.strategy_name = strategy_name
        self.needs: Needs = self.strategy.needs()
        # How this run trains and whether MC dropout means anything for it: decided once.
        self.regime: TrainingRegime = decide_regime(config, self.strategy)
        self.seed = seed
        self.run_dir = Path(run_dir)
        self.data = data
        self.model = model
        self.tokenizer = tokenizer
        self.oracle = oracle or SimulatedOracle(data.pool)
        self.progress = progress
        self.tracker = tracker or RunTracker.off()  # --report-to: losses and round metrics
        self.scorer = PoolScorer(model, tokenizer, data.task, config, self.needs, self.regime, seed,
                                 strategy_name, progress=progress)
        self.pool_by_id = {ex.id: ex for ex in data.pool}
        self._adapter_round: int | None = None  # which round's adapter the model holds now
        self._answer_tokens = None  # example -> gold answer length in tokens, built on first use
        run_config = {**config.to_dict(), "run": {"strategy": strategy_name, "seed": seed,
                                                  "data": data.fingerprint()}}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.state = RunState.load_or_create(self.run_dir, run_config)
        except RunStateError:
            if not restart:
                raise
            # --restart starts over only the runs that cannot resume (changed config or an
            # unreadable state); a run with the same config keeps its labels and resumes.
            shutil.rmtree(self.run_dir)
            self.run_dir.mkdir(parents=True)
            self.state = RunState.load_or_create(self.run_dir, run_config)
        atomic_write_json(self.run_dir / "config.json", run_config)

    # ------------------------------------------------------------------ plan

    @property
    def max_rounds(self) -> int:
        return 0 if self.needs.trains_on_whole_pool else self.config.loop.rounds

    def regularization(self) -> Regularization:
        """What this run's adapters train with: :func:`~activelora.strategies.regime.decide_regime`."""
        return self.regime.regularization()

    def unlabeled_ids(self) -> list[str]:
        taken = set(self.state.selected_ids())
        return [ex.id for ex in self.data.pool if ex.id not in taken]

    def next_batch_size(self) -> int:
        """Labels the next query may buy: query_size, cut to what the budget has left."""
        n = self.config.loop.query_size
        if self.config.loop.budget is not None:
            n = min(n, self.config.loop.budget - len(self.state.selected_ids()))
        return max(0, min(n, len(self.unlabeled_ids())))

    def should_stop(self, r: int, accuracy: float) -> str | None:
        loop = self.config.loop
        if r >= self.max_rounds:
            return "rounds"
        if loop.target_accuracy is not None and accuracy >= loop.target_accuracy:
            return "target accuracy"
        if self.next_batch_size() == 0:
            return "budget" if loop.budget is not None else "pool exhausted"
        return None

    # ------------------------------------------------------------------ steps

    def step_select(self) -> None:
        r = len(self.state.rounds)
        rng = np.random.default_rng([self.seed, r])
        ids = self.unlabeled_ids()
        if r == 0:
            n = len(ids) if self.needs.trains_on_whole_pool else self.config.loop.initial
            if n > len(ids):
                raise PoolExhaustedError(n, len(ids), where="pool for the initial labelled set")
            chooser = self.strategy if self.needs.trains_on_whole_pool else get_strategy("random", self.config.strategy)
            selection = chooser.select(PoolView(ids=ids, rng=rng, round_index=0), n)
            selection.info = {"initial": True, **selection.info}
        else:
            pool = self._load_pool_view(r - 1, rng)
            selection = self.strategy.select(pool, self.next_batch_size())
        lam = selection.info.get("lambda")
        atomic_write_json(round_dir(self.run_dir, r) / "selection.json", {
            "round": r, "strategy": self.strategy_name, "ids": selection.ids,
            "scores": selection.scores, "lambda": lam, "info": selection.info,
        })
        self.state.add_round(selection.ids, selection.scores, lambda_=lam, info=selection.info)

    def step_label(self) -> None:
        pending = self.state.pending_label_ids()
        labels = self.oracle.label(pending)
        # An id the oracle leaves out is recorded as "ignored" (None): it leaves the pool.
        self.state.add_labels({i: labels.get(i) for i in pending})
        self.state.set_phase("label")

    def labeled_examples(self) -> list[Example]:
        return [replace(self.pool_by_id[i], answer=a) for i, a in self.state.training_labels().items()]

    def step_train(self, r: int) -> None:
        examples = self.labeled_examples()
        folder = round_dir(self.run_dir, r)
        if self.config.loop.warm_start and r > 0:
            load_adapter_weights(self.model, folder.parent / f"round-{r - 1}" / "adapter")
        else:
            reset_lora(self.model, run_seed(self.seed, r, salt=1))
        train_cfg = replace(self.config.train, seed=run_seed(self.seed, r, salt=2))
        started = time.time()
        result = train_lora(self.model, self.tokenizer, self.data.task, examples, train_cfg,
                            self.regularization(), chat_template=self.config.model.chat_template,
                            progress=f"round {r} train" if self.progress else False)
        adapter = folder / "adapter"
        if adapter.exists():
            shutil.rmtree(adapter)
        staging = folder / ".adapter.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        save_adapter(self.model, staging)
        staging.rename(adapter)
        self.tracker.log_training(r, result.losses, first_step=self._optimizer_steps_before(r))
        atomic_write_json(folder / "train.json", {
            "examples": result.examples, "steps": result.steps, "final_loss": result.final_loss,
            "seconds": round(time.time() - started, 2), "regularization": self.regime.to_dict(),
        })
        self.state.set_phase("train")

    def _ensure_adapter(self, r: int) -> None:
        """After a resume, the model must hold round r's trained adapter."""
        if self._adapter_round != r:
            load_adapter_weights(self.model, round_dir(self.run_dir, r) / "adapter")
            self._adapter_round = r

    def temperature(self, r: int) -> float:
        """Round r's fitted logit temperature (1 when temperature scaling is off)."""
        path = round_dir(self.run_dir, r) / "metrics.json"
        if not self.config.score.temperature_scaling or not path.is_file():
            return 1.0
        return float(json.loads(path.read_text()).get("temperature") or 1.0)

    def _score(self, examples: Sequence[Example], **kwargs):
        """One scorer call with this run's needs, regime and seeds (:meth:`PoolScorer.score`)."""
        return self.scorer.score(examples, **kwargs)

    def _reusable_answers(self, result: EvalResult):
        """The evaluated greedy answers, for a scorer of the same model, when evaluation and
        scoring allow the same answer length (else None: the scorer generates its own)."""
        same_length = (self.config.eval.max_new_tokens or self.data.task.max_new_tokens) == (
            self.config.score.max_new_tokens or self.data.task.max_new_tokens)
        return result.generations if same_length and result.generations else None

    def step_evaluate(self, r: int) -> dict:
        self._ensure_adapter(r)
        folder = round_dir(self.run_dir, r)
        started = time.time()
        result: EvalResult = evaluate_sharded(
            self.model, self.tokenizer, self.data.task, self.data.test,
            batch_size=self.config.eval.batch_size, max_new_tokens=self.config.eval.max_new_tokens,
            chat_template=self.config.model.chat_template,
            progress=f"round {r} evaluate" if self.progress else False)
        answer_conf = answer_confidences(self.tokenizer, self.data.task, result)
        atomic_write_text(folder / "predictions.jsonl", "".join(
            json.dumps({**p.to_dict(), "answer_confidence": a}) + "\n" for p, a in zip(result.predictions, answer_conf)))
        record = self.state.rounds[r]
        row = {
            "round": r, "labeled": len(self.state.training_labels()), "accuracy": result.accuracy,
            "n_test": result.n, "strategy": self.strategy_name, "seed": self.seed,
            "lambda": record.lambda_,
            "train_loss": json.loads((folder / "train.json").read_text()).get("final_loss"),
        }
        calib = calibration_report([p.confidence for p in result.predictions],
                                   [p.correct for p in result.predictions])
        row.update({k: calib[k] for k in ("ece", "ece_equal_mass", "mce", "brier", "nll", "mean_confidence")})
        # Beside the sequence ECE: the ECE of p(final answer | own worked solution).
        row.update(answer_calibration(answer_conf, [p.correct for p in result.predictions]))
        if self.data.probe:
            row.update(self.probe_gap(r))
            if self.config.score.temperature_scaling:
                row.update(self.fit_temperature(r, result))
        row.update(self.batch_composition(r))
        row["eval_seconds"] = round(time.time() - started, 2)
        atomic_write_json(folder / "metrics.json", row)
        self._rewrite_metrics_log()
        self.tracker.log_round(row)
        return row

    def _optimizer_steps_before(self, r: int) -> int:
        """Optimiser steps of rounds 0..r-1 (the tracker counts steps across rounds)."""
        files = (round_dir(self.run_dir, k) / "train.json" for k in range(r))
        return sum(json.loads(f.read_text()).get("steps", 0) for f in files if f.is_file())

    def batch_composition(self, r: int) -> dict:
        """Round r's batch against the unlabelled pool it was drawn from
        (:func:`~activelora.composition.batch_composition`)."""
        from .composition import answer_tokens, batch_composition

        if self._answer_tokens is None:
            self._answer_tokens = answer_tokens(self.tokenizer, self.data.task)
        earlier = {i for record in self.state.rounds[:r] for i in record.ids}
        labels = self.state.training_labels()
        batch = [replace(self.pool_by_id[i], answer=labels[i]) for i in self.state.rounds[r].ids if i in labels]
        pool = [ex for ex in self.data.pool if ex.id not in earlier]
        return batch_composition(batch, pool, self._answer_tokens)

    def probe_gap(self, r: int) -> dict:
        """Uncertainty-gap metrics of round r's model on the held-out labelled probe set."""
        from .uncertainty.scorer import OnePassValues

        probe = self.data.probe
        measure = self.gap_measure()
        # The probe's answers are generated once: evaluated, and scored from the values
        # recorded while generating them (no second generation, no teacher-forced pass).
        full = evaluate_sharded(self.model, self.tokenizer, self.data.task, probe,
                        batch_size=self.config.eval.batch_size, max_new_tokens=self.config.eval.max_new_tokens,
                        chat_template=self.config.model.chat_template, progress=False,
                        step_values=OnePassValues(measure))
        u_full = self._score(probe, base=False, mc_samples=1, r=r, label="probe", measure=measure,
                             generations=self._reusable_answers(full))
        u_base = self._score(probe, base=True, mc_samples=1, r=r, label="probe base", measure=measure)
        gap = gap_report([s.score for s in u_base], [s.score for s in u_full],
                         [p.correct for p in full.predictions])
        return {f"gap_{k}": gap[k] for k in ("spearman", "kendall", "auroc_base", "auroc_full")} | {
            "probe_accuracy": full.accuracy, "gap_measure": measure}

    def gap_measure(self) -> str:
        """The measure both gap terms use: the strategy's, unless it is defined only over
        several MC passes (bald, vote). The base model has no dropout to sample, so those
        would be constant for it; entropy is then used for both sides."""
        from .uncertainty.measures import MEASURES

        name = self.needs.measure or self.config.strategy.measure
        return "entropy" if MEASURES.get(name).mc else name

    def fit_temperature(self, r: int, result: EvalResult) -> dict:
        """Fit T on the probe set; report the test ECE of the answers' confidence before and
        after scaling. The pool is then scored with the same T (see :meth:`step_score`)."""
        from .probes.calibration import ece
        from .probes.temperature import fit_logit_temperature

        temperature = fit_logit_temperature(self.model, self.tokenizer, self.data.task, self.data.probe,
                                            batch_size=self.config.score.batch_size,
                                            chat_template=self.config.model.chat_template)
        # Greedy answers do not depend on T, so the evaluated answers are rescored (one
        # teacher-forced pass over them, not a second generation).
        scaled = self._score(self.data.test, base=False, mc_samples=1, r=r, label="rescale",
                             temperature=temperature, measure="pe", generations=self._reusable_answers(result))
        confidence = [math.exp(-s.score) for s in scaled]
        correct = [p.correct for p in result.predictions]
        return {"temperature": temperature, "ece_temperature_scaled": ece(confidence, correct)}

    def _rewrite_metrics_log(self) -> None:
        """metrics.jsonl from the per-round files: idempotent, so a resume never duplicates."""
        rows = []
        for record in self.state.rounds:
            path = round_dir(self.run_dir, record.round) / "metrics.json"
            if path.is_file():
                rows.append(json.loads(path.read_text()))
        atomic_write_text(self.run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows))

    def step_score(self, r: int) -> None:
        """Score the unlabelled pool for the next selection and keep the scores on disk."""
        self._ensure_adapter(r)
        started = time.time()
        ids = self.unlabeled_ids()
        examples = [self.pool_by_id[i] for i in ids]
        if self.strategy.draws_at_random(r):  # a cold-start query: its scores would go unread
            out = {"ids": ids, "cold_start": True}
        else:
            out = {"ids": ids, **self.scorer.strategy_inputs(examples, r, temperature=self.temperature(r))}
        out["seconds"] = round(time.time() - started, 2)  # where a round's time goes (with train.json, metrics)
        atomic_write_json(round_dir(self.run_dir, r) / "pool_scores.json", out)
        self.state.set_phase("score")

    def _load_pool_view(self, r: int, rng: np.random.Generator) -> PoolView:
        saved = json.loads((round_dir(self.run_dir, r) / "pool_scores.json").read_text())
        ids = saved["ids"]
        if ids != self.unlabeled_ids():  # pragma: no cover - guarded by the state machine
            raise ConfigError(f"{self.run_dir}: saved pool scores do not match the unlabelled pool")
        arrays = {k: np.asarray(saved[k], dtype=np.float64) for k in ("full_scores", "base_scores", "embeddings")
                  if k in saved}
        return PoolView(ids=ids, rng=rng, round_index=r, **arrays)

    # ------------------------------------------------------------------ driver

    def run(self, bar: tqdm | None = None) -> list[dict]:
        """Run (or resume) to the end; returns the metrics rows."""
        state = self.state
        while not state.done:
            step = state.next_step()
            r = state.current_round if step != "select" else len(state.rounds)
            if bar is not None:
                bar.set_postfix_str(f"{self.strategy_name} seed {self.seed} round {r}: {step}")
            if step == "select":
                self.step_select()
                # Under a launch every process selects from the same gathered scores.
                check_agreement(state.rounds[-1].ids, f"{self.strategy_name} seed {self.seed}: round {r} selection")
            elif step == "label":
                self.step_label()
            elif step == "train":
                self.step_train(r)
                self._adapter_round = r
                if bar is not None:
                    bar.update(1)
            elif step == "evaluate":
                row = self.step_evaluate(r)
                reason = self.should_stop(r, row["accuracy"])
                if reason:
                    log.info("%s: stopping after round %d (%s)", self.run_dir, r, reason)
                    state.set_phase("done")
                else:
                    state.set_phase("evaluate")
            elif step == "score":
                self.step_score(r)
        return read_jsonl(self.run_dir / METRICS_FILE)


# ---------------------------------------------------------------------- experiments


def load_experiment_data(config: Config) -> ExperimentData:
    """Pool, test and probe sets. The probe comes from the train split, before the pool,
    so it is never labelled or selected. A single file (no splits) is split here: test rows
    first, then probe and pool from the rest."""
    from .data.loaders import load_examples
    from .data.tasks import get_task, infer_task

    task_name = config.data.task or infer_task(config.data.source)
    task = get_task(task_name)
    loop = config.loop
    pool_limit = loop.pool_limit if loop.pool_limit is not None else config.data.limit
    wanted = None if pool_limit is None else pool_limit + loop.probe_size
    common = dict(task=task_name, question_field=config.data.question_field,
                  answer_field=config.data.answer_field, id_field=config.data.id_field, seed=config.data.seed)
    test_limit = loop.test_limit or config.data.test_limit
    test = load_examples(config.data.source, config.data.test_split, limit=test_limit, **common)
    if Path(config.data.source).expanduser().is_file():
        # One file holds every split: its first test_limit rows are the test set and the pool
        # comes from the rows after them, so the model is never judged on what it trained on.
        if test_limit is None:
            raise ConfigError(f"data.source {config.data.source}: one file holds both splits; set "
                              "loop.test_limit to hold out that many rows as the test set")
        rows = load_examples(config.data.source, config.data.train_split,
                             limit=None if wanted is None else wanted + len(test), **common)
        held_out = {ex.id for ex in test}
        train = [ex for ex in rows if ex.id not in held_out]
        log.info("%s: test = its first %d rows, pool and probe from the %d after them",
                 config.data.source, len(test), len(train))
    else:
        train = load_examples(config.data.source, config.data.train_split, limit=wanted, **common)
    probe, pool = train[:loop.probe_size], train[loop.probe_size:]
    # Passive learning labels whatever the pool holds; every other strategy starts from
    # loop.initial random labels.
    needed = max(1 if get_strategy(name, config.strategy).needs().trains_on_whole_pool else loop.initial
                 for name in loop.strategies)
    if len(pool) < needed:
        raise PoolExhaustedError(needed, len(pool), where=f"pool from {config.data.source}")
    return ExperimentData(task=task, pool=pool, test=test, probe=probe)


def zero_shot_key(config: Config, data: ExperimentData) -> dict:
    """What the zero-shot accuracy depends on; a saved record with another key is stale."""
    return {"model": config.model.name, "data": config.data.source, "test_ids": [ex.id for ex in data.test],
            "max_new_tokens": config.eval.max_new_tokens, "chat_template": config.model.chat_template}


def saved_zero_shot(config: Config, data: ExperimentData, output: Path) -> dict | None:
    """The saved zero-shot record of ``output`` if it is still valid for this config, else None."""
    from .report import ZERO_SHOT_FILE

    path = output / ZERO_SHOT_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == zero_shot_key(config, data):
            return saved
    return None


def zero_shot_baseline(config: Config, data: ExperimentData, model, tokenizer, output: Path, *,
                       progress: bool = True) -> dict:
    """The base model's test accuracy with no labels at all (adapter disabled): the point a
    learning curve should rise from. Computed once per experiment folder and kept in
    ``zero_shot.json``, keyed by what it depends on."""
    from .models.lora import adapter_disabled
    from .report import ZERO_SHOT_FILE

    # The main process decides (its folder is the one written), the others follow.
    saved = main_only(lambda: saved_zero_shot(config, data, output), "read zero_shot.json")
    if saved is not None:
        return saved
    with adapter_disabled(model):
        result = evaluate_sharded(model, tokenizer, data.task, data.test, batch_size=config.eval.batch_size,
                          max_new_tokens=config.eval.max_new_tokens, chat_template=config.model.chat_template,
                          progress="zero-shot evaluate" if progress else False)
    record = {"accuracy": result.accuracy, "n": result.n, "key": zero_shot_key(config, data)}
    if is_main_process():
        atomic_write_json(output / ZERO_SHOT_FILE, record)
    return record


def planned_runs(config: Config) -> list[tuple[str, int]]:
    """Every (strategy, seed) of the experiment, in the order they run with one job."""
    return [(s, seed) for s in config.loop.strategies for seed in config.loop.seeds]


def planned_rounds(config: Config, strategy_name: str) -> int:
    """Rounds a run trains at most: the initial round plus the query rounds (none for passive)."""
    needs = get_strategy(strategy_name, config.strategy).needs()
    return 1 + (0 if needs.trains_on_whole_pool else config.loop.rounds)


def run_folder(output: Path, strategy_name: str, seed: int) -> Path:
    return output / strategy_name / f"seed-{seed}"


def load_experiment_model(config: Config):
    """``(model, tokenizer)``: the configured base model with a LoRA adapter attached, on
    which every run of the experiment trains its own adapters one after another."""
    from .models.loading import load_model
    from .models.lora import attach_lora

    model, tokenizer = load_model(config.model.name, dtype=config.model.dtype,
                                  trust_remote_code=config.model.trust_remote_code)
    return attach_lora(model, config.lora, seed=0), tokenizer


def run_one(config: Config, data: ExperimentData, model, tokenizer, output: Path, strategy_name: str,
            seed: int, *, restart: bool = False, progress: bool = True, bar=None,
            report_to: Sequence[str] = ()) -> list[dict]:
    """Run (or resume) one (strategy, seed) on an already loaded model; returns its metrics
    rows. ``bar`` is anything with tqdm's ``update(n)`` and ``set_postfix_str(text)``: it
    first advances by the rounds already done, then by one per trained round."""
    # Under a launch only the main process writes the run folder; the others keep a private
    # copy of it, advanced by the same steps (activelora.distributed.open_mirrored).
    tracker = RunTracker(report_to, output, f"{strategy_name}/seed-{seed}", config.to_dict())
    with tracker:
        run = open_mirrored(lambda folder: ActiveLearningRun(config, strategy_name, seed, folder, data, model, tokenizer,
                                                             restart=restart, progress=progress, tracker=tracker),
                            run_folder(output, strategy_name, seed))
        if bar is not None:
            done_rounds = sum(1 for rec in run.state.rounds if rec.phase in ("train", "evaluate", "score"))
            if run.state.done:
                done_rounds = len(run.state.rounds)
            bar.update(min(done_rounds, planned_rounds(config, strategy_name)))
        return run.run(bar)


def check_strategies(config: Config) -> None:
    """Fail on a bad strategy name or a dropout it cannot use, before anything is loaded."""
    for name in config.loop.strategies:
        decide_regime(config, get_strategy(name, config.strategy))


def run_experiment(config: Config, output: Path, *, restart: bool = False, progress: bool = True,
                   jobs: int = 1, report_to: Sequence[str] = ()) -> dict:
    """Every strategy x seed into ``output/<strategy>/seed-<n>/``; returns {(strategy, seed): rows}.

    ``jobs`` = 1 runs them one after another on one model in this process. ``jobs`` > 1 runs
    them side by side in that many worker processes (:mod:`activelora.parallel_runs`), each
    with its share of the cores; a run that fails there does not stop the others, and
    :class:`~activelora.parallel_runs.RunsFailedError` lists the failures at the end."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs: must be a positive integer, got {jobs!r}")
    if jobs > 1 and process_info().distributed:
        raise ConfigError(f"--jobs {jobs}: under accelerate launch the processes already share each run; "
                          "use --jobs 1 there, or separate launches per strategy/seed (README: --jobs and "
                          "accelerate launch)")
    if jobs > 1 and report_to:
        raise ConfigError("--report-to works with --jobs 1 for now (one tracker process)")
    progress = progress and is_main_process()  # one set of progress bars per launch
    check_strategies(config)
    data = load_experiment_data(config)
    output.mkdir(parents=True, exist_ok=True)
    runs = planned_runs(config)
    if jobs > 1:
        from .parallel_runs import run_in_workers

        return run_in_workers(config, data, output, runs, jobs=jobs, restart=restart, progress=progress)
    model, tokenizer = load_experiment_model(config)
    zero_shot_baseline(config, data, model, tokenizer, output, progress=progress)
    total = sum(planned_rounds(config, s) for s, _ in runs)
    results = {}
    with tqdm(total=total, desc="experiment", unit="round", disable=not progress) as bar:
        for strategy_name, seed in runs:
            results[(strategy_name, seed)] = run_one(config, data, model, tokenizer, output, strategy_name, seed,
                                                     restart=restart, progress=progress, bar=bar,
                                                     report_to=report_to)
    return results
