"""The active-learning loop: one resumable run per (strategy, seed), a short driver over the
phases of :mod:`activelora.run.phases`.

Round ``r`` of a run (see :mod:`activelora.run.rundir` for the durable state machine):

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
import shutil
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..atomic_files import atomic_write_json, read_jsonl
from ..config import Config
from .experiment_data import ExperimentData
from ..errors import RunStateError
from ..multiprocess.distributed import check_agreement
from ..strategies import get_strategy
from ..strategies.regime import decide_regime
from .context import METRICS_FILE, RunContext
from .oracle import Oracle, SimulatedOracle
from .phases.evaluate import EvaluatePhase
from .phases.label import LabelPhase
from .phases.score import ScorePhase
from .phases.select import SelectPhase
from .phases.train import TrainPhase
from .pool_scoring import PoolScorer
from .rundir import RunState
from .tracking import RunTracker

log = logging.getLogger(__name__)

__all__ = ["ActiveLearningRun", "open_run_state"]


def open_run_state(run_dir: Path, run_config: dict[str, Any], *, restart: bool) -> RunState:
    """The run folder's state for ``run_config``: resumed, created, or (``restart``) started over
    when it cannot resume. Writes ``config.json``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        state = RunState.load_or_create(run_dir, run_config)
    except RunStateError:
        if not restart:
            raise
        # --restart starts over only the runs that cannot resume (changed config or an
        # unreadable state); a run with the same config keeps its labels and resumes.
        shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        state = RunState.load_or_create(run_dir, run_config)
    atomic_write_json(run_dir / "config.json", run_config)
    return state


class ActiveLearningRun:
    """One strategy with one seed, in its own run directory, on a shared loaded model."""

    def __init__(self, config: Config, strategy_name: str, seed: int, run_dir: Path,
                 data: ExperimentData, model: Any, tokenizer: Any, *, oracle: Oracle | None = None,
                 restart: bool = False, progress: bool = True, tracker: RunTracker | None = None):
        strategy = get_strategy(strategy_name, config.strategy)
        needs = strategy.needs()
        # How this run trains and whether MC dropout means anything for it: decided once.
        regime = decide_regime(config, strategy)
        run_config = {**config.to_dict(), "run": {"strategy": strategy_name, "seed": seed,
                                                  "data": data.fingerprint()}}
        # The run folder records the config's cold start with null resolved to the strategy's
        # default, so that a folder written before null meant "the strategy's default" resumes
        # under the same. A variant's pinned value (entropy-cold's 2) follows from run.strategy
        # and is not written here, as before null existed.
        run_config["strategy"]["cold_start_rounds"] = type(strategy).cold_start_rounds_for(config.strategy)
        run_config["strategy"]["random_share"] = type(strategy).random_share_for(config.strategy)
        run_dir = Path(run_dir)
        self.ctx = RunContext(
            config=config, strategy_name=strategy_name, strategy=strategy, needs=needs, regime=regime,
            seed=seed, run_dir=run_dir, data=data, model=model, tokenizer=tokenizer,
            state=open_run_state(run_dir, run_config, restart=restart),
            scorer=PoolScorer(model, tokenizer, data.task, config, needs, regime, seed, strategy_name,
                              progress=progress),
            tracker=tracker or RunTracker.off(),  # --report-to: losses and round metrics
            progress=progress)
        self.select = SelectPhase(self.ctx)
        self.label = LabelPhase(self.ctx, oracle or SimulatedOracle(data.pool))
        self.train = TrainPhase(self.ctx)
        self.evaluate = EvaluatePhase(self.ctx)
        self.score = ScorePhase(self.ctx)
        self.settle_end()

    @property
    def state(self) -> RunState:
        return self.ctx.state

    @property
    def run_dir(self) -> Path:
        return self.ctx.run_dir

    @property
    def max_rounds(self) -> int:
        return 0 if self.ctx.needs.trains_on_whole_pool else self.ctx.config.loop.rounds

    def should_stop(self, r: int, accuracy: float) -> str | None:
        """Why the run ends after round r's evaluation, or None to go on."""
        loop = self.ctx.config.loop
        if r >= self.max_rounds:
            return "rounds"
        if loop.target_accuracy is not None and accuracy >= loop.target_accuracy:
            return "target accuracy"
        if self.ctx.next_batch_size() == 0:
            return "budget" if loop.budget is not None else "pool exhausted"
        return None

    def settle_end(self) -> None:
        """Re-decide, under today's config, whether a run past its last evaluation ends there.

        ``loop.rounds`` and ``loop.target_accuracy`` are left out of the config hash
        (:data:`activelora.run.rundir.IGNORED_CONFIG_KEYS`), so a finished run resumes under a
        new value: asked for more rounds (or a higher target), it is reopened and its curve
        extended, each new round selected from the same state as in a run asked for them from
        the start; asked for fewer, a run still going ends after the last round it evaluated.
        """
        state = self.state
        if state.phase not in ("evaluate", "score", "done"):
            return  # mid-round: its own evaluation decides
        r = state.current_round
        metrics = self.ctx.round_dir(r) / "metrics.json"
        if not metrics.is_file():
            return  # the round's evaluation is not on disk: nothing to decide the end from
        accuracy = json.loads(metrics.read_text())["accuracy"]
        reason = self.should_stop(r, accuracy)
        if state.done and reason is None:
            log.info("%s: reopened after round %d to run up to round %d", self.run_dir, r, self.max_rounds)
            state.reopen()
        elif not state.done and reason is not None:
            log.info("%s: ends after round %d (%s)", self.run_dir, r, reason)
            state.set_phase("done")

    def run(self, bar: tqdm | None = None) -> list[dict]:
        """Run (or resume) to the end; returns the metrics rows. Each phase's outputs are on
        disk before the phase is recorded as done."""
        state, name = self.state, f"{self.ctx.strategy_name} seed {self.ctx.seed}"
        while not state.done:
            step = state.next_step()
            r = state.current_round if step != "select" else len(state.rounds)
            if bar is not None:
                bar.set_postfix_str(f"{name} round {r}: {step}")
            if step == "select":
                ids = self.select.run()  # recorded in state.json by the phase itself
                # Under a launch every process selects from the same gathered scores.
                check_agreement(ids, f"{name}: round {r} selection")
            elif step == "label":
                self.label.run()
                state.set_phase("label")
            elif step == "train":
                self.train.run(r)
                state.set_phase("train")
                if bar is not None:
                    bar.update(1)
            elif step == "evaluate":
                row = self.evaluate.run(r)
                reason = self.should_stop(r, row["accuracy"])
                if reason:
                    log.info("%s: stopping after round %d (%s)", self.run_dir, r, reason)
                state.set_phase("done" if reason else "evaluate")
            elif step == "score":
                self.score.run(r)
                state.set_phase("score")
        return read_jsonl(self.run_dir / METRICS_FILE)
