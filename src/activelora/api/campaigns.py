"""``Campaign``: what ``activelora campaign init|next|import|status|export`` do, from Python.

The same code as the commands (:mod:`activelora.campaign`), so the same guarantees: every
change is committed in one atomic replace under the campaign's lock (nothing is lost or
half-written after a SIGKILL), an import is all or nothing, and each user mistake raises one
exception of :mod:`activelora.errors`: ``ConfigError`` (a bad setting), ``DataError`` (a bad
file or answer row, named with its line), ``RunStateError`` (a folder that is not a campaign,
or not empty), ``UnknownNameError`` (a task or strategy that does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..campaign import workflow
from ..campaign.folder import Campaign as CampaignFolder
from ..config import Config
from ..campaign.state import ImportReport
from .settings import Overrides, load_config


@dataclass(frozen=True)
class Batch:
    """One ``next``: the examples to label now (empty when the campaign asks nothing more)."""

    round: int
    rows: tuple[dict[str, Any], ...]  # id, question, suggestion (the model's answer), score
    jsonl: Path | None  # the batch as files to fill in (None: empty batch)
    csv: Path | None
    trained_on: int  # labels the model was trained on before choosing
    dev_accuracy: float | None

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]


class Campaign:
    """A campaign folder: batches out, answers in. :meth:`init` creates one, the constructor
    opens an existing one."""

    def __init__(self, folder: str | Path):
        self.folder = CampaignFolder.open(folder).folder  # fails here if it is not a campaign

    def _open(self) -> CampaignFolder:
        """The folder as it is now (another process, e.g. the CLI, may have changed it)."""
        return CampaignFolder.open(self.folder)

    @classmethod
    def init(cls, folder: str | Path, pool: str | Path, *, dev: str | Path | None = None, task: str | None = None,
             strategy: str = "star", batch_size: int = 16, budget: int | None = None,
             target_accuracy: float | None = None, stop_set: int | None = None, stop_kappa: float = 0.99,
             stop_window: int = 3, seed: int = 0, model: str | None = None,
             config: Config | str | Path | None = None,
             overrides: Overrides = None) -> Campaign:
        """Create the campaign folder from a JSONL/CSV file of prompts (``question``, optional
        ``id``), checking everything first (``activelora campaign init``). ``model`` and the
        settings come as for :class:`~activelora.api.experiment.Experiment`."""
        settings = load_config(config, overrides)
        if model is not None:
            settings = load_config(settings, {"model.name": model})
        workflow.init_campaign(folder, pool_file=str(pool), config=settings, task=task,
                               dev_file=None if dev is None else str(dev), strategy=strategy, batch_size=batch_size,
                               budget=budget, target_accuracy=target_accuracy, stop_set_size=stop_set,
                               kappa_threshold=stop_kappa, window=stop_window, seed=seed)
        return cls(folder)

    def next_batch(self, *, progress: bool = False) -> Batch:
        """Train on every label so far and choose the next batch (``activelora campaign next``)."""
        campaign = self._open()
        outcome = workflow.next_round(campaign, progress=progress)
        record, r = outcome.record, outcome.record["round"]
        has_files = bool(outcome.batch)
        return Batch(round=r, rows=tuple(outcome.batch),
                     jsonl=campaign.batch_path(r) if has_files else None,
                     csv=campaign.batch_path(r, ".csv") if has_files else None,
                     trained_on=record["trained_on"], dev_accuracy=record["dev_accuracy"])

    def add_labels(self, labels: Mapping[str, str | None] | Iterable[Mapping[str, Any]] | str | Path, *,
                   replace: bool = False) -> ImportReport:
        """Import answers, all or nothing (``activelora campaign import``): an answer file or
        Label Studio export (a path), rows as in an answer file (``{"id", "answer"}`` or
        ``{"id", "skip": True}``), or a mapping ``{id: answer}`` where None means skip. An
        existing label is kept unless ``replace`` (the old one then stays in the history)."""
        if isinstance(labels, (str, Path)):
            report, _ = workflow.import_file(self._open(), labels, replace=replace)
            return report
        if isinstance(labels, Mapping):
            labels = [{"id": i, "skip": True} if a is None else {"id": i, "answer": a} for i, a in labels.items()]
        return workflow.import_records(self._open(), labels, replace=replace)

    def status(self) -> dict[str, Any]:
        """Labels, rounds, dev accuracy, annotation time and the stopping signal
        (``activelora campaign status --json``)."""
        return workflow.status(self._open())

    def export(self, out: str | Path) -> int:
        """Every label given, as JSONL ``id, question, answer``; returns how many."""
        return workflow.export_labels(self._open(), out)
