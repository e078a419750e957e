"""Run an experiment: every (strategy, seed) one after another in this process, or side by
side in worker processes (:mod:`activelora.experiment.workers`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from ..config import Config, resolve_auto
from ..run.experiment_data import load_experiment_data
from ..errors import ConfigError
from ..multiprocess.distributed import is_main_process, process_info
from .baseline import zero_shot_baseline
from .plan import check_strategies, planned_rounds, planned_runs, warn_unapplied_switches
from .runs import load_experiment_model, run_one
from .workers import run_in_workers


def run_experiment(config: Config, output: Path, *, restart: bool = False, progress: bool = True,
                   jobs: int = 1, report_to: Sequence[str] = (), threads: int | None = None) -> dict:
    """Every strategy x seed into ``output/<strategy>/seed-<n>/``; returns {(strategy, seed): rows}.

    ``jobs`` = 1 runs them one after another on one model in this process. ``jobs`` > 1 runs
    them side by side in that many worker processes (:mod:`activelora.experiment.workers`), each
    with its share of the cores (``threads`` each if given, else elastic shares:
    :mod:`activelora.multiprocess.threads`); a run that fails there does not stop the others, and
    :class:`~activelora.experiment.workers.RunsFailedError` lists the failures at the end."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs: must be a positive integer, got {jobs!r}")
    if jobs > 1 and process_info().distributed:
        raise ConfigError(f"--jobs {jobs}: under accelerate launch the processes already share each run; "
                          "use --jobs 1 there, or separate launches per strategy/seed (README: --jobs and "
                          "accelerate launch)")
    if jobs > 1 and report_to:
        raise ConfigError("--report-to works with --jobs 1 for now (one tracker process)")
    config = resolve_auto(config)  # model.dtype=auto recorded as what it means on this machine
    progress = progress and is_main_process()  # one set of progress bars per launch
    check_strategies(config)
    if is_main_process():
        warn_unapplied_switches(config)
    data = load_experiment_data(config)
    output.mkdir(parents=True, exist_ok=True)
    runs = planned_runs(config)
    if jobs > 1:
        return run_in_workers(config, data, output, runs, jobs=jobs, restart=restart, progress=progress,
                              threads=threads)
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
