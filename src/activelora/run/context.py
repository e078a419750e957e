"""What every phase of one run shares: its settings, data, model, folder and durable state.

A phase reads and writes through a :class:`RunContext`; it never reaches into another phase.
The folder's layout (``round-<r>/``, ``metrics.jsonl``) is named here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import Config
from ..data.example import Example
from .experiment_data import ExperimentData
from ..models.lora import load_adapter_weights
from ..strategies import Needs, Strategy
from ..strategies.regime import TrainingRegime
from .pool_scoring import PoolScorer
from .rundir import RunState
from .tracking import RunTracker

METRICS_FILE = "metrics.jsonl"


def round_dir(run_dir: Path, r: int) -> Path:
    return run_dir / f"round-{r}"


@dataclass
class RunContext:
    """One (strategy, seed) run as its phases see it."""

    config: Config
    strategy_name: str
    strategy: Strategy
    needs: Needs
    regime: TrainingRegime  # how this run trains and whether MC dropout means anything for it
    seed: int
    run_dir: Path
    data: ExperimentData
    model: Any
    tokenizer: Any
    state: RunState
    scorer: PoolScorer
    tracker: RunTracker
    progress: bool
    pool_by_id: dict[str, Example] = field(init=False)
    # Which round's adapter the model holds now (None: unknown, e.g. just resumed).
    adapter_round: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.pool_by_id = {ex.id: ex for ex in self.data.pool}

    def round_dir(self, r: int) -> Path:
        return round_dir(self.run_dir, r)

    def progress_label(self, r: int, what: str) -> str | bool:
        """A progress bar's label for round r's ``what``, or False when progress is off."""
        return f"round {r} {what}" if self.progress else False

    def unlabeled_ids(self) -> list[str]:
        taken = set(self.state.selected_ids())
        return [ex.id for ex in self.data.pool if ex.id not in taken]

    def labeled_examples(self) -> list[Example]:
        """Every example labelled so far, with its label as the answer (ignored ones left out)."""
        return [replace(self.pool_by_id[i], answer=a) for i, a in self.state.training_labels().items()]

    def next_batch_size(self) -> int:
        """Labels the next query may buy: query_size, cut to what the budget has left."""
        n = self.config.loop.query_size
        if self.config.loop.budget is not None:
            n = min(n, self.config.loop.budget - len(self.state.selected_ids()))
        return max(0, min(n, len(self.unlabeled_ids())))

    def hold_adapter(self, r: int) -> None:
        """Make the model hold round r's trained adapter (after a resume it may not)."""
        if self.adapter_round != r:
            load_adapter_weights(self.model, self.round_dir(r) / "adapter")
            self.adapter_round = r
