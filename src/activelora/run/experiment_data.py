"""The three disjoint example sets of an experiment (pool, test, probe), loaded once and shared
by every run of it.

The probe comes from the train split, before the pool, so it is never labelled or selected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, PoolExhaustedError
from ..strategies import get_strategy
from ..data.example import Example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentData:
    """The three disjoint example sets of an experiment."""

    task: object
    pool: list[Example]  # unlabelled pool (answers hidden behind the oracle)
    test: list[Example]  # evaluation split
    probe: list[Example]  # held-out labelled probe for the uncertainty-gap metrics
    # More test sets the task declares (Task.extra_test_splits), evaluated beside ``test``
    # every round and reported as ``accuracy_<name>``: name -> examples.
    extra_tests: dict[str, list[Example]] = field(default_factory=dict)

    def fingerprint(self) -> dict:
        sizes = {"pool": len(self.pool), "test": len(self.test), "probe": len(self.probe)}
        if self.extra_tests:  # absent otherwise, so earlier runs' configs still match
            sizes["extra_tests"] = {name: len(rows) for name, rows in self.extra_tests.items()}
        return sizes


def load_experiment_data(config: Config) -> ExperimentData:
    """Pool, test and probe sets. The probe comes from the train split, before the pool,
    so it is never labelled or selected. A single file (no splits) is split here: test rows
    first, then probe and pool from the rest."""
    from ..data.loaders import GENERATORS, load_examples
    from ..data.tasks import get_task, infer_task

    task_name = config.data.task or infer_task(config.data.source)
    task = get_task(task_name)
    loop = config.loop
    pool_limit = loop.pool_limit if loop.pool_limit is not None else config.data.limit
    wanted = None if pool_limit is None else pool_limit + loop.probe_size
    common = dict(task=task_name, question_field=config.data.question_field,
                  answer_field=config.data.answer_field, id_field=config.data.id_field, seed=config.data.seed)
    test_limit = loop.test_limit or config.data.test_limit
    test = load_examples(config.data.source, config.data.test_split, limit=test_limit, **common)
    if single_file_source(config):
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
    clear = task.dev_clear_of_train_rows.get(config.data.test_split)
    if clear is not None and config.data.source in GENERATORS and len(train) > clear:
        # A dev split is drawn from the train side: only the leading rows are kept apart from it.
        raise ConfigError(f"data.test_split {config.data.test_split!r} of {config.data.source} avoids only the "
                          f"first {clear} train rows, but the probe and pool take {len(train)}; set "
                          f"loop.pool_limit to at most {clear - loop.probe_size}")
    probe, pool = train[:loop.probe_size], train[loop.probe_size:]
    # Passive learning labels whatever the pool holds; every other strategy starts from
    # loop.initial random labels.
    needed = max(1 if get_strategy(name, config.strategy).needs().trains_on_whole_pool else loop.initial
                 for name in loop.strategies)
    if len(pool) < needed:
        raise PoolExhaustedError(needed, len(pool), where=f"pool from {config.data.source}")
    # The task's extra test sets (splits of the source, as many rows as the main one; mix's
    # generator keeps their items apart from the pool's). A single file has no such splits.
    extra = {} if single_file_source(config) else {
        name: load_examples(config.data.source, split, limit=test_limit, **common)
        for name, split in task.extra_test_splits.get(config.data.test_split, {}).items()}
    return ExperimentData(task=task, pool=pool, test=test, probe=probe, extra_tests=extra)


def single_file_source(config: Config) -> bool:
    """Whether ``data.source`` is one file holding every split (it is split here, by rows)."""
    return Path(config.data.source).expanduser().is_file()
