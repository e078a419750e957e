"""Experiment tracking through accelerate's own trackers: ``--report-to tensorboard|wandb|mlflow``.

Off by default. Each (strategy, seed) run is one tracked run, named ``<strategy>/seed-<n>``:

* its config once, as hyperparameters (nested keys flattened to ``train.epochs`` etc.);
* ``train/loss`` at every optimiser step, the step counted across the run's rounds (as the
  Trainer's ``report_to`` counts ``global_step``), and ``train/final_loss`` per round;
* every numeric field of the round's ``metrics.json`` as ``eval/<field>`` with the round as
  the step (``eval/labeled`` gives the labels for a learning curve over labels).

TensorBoard writes event files under ``<output>/tensorboard/<strategy>/seed-<n>/`` and needs
no network. wandb and mlflow read their usual environment (``WANDB_MODE=offline``,
``MLFLOW_TRACKING_URI``, ...). Only the main process of a launch logs. A resumed run logs
the rounds it computes; rounds finished before the interruption were logged then (a round
killed between its metrics file and its log line is not logged again).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError

log = logging.getLogger(__name__)

TRACKERS = ("tensorboard", "wandb", "mlflow")
TENSORBOARD_FOLDER = "tensorboard"
_INSTALL = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def check_report_to(names: Iterable[str] | None) -> tuple[str, ...]:
    """The requested trackers, checked before any work: known names, packages installed."""
    from accelerate.utils import is_mlflow_available, is_tensorboard_available, is_wandb_available

    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available,
                 "mlflow": is_mlflow_available}
    chosen: list[str] = []
    for name in names or ():
        if name == "none":
            continue
        if name not in TRACKERS:
            raise ConfigError(f"--report-to {name}: unknown tracker (valid: {', '.join(TRACKERS)}, none)")
        if not available[name]():
            raise ConfigError(f"--report-to {name}: the {_INSTALL[name]} package is not installed "
                              f"(pip install {_INSTALL[name]})")
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def _hparam(value: Any) -> bool | int | float | str:
    """Trackers take scalars only: lists and None are written as text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    out: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _hparam(value)
    return out


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RunTracker:
    """One run's trackers. With no trackers requested (or on a non-main process) every
    method does nothing, so the loop calls it unconditionally."""

    def __init__(self, report_to: Sequence[str], output: Path, run_name: str, config: Mapping[str, Any]):
        from ..multiprocess.distributed import is_main_process

        self.trackers: list[Any] = []
        if not report_to or not is_main_process():
            return
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS

        experiment = Path(output).resolve().name
        for name in report_to:
            cls = LOGGER_TYPE_TO_CLASS[name]
            if name == "tensorboard":
                tracker = cls(run_name, Path(output) / TENSORBOARD_FOLDER)
            elif name == "wandb":
                tracker = cls(experiment, name=run_name, group=experiment)
            else:  # mlflow
                tracker = cls(experiment_name=experiment, run_name=run_name)
            tracker.start()
            tracker.store_init_configuration(flat_config(config))
            self.trackers.append(tracker)

    @classmethod
    def off(cls) -> "RunTracker":
        """A tracker that logs nothing."""
        return cls((), Path("."), "", {})

    def _log(self, values: dict[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(values, step=step)

    def log_training(self, round_index: int, losses: Sequence[float], first_step: int) -> None:
        """The optimiser steps' losses of one round; ``first_step``: steps in earlier rounds."""
        if not self.trackers:
            return
        for i, loss in enumerate(losses):
            if _numeric(loss):
                self._log({"train/loss": float(loss)}, step=first_step + i + 1)
        if losses and _numeric(losses[-1]):
            self._log({"train/final_loss": float(losses[-1]), "train/steps": len(losses)}, step=round_index)

    def log_round(self, row: Mapping[str, Any]) -> None:
        """A round's metrics row (``metrics.json``): every finite number, at step = round."""
        if not self.trackers:
            return
        values = {f"eval/{k}": float(v) for k, v in row.items() if k not in ("round", "seed") and _numeric(v)}
        self._log(values, step=int(row["round"]))

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.finish()
        self.trackers = []

    def __enter__(self) -> "RunTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
