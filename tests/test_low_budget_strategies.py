"""typiclust, probcover, cluster-weighted, adaptive, star-weighted: each rule against a plain
float64 reference.

The references below are written out in numpy from the rules in the modules' docstrings, with
full (N, N) distance matrices from differences, and never call the code under test.
"""

from __future__ import annotations

import dataclasses

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from activelora.cli import main
from activelora.config import StrategyConfig
from activelora.errors import ConfigError, PoolExhaustedError
from activelora.run.pool_embeddings import saved_embeddings
from activelora.strategies import PoolView, get_strategy
from activelora.strategies.adaptive import rank_stability
from activelora.strategies.cluster_weighted import allocate, weighted_picks_from_clusters
from activelora.strategies.geometry import BLOCK_ELEMENTS, neighbour_distances
from activelora.strategies.probcover import coverage_radius, probcover_picks
from activelora.strategies.remedies import kmeans
from activelora.strategies.typiclust import picks_from_clusters, typicality

from test_loop import SMALL  # the loop tests' small run: 20-example pool, 4 initial labels, rounds of 3

NEW = ["typiclust", "probcover", "cluster-weighted", "adaptive", "star-weighted", "accuracy-weighted",
       "learning-zone"]


# ----------------------------------------------------------------------------- references


def ref_distances(points):
    p = np.asarray(points, dtype=np.float64)
    return np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))


def ref_typicality(points):
    m = len(points)
    k = min(20, m - 1)
    if k < 1:
        return np.zeros(m)
    d = ref_distances(points)
    out = np.empty(m)
    for i in range(m):
        others = np.sort(np.delete(d[i], i))
        out[i] = 1.0 / others[:k].mean()
    return out


def ref_typiclust(points, clusters, m, n, tie_rank):
    """TypiClust's picks for given clusters: fewest labelled/picked first, then largest, then
    lower label; within, the most typical unlabelled point (ties: lower tie_rank)."""
    typ = np.zeros(len(points))
    for c in set(clusters.tolist()):
        members = [i for i in range(len(points)) if clusters[i] == c]
        typ[members] = ref_typicality(points[members])
    counts = {c: sum(1 for i in range(m) if clusters[i] == c) for c in set(clusters.tolist())}
    sizes = {c: int((clusters == c).sum()) for c in counts}
    picked = []
    for _ in range(n):
        open_clusters = [c for c in counts if any(clusters[m + j] == c and j not in picked
                                                  for j in range(len(points) - m))]
        c = sorted(open_clusters, key=lambda c: (counts[c], -sizes[c], c))[0]
        free = [j for j in range(len(points) - m) if clusters[m + j] == c and j not in picked]
        best = sorted(free, key=lambda j: (-typ[m + j], tie_rank[j]))[0]
        picked.append(best)
        counts[c] += 1
    return picked


def ref_probcover(points, m, n, delta, tie_rank, fill):
    adjacent = ref_distances(points) <= delta
    covered = adjacent[:m].any(0) if m else np.zeros(len(points), bool)
    picked = []
    while len(picked) < n:
        free = [j for j in range(len(points) - m) if j not in picked]
        gains = {j: int((adjacent[m + j] & ~covered).sum()) for j in free}
        best = sorted(free, key=lambda j: (-gains[j], tie_rank[j]))[0]
        if gains[best] == 0:
            break
        picked.append(best)
        covered |= adjacent[m + best]
    picked += [j for j in fill if j not in picked][: n - len(picked)]
    return picked


def ref_allocate(weights, available, n):
    quota = [0] * len(weights)
    left = n
    while left:
        open_ = [c for c in range(len(weights)) if available[c] - quota[c] > 0]
        w = [weights[c] for c in open_]
        if sum(w) <= 0:
            w = [1.0] * len(open_)
        exact = [left * x / sum(w) for x in w]
        share = [int(np.floor(e)) for e in exact]
        order = sorted(range(len(open_)), key=lambda j: (-(exact[j] - share[j]), -w[j], open_[j]))
        for j in order[: left - sum(share)]:
            share[j] += 1
        for j, c in enumerate(open_):
            give = min(share[j], available[c] - quota[c])
            quota[c] += give
            left -= give
    return quota


def blobs(rng, centres, per, spread=0.05):
    return np.vstack([c + spread * rng.normal(size=(per, len(c))) for c in centres])


def view(unlabelled, labelled=None, *, seed=0, full=None, base=None, round_index=0, ids=None, **extra):
    n = len(unlabelled)
    return PoolView(ids=ids or [f"ex{i:03d}" for i in range(n)], rng=np.random.default_rng(seed),
                    embeddings=unlabelled, labelled_embeddings=labelled if labelled is not None else np.zeros((0, 2)),
                    full_scores=full, base_scores=base, round_index=round_index, **extra)


def any_view(strategy, rng, n=30, m=6, d=5, **extra):
    scores = {}
    if strategy.needs().full_scores:
        scores["full"] = rng.random(n)
    if strategy.needs().base_scores:
        scores["base"] = rng.random(n) * 10
    if strategy.needs().selection_feedback:  # some right, some wrong, one never answered
        extra.setdefault("labelled_correct", np.where(np.arange(m) == 0, np.nan, rng.integers(0, 2, m)))
        extra.setdefault("labelled_rounds", np.arange(m) // 3)
    return view(rng.normal(size=(n, d)), rng.normal(size=(m, d)), **scores, **extra)


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("seed", range(4))
def test_neighbour_distances_against_brute_force(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(37, 6)) * 3
    points[5] = points[9]  # an exact duplicate: a neighbour at distance 0, never itself
    monkeypatch.setattr("activelora.strategies.geometry.BLOCK_ELEMENTS", 100)  # many row blocks
    got = neighbour_distances(points, 7)
    d = ref_distances(points)
    for i in range(len(points)):
        np.testing.assert_allclose(got[i], np.sort(np.delete(d[i], i))[:7], rtol=1e-9, atol=1e-9)
    assert got[5, 0] < 1e-6 and BLOCK_ELEMENTS >= 2**20


@pytest.mark.parametrize("seed", range(5))
def test_typicality_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    for m in (1, 2, 5, 21, 40):  # k = min(20, m - 1): 0, 1, 4, 20, 20
        points = rng.normal(size=(m, 4))
        np.testing.assert_allclose(typicality(points), ref_typicality(points), rtol=1e-9)


def test_kmeans_blocks_change_nothing(monkeypatch):
    rng = np.random.default_rng(3)
    points = rng.normal(size=(90, 5))
    whole = kmeans(points, 7, np.random.default_rng(11))
    monkeypatch.setattr("activelora.strategies.geometry.BLOCK_ELEMENTS", 64)
    assert np.array_equal(kmeans(points, 7, np.random.default_rng(11)), whole)


# ----------------------------------------------------------------------------- typiclust


@pytest.mark.parametrize("seed", range(8))
def test_typiclust_picks_against_reference(seed):
    rng = np.random.default_rng(seed)
    m, u = int(rng.integers(0, 8)), int(rng.integers(8, 40))
    points = rng.normal(size=(m + u, 3))
    clusters = rng.integers(0, int(rng.integers(2, 10)), size=m + u)
    clusters = np.unique(clusters, return_inverse=True)[1]  # labels 0..k-1, none empty
    n = int(rng.integers(1, u + 1))
    tie_rank = rng.permutation(u)
    got, typ, _ = picks_from_clusters(points, clusters, m, n, tie_rank)
    assert got.tolist() == ref_typiclust(points, clusters, m, n, tie_rank)
    expected = np.zeros(m + u)
    for c in range(clusters.max() + 1):
        expected[clusters == c] = ref_typicality(points[clusters == c])
    np.testing.assert_allclose(typ, expected[m + got], rtol=1e-9)


def test_typiclust_takes_the_centre_of_each_uncovered_blob():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    unlabelled = blobs(rng, centres, 15)
    labelled = centres[:1] + 0.01  # blob 0 already holds a label
    selection = get_strategy("typiclust", StrategyConfig()).select(view(unlabelled, labelled), 3)
    # K = 1 + 3 = 4 clusters = the blobs; blob 0 is covered, so the most typical of 1, 2, 3.
    picked = sorted(int(i[2:]) for i in selection.ids)
    assert picked == [b * 15 + int(np.argmax(ref_typicality(unlabelled[b * 15:(b + 1) * 15]))) for b in (1, 2, 3)]
    assert selection.info["typiclust"] == {"clusters": 4, "uncovered_clusters": 3}


def test_typiclust_fills_past_the_uncovered_clusters():
    rng = np.random.default_rng(1)
    unlabelled = blobs(rng, np.array([[0.0, 0.0], [10.0, 0.0]]), 10)
    selection = get_strategy("typiclust", StrategyConfig()).select(view(unlabelled), 12)
    assert len(set(selection.ids)) == 12  # more picks than clusters: every pick still distinct


# ----------------------------------------------------------------------------- probcover


@pytest.mark.parametrize("seed", range(8))
def test_probcover_picks_against_reference(seed):
    rng = np.random.default_rng(seed)
    m, u = int(rng.integers(0, 6)), int(rng.integers(5, 40))
    points = rng.normal(size=(m + u, 3))
    # A radius halfway between two neighbouring pairwise distances: no pair sits on the boundary.
    steps = np.unique(ref_distances(points)[np.triu_indices(m + u, 1)])
    j = int(rng.integers(0, len(steps) // 3))
    delta = (steps[j] + steps[j + 1]) / 2
    n = int(rng.integers(1, u + 1))
    tie_rank, fill = rng.permutation(u), rng.permutation(u)
    got, gains, info = probcover_picks(points[m:], points[:m], n, delta, tie_rank, fill)
    assert got.tolist() == ref_probcover(points, m, n, delta, tie_rank, fill)
    assert info["random_fill"] == int((gains == 0).sum())


@pytest.mark.parametrize("share", [0.01, 0.1, 0.5])
def test_coverage_radius_against_brute_force(share):
    points = np.random.default_rng(4).normal(size=(61, 4))
    k = max(1, round(share * 60))
    d = ref_distances(points)
    kth = [np.sort(np.delete(d[i], i))[k - 1] for i in range(61)]
    assert coverage_radius(points, share) == pytest.approx(np.median(kth), rel=1e-9)


def test_probcover_delta_setting_and_its_record():
    rng = np.random.default_rng(2)
    pool = view(rng.normal(size=(20, 3)))
    chosen = get_strategy("probcover", StrategyConfig(probcover_delta=0.7)).select(pool, 4)
    assert chosen.info["probcover"]["delta"] == 0.7
    default = get_strategy("probcover", StrategyConfig()).select(view(pool.embeddings), 4)
    assert default.info["probcover"]["delta"] == pytest.approx(coverage_radius(pool.embeddings, 0.02))


def test_probcover_labelled_balls_cover_first():
    # Two tight blobs; a label sits in blob A, so every pick goes to blob B first.
    rng = np.random.default_rng(5)
    unlabelled = blobs(rng, np.array([[0.0, 0.0], [10.0, 0.0]]), 10, spread=0.1)
    pool = view(unlabelled, np.array([[0.0, 0.0]]))
    chosen = get_strategy("probcover", StrategyConfig(probcover_delta=2.0)).select(pool, 1)
    assert int(chosen.ids[0][2:]) >= 10 and chosen.scores == [10.0]


# ----------------------------------------------------------------------------- cluster-weighted


@pytest.mark.parametrize("seed", range(10))
def test_allocate_against_reference(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 9))
    available = rng.integers(0, 12, size=c)
    available[0] = max(available[0], 1)
    weights = rng.random(c) * (rng.random(c) > 0.2)
    n = int(rng.integers(1, available.sum() + 1))
    got = allocate(weights, available, n)
    assert got.tolist() == ref_allocate(weights.tolist(), available.tolist(), n)
    assert got.sum() == n and (got <= available).all()


@pytest.mark.parametrize("seed", range(5))
def test_cluster_weighted_against_reference(seed):
    rng = np.random.default_rng(seed)
    k, per = 5, 8
    points = rng.normal(size=(k * per, 3))
    labels = np.repeat(np.arange(k), per)
    uncertainty = rng.random(k * per) * 4 + 1
    n = 3  # quotas of 0 or 1 here: the reference pick is the cluster's most typical point
    tie_rank = rng.permutation(k * per)
    got, scores, info = weighted_picks_from_clusters(points, labels, uncertainty, n, rng, tie_rank)
    norm = (uncertainty - uncertainty.min()) / (uncertainty.max() - uncertainty.min())
    weight = np.array([1.0 - (1.0 - norm[labels == c]).mean() for c in range(k)])
    quota = ref_allocate(weight.tolist(), [per] * k, n)
    assert [c["quota"] for c in info["clusters"]] == quota
    np.testing.assert_allclose([c["confidence"] for c in info["clusters"]], 1.0 - weight, rtol=1e-12)
    expected = []
    for c in sorted(range(k), key=lambda c: (-weight[c], c)):
        if quota[c]:
            members = np.flatnonzero(labels == c)
            typ = ref_typicality(points[members])
            expected.append(int(members[sorted(range(per), key=lambda j: (-typ[j], tie_rank[members[j]]))[0]]))
    assert got.tolist() == expected
    np.testing.assert_allclose(scores, [weight[labels[i]] for i in got], rtol=1e-12)


def test_cluster_weighted_spends_more_where_the_model_is_unsure():
    rng = np.random.default_rng(6)
    unlabelled = blobs(rng, np.array([[0.0, 0.0], [10.0, 0.0]]), 20)
    full = np.r_[np.full(20, 0.1), np.full(20, 3.0)] + 0.01 * rng.random(40)
    chosen = get_strategy("cluster-weighted", StrategyConfig(weighted_clusters=2)).select(
        view(unlabelled, full=full), 6)
    in_unsure = sum(int(i[2:]) >= 20 for i in chosen.ids)
    assert in_unsure == 6  # the sure blob's weight is ~0: every label goes to the unsure one
    assert len(set(chosen.ids)) == 6


# ----------------------------------------------------------------------------- star-weighted


@pytest.mark.parametrize("seed", range(6))
def test_star_weighted_against_reference(seed):
    """Four far-apart blobs (k-means finds them whatever its seeding); the reference recomputes
    STAR's score, the quotas from the tuned term alone and the top picks per blob in float64."""
    rng = np.random.default_rng(seed)
    k, per, t = 4, 9, int(rng.integers(0, 5))
    points = blobs(rng, np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]]), per, spread=0.5)
    blob = np.repeat(np.arange(k), per)
    full, base = rng.random(k * per) * 3, rng.random(k * per) * 10 + 5
    ids = [f"ex{i:03d}" for i in rng.permutation(k * per)]  # the id order is not the position order
    n = int(rng.integers(1, 14))
    got = get_strategy("star-weighted", StrategyConfig(weighted_clusters=k)).select(
        view(points, full=full, base=base, round_index=t, ids=ids), n)

    lam = 1.0 - 0.1 * (t + 1)  # star's default linear schedule
    norm_full = (full - full.min()) / (full.max() - full.min())
    norm_base = (base - base.min()) / (base.max() - base.min())
    star = lam * norm_base + (1.0 - lam) * norm_full
    weight = [float(norm_full[blob == c].mean()) for c in range(k)]
    quota = ref_allocate(weight, [per] * k, n)
    expected = []
    for c in sorted(range(k), key=lambda c: -weight[c]):
        members = [i for i in range(k * per) if blob[i] == c]
        expected += sorted(members, key=lambda i: (-star[i], ids[i]))[: quota[c]]
    assert got.ids == [ids[i] for i in expected]
    np.testing.assert_allclose(got.scores, star[expected], rtol=1e-12)
    assert got.info["lambda"] == pytest.approx(lam)
    assert sorted(c["quota"] for c in got.info["star_weighted"]["clusters"]) == sorted(quota)


def test_star_weighted_lets_the_base_term_rank_but_not_share_out():
    """The base term piles up on one blob; the quotas follow the tuned term, so that blob gets
    only its share, and star alone would have taken the whole batch there."""
    rng = np.random.default_rng(3)
    points = blobs(rng, np.array([[0.0, 0.0], [10.0, 0.0]]), 20)
    base = np.r_[np.full(20, 9.0), np.full(20, 1.0)] + rng.random(40)  # blob 0: the base model is lost
    full = np.r_[np.full(20, 1.0), np.full(20, 1.2)] + rng.random(40)  # the tuned model: much the same
    pool = dict(full=full, base=base, round_index=0)
    # Both rank at the first query, with every label of the batch (no mixed batch for star).
    config = StrategyConfig(weighted_clusters=2, cold_start_rounds=0, random_share=0.0)
    star_ids = get_strategy("star", config).select(view(points, **pool), 8).ids
    weighted_ids = get_strategy("star-weighted", config).select(view(points, **pool), 8).ids
    assert sum(int(i[2:]) < 20 for i in star_ids) == 8
    assert 2 <= sum(int(i[2:]) < 20 for i in weighted_ids) <= 6


def test_star_weighted_trains_and_scores_as_star():
    star, weighted = (get_strategy(name, StrategyConfig()).needs() for name in ("star", "star-weighted"))
    assert (weighted.full_scores, weighted.base_scores, weighted.mc_samples, weighted.measure,
            weighted.hybrid_regularization) == (star.full_scores, star.base_scores, star.mc_samples, star.measure,
                                                star.hybrid_regularization)
    assert weighted.hidden_states and not star.hidden_states


# ----------------------------------------------------------------------------- adaptive


@pytest.mark.parametrize("seed", range(6))
def test_rank_stability_is_spearman(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=25).astype(float)  # ties on purpose
    b = a + rng.normal(size=25) * seed
    assert rank_stability(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert rank_stability(np.ones(5), b[:5]) is None


def test_adaptive_switches_on_its_signal_and_latches():
    rng = np.random.default_rng(7)
    cfg = StrategyConfig(adaptive_stability=0.8)
    full, base = rng.random(30), rng.random(30)
    emb, lab = rng.normal(size=(30, 4)), rng.normal(size=(5, 4))

    def pool(**extra):
        return view(emb, lab, full=full, base=base, round_index=2, seed=3, **extra)

    adaptive = get_strategy("adaptive", cfg)
    first = adaptive.select(pool(), 4)  # no previous round: representative
    assert first.info["adaptive"] == {"phase": "typiclust", "signal": None, "threshold": 0.8, "latched": False}
    assert first.ids == get_strategy("typiclust", cfg).select(pool(), 4).ids
    noisy = full + rng.normal(size=30) * 2  # the ranking moved a lot: stay representative
    unstable = adaptive.select(pool(previous_full_scores=noisy), 4)
    assert unstable.info["adaptive"]["phase"] == "typiclust"
    assert unstable.info["adaptive"]["signal"] == pytest.approx(spearmanr(noisy, full).statistic)
    assert unstable.info["adaptive"]["signal"] < 0.8
    stable = adaptive.select(pool(previous_full_scores=full * 2 + 1), 4)  # same ranking: rho = 1
    assert stable.info["adaptive"]["phase"] == "star" and stable.info["adaptive"]["signal"] == pytest.approx(1.0)
    # adaptive's STAR phase keeps adaptive's own share of random draws (none by default), not star's.
    star = get_strategy("star", dataclasses.replace(cfg, random_share=0.0)).select(pool(), 4)
    assert stable.ids == star.ids and stable.info["lambda"] == star.info["lambda"]
    latched = adaptive.select(pool(previous_full_scores=noisy, previous_info=stable.info), 4)
    assert latched.info["adaptive"]["phase"] == "star" and latched.info["adaptive"]["latched"]


def test_adaptive_needs_stars_scores_and_the_previous_round():
    needs = get_strategy("adaptive", StrategyConfig()).needs()
    star = get_strategy("star", StrategyConfig()).needs()
    assert needs.previous_scores and needs.labelled_embeddings and needs.hybrid_regularization
    assert (needs.full_scores, needs.base_scores, needs.mc_samples, needs.measure) == (
        star.full_scores, star.base_scores, star.mc_samples, star.measure)


# ----------------------------------------------------------------------------- shared contract


@pytest.mark.parametrize("name", NEW)
def test_deterministic_distinct_within_pool_and_batch_sized(name):
    strategy = get_strategy(name, StrategyConfig())
    for n in (1, 5, 30):
        a = strategy.select(any_view(strategy, np.random.default_rng(0), seed=4), n)
        b = strategy.select(any_view(strategy, np.random.default_rng(0), seed=4), n)
        assert a.ids == b.ids and a.info == b.info
        assert len(a.ids) == len(set(a.ids)) == len(a.scores) == n
        assert set(a.ids) <= {f"ex{i:03d}" for i in range(30)}
    other = strategy.select(any_view(strategy, np.random.default_rng(0), seed=5), 5)
    assert len(other.ids) == 5  # another seed: still a valid batch


@pytest.mark.parametrize("name", NEW)
def test_pool_smaller_than_batch(name):
    strategy = get_strategy(name, StrategyConfig())
    pool = any_view(strategy, np.random.default_rng(1), n=4)
    with pytest.raises(PoolExhaustedError):
        strategy.select(pool, 5)
    assert sorted(strategy.select(pool, 4).ids) == pool.ids
    assert strategy.select(pool, 0).ids == []
    one = any_view(strategy, np.random.default_rng(1), n=1, m=0)
    assert strategy.select(one, 1).ids == ["ex000"]


@pytest.mark.parametrize("name", NEW)
def test_meta_is_refused_and_never_needed(name):
    strategy = get_strategy(name, StrategyConfig())
    assert not strategy.needs().gold_meta and not strategy.needs().gold_answers
    pool = any_view(strategy, np.random.default_rng(2))
    pool.meta = [{"skill": "a"}] * len(pool)
    with pytest.raises(ValueError, match="label-free"):
        strategy.select(pool, 3)


@pytest.mark.parametrize("name", NEW)
def test_missing_embeddings_are_named(name):
    strategy = get_strategy(name, StrategyConfig())
    pool = any_view(strategy, np.random.default_rng(3))
    pool.labelled_embeddings = None
    if name in ("cluster-weighted", "star-weighted"):
        pool.embeddings = None  # they cluster only the pool
    with pytest.raises(ValueError, match="needs PoolView"):
        strategy.select(pool, 3)


@pytest.mark.parametrize("field,value,message", [
    ("probcover_share", 0.0, "strategy.probcover_share"), ("probcover_delta", -1.0, "strategy.probcover_delta"),
    ("weighted_clusters", 0, "strategy.weighted_clusters"), ("adaptive_stability", 1.5, "strategy.adaptive_stability"),
])
def test_settings_are_validated(field, value, message):
    with pytest.raises(ConfigError, match=message):
        StrategyConfig(**{field: value})


def test_needs_and_pool_view_check_the_new_fields():
    from activelora.strategies import Needs

    with pytest.raises(ValueError, match="hidden_states"):
        Needs(labelled_embeddings=True)
    with pytest.raises(ValueError, match="full_scores"):
        Needs(previous_scores=True)
    with pytest.raises(ValueError, match="labelled_embeddings"):
        view(np.zeros((3, 4)), np.zeros((2, 5)))  # another width than the pool's
    with pytest.raises(ValueError, match="previous_full_scores"):
        view(np.zeros((3, 4)), previous_full_scores=np.zeros(2))
    assert view(np.zeros((3, 4)), []).labelled_embeddings.shape == (0, 4)  # none yet, saved as []


# ----------------------------------------------------------------------------- embeddings


class RaisingMeta(dict):
    """A meta that fails on any read: proves the embedding pass never looks at it."""

    def __getitem__(self, key):
        raise AssertionError("meta was read")

    def get(self, *args):
        raise AssertionError("meta was read")


def test_prompt_embeddings_match_one_prompt_at_a_time(make_tiny_llama, smol_tokenizer, fake_task):
    import torch

    from activelora.data.example import Example
    from activelora.uncertainty.embeddings import prompt_embeddings

    model, task = make_tiny_llama(), fake_task
    examples = [Example(f"e{i}", "what is " + "x " * i + str(i), None, meta=RaisingMeta()) for i in range(7)]
    got = prompt_embeddings(model, smol_tokenizer, task, examples, batch_size=3)
    assert got.shape == (7, model.config.hidden_size)
    for ex, row in zip(examples, got):
        ids = smol_tokenizer(task.prompt(ex))["input_ids"]
        with torch.no_grad():
            hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0].double()
        np.testing.assert_allclose(row, hidden.mean(0).numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- through the loop


@pytest.mark.parametrize("name", NEW)
def test_runs_through_the_loop(name, tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "exp"
    extra = ["--set", "strategy.adaptive_stability=-1"] if name == "adaptive" else []  # switch at t = 1
    assert main(["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", *SMALL,
                 "--strategy", name, "--rounds", "2", *extra]) == 0
    run_dir = out / name / "seed-0"
    state = json.loads((run_dir / "state.json").read_text())
    ids = [i for r in state["rounds"] for i in r["ids"]]
    assert [len(r["ids"]) for r in state["rounds"]] == [4, 3, 3] and len(set(ids)) == 10
    scores = json.loads((run_dir / "round-1" / "pool_scores.json").read_text())
    assert scores["labelled_ids"] == state["rounds"][0]["ids"] + state["rounds"][1]["ids"]
    assert "embeddings" not in scores and scores["embeddings_file"] == "pool_embeddings.safetensors"
    matrices = saved_embeddings(run_dir / "round-1", scores)
    assert matrices["labelled_embeddings"].shape == (7, 32)
    assert matrices["embeddings"].shape == (len(scores["ids"]), 32)
    if name == "adaptive":
        phases = [r["info"]["adaptive"]["phase"] for r in state["rounds"][1:]]
        assert phases == ["typiclust", "star"]  # no previous round at t = 0; rho >= -1 at t = 1
        assert state["rounds"][2]["info"]["adaptive"]["signal"] is not None


def test_adaptive_cannot_run_in_a_campaign(tmp_path):
    from activelora.campaign.workflow import init_campaign
    from activelora.config import Config

    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"id": f"q{i}", "question": f"{i}+1", "answer": None}) + "\n"
                            for i in range(5)))
    with pytest.raises(ConfigError, match="previous round"):
        init_campaign(tmp_path / "c", pool_file=str(pool), config=Config(), task="arith", strategy="adaptive")
    assert not (tmp_path / "c").exists()


def test_adaptive_resumed_at_a_selection_decides_the_same(tmp_path, tiny_model_dir, monkeypatch):
    """Its decision is read back from the run folder: redoing round 2's selection from disk
    (the state rolled back to just after round 1's scoring) gives the same batch and record."""
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "exp"
    args = ["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", *SMALL,
            "--strategy", "adaptive", "--rounds", "2", "--set", "strategy.adaptive_stability=0.0"]
    assert main(args) == 0
    path = out / "adaptive" / "seed-0" / "state.json"
    finished = json.loads(path.read_text())
    roll_back_last_selection(path)
    assert main(args) == 0
    again = json.loads(path.read_text())
    assert again["rounds"][2]["ids"] == finished["rounds"][2]["ids"]
    assert again["rounds"][2]["info"] == finished["rounds"][2]["info"]
    assert finished["rounds"][2]["info"]["adaptive"]["signal"] is not None


def test_typiclust_in_a_campaign_sees_the_asked_examples(tmp_path, tiny_model_dir, monkeypatch):
    import activelora.campaign.round as campaign_round

    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    seen = []
    original = campaign_round.strategy_inputs
    monkeypatch.setattr(campaign_round, "strategy_inputs",
                        lambda *a, **k: seen.append([ex.id for ex in k["labelled"]]) or original(*a, **k))
    folder = started_campaign(tmp_path, tiny_model_dir, "typiclust")

    def batch(n):
        return [json.loads(line)["id"] for line in (folder / "batches" / f"batch-{n}.jsonl").read_text().splitlines()]

    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": i, "answer": "1"}) + "\n" for i in batch(0)))
    assert main(["campaign", "import", str(folder), str(answers)]) == 0
    assert main(["campaign", "next", str(folder), "--quiet"]) == 0
    assert sorted(seen[0]) == sorted(batch(0))  # the labelled set, embedded beside the pool
    assert len(set(batch(1))) == 4 and not set(batch(1)) & set(batch(0))


def started_campaign(tmp_path, tiny_model_dir, strategy: str):
    """A campaign of 12 prompts (plain task, the tiny model, batches of 4) with ``strategy``,
    its first round built: ``batches/batch-0.jsonl`` is waiting for answers."""
    pool = tmp_path / "prompts.jsonl"
    pool.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} plus {i + 1}?"}) + "\n"
                            for i in range(12)))
    folder = tmp_path / "camp"
    tiny = [a for setting in zip(SMALL[::2], SMALL[1::2]) if not setting[1].startswith("loop.") for a in setting]
    assert main(["campaign", "init", str(folder), "--pool", str(pool), "--model", str(tiny_model_dir),
                 "--task", "plain", "--batch-size", "4", "--stop-set", "4", "--strategy", strategy, *tiny]) == 0
    assert main(["campaign", "next", str(folder), "--quiet"]) == 0
    return folder


def roll_back_last_selection(state_path) -> None:
    """Rewrite a finished run's ``state.json`` as it stood just after the round before last was
    scored: the last round's selection and labels gone, so the next start selects it again."""
    state = json.loads(state_path.read_text())
    last = state["rounds"].pop()
    for i in last["ids"]:
        state["labels"].pop(i)
    state["phase"] = state["rounds"][-1]["phase"] = "score"
    state_path.write_text(json.dumps(state))
