"""The query-strategy base: what a strategy needs, what it sees, what it returns.

A strategy declares its inputs in :class:`Needs`; the loop computes exactly those and hands
them over in a :class:`PoolView`; the strategy writes only :meth:`Strategy.score`. The base
class does the rest of :meth:`Strategy.select`: checks ``n`` and the scores, ranks with
deterministic tie-breaking and runs the optional diversity step. The loop never looks at a
strategy's type (the pattern of baal's ``AbstractHeuristic.compute_score`` and small-text's
``ConfidenceBasedQueryStrategy.get_confidence``; no code taken from either).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..config import MC_ESTIMATORS, StrategyConfig
from ..errors import PoolExhaustedError
from ..registry import Registry
from .diversity import candidate_count, k_center_greedy
from .normalize import check_finite
from .remedies import kmeans, random_count, remedy_order, stratified_pick


@dataclass(frozen=True)
class Needs:
    """What the loop must compute before calling :meth:`Strategy.select`.

    - ``full_scores``: uncertainty of the current LoRA model on each pool example.
    - ``base_scores``: uncertainty of the base model (adapter disabled). It never changes
      during a run, so the loop computes it once per id and caches it.
    - ``mc_samples``: passes for the full scores. 1 = one deterministic pass, dropout off;
      K >= 2 = K passes with (only) the LoRA dropout on, reduced by the measure (mean of
      the K uncertainties, or BALD's mutual information).
    - ``mc_estimator``: how those K >= 2 passes run (``strategy.mc_estimator``): ``answer``
      (dropout at the answer positions only, over one shared prompt cache) or ``sequence``
      (dropout over the whole prompt + answer in each pass); see
      :mod:`activelora.uncertainty.answer_passes`.
    - ``hidden_states``: mean-pooled last hidden states (n, d), for the diversity step.
    - ``labelled_embeddings``: the embeddings of the examples selected so far as well
      (``PoolView.labelled_embeddings``), for rules over the labelled and unlabelled set
      together (typiclust, probcover). Both arrays then come from one deterministic
      prompt-only pass of the base model (adapter disabled), so they are comparable and the
      same in every round; implies ``hidden_states``.
    - ``previous_scores``: ``PoolView.previous_full_scores``, the full scores the previous
      query round computed for these ids, and ``PoolView.previous_info``, what the strategy
      recorded in that round's selection (None in the first query). For a rule that watches
      the model change between rounds (``adaptive``); both are read back from the run
      folder, so a resumed run decides the same.
    - ``measure``: the uncertainty measure's name (entropy, pe, lc, bald, vote).
    - ``base_measure``: the base term's measure; a measure defined only over several MC
      passes (bald, vote) falls back to ``entropy`` there, since the base model (adapter
      disabled) has no dropout to sample. See :meth:`resolved_base_measure`.
    - ``normalize`` / ``base_normalize``: mean per answer token (True) or sum (False) for
      the full / base term; None: the loop's ``score.normalize``.
    - ``base_target``: ``own`` (the base model's own greedy answer) or ``tuned`` (the tuned
      model's answer: one token sequence scored under both models).
    - ``answer_end``: ``generated`` (score the end marker generation stopped on),
      ``content`` (drop it) or ``eos`` (the text re-encoded as a training target, closed
      with EOS); see :mod:`~activelora.strategies.scored_answers`.
    - ``hybrid_regularization``: train this strategy's adapters with STAR's hybrid
      regularisation when ``regularization.apply`` is ``star``.
    - ``b_l2``: whether that regularisation includes the L2 term on B (False: the
      ``star-no-l2`` ablation). Which regularisation a run really trains with is decided
      from these by :func:`~activelora.strategies.regime.decide_regime`, nowhere else.
    - ``trains_on_whole_pool``: passive learning. The loop labels the whole pool in one step,
      ``select(pool, len(pool.ids))``, trains once and runs no query rounds.
    - ``gold_answers``: the full scores are computed on each example's **gold** answer
      (teacher-forced), not on the model's own. This reads labels the pool does not have:
      only an ``oracle-*`` strategy may ask for it (headroom studies in simulation).
    - ``gold_meta``: ``PoolView.meta`` holds each example's ``meta`` from the data source
      (arith's ``steps``, mix's ``skill``): what a generator knows and a real pool does not.
      Only an ``oracle-*`` strategy may ask for it; :func:`get_strategy` checks both ways.
    - ``selection_feedback``: how each labelled example was answered before it was learnt
      from. When a batch is selected, the loop (and a campaign, whose suggestions these are)
      keeps the current model's greedy answer to each chosen example; once its label is
      given, the two are compared with the task's answer check. ``PoolView.labelled_correct``
      (1, 0, or NaN where there is no answer or no label) and ``PoolView.labelled_rounds``
      (the round that bought it) are aligned with ``labelled_embeddings``. This is held-out
      accuracy from labels the user has given, not a gold answer of the pool. Implies
      ``labelled_embeddings``.
    """

    full_scores: bool = False
    base_scores: bool = False
    mc_samples: int = 1
    hidden_states: bool = False
    measure: str | None = None
    hybrid_regularization: bool = False
    b_l2: bool = True
    trains_on_whole_pool: bool = False
    base_measure: str | None = None
    normalize: bool | None = None
    base_normalize: bool | None = None
    base_target: str = "own"
    answer_end: str = "generated"
    mc_estimator: str = "sequence"
    gold_answers: bool = False
    gold_meta: bool = False
    labelled_embeddings: bool = False
    previous_scores: bool = False
    selection_feedback: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.mc_samples, bool) or not isinstance(self.mc_samples, int) or self.mc_samples < 1:
            raise ValueError(f"Needs.mc_samples must be an integer >= 1, got {self.mc_samples!r}")
        if (self.full_scores or self.base_scores) and not self.measure:
            raise ValueError("Needs.measure must name an uncertainty measure when scores are needed")
        if self.base_target not in ("own", "tuned"):
            raise ValueError(f"Needs.base_target must be own or tuned, got {self.base_target!r}")
        if self.answer_end not in ("generated", "content", "eos"):
            raise ValueError(f"Needs.answer_end must be generated, content or eos, got {self.answer_end!r}")
        if self.mc_estimator not in MC_ESTIMATORS:
            raise ValueError(f"Needs.mc_estimator must be one of {', '.join(MC_ESTIMATORS)}, got {self.mc_estimator!r}")
        if self.labelled_embeddings and not self.hidden_states:
            raise ValueError("Needs.labelled_embeddings comes with the pool's embeddings: set hidden_states")
        if self.selection_feedback and not self.labelled_embeddings:
            raise ValueError("Needs.selection_feedback is aligned with the labelled examples' embeddings: "
                             "set labelled_embeddings")
        if self.previous_scores and not self.full_scores:
            raise ValueError("Needs.previous_scores compares full scores between rounds: it needs full_scores")
        if self.gold_answers and not self.full_scores:
            raise ValueError("Needs.gold_answers scores the gold answers: it needs full_scores")

    @property
    def reads_gold(self) -> bool:
        """Whether the strategy sees gold answers or the source's meta: an oracle."""
        return self.gold_answers or self.gold_meta

    @property
    def dropout_passes(self) -> int:
        """How many LoRA-dropout passes the full scores sample: ``mc_samples``, except for a
        measure whose K samples are generated answers (vote), which samples no dropout."""
        if self.mc_samples < 2 or not self.measure:
            return 1
        from ..uncertainty.measures import get_measure

        return 1 if get_measure(self.measure).needs_sampled_answers else self.mc_samples

    def resolved_base_measure(self) -> str | None:
        """The base term's measure: ``base_measure``, else ``measure`` unless that needs MC
        passes (then ``entropy``: BALD's first term, the predictive entropy, is what one
        deterministic pass of the base model defines)."""
        if self.base_measure or not self.measure:
            return self.base_measure or None
        from ..uncertainty.measures import get_measure

        return "entropy" if get_measure(self.measure).mc else self.measure


@dataclass(kw_only=True)
class PoolView:
    """The unlabelled pool as the loop hands it to :meth:`Strategy.select`.

    Arrays are aligned with ``ids`` (stable example ids, never positions). Only the fields the
    strategy's :class:`Needs` asked for are filled. ``round_index`` is the query index t
    (0 for the first query after the initial labelled set). ``rng`` is seeded by the loop.
    ``meta``: each example's ``meta``, filled only for a strategy whose needs declare
    ``gold_meta`` (an oracle); :meth:`Strategy.select` refuses it for any other.
    """

    ids: list[str]
    rng: np.random.Generator
    full_scores: np.ndarray | None = None  # (n,)
    base_scores: np.ndarray | None = None  # (n,)
    embeddings: np.ndarray | None = None  # (n, d)
    round_index: int = 0
    meta: list[dict[str, Any]] | None = None  # oracles only (Needs.gold_meta)
    labelled_embeddings: np.ndarray | None = None  # (m, d): the m examples selected so far
    previous_full_scores: np.ndarray | None = None  # (n,): the previous query's full scores
    previous_info: dict[str, Any] | None = None  # the previous query's Selection.info
    # Needs.selection_feedback, aligned with labelled_embeddings: was the model's answer at
    # selection right (1), wrong (0) or unknown (NaN); and the round that bought each one.
    labelled_correct: np.ndarray | None = None  # (m,)
    labelled_rounds: np.ndarray | None = None  # (m,)

    def __post_init__(self) -> None:
        self.ids = list(self.ids)
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("PoolView.ids contains duplicate ids")
        if self.round_index < 0:
            raise ValueError(f"PoolView.round_index must be >= 0, got {self.round_index}")
        n = len(self.ids)
        for name, ndim in (("full_scores", 1), ("base_scores", 1), ("embeddings", 2), ("previous_full_scores", 1)):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if n == 0 and value.size == 0:  # an empty pool saved as [] has lost its shape
                value = value.reshape((0,) * ndim)
            if value.ndim != ndim or value.shape[0] != n:
                raise ValueError(
                    f"PoolView.{name} has shape {value.shape}; expected {'(n,)' if ndim == 1 else '(n, d)'} "
                    f"with n = {n} pool ids"
                )
            setattr(self, name, value)
        if self.labelled_embeddings is not None:
            labelled = np.asarray(self.labelled_embeddings, dtype=np.float64)
            if labelled.size == 0:  # none selected yet, or saved as [] (shape lost)
                labelled = labelled.reshape(0, self.embeddings.shape[1] if self.embeddings is not None else 0)
            width = self.embeddings.shape[1] if self.embeddings is not None and n else labelled.shape[-1]
            if labelled.ndim != 2 or labelled.shape[1] != width:
                raise ValueError(f"PoolView.labelled_embeddings has shape {labelled.shape}; expected (m, d) "
                                 "with the embeddings' d")
            self.labelled_embeddings = labelled
        for name in ("labelled_correct", "labelled_rounds"):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float64 if name == "labelled_correct" else np.int64).reshape(-1)
            m = 0 if self.labelled_embeddings is None else len(self.labelled_embeddings)
            if value.shape != (m,):
                raise ValueError(f"PoolView.{name} has shape {value.shape}; expected ({m},), one entry per "
                                 "labelled embedding")
            setattr(self, name, value)
        if self.meta is not None and len(self.meta) != n:
            raise ValueError(f"PoolView.meta has {len(self.meta)} entries for {n} pool ids")

    def __len__(self) -> int:
        return len(self.ids)

    def require(self, name: str, strategy: str) -> np.ndarray:
        """The array ``name``, or a clear error if the loop did not provide it."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"strategy {strategy!r} needs PoolView.{name}; it was not provided")
        return value


@dataclass
class Selection:
    """The ids chosen, best first, their scores (None where a score means nothing, e.g.
    random), and details for the run log, e.g. ``{"lambda": 0.9}`` for STAR."""

    ids: list[str]
    scores: list[float | None]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.scores):
            raise ValueError(f"Selection has {len(self.ids)} ids but {len(self.scores)} scores")


def rank(scores: np.ndarray, ids: list[str], rng: np.random.Generator) -> np.ndarray:
    """Pool positions ordered by descending score, ties broken by a seeded random permutation.

    The permutation is drawn over the ids in sorted order, so the outcome depends only on the
    ids, the scores and the rng state, not on the order of the pool list. Breaking ties at
    random rather than by id avoids a bias towards whatever the id order correlates with
    (file order, problem family). Always draws exactly one permutation of ``len(ids)``.
    """
    by_id = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    shuffled = by_id[rng.permutation(len(ids))]
    # A stable sort of -score keeps the shuffled order within ties.
    return shuffled[np.argsort(-scores[shuffled], kind="stable")]


def child_rng(pool: PoolView) -> np.random.Generator:
    """A generator for clustering, seeded from ``pool.rng`` (one draw): deterministic for a
    run seed and round, and it never shifts the draws of the main stream beyond that one."""
    return np.random.default_rng(pool.rng.integers(2**63))


class Strategy:
    """Base class. A subclass sets ``name``, declares :meth:`needs` and writes :meth:`score`.

    ``informative_scores`` False (random, passive) records ``None`` as each selected
    example's score and skips the diversity step and the remedies. ``oracle`` True marks a
    strategy that reads gold answers or the source's meta (``Needs.reads_gold``); its name
    starts with ``oracle-``. Oracles bound what label-free selection could gain; they are for
    headroom studies only and cannot run in a campaign.
    """

    name: ClassVar[str] = ""
    informative_scores: ClassVar[bool] = True
    oracle: ClassVar[bool] = False
    # Switches an ablation variant forces on the config, e.g. {"dynamic": False}.
    config_overrides: ClassVar[dict[str, Any]] = {}
    # RegularizationConfig fields a variant pins when it trains with the hybrid
    # regularisation (star-paper: the authors' B decay), read by decide_regime.
    regularization_overrides: ClassVar[dict[str, Any]] = {}
    # Query rounds that draw at random when ``strategy.cold_start_rounds`` is null (unset).
    default_cold_start_rounds: ClassVar[int] = 0
    # The share of each scored batch drawn at random when ``strategy.random_share`` is null.
    default_random_share: ClassVar[float] = 0.0

    def __init__(self, cfg: StrategyConfig):
        cfg = dataclasses.replace(cfg, cold_start_rounds=self.cold_start_rounds_for(cfg),
                                  random_share=self.random_share_for(cfg))
        self.cfg = dataclasses.replace(cfg, **self.config_overrides) if self.config_overrides else cfg

    @classmethod
    def cold_start_rounds_for(cls, cfg: StrategyConfig) -> int:
        """``strategy.cold_start_rounds`` as the config sets it, or this strategy's default
        where it is null. A variant's ``config_overrides`` still win over both (star-paper
        pins 0). The run folder records this value, so a run resumes only under the same."""
        return cls.default_cold_start_rounds if cfg.cold_start_rounds is None else cfg.cold_start_rounds

    @classmethod
    def random_share_for(cls, cfg: StrategyConfig) -> float:
        """``strategy.random_share`` as the config sets it, or this strategy's default where it
        is null; a variant's ``config_overrides`` still win (star-paper pins 0). The run folder
        records this value, as it does the cold start's."""
        return cls.default_random_share if cfg.random_share is None else cfg.random_share

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @property
    def diversity(self) -> bool:
        """Whether :meth:`select` runs the k-center diversity step."""
        return self.informative_scores and self.cfg.diversity_factor > 1

    @property
    def stratified(self) -> bool:
        """Whether :meth:`select` splits the batch over k-means strata of the embeddings."""
        return self.informative_scores and self.cfg.strata > 1

    @property
    def wants_embeddings(self) -> bool:
        """Whether the loop must provide ``PoolView.embeddings`` (diversity or strata)."""
        return self.diversity or self.stratified

    def unapplied_switches(self) -> list[str]:
        """The batch-rule switches (:data:`BATCH_RULE_SWITCHES`) the config turns on that this
        strategy's :meth:`select` never applies, as ``strategy.<key>=<value>``.

        They live in one shared ``strategy`` section, so one config may set them for several
        strategies at once (random beside star): a strategy without informative scores has no
        ranking for them to change, so it leaves them alone rather than refusing the config.
        """
        return [] if self.informative_scores else switches_on(self.cfg)

    def unapplied_switches_notice(self) -> str | None:
        """The one line a run or a campaign logs about :meth:`unapplied_switches`, or None."""
        unapplied = self.unapplied_switches()
        if not unapplied:
            return None
        return f"strategy {self.name} ignores {', '.join(unapplied)}: it has no ranking for them to change"

    def draws_at_random(self, round_index: int) -> bool:
        """Whether query ``round_index`` is a cold-start round (``strategy.cold_start_rounds``).

        Such a round draws what ``random`` draws and never looks at a score, so the loop and a
        campaign skip scoring the pool for it (for ``star``, K + 1 passes over the pool).
        """
        return self.informative_scores and round_index < self.cfg.cold_start_rounds

    def needs(self) -> Needs:
        raise NotImplementedError

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        """Scores (n,) aligned with ``pool.ids`` (higher = more worth labelling) and info."""
        raise NotImplementedError

    def check_n(self, pool: PoolView, n: int) -> int:
        """``n`` as an int; ``PoolExhaustedError`` when the pool holds fewer than ``n``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"number of examples to select must be an integer >= 0, got {n!r}")
        if n > len(pool.ids):
            raise PoolExhaustedError(requested=int(n), available=len(pool.ids))
        return int(n)

    def selection_without_scores(self, pool: PoolView, n: int) -> Selection | None:
        """What every strategy does before its own rule, or None to go on: refuse the gold
        annotations to a label-free strategy; nothing for ``n = 0``; and in a cold-start round
        (``strategy.cold_start_rounds``) the same keys and permutation ``random`` draws, so it
        stays paired with it. No score is read then, so the pool may come without any."""
        if pool.meta is not None and not self.needs().gold_meta:
            raise ValueError(f"strategy {self.name!r} is label-free and was handed PoolView.meta "
                             "(the source's gold annotations): only an oracle may read them")
        if n == 0:
            return Selection(ids=[], scores=[], info={})
        if self.draws_at_random(pool.round_index):
            order = rank(random_keys(pool), pool.ids, pool.rng)
            return Selection(ids=[pool.ids[i] for i in order[:n]], scores=[None] * n, info={"cold_start": True})
        return None

    def select(self, pool: PoolView, n: int) -> Selection:
        """The ``n`` pool ids most worth labelling, best first.

        Non-finite scores raise ``ValueError`` (they signal a numerical fault; ranking them
        would pick or skip examples silently). Ties are broken by :func:`rank`. For
        informative scores, in this order (:mod:`~activelora.strategies.remedies`): a query
        round below ``cold_start_rounds`` selects at random (the ``random`` strategy's draw,
        without reading or checking any score);
        ``skip_top`` and ``target_quantile`` turn the scores into an order of the eligible
        positions; then either the diversity step (the top ``ceil(f·n)`` candidates thinned
        to ``n`` by :func:`~activelora.strategies.diversity.k_center_greedy` over
        ``pool.embeddings``) or the strata, or plainly the first ``n``. With ``random_share``
        the first ``r`` of ``random``'s draw are taken before anything is ranked, and the
        rest of the rule fills the other ``n - r`` from the positions they leave; the batch
        lists the ranked picks first.
        """
        n = self.check_n(pool, n)
        early = self.selection_without_scores(pool, n)
        if early is not None:
            return early
        n_random = random_count(n, self.cfg.random_share) if self.informative_scores else 0
        # Drawn first, from the rng as `random` finds it, so these are the first r of its draw.
        drawn = rank(random_keys(pool), pool.ids, pool.rng)[:n_random] if n_random else None
        raw, info = self.score(pool)
        scores = np.asarray(raw, dtype=np.float64)
        if scores.shape != (len(pool.ids),):
            raise ValueError(
                f"strategy {self.name!r} returned scores of shape {scores.shape} for {len(pool.ids)} ids"
            )
        check_finite(scores, pool.ids, what=f"strategy {self.name!r} scores")
        info = dict(info)
        order = rank(scores, pool.ids, pool.rng)
        if self.informative_scores:
            order, more = remedy_order(scores, order, n, skip_top=self.cfg.skip_top,
                                       target_quantile=self.cfg.target_quantile)
            info.update(more)
        n_ranked = n
        if drawn is not None:
            order = order[~np.isin(order, drawn)]
            n_ranked = n - n_random
            info["random_share"] = {"share": self.cfg.random_share, "drawn": n_random,
                                    "ids": [pool.ids[i] for i in drawn]}
        chosen = order[:n_ranked]
        if self.diversity:
            m = candidate_count(n_ranked, self.cfg.diversity_factor, len(order))
            if m > n_ranked:
                embeddings = pool.require("embeddings", self.name)
                candidates = order[:m]
                chosen = candidates[k_center_greedy(embeddings[candidates], n_ranked)]
            info["diversity_candidates"] = m
        elif self.stratified:
            embeddings = pool.require("embeddings", self.name)
            # A child generator: the strata never shift the draws of the main stream.
            labels = kmeans(embeddings, self.cfg.strata, child_rng(pool))
            chosen, more = stratified_pick(order, labels, n_ranked)
            info.update(more)
        if drawn is not None:
            chosen = np.concatenate([np.asarray(chosen, dtype=np.int64), drawn])
        kept = [float(scores[i]) for i in chosen] if self.informative_scores else [None] * n
        return Selection(ids=[pool.ids[i] for i in chosen], scores=kept, info=info)


# The switches that change how a ranking becomes a batch (strategies/remedies.py,
# diversity.py, strata), each with the value that turns it off.
BATCH_RULE_SWITCHES: dict[str, Any] = {"skip_top": 0.0, "target_quantile": None, "diversity_factor": 0.0,
                                       "strata": 0, "random_share": 0.0}


def switches_on(cfg: StrategyConfig) -> list[str]:
    """``strategy.<key>=<value>`` for each batch-rule switch ``cfg`` sets away from off."""
    return [f"strategy.{key}={getattr(cfg, key)}" for key, off in BATCH_RULE_SWITCHES.items()
            if getattr(cfg, key) != off]


def random_keys(pool: PoolView) -> np.ndarray:
    """i.i.d. U(0, 1) keys drawn in sorted-id order: their top n is a uniform n-subset that
    does not depend on the order of the pool list."""
    keys = np.empty(len(pool.ids))
    keys[np.argsort(np.asarray(pool.ids, dtype=object), kind="stable")] = pool.rng.random(len(pool.ids))
    return keys


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: add ``cls`` to :data:`STRATEGIES` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    STRATEGIES.add(cls.name, cls)
    return cls


def get_strategy(name: str, cfg: StrategyConfig) -> Strategy:
    """The strategy registered as ``name``, built with ``cfg``.

    An unknown name raises :class:`~activelora.errors.UnknownNameError` listing the valid
    ones; an impossible setting (e.g. BALD with one MC pass) raises ``ConfigError``. A
    strategy that reads gold answers or meta must be an ``oracle-*`` one, and the other way
    round (``ValueError``: a programming error in the strategy, not a user mistake).
    """
    strategy = STRATEGIES.get(name)(cfg)
    oracle_name = strategy.name.startswith("oracle-")
    if not (strategy.oracle == oracle_name == strategy.needs().reads_gold):
        raise ValueError(f"strategy {strategy.name!r}: reading gold answers or meta (Needs.gold_answers, "
                         "gold_meta), Strategy.oracle and an 'oracle-' name go together, all or none")
    return strategy
