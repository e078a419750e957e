"""The built-in strategies: random, passive, naive uncertainty, subtract, STAR and its ablations.

Adding one: subclass :class:`~activelora.strategies.base.Strategy`, set ``name``, write
``needs()`` and ``score()``, decorate with ``@register``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import StrategyConfig
from ..errors import ConfigError
from .base import Needs, PoolView, Selection, Strategy, register
from .normalize import min_max_normalize
from .schedules import make_schedule

UNCERTAINTY_MEASURES = ("entropy", "pe", "lc", "bald", "vote")
# Measures defined over several stochastic passes: with one pass BALD is 0 and every vote
# agrees, so the ranking would be pure tie-breaking.
MC_MEASURES = frozenset({"bald", "vote"})


def _check_mc(strategy: str, measure: str, mc_samples: int) -> None:
    if measure in MC_MEASURES and mc_samples < 2:
        raise ConfigError(
            f"strategy {strategy!r} with measure {measure!r} needs Monte-Carlo dropout: "
            f"set strategy.mc_samples >= 2 and strategy.mc_dropout=true (now {mc_samples} pass)"
        )


@register
class RandomStrategy(Strategy):
    """Uniform sampling without replacement, seeded by ``pool.rng``.

    Scores are i.i.d. U(0, 1) keys; the top n of i.i.d. keys is a uniform n-subset. Keys are
    drawn in sorted-id order so the choice does not depend on the order of the pool list.
    """

    name = "random"
    informative_scores = False

    def needs(self) -> Needs:
        return Needs(b_l2=self.cfg.b_l2)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        keys = np.empty(len(pool.ids))
        keys[np.argsort(np.asarray(pool.ids, dtype=object), kind="stable")] = pool.rng.random(len(pool.ids))
        return keys, {}


@register
class PassiveStrategy(Strategy):
    """Passive learning: label the whole pool and train once (the upper reference).

    It declares ``trains_on_whole_pool``; the loop then calls ``select(pool, len(pool.ids))``
    once and runs no query rounds. Asking for fewer than the whole pool is an error, since
    a subset would silently turn passive into random.
    """

    name = "passive"
    informative_scores = False

    def needs(self) -> Needs:
        return Needs(trains_on_whole_pool=True, b_l2=self.cfg.b_l2)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        return np.zeros(len(pool.ids)), {}

    def select(self, pool: PoolView, n: int) -> Selection:
        n = self.check_n(pool, n)
        if n != len(pool.ids):
            raise ValueError(
                f"strategy 'passive' labels the whole pool at once: select(pool, {len(pool.ids)}), got n={n}"
            )
        return Selection(ids=list(pool.ids), scores=[None] * n, info={"passive": True})


class UncertaintyStrategy(Strategy):
    """Naive uncertainty sampling: top-n by the current LoRA model's uncertainty.

    ``score = u_full``. Entropy, pe and lc use one deterministic pass; BALD and vote use
    ``cfg.mc_samples`` (>= 2) dropout passes. STAR (Zhang et al. 2024, Fig. 1) shows this
    baseline losing to random: the fine-tuned model's uncertainty is poorly calibrated early on.
    """

    measure: str = ""

    def __init__(self, cfg: StrategyConfig):
        super().__init__(cfg)
        self.mc_samples = self.cfg.mc_samples if self.measure in MC_MEASURES and self.cfg.mc_dropout else 1
        _check_mc(self.name, self.measure, self.mc_samples)

    def needs(self) -> Needs:
        return Needs(full_scores=True, mc_samples=self.mc_samples, measure=self.measure,
                     hidden_states=self.diversity, b_l2=self.cfg.b_l2)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        return pool.require("full_scores", self.name), {}


for _measure in UNCERTAINTY_MEASURES:
    register(type(f"{_measure.capitalize()}Strategy", (UncertaintyStrategy,),
                  {"name": _measure, "measure": _measure, "__module__": __name__,
                   "__doc__": f"Naive uncertainty sampling with the {_measure!r} measure."}))


class _MixedStrategy(Strategy):
    """Shared by subtract and STAR: base and full uncertainty under ``cfg.measure``, the full
    one from ``cfg.mc_samples`` dropout passes (one when ``cfg.mc_dropout`` is off)."""

    def __init__(self, cfg: StrategyConfig):
        super().__init__(cfg)
        self.mc_samples = self.cfg.mc_samples if self.cfg.mc_dropout else 1
        _check_mc(self.name, self.cfg.measure, self.mc_samples)

    def _normalized(self, pool: PoolView) -> tuple[np.ndarray, np.ndarray]:
        base = min_max_normalize(pool.require("base_scores", self.name))
        full = min_max_normalize(pool.require("full_scores", self.name))
        return base, full


@register
class SubtractStrategy(_MixedStrategy):
    """``score = norm(u_full) - norm(u_base)``: what fine-tuning made more uncertain.

    Both terms are min-max normalised over the current pool, as in STAR. Raw base and full
    uncertainties live on different scales (the untuned base model's sequence entropies are
    larger and spread wider), so a raw difference would rank almost by ``-u_base`` alone.
    Normalising also makes subtract differ from STAR only in how the two terms are combined.
    A baseline: it trains plain LoRA (no hybrid regularisation).
    """

    name = "subtract"

    def needs(self) -> Needs:
        return Needs(full_scores=True, base_scores=True, mc_samples=self.mc_samples,
                     measure=self.cfg.measure, hidden_states=self.diversity, b_l2=self.cfg.b_l2)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        base, full = self._normalized(pool)
        return full - base, {}


@register
class StarStrategy(_MixedStrategy):
    """STAR (Zhang et al., "STAR: Constraint LoRA with Dynamic Active Learning for
    Data-Efficient Fine-Tuning of Large Language Models", ACL Findings 2024, arXiv 2403.01165).

    ``score_i = λ_t·norm(u_base)_i + (1-λ_t)·norm(u_full)_i`` with ``norm`` the min-max
    normalisation over the current unlabelled pool (the released code normalised only the
    base term; both are normalised here), ``u_full`` from ``cfg.mc_samples`` dropout passes,
    ``λ_t`` from :func:`~activelora.strategies.schedules.make_schedule` at the query index
    ``t = pool.round_index``. Trains with the hybrid regularisation (``cfg.b_l2`` decides the
    L2 term on B). ``info["lambda"]`` records λ_t.
    """

    name = "star"

    def __init__(self, cfg: StrategyConfig):
        super().__init__(cfg)
        self.schedule = make_schedule(self.cfg)  # fails now, not at the first query

    def needs(self) -> Needs:
        return Needs(full_scores=True, base_scores=True, mc_samples=self.mc_samples,
                     measure=self.cfg.measure, hidden_states=self.diversity,
                     hybrid_regularization=True, b_l2=self.cfg.b_l2)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        lam = float(self.schedule(pool.round_index))
        base, full = self._normalized(pool)
        return lam * base + (1.0 - lam) * full, {"lambda": lam}


@register
class StarNoDynamic(StarStrategy):
    """STAR ablation: λ_t fixed at ``strategy.constant_lambda`` (no dynamic mixing)."""

    name = "star-no-dynamic"
    config_overrides = {"dynamic": False}


@register
class StarNoL2(StarStrategy):
    """STAR ablation: no L2 on the B matrices when training (A-input dropout kept)."""

    name = "star-no-l2"
    config_overrides = {"b_l2": False}


@register
class StarNoMC(StarStrategy):
    """STAR ablation: one deterministic pass for ``u_full`` instead of MC dropout."""

    name = "star-no-mc"
    config_overrides = {"mc_dropout": False}
