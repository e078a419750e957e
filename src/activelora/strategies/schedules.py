"""λ_t schedules for STAR's dynamic uncertainty (Zhang et al. 2024, Sec. 3.2).

STAR scores ``λ_t·norm(u_base) + (1-λ_t)·norm(u_full)``: early on the LoRA model has seen
few labels and its uncertainty is unreliable, so the base model is trusted first and λ_t
falls over the rounds. ``t`` is the query index: 0 for the first query after the initial
labelled set, then 1, 2, ...

Each entry of :data:`SCHEDULES` is a factory ``StrategyConfig -> (t -> λ_t)``; use
:func:`make_schedule`, which also honours the ``dynamic=False`` ablation.
"""

from __future__ import annotations

import math
import operator
from typing import Callable

from ..config import StrategyConfig
from ..errors import ConfigError
from ..registry import Registry

Schedule = Callable[[int], float]

SCHEDULES: Registry[Callable[[StrategyConfig], Schedule]] = Registry("schedule")


def _check_t(t: int) -> int:
    if isinstance(t, bool):
        raise TypeError(f"query index t must be an integer, got {t!r}")
    t = operator.index(t)  # accepts numpy integers, refuses floats
    if t < 0:
        raise ValueError(f"query index t must be >= 0, got {t}")
    return t


@SCHEDULES.register("linear")
def linear(cfg: StrategyConfig) -> Schedule:
    """``λ_t = max(0, 1 - step·(t+1))``, ``step = cfg.schedule_step`` (default 0.1: 0.9, 0.8, ...).

    The authors' released code (the default here) lowers λ by a fixed step per query.
    """
    step = cfg.schedule_step

    def schedule(t: int) -> float:
        return max(0.0, 1.0 - step * (_check_t(t) + 1))

    return schedule


@SCHEDULES.register("cosine")
def cosine(cfg: StrategyConfig) -> Schedule:
    """``λ_t = 0.5·(1 + cos(π·min(t+1, T)/T))``, ``T = cfg.schedule_rounds``; 0 from t = T-1 on."""
    rounds = cfg.schedule_rounds
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"strategy.schedule_rounds: must be a positive integer, got {rounds!r}")

    def schedule(t: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(_check_t(t) + 1, rounds) / rounds))

    return schedule


@SCHEDULES.register("exponential")
def exponential(cfg: StrategyConfig) -> Schedule:
    """``λ_t = rate^(t+1)``, ``rate = cfg.schedule_rate`` in (0, 1)."""
    rate = cfg.schedule_rate

    def schedule(t: int) -> float:
        return rate ** (_check_t(t) + 1)

    return schedule


@SCHEDULES.register("constant")
def constant(cfg: StrategyConfig) -> Schedule:
    """``λ_t = cfg.constant_lambda`` for every t."""
    value = float(cfg.constant_lambda)

    def schedule(t: int) -> float:
        _check_t(t)
        return value

    return schedule


def make_schedule(cfg: StrategyConfig) -> Schedule:
    """The λ_t schedule named by ``cfg.schedule``.

    With ``cfg.dynamic`` False (the "no dynamic mixing" ablation) λ_t is
    ``cfg.constant_lambda`` whatever ``cfg.schedule`` says. An unknown name raises
    :class:`~activelora.errors.UnknownNameError` listing the valid ones.
    """
    if not cfg.dynamic:
        return constant(cfg)
    return SCHEDULES.get(cfg.schedule)(cfg)
