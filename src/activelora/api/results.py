"""An experiment folder's results as objects: runs, learning curves, the paired comparison
against ``random``. Read from the files the runs wrote (:mod:`activelora.experiment.report`
computes every number; nothing here recomputes one)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..experiment import report


@dataclass(frozen=True)
class RunResult:
    """One (strategy, seed) run: its folder and the metrics row of each round."""

    strategy: str
    seed: int
    folder: Path
    metrics: tuple[dict, ...]

    @property
    def selections(self) -> list[list[str]]:
        """The ids labelled in each round, round 0 (the initial set) first."""
        state = json.loads((self.folder / "state.json").read_text())
        return [record["ids"] for record in state["rounds"]]

    @property
    def labels(self) -> dict[str, str | None]:
        """Every label bought, by id (None: the oracle left it out)."""
        return dict(json.loads((self.folder / "state.json").read_text())["labels"])


@dataclass(frozen=True)
class CurvePoint:
    labels: int  # labelled examples at this round (mean over seeds)
    mean: float | None  # the metric's mean over seeds
    std: float | None  # its standard deviation over seeds (None with one seed)


@dataclass(frozen=True)
class Curve:
    """A strategy's learning curve of one metric (a round counts where every seed reached it)."""

    strategy: str
    metric: str
    points: tuple[CurvePoint, ...]

    @property
    def final(self) -> float | None:
        return self.points[-1].mean if self.points else None

    @property
    def aulc(self) -> float | None:
        """Normalised area under the curve: the mean of the metric over the label range."""
        return report.normalized_aulc([(p.labels, p.mean, p.std) for p in self.points])


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # 95% t-interval over seeds (None with one seed)
    high: float | None


@dataclass(frozen=True)
class PairedComparison:
    """One strategy against the reference (``random``) on the seeds both ran: differences of
    the normalised AULC and of final accuracy, per seed and as a 95% t-interval, and the
    sentence the report prints."""

    strategy: str
    reference: str
    diff_aulc: Interval
    diff_final: Interval
    per_seed: tuple[dict, ...]
    verdict: str


@dataclass(frozen=True)
class ExperimentResult:
    """What an experiment folder holds: :meth:`from_folder` reads any finished one."""

    folder: Path
    runs: tuple[RunResult, ...]
    summary: dict  # what summary.json holds
    table: str  # the learning-curve table report.md starts with

    @classmethod
    def from_folder(cls, folder: str | Path) -> ExperimentResult:
        folder = Path(folder)
        located = report.locate_runs([folder])
        runs = tuple(RunResult(label, seed, run_folder, tuple(rows))
                     for label, seed, rows, run_folder in sorted(located, key=lambda x: (x[0], x[1])))
        summary, table = report.compare([folder])
        return cls(folder=folder, runs=runs, summary=summary, table=table)

    @property
    def strategies(self) -> list[str]:
        return sorted({run.strategy for run in self.runs})

    def run(self, strategy: str, seed: int = 0) -> RunResult:
        for run in self.runs:
            if run.strategy == strategy and run.seed == seed:
                return run
        raise KeyError(f"no run of strategy {strategy!r} with seed {seed} in {self.folder}")

    def curve(self, strategy: str, metric: str = "accuracy") -> Curve:
        """The learning curve of ``metric`` (any per-round metric, e.g. ``ece``) for ``strategy``."""
        seeds = {run.seed: list(run.metrics) for run in self.runs if run.strategy == strategy}
        if not seeds:
            raise KeyError(f"no runs of strategy {strategy!r} in {self.folder} (found: {', '.join(self.strategies)})")
        return Curve(strategy, metric, tuple(CurvePoint(*point) for point in report.curve(seeds, metric)))

    @property
    def curves(self) -> dict[str, Curve]:
        """Accuracy curves, by strategy."""
        return {name: self.curve(name) for name in self.strategies}

    @property
    def paired(self) -> dict[str, PairedComparison]:
        """Every strategy against ``random`` (empty when random did not run)."""
        raw = self.summary.get("paired_against_random", {})
        out = {}
        for name, info in raw.items():
            (verdict,) = report.paired_sentences({name: info})
            out[name] = PairedComparison(strategy=name, reference=report.REFERENCE,
                                         diff_aulc=Interval(*info["diff_aulc"]), diff_final=Interval(*info["diff_final"]),
                                         per_seed=tuple(info["seeds"]), verdict=verdict.removeprefix("- "))
        return out

    @property
    def zero_shot_accuracy(self) -> float | None:
        """The base model's test accuracy with no labels, where the experiment measured it."""
        return report.find_zero_shot([self.folder]).get(self.folder.resolve().name)
