"""k-center greedy against a brute-force reference; the diversity step inside select()."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.config import StrategyConfig
from activelora.strategies import PoolView, candidate_count, get_strategy, k_center_greedy


def brute_force_k_center(points: np.ndarray, n: int) -> list[int]:
    """Reference: recompute every unchosen point's distance to every chosen one each step."""
    chosen = [0]
    while len(chosen) < n:
        best, best_distance = None, -1.0
        for i in range(len(points)):
            if i in chosen:
                continue
            distance = min(float(np.sqrt(((points[i] - points[j]) ** 2).sum())) for j in chosen)
            if distance > best_distance:  # strict: ties keep the lower index
                best, best_distance = i, distance
        chosen.append(best)
    return chosen[:n]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 12), d=st.integers(1, 4), data=st.data())
def test_matches_brute_force(seed, m, d, data):
    n = data.draw(st.integers(0, m))
    rng = np.random.default_rng(seed)
    # Integer grid coordinates make exact distance ties (and duplicates) common.
    points = rng.integers(-2, 3, size=(m, d)).astype(np.float64)
    assert k_center_greedy(points, n).tolist() == brute_force_k_center(points, n)


def test_matches_brute_force_continuous():
    rng = np.random.default_rng(1)
    for _ in range(20):
        points = rng.normal(size=(15, 3))
        assert k_center_greedy(points, 7).tolist() == brute_force_k_center(points, 7)


def test_avoids_near_duplicates():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    # Each cluster: 5 near-identical points; rows ordered so cluster 0 is the best block.
    points = np.concatenate([c + 1e-6 * rng.normal(size=(5, 2)) for c in centres])
    picks = k_center_greedy(points, 4)
    assert picks[0] == 0
    assert sorted(int(p) // 5 for p in picks) == [0, 1, 2, 3]  # one per cluster


def test_exact_duplicates_never_repicked():
    points = np.zeros((4, 3))
    assert k_center_greedy(points, 4).tolist() == [0, 1, 2, 3]


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        k_center_greedy(np.zeros(5), 2)
    with pytest.raises(ValueError):
        k_center_greedy(np.zeros((3, 2)), 4)
    with pytest.raises(ValueError):
        k_center_greedy(np.array([[0.0], [np.nan]]), 1)


def test_candidate_count():
    assert candidate_count(10, 1.5, 100) == 15
    assert candidate_count(100, 1.1, 1000) == 110  # not 111 from 110.00000000000001
    assert candidate_count(10, 3.0, 20) == 20


def test_select_with_diversity_spreads_over_clusters():
    # Top uncertainty sits in one cluster of near-duplicates; diversity picks across clusters.
    ids = [f"q{i:02d}" for i in range(20)]
    cluster = np.repeat(np.arange(4), 5)  # ids q00-q04 cluster 0, ...
    embeddings = np.eye(4)[cluster] * 10 + 1e-3 * np.random.default_rng(0).normal(size=(20, 4))
    full = np.linspace(1.0, 0.0, 20)  # best in cluster 0, then cluster 1, ...
    plain = get_strategy("entropy", StrategyConfig())
    diverse = get_strategy("entropy", StrategyConfig(diversity_factor=5.0))
    assert diverse.needs().hidden_states and not plain.needs().hidden_states

    def pool():
        return PoolView(ids=ids, full_scores=full, embeddings=embeddings, rng=np.random.default_rng(0))

    top = plain.select(pool(), 4)
    assert top.ids == ["q00", "q01", "q02", "q03"]
    spread = diverse.select(pool(), 4)
    assert spread.ids[0] == "q00"  # starts from the highest-scoring candidate
    assert sorted(cluster[ids.index(i)] for i in spread.ids) == [0, 1, 2, 3]
    assert spread.info["diversity_candidates"] == 20
    assert spread.scores == [full[ids.index(i)] for i in spread.ids]


def test_diversity_needs_embeddings():
    strategy = get_strategy("entropy", StrategyConfig(diversity_factor=2.0))
    pool = PoolView(ids=["a", "b", "c"], full_scores=np.array([1.0, 2.0, 3.0]), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="embeddings"):
        strategy.select(pool, 1)


def test_random_never_runs_diversity():
    strategy = get_strategy("random", StrategyConfig(diversity_factor=2.0))
    assert not strategy.needs().hidden_states
    pool = PoolView(ids=["a", "b", "c"], rng=np.random.default_rng(0))
    assert len(strategy.select(pool, 2).ids) == 2
