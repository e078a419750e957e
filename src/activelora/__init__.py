"""activelora: data-efficient LoRA fine-tuning of LLMs with active learning (STAR).

The public API (see docs/api.md) is importable from here; each name loads its module on
first use, so ``import activelora`` stays light (the CLI's start-up does not pay for torch).

Where things live:

- :mod:`activelora.api`           the Python API below, one module per object;
- :mod:`activelora.experiment`    an experiment: plan the (strategy, seed) runs, run them here or
                                  in worker processes (``--jobs``), report;
- :mod:`activelora.run`           one active-learning run: a driver over its phases
                                  (:mod:`activelora.run.phases`: select, label, train, evaluate, score)
                                  and its folder's durable state;
- :mod:`activelora.multiprocess`  one run spread over processes (``accelerate launch``);
- :mod:`activelora.strategies`    how a batch is chosen (and the registry for your own);
- :mod:`activelora.uncertainty`   sequence uncertainty measures and the batched scorer;
- :mod:`activelora.models`        loading, LoRA adapters, generation, precision;
- :mod:`activelora.data`          examples, tasks, loaders and the embedded generators;
- :mod:`activelora.probes`        calibration, uncertainty-gap and batch-composition metrics;
- :mod:`activelora.campaign`      labelling your own data with a person in the loop;
- :mod:`activelora.commands`      the command line (``activelora <command>``), thin over the above;
- :mod:`activelora.atomic_files`  files written whole or not at all, and crash-safe JSON lines.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Experiment": "activelora.api", "ExperimentResult": "activelora.api", "RunResult": "activelora.api",
    "Curve": "activelora.api", "CurvePoint": "activelora.api", "PairedComparison": "activelora.api",
    "Interval": "activelora.api", "Campaign": "activelora.api", "Batch": "activelora.api",
    "score_examples": "activelora.api", "load_config": "activelora.api",
    "Config": "activelora.config",
    "Example": "activelora.data.example",
    "Strategy": "activelora.strategies", "Needs": "activelora.strategies", "PoolView": "activelora.strategies",
    "Selection": "activelora.strategies", "register_strategy": "activelora.strategies",
    "STRATEGIES": "activelora.strategies",
    "ScoredExample": "activelora.uncertainty.scorer",
    "import_plugins": "activelora.registry",
    "ActiveLoraError": "activelora.errors", "ConfigError": "activelora.errors", "DataError": "activelora.errors",
    "UnknownNameError": "activelora.errors", "PoolExhaustedError": "activelora.errors",
    "RunStateError": "activelora.errors", "ModelLoadError": "activelora.errors",
}
_RENAMED = {"register_strategy": "register"}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from .api import (Batch, Campaign, Curve, CurvePoint, Experiment, ExperimentResult, Interval,
                      PairedComparison, RunResult, load_config, score_examples)
    from .config import Config
    from .data.example import Example
    from .errors import (ActiveLoraError, ConfigError, DataError, ModelLoadError, PoolExhaustedError,
                         RunStateError, UnknownNameError)
    from .registry import import_plugins
    from .strategies import STRATEGIES, Needs, PoolView, Selection, Strategy
    from .strategies import register as register_strategy
    from .uncertainty.scorer import ScoredExample


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'activelora' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
