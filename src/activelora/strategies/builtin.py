"""The built-in strategies: random, passive, naive uncertainty, subtract, STAR and its ablations.

Adding one: subclass :class:`~activelora.strategies.base.Strategy`, set ``name``, write
``needs()`` and ``score()``, decorate with ``@register``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import StrategyConfig
from ..errors import ConfigError
from .base import STRATEGIES, Needs, PoolView, Selection, Strategy, random_keys, register
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
        return random_keys(pool), {}


@register
class RandomHybridStrategy(RandomStrategy):
    """The control: random selection, trained with STAR's hybrid regularisation.

    It draws exactly what ``random`` draws (same seeded keys, same initial set), so in one
    experiment folder the two runs of a seed label the same examples every round and differ
    only in how they train: ``random-hybrid`` minus ``random`` is the effect of the
    regularisation, ``star`` minus ``random-hybrid`` the effect of STAR's selection.
    """

    name = "random-hybrid"

    def needs(self) -> Needs:
        return Needs(hybrid_regularization=True, b_l2=self.cfg.b_l2)


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
                     hidden_states=self.wants_embeddings, b_l2=self.cfg.b_l2, normalize=self.cfg.normalize,
                     answer_end=self.cfg.answer_end, mc_estimator=self.cfg.mc_estimator)

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

    def _mixed_needs(self, *, hybrid_regularization: bool) -> Needs:
        cfg = self.cfg
        return Needs(full_scores=True, base_scores=True, mc_samples=self.mc_samples, measure=cfg.measure,
                     hidden_states=self.wants_embeddings, hybrid_regularization=hybrid_regularization,
                     b_l2=cfg.b_l2, normalize=cfg.normalize,
                     base_normalize=cfg.base_normalize if cfg.base_normalize is not None else cfg.normalize,
                     base_target=cfg.base_target, answer_end=cfg.answer_end, mc_estimator=cfg.mc_estimator)

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
    A baseline without STAR's L2 on B; with K >= 2 MC passes it trains with the A-input
    dropout it samples (:func:`~activelora.strategies.regime.decide_regime`), else plain LoRA.
    """

    name = "subtract"

    def needs(self) -> Needs:
        return self._mixed_needs(hybrid_regularization=False)

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

    By default its first two queries draw what ``random`` draws (``strategy.cold_start_rounds``
    null = 2), so STAR first chooses at 96 labels with the 32-label default batches: on
    ``mix``'s dev split a STAR batch that left out the skills the model already knew lost
    them at the next retraining, and the random cold start was the arm not behind random
    (docs/results.md, issue 16, ninth session). ``--set strategy.cold_start_rounds=0`` gives
    STAR from the first query, as the paper runs it.

    After that, by default, half of each batch is what ``random`` draws
    (``strategy.random_share`` null = 0.5, :func:`~activelora.strategies.remedies.random_count`
    of them) and STAR's ranking fills the rest. Below its top, STAR's score ranks a skill the
    adapter answers wrongly with confidence last, and no re-ranking of it buys that skill
    back; the random half keeps every skill arriving at about its share of the pool. On
    ``mix``'s dev seeds 0-2 this arm passed the rule fixed for it (ΔAULC +0.010 on dev,
    +0.0001 on dev_pool_like: level there, not better; docs/results.md, issue 16, fourteenth
    session). ``--set strategy.random_share=0`` gives every label to STAR's ranking, as before.
    """

    name = "star"
    default_cold_start_rounds = 2
    default_random_share = 0.5

    def __init__(self, cfg: StrategyConfig):
        super().__init__(cfg)
        self.schedule = make_schedule(self.cfg)  # fails now, not at the first query

    def needs(self) -> Needs:
        return self._mixed_needs(hybrid_regularization=True)

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


# --------------------------------------------------------------------------- named variants


def _variant(name: str, base: type[Strategy], overrides: dict[str, Any], doc: str) -> type[Strategy]:
    """Register ``name``: ``base`` with ``overrides`` forced on its config. Variants exist so
    that they can run side by side in one experiment folder (the config is the experiment's,
    the name the run's); the same switches work on any strategy through ``--set strategy.KEY=``."""
    cls = type(f"{name.title().replace('-', '')}Strategy", (base,),
               {"name": name, "config_overrides": {**base.config_overrides, **overrides},
                "__module__": __name__, "__doc__": doc})
    return register(cls)


_ENTROPY = STRATEGIES.get("entropy")
_PE = STRATEGIES.get("pe")
_VOTE = STRATEGIES.get("vote")

# Remedies for naive uncertainty sampling (strategies/remedies.py). The values are starting
# points for the validity study, not tuned ones.
_variant("entropy-mean", _ENTROPY, {"normalize": True},
         "entropy per answer token (the mean over positions) instead of the sum.")
_variant("entropy-skip", _ENTROPY, {"normalize": True, "skip_top": 0.2},
         "entropy-mean without the top 20% of the pool (the extreme tail).")
_variant("entropy-mid", _ENTROPY, {"normalize": True, "target_quantile": 0.5},
         "entropy-mean preferring the pool's median uncertainty (a middle band).")
_variant("entropy-cold", _ENTROPY, {"normalize": True, "cold_start_rounds": 2},
         "entropy-mean after two random query rounds (a random cold start).")
_variant("entropy-div", _ENTROPY, {"normalize": True, "diversity_factor": 3.0},
         "entropy-mean with the k-center diversity step over the top 3n.")
_variant("huds", _PE, {"normalize": True, "strata": 8},
         "Length-normalised NLL (mean token -log p of the answer) stratified over 8 k-means strata of "
         "the prompt embeddings: the idea of ATGen's HUDS (Tsvigun et al. 2025) in our own form.")
_variant("vote-mid", _VOTE, {"target_quantile": 0.5},
         "Agreement of K sampled answers, preferring partial agreement (the median vote entropy): "
         "what the model is close to getting right.")


@register
class StarPaper(StarStrategy):
    """STAR as the paper ran it, as far as an unlabelled pool allows (Zhang et al. 2024).

    Pinned, whatever the experiment's config says: ``entropy`` summed over the answer tokens
    for both terms, the base term on the base model's *own* greedy answer, K = 3 MC-dropout
    passes for ``u_full``, each sampling dropout over the whole sequence
    (``mc_estimator: sequence``), the linear λ_t = 1 - 0.1·(t+1) (0.9, 0.8, ...), both terms
    min-max normalised, no diversity step and no remedy; trained with the hybrid
    regularisation as decoupled weight decay 0.5 on B only (the authors' code) and dropout
    ``lora.lora_dropout`` on the A inputs. Differences from the paper that cannot or should
    not be reproduced: the pool is scored on the models' own answers, not the gold ones (a
    label-free pool has none); the MC passes sample dropout (the authors' release ran them in
    eval mode, where they are identical); both terms are normalised (the release normalised
    only the base term). ``star`` is activelora's evidence-backed version; see the README.
    """

    name = "star-paper"
    default_cold_start_rounds = 0  # the paper's STAR chooses from the first query (also pinned below)
    default_random_share = 0.0  # and every label of a batch (pinned below too)
    config_overrides = {
        "measure": "entropy", "mc_samples": 3, "mc_dropout": True, "schedule": "linear", "schedule_step": 0.1,
        "dynamic": True, "b_l2": True, "diversity_factor": 0.0, "normalize": False, "base_normalize": False,
        "base_target": "own", "answer_end": "generated", "cold_start_rounds": 0, "skip_top": 0.0,
        "target_quantile": None, "strata": 0, "random_share": 0.0, "mc_estimator": "sequence",
    }
    regularization_overrides = {"b_l2_mode": "decay", "b_weight_decay": 0.5}
