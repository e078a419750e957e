"""Remedies for uncertainty sampling (skip the tail, a middle band, strata, a random cold start,
a mixed batch), the random-hybrid control and the pinned star-paper variant, against independent references."""

from __future__ import annotations

import dataclasses
import math
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.config import StrategyConfig
from activelora.errors import ConfigError
from activelora.strategies import STRATEGIES, PoolView, Strategy, get_strategy, rank
from activelora.strategies.remedies import (
    kmeans,
    percentile_ranks,
    random_count,
    remedy_order,
    skipped_count,
    stratified_pick,
)


def pool_of(scores, rng_seed=0, round_index=0, embeddings=None):
    ids = [f"ex{i:03d}" for i in range(len(scores))]
    return PoolView(ids=ids, full_scores=np.asarray(scores, dtype=float), rng=np.random.default_rng(rng_seed),
                    round_index=round_index, embeddings=embeddings)


# ----------------------------------------------------------------------------- percentiles


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 6).map(float), min_size=1, max_size=30))
def test_percentile_ranks_against_brute_force(values):
    n = len(values)
    expected = [0.5] if n == 1 else [
        (sum(v < x for v in values) + (sum(v == x for v in values) - 1) / 2) / (n - 1) for x in values]
    np.testing.assert_allclose(percentile_ranks(np.array(values)), expected, rtol=0, atol=1e-12)


def test_skipped_count():
    assert skipped_count(100, 10, 0.2) == 20
    assert skipped_count(30, 5, 0.1) == 3  # 0.1*30 is 3.0000000000000004
    assert skipped_count(25, 20, 0.5) == 5  # never so many that n cannot be bought
    assert skipped_count(10, 3, 0.0) == 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n_pool=st.integers(2, 40), q=st.floats(0, 0.9), m=st.floats(0, 1))
def test_remedy_order_against_reference(seed, n_pool, q, m):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 8, n_pool).astype(float)  # ties on purpose
    n = int(rng.integers(1, n_pool + 1))
    ids = [f"x{i}" for i in range(n_pool)]
    tie_order = rank(scores, ids, np.random.default_rng(seed))
    order, info = remedy_order(scores, tie_order, n, skip_top=q, target_quantile=m)
    skip = min(math.floor(round(q * n_pool, 9)), n_pool - n)
    kept = list(tie_order[skip:])
    assert sorted(order.tolist()) == sorted(kept) and len(order) >= n
    # Reference: sort the kept positions by |percentile - m|, ties by their place in tie_order.
    pct = {i: (sum(s < scores[i] for s in scores) + (sum(s == scores[i] for s in scores) - 1) / 2) / (n_pool - 1)
           for i in range(n_pool)}
    expected = sorted(kept, key=lambda i: (abs(pct[i] - m), kept.index(i)))
    assert order.tolist() == expected
    assert info["target_quantile"] == m and info.get("skipped_top", 0) == skip


# ----------------------------------------------------------------------------- strata


def reference_quota(sizes: dict[int, int], n: int) -> dict[int, int]:
    total = sum(sizes.values())
    quota = {c: (n * s) // total for c, s in sizes.items()}  # exact integer floor
    left = n - sum(quota.values())
    remainder = {c: n * s / total - quota[c] for c, s in sizes.items()}
    for c in sorted(sizes, key=lambda c: (-remainder[c], -sizes[c], c))[:left]:
        quota[c] += 1
    return quota


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31), n_pool=st.integers(1, 40), k=st.integers(1, 6))
def test_stratified_pick_against_reference(seed, n_pool, k):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n_pool)
    order = rng.permutation(n_pool)
    n = int(rng.integers(0, n_pool + 1))
    picked, info = stratified_pick(order, labels, n)
    sizes = {int(c): int((labels == c).sum()) for c in np.unique(labels)}
    quota = reference_quota(sizes, n)
    assert info["strata"] == quota
    expected = [p for p in order if sum(labels[q] == labels[p] for q in order[:list(order).index(p) + 1])
                <= quota[int(labels[p])]]
    assert picked.tolist() == expected and len(picked) == n


def test_kmeans_recovers_separated_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = np.repeat([0, 1, 2], [15, 10, 5])
    points = centres[truth] + rng.normal(scale=0.3, size=(30, 2))
    labels = kmeans(points, 3, np.random.default_rng(1))
    # The same partition up to renaming: every true blob maps to exactly one label.
    assert {tuple(sorted(set(labels[truth == c]))) for c in range(3)} == {(a,) for a in set(labels)}
    assert len(set(labels)) == 3
    np.testing.assert_array_equal(labels, kmeans(points, 3, np.random.default_rng(1)))
    assert kmeans(np.ones((5, 2)), 3, np.random.default_rng(0)).tolist() == [0] * 5  # one distinct point
    with pytest.raises(ValueError, match="non-finite"):
        kmeans(np.array([[np.nan, 0.0]]), 2, np.random.default_rng(0))


# ----------------------------------------------------------------------------- strategies


SCORES = [0.1, 9.0, 0.5, 8.0, 3.0, 2.0, 7.0, 4.0, 6.0, 5.0]


def test_cold_start_draws_what_random_draws_then_ranks():
    cfg = StrategyConfig(cold_start_rounds=1)
    cold = get_strategy("entropy", cfg).select(pool_of(SCORES, rng_seed=3), 4)
    rand = get_strategy("random", cfg).select(pool_of(SCORES, rng_seed=3), 4)
    assert cold.ids == rand.ids and cold.info["cold_start"]
    warm = get_strategy("entropy", cfg).select(pool_of(SCORES, rng_seed=3, round_index=1), 4)
    assert warm.ids == ["ex001", "ex003", "ex006", "ex008"] and "cold_start" not in warm.info
    # Named variant: two random rounds.
    assert get_strategy("entropy-cold", StrategyConfig()).select(pool_of(SCORES, round_index=1), 4).info["cold_start"]


def test_cold_start_needs_no_scores_and_reads_none():
    cfg = StrategyConfig(cold_start_rounds=2)
    strategy = get_strategy("star", cfg)
    no_scores = PoolView(ids=[f"ex{i:03d}" for i in range(10)], rng=np.random.default_rng(3), round_index=1)
    cold = strategy.select(no_scores, 4)
    rand = get_strategy("random", cfg).select(pool_of(SCORES, rng_seed=3, round_index=1), 4)
    assert cold.ids == rand.ids and cold.scores == [None] * 4 and cold.info == {"cold_start": True}
    assert [strategy.draws_at_random(t) for t in range(4)] == [True, True, False, False]
    assert not get_strategy("random", cfg).draws_at_random(0)  # random never scores anyway
    with pytest.raises(ValueError, match="needs PoolView.base_scores"):  # past the cold start they are required
        strategy.select(PoolView(ids=no_scores.ids, rng=np.random.default_rng(3), round_index=2), 4)


def test_an_unset_cold_start_is_each_strategys_default_and_a_set_one_wins():
    unset = StrategyConfig()
    assert unset.cold_start_rounds is None
    rounds = {name: get_strategy(name, unset).cfg.cold_start_rounds
              for name in ("star", "star-no-mc", "star-no-l2", "star-paper", "entropy", "entropy-cold", "subtract",
                           "star-weighted", "adaptive", "random")}
    assert rounds == {"star": 2, "star-no-mc": 2, "star-no-l2": 2, "star-paper": 0, "entropy": 0,
                      "entropy-cold": 2, "subtract": 0, "star-weighted": 0, "adaptive": 0, "random": 0}
    star = get_strategy("star", unset)
    assert [star.draws_at_random(t) for t in range(3)] == [True, True, False]
    assert get_strategy("star", StrategyConfig(cold_start_rounds=0)).cfg.cold_start_rounds == 0
    assert get_strategy("entropy", StrategyConfig(cold_start_rounds=3)).cfg.cold_start_rounds == 3
    assert get_strategy("star-paper", StrategyConfig(cold_start_rounds=3)).cfg.cold_start_rounds == 0  # pinned
    # adaptive has its own switch: the STAR it hands over to chooses from its first query.
    assert get_strategy("adaptive", unset).uncertainty.cfg.cold_start_rounds == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_cold_start_rounds_must_be_a_count_or_null(bad):
    with pytest.raises(ConfigError, match="strategy.cold_start_rounds"):
        StrategyConfig(cold_start_rounds=bad)


def test_random_hybrid_draws_what_random_draws():
    for seed in range(5):
        a = get_strategy("random", StrategyConfig()).select(pool_of(SCORES, rng_seed=seed), 5)
        b = get_strategy("random-hybrid", StrategyConfig()).select(pool_of(SCORES, rng_seed=seed), 5)
        assert a.ids == b.ids and b.scores == [None] * 5
    assert get_strategy("random-hybrid", StrategyConfig()).needs().hybrid_regularization


def test_skip_top_and_middle_band():
    skip = get_strategy("entropy-skip", StrategyConfig()).select(pool_of(SCORES), 3)  # top 20%: 9.0 and 8.0
    assert skip.ids == ["ex006", "ex008", "ex009"] and skip.info["skipped_top"] == 2
    assert skip.scores == [7.0, 6.0, 5.0]  # the raw uncertainties are recorded, not the preference
    mid = get_strategy("entropy-mid", StrategyConfig()).select(pool_of(SCORES), 2)
    assert sorted(mid.scores) == [4.0, 5.0]  # the two nearest the median of 0.1 .. 9.0


def test_huds_splits_the_batch_over_strata():
    rng = np.random.default_rng(0)
    embeddings = np.concatenate([rng.normal(0, 0.1, (6, 3)), rng.normal(5, 0.1, (4, 3))])
    scores = [1, 2, 3, 4, 5, 6, 10, 11, 12, 13]  # the second blob is the most uncertain
    plain = get_strategy("pe", StrategyConfig()).select(pool_of(scores, embeddings=embeddings), 5)
    assert set(plain.ids) >= {"ex006", "ex007", "ex008", "ex009"}
    strat = get_strategy("pe", StrategyConfig(strata=2)).select(pool_of(scores, embeddings=embeddings), 5)
    assert sorted(strat.info["strata"].values()) == [2, 3]  # 6:4 of the pool -> 3:2 of the batch
    assert sum(i in {"ex006", "ex007", "ex008", "ex009"} for i in strat.ids) == 2
    assert get_strategy("huds", StrategyConfig()).needs().normalize is True
    with pytest.raises(ConfigError, match="strategy.strata"):
        StrategyConfig(strata=4, diversity_factor=2.0)


def test_star_paper_ignores_the_experiment_settings_it_pins():
    cfg = StrategyConfig(normalize=True, base_target="tuned", mc_samples=5, schedule_step=0.3, skip_top=0.5)
    paper = get_strategy("star-paper", cfg)
    needs = paper.needs()
    assert (needs.normalize, needs.base_normalize, needs.base_target, needs.mc_samples) == (False, False, "own", 3)
    assert paper.schedule(0) == pytest.approx(0.9) and paper.schedule(1) == pytest.approx(0.8)
    star = get_strategy("star", cfg).needs()
    assert (star.normalize, star.base_normalize, star.base_target, star.mc_samples) == (True, True, "tuned", 5)


def test_base_measure_of_mc_measures_is_entropy():
    assert get_strategy("star", StrategyConfig(measure="bald")).needs().resolved_base_measure() == "entropy"
    assert get_strategy("star", StrategyConfig(measure="pe")).needs().resolved_base_measure() == "pe"
    assert get_strategy("subtract", StrategyConfig(base_normalize=True)).needs().base_normalize is True


# ----------------------------------------------------------------------------- mixed batch


def test_random_count_rounds_half_up_and_never_exceeds_the_batch():
    assert [random_count(n, 0.5) for n in (1, 2, 3, 32, 33)] == [1, 1, 2, 16, 17]
    assert random_count(32, 0.0) == 0 and random_count(10, 0.25) == 3  # 2.5 -> 3, not banker's 2
    assert random_count(3, 0.3) == 1 and random_count(1, 0.99) == 1
    assert random_count(10, 0.9499999999999998) == 10  # 9.499999999999998 is 9.5 in float noise


def mixed_reference(scores, ids, seed, n, share, skip_top=0.0):
    """The mixed batch built by hand: random's own selection for the drawn part (a second rng
    in the same state), then the highest scores of what is left, ties as `rank` breaks them."""
    # floor(f·n + ½) with f·n read to 9 decimals, so float noise (0.9499999999999998 · 10) still
    # counts as the half it stands for (hypothesis found that case).
    r = math.floor(Decimal(share * n).quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN) + Decimal("0.5"))
    rng = np.random.default_rng(seed)
    drawn = get_strategy("random", StrategyConfig()).select(
        PoolView(ids=ids, full_scores=np.zeros(len(ids)), rng=rng, round_index=0), r).ids if r else []
    # `rank` draws one permutation for the ties after the random draw: replay it.
    by_id = sorted(range(len(ids)), key=lambda i: ids[i])
    shuffled = [by_id[j] for j in rng.permutation(len(ids))]
    tie_order = sorted(shuffled, key=lambda i: -scores[i])  # Python's sort is stable
    skip = min(math.floor(round(skip_top * len(ids), 9)), len(ids) - n)
    ranked = [ids[i] for i in tie_order[skip:] if ids[i] not in drawn][:n - r]
    return ranked + drawn


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n_pool=st.integers(2, 40), share=st.floats(0.0, 0.95), q=st.sampled_from([0.0, 0.3]))
def test_random_share_against_reference(seed, n_pool, share, q):
    data = np.random.default_rng(seed + 1)
    scores = data.integers(0, 6, n_pool).astype(float)  # ties on purpose
    n = int(data.integers(1, n_pool + 1))
    ids = [f"x{i:02d}" for i in range(n_pool)]
    pool = PoolView(ids=ids, full_scores=scores, rng=np.random.default_rng(seed), round_index=0)
    got = get_strategy("entropy", StrategyConfig(random_share=share, skip_top=q)).select(pool, n)
    assert got.ids == mixed_reference(scores.tolist(), ids, seed, n, share, skip_top=q)
    assert len(set(got.ids)) == n
    r = random_count(n, share)
    if r:
        assert got.info["random_share"] == {"share": share, "drawn": r, "ids": got.ids[n - r:]}
    else:
        assert "random_share" not in got.info


def test_no_random_share_is_the_selection_it_replaces():
    for seed in range(5):
        plain = get_strategy("entropy", StrategyConfig()).select(pool_of(SCORES, rng_seed=seed), 4)
        zero = get_strategy("entropy", StrategyConfig(random_share=0.0)).select(pool_of(SCORES, rng_seed=seed), 4)
        assert plain == zero and plain.ids == ["ex001", "ex003", "ex006", "ex008"]


def test_random_share_under_strata_and_the_cold_start():
    rng = np.random.default_rng(0)
    embeddings = np.concatenate([rng.normal(0, 0.1, (6, 3)), rng.normal(5, 0.1, (4, 3))])
    scores = [1, 2, 3, 4, 5, 6, 10, 11, 12, 13]
    mixed = get_strategy("pe", StrategyConfig(strata=2, random_share=0.4)).select(
        pool_of(scores, rng_seed=1, embeddings=embeddings), 5)
    drawn = mixed.info["random_share"]["ids"]
    assert len(drawn) == 2 and mixed.ids[3:] == drawn and len(set(mixed.ids)) == 5
    assert sum(mixed.info["strata"].values()) == 3  # the strata fill what the draw left
    # A cold-start round is all random already: nothing is mixed, nothing is scored.
    cold = get_strategy("star", StrategyConfig(random_share=0.5)).select(
        PoolView(ids=[f"ex{i:03d}" for i in range(10)], rng=np.random.default_rng(3), round_index=0), 4)
    assert cold.info == {"cold_start": True}
    # star-paper pins the paper's rule: no mixed batch.
    assert get_strategy("star-paper", StrategyConfig(random_share=0.5)).cfg.random_share == 0.0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, True, "0.5"])
def test_random_share_must_be_a_fraction_below_one(bad):
    with pytest.raises(ConfigError, match="strategy.random_share"):
        StrategyConfig(random_share=bad)


def test_adaptive_mixes_only_in_its_star_phase():
    rng = np.random.default_rng(0)
    ids = [f"ex{i:03d}" for i in range(12)]

    def pool(phase):
        return PoolView(ids=ids, full_scores=rng.random(12), base_scores=rng.random(12), rng=np.random.default_rng(1),
                        round_index=3, embeddings=rng.normal(size=(12, 4)), labelled_embeddings=rng.normal(size=(4, 4)),
                        previous_info={"adaptive": {"phase": phase}})

    adaptive = get_strategy("adaptive", StrategyConfig(random_share=0.5))
    star_phase = adaptive.select(pool("star"), 4)  # latched: STAR chooses, through Strategy.select
    assert star_phase.info["adaptive"]["phase"] == "star" and star_phase.info["random_share"]["drawn"] == 2
    typiclust_phase = adaptive.select(pool(None), 4)  # no previous STAR query, no signal: typiclust
    assert typiclust_phase.info["adaptive"]["phase"] == "typiclust" and "random_share" not in typiclust_phase.info


# ----------------------------------------------------------------------- switches a rule ignores

SWITCHES_ON = StrategyConfig(skip_top=0.1, target_quantile=0.5, strata=4, random_share=0.25)
SWITCHES_NAMED = ["strategy.skip_top=0.1", "strategy.target_quantile=0.5", "strategy.strata=4",
                  "strategy.random_share=0.25"]


@pytest.mark.parametrize("name", sorted(STRATEGIES.names()))
def test_each_strategy_names_the_switches_it_never_applies(name):
    assert get_strategy(name, StrategyConfig()).unapplied_switches() == []  # nothing on, nothing named
    cfg, named = SWITCHES_ON, SWITCHES_NAMED
    if "diversity_factor" in STRATEGIES.get(name).config_overrides:  # entropy-div: strata would be refused
        cfg, named = dataclasses.replace(cfg, strata=0), [s for s in named if "strata" not in s]
    strategy = get_strategy(name, cfg)
    # A rule ranking informative scores through Strategy.select applies them all; so does
    # adaptive's STAR phase. Random and passive have no ranking, and a set rule no scores.
    ranks_through_select = strategy.informative_scores and (
        type(strategy).select is Strategy.select or name == "adaptive")
    assert strategy.unapplied_switches() == ([] if ranks_through_select else named)


def test_an_ignored_switch_is_applied_nowhere():
    """What unapplied_switches says, select does: typiclust's batch is the same with them on."""
    rng = np.random.default_rng(3)
    pool = dict(ids=[f"ex{i:03d}" for i in range(40)], embeddings=rng.normal(size=(40, 5)),
                labelled_embeddings=rng.normal(size=(6, 5)), round_index=1)
    plain = get_strategy("typiclust", StrategyConfig()).select(PoolView(**pool, rng=np.random.default_rng(0)), 8)
    switched = get_strategy("typiclust", SWITCHES_ON).select(PoolView(**pool, rng=np.random.default_rng(0)), 8)
    assert switched.ids == plain.ids


def test_an_experiment_warns_once_per_strategy_that_ignores_a_switch(caplog):
    from activelora.config import Config, LoopConfig
    from activelora.experiment.plan import warn_unapplied_switches

    config = Config(strategy=StrategyConfig(random_share=0.5), loop=LoopConfig(strategies=["random", "star", "typiclust"]))
    with caplog.at_level("WARNING", logger="activelora.experiment.plan"):
        warn_unapplied_switches(config)
    assert [r.getMessage() for r in caplog.records] == [
        "strategy random ignores strategy.random_share=0.5: it has no ranking for them to change",
        "strategy typiclust ignores strategy.random_share=0.5: it has no ranking for them to change"]


def test_an_unset_random_share_is_each_strategys_default_and_a_set_one_wins():
    from activelora.strategies.builtin import StarStrategy

    assert StrategyConfig().random_share is None
    for name in STRATEGIES.names():
        star_like = issubclass(STRATEGIES.get(name), StarStrategy) and name != "star-paper"
        assert get_strategy(name, StrategyConfig()).cfg.random_share == (0.5 if star_like else 0.0), name
    assert get_strategy("star", StrategyConfig(random_share=0.0)).cfg.random_share == 0.0
    assert get_strategy("star", StrategyConfig(random_share=0.25)).cfg.random_share == 0.25
    assert get_strategy("star-paper", StrategyConfig(random_share=0.25)).cfg.random_share == 0.0  # pinned
    # adaptive keeps its own 0 in its STAR phase: its default is not star's.
    assert get_strategy("adaptive", StrategyConfig()).uncertainty.cfg.random_share == 0.0
