"""``Experiment``: what ``activelora run`` does, from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..config import Config
from .results import ExperimentResult
from .settings import Overrides, load_config


class Experiment:
    """Every (strategy, seed) run of a config, into ``output/<strategy>/seed-<n>/``.

    Built like the CLI's settings: defaults, then ``config`` (a :class:`~activelora.config.Config`
    or the path of a YAML file), then ``overrides`` in the ``--set`` forms (see :func:`load_config`). A folder
    that already holds some of the runs resumes them, as the command does; a run whose config
    changed is refused (:class:`~activelora.errors.RunStateError`) unless ``restart``.
    ``loop.rounds`` and ``loop.target_accuracy`` are not such a change: with more rounds the
    same folder extends its finished runs (:meth:`ActiveLearningRun.settle_end
    <activelora.run.loop.ActiveLearningRun.settle_end>`).
    """

    def __init__(self, config: Config | str | Path | None = None, output: str | Path = "runs/default", *,
                 overrides: Overrides = None, jobs: int = 1, restart: bool = False, progress: bool = False,
                 report_to: Sequence[str] = ()):
        self.config: Config = load_config(config, overrides)
        self.output = Path(output)
        self.jobs = jobs
        self.restart = restart
        self.progress = progress
        self.report_to = tuple(report_to)

    @classmethod
    def from_yaml(cls, path: str | Path, output: str | Path = "runs/default", *, overrides: Overrides = None,
                  **options: Any) -> Experiment:
        """The experiment of a YAML config file (the CLI's ``--config``), with ``overrides``."""
        return cls(path, output, overrides=overrides, **options)

    def run(self) -> ExperimentResult:
        """Run (or resume) every run, write ``report.md``, ``summary.json`` and the plots as
        ``activelora run`` does, and return the results."""
        from ..experiment.report import compare
        from ..experiment.runner import run_experiment
        from ..multiprocess.distributed import is_main_process

        run_experiment(self.config, self.output, restart=self.restart, progress=self.progress, jobs=self.jobs,
                       report_to=self.report_to)
        if is_main_process():
            compare([self.output], self.output)
        return ExperimentResult.from_folder(self.output)

    def results(self) -> ExperimentResult:
        """The results already in the output folder (after :meth:`run`, or a CLI run)."""
        return ExperimentResult.from_folder(self.output)
