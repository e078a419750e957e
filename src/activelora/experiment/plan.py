"""What an experiment consists of: its (strategy, seed) runs, where each run's folder is, and
how many rounds each trains. Pure bookkeeping, shared by running here and in workers."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import Config
from ..strategies import get_strategy
from ..strategies.regime import decide_regime

log = logging.getLogger(__name__)


def planned_runs(config: Config) -> list[tuple[str, int]]:
    """Every (strategy, seed) of the experiment, in the order they run with one job."""
    return [(s, seed) for s in config.loop.strategies for seed in config.loop.seeds]


def planned_rounds(config: Config, strategy_name: str) -> int:
    """Rounds a run trains at most: the initial round plus the query rounds (none for passive)."""
    needs = get_strategy(strategy_name, config.strategy).needs()
    return 1 + (0 if needs.trains_on_whole_pool else config.loop.rounds)


def run_folder(output: Path, strategy_name: str, seed: int) -> Path:
    return output / strategy_name / f"seed-{seed}"


def check_strategies(config: Config) -> None:
    """Fail on a bad strategy name or a dropout it cannot use, before anything is loaded."""
    for name in config.loop.strategies:
        decide_regime(config, get_strategy(name, config.strategy))


def warn_unapplied_switches(config: Config) -> None:
    """One warning line per strategy of the experiment that ignores a batch-rule switch the
    config turns on (``strategy.random_share`` beside ``--strategy random``, say), so that a
    switch meant for one strategy is never mistaken for one that changed another."""
    for name in config.loop.strategies:
        notice = get_strategy(name, config.strategy).unapplied_switches_notice()
        if notice:
            log.warning(notice)
