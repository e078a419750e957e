"""Uncertainty measures against a float64 NumPy reference and hand-made distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from activelora.errors import UnknownNameError
from activelora.uncertainty import measures as M
from activelora.uncertainty.measures import MEASURES, get_measure

# --------------------------------------------------------------------------- float64 reference


def ref_logp(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def ref_entropy(x):  # (..., V) -> (...)
    lp = ref_logp(x)
    return -(np.exp(lp) * lp).sum(-1)


def ref_nll(x, y):  # (T, V), (T,) -> (T,)
    return -np.take_along_axis(ref_logp(x), y[..., None], -1)[..., 0]


def ref_mi(x):  # (K, T, V) -> (T,)
    p = np.exp(ref_logp(x))
    mean = p.mean(0)
    h_mean = -(mean * np.log(mean)).sum(-1)
    return h_mean - ref_entropy(x).mean(0)


def agg(values, normalize):
    return values.mean(-1) if normalize else values.sum(-1)


# --------------------------------------------------------------------------- random logits

dims = st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(2, 24))  # K, T, V


@st.composite
def logits_and_targets(draw):
    k, t, v = draw(dims)
    x = draw(arrays(np.float32, (k, t, v), elements=st.floats(-30, 30, width=32)))
    y = draw(arrays(np.int64, (t,), elements=st.integers(0, v - 1)))
    return x, y


@settings(max_examples=80, deadline=None)
@given(logits_and_targets(), st.booleans())
def test_sequence_measures_match_float64_reference(data, normalize):
    x, y = data
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for k in range(x.shape[0]):
        np.testing.assert_allclose(M.entropy(xt[k], normalize).numpy(), agg(ref_entropy(x[k]), normalize),
                                   rtol=1e-5, atol=1e-5)
        nll = agg(ref_nll(x[k], y), normalize)
        np.testing.assert_allclose(M.pe(xt[k], yt, normalize).numpy(), nll, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(M.lc(xt[k], yt, normalize).numpy(), -np.expm1(-nll), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(M.bald(xt, normalize).numpy(), agg(np.maximum(ref_mi(x), 0), normalize),
                               rtol=1e-4, atol=2e-5)


@settings(max_examples=60, deadline=None)
@given(logits_and_targets())
def test_registry_position_values_match_reference(data):
    x, y = data
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    np.testing.assert_allclose(MEASURES.get("entropy").position_values(xt, yt).numpy(), ref_entropy(x),
                               rtol=1e-5, atol=1e-5)
    for name in ("pe", "lc"):
        expected = np.stack([ref_nll(x[k], y) for k in range(x.shape[0])])
        np.testing.assert_allclose(MEASURES.get(name).position_values(xt, yt).numpy(), expected,
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(MEASURES.get("bald").position_values(xt, yt).numpy(),
                               np.maximum(ref_mi(x), 0), rtol=1e-4, atol=2e-5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.booleans(), st.data())
def test_reduce_positions_matches_segment_sums(lengths, normalize, data):
    n = sum(lengths)
    values = np.asarray(data.draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n)), dtype=np.float64)
    out = M.reduce_positions(torch.from_numpy(values), lengths, normalize).numpy()
    edges = np.cumsum([0] + lengths)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        expected = values[a:b].sum() / (max(b - a, 1) if normalize else 1)
        assert out[i] == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- known values


@pytest.mark.parametrize("v", [2, 7, 49152])
def test_uniform_distribution(v):
    t = 3
    x = torch.zeros(t, v)
    y = torch.zeros(t, dtype=torch.long)
    assert M.entropy(x).item() == pytest.approx(t * math.log(v), rel=1e-5)
    assert M.entropy(x, normalize=True).item() == pytest.approx(math.log(v), rel=1e-5)
    assert M.pe(x, y).item() == pytest.approx(t * math.log(v), rel=1e-5)
    assert M.lc(x, y).item() == pytest.approx(1 - v ** -t, rel=1e-5)
    assert M.lc(x, y, normalize=True).item() == pytest.approx(1 - 1 / v, rel=1e-5)


def test_one_hot_has_zero_entropy_without_nan():
    x = torch.full((4, 10), float("-inf"))
    x[torch.arange(4), torch.tensor([1, 3, 5, 7])] = 0.0
    assert M.entropy(x).item() == 0.0
    assert M.pe(x, torch.tensor([1, 3, 5, 7])).item() == 0.0
    assert M.lc(x, torch.tensor([1, 3, 5, 7])).item() == 0.0
    assert M.bald(torch.stack([x, x])).item() == 0.0


def test_lc_keeps_tiny_values_of_a_confident_answer():
    # A confident answer: -log p(y|x) ~ 3e-6. 1 - exp(log p) in float32 would be quantised to
    # multiples of 6e-8 (~2% off); -expm1 on the float64 sum keeps lc = pe - pe^2/2 + ...
    x = torch.tensor([[0.0, -14.0]]).repeat(4, 1)
    y = torch.zeros(4, dtype=torch.long)
    nll = M.pe(x, y).item()
    assert 0 < nll < 1e-5
    assert M.lc(x, y).item() == pytest.approx(-math.expm1(-nll), rel=1e-9)
    assert M.lc(x, y).item() == pytest.approx(nll, rel=1e-5)


def test_bald_zero_for_identical_passes_and_log2_for_disagreeing_ones():
    x = torch.randn(5, 11)
    assert M.bald(torch.stack([x, x, x])).item() == pytest.approx(0.0, abs=1e-6)
    confident_a = torch.tensor([[50.0, 0.0]])
    confident_b = torch.tensor([[0.0, 50.0]])
    assert M.bald(torch.stack([confident_a, confident_b])).item() == pytest.approx(math.log(2), rel=1e-5)


def test_vote_entropy():
    assert M.vote(["7", "7", "7", "7"]) == 0.0
    assert M.vote(["1", "2", "3", "4"]) == pytest.approx(math.log(4))
    assert M.vote(["1", "1", "2", "2"]) == pytest.approx(math.log(2))
    assert M.vote([None, None, "3", "3"]) == pytest.approx(math.log(2))  # None is one category
    assert M.vote([]) == 0.0


def test_registry_names_and_unknown_name():
    assert MEASURES.names() == ["bald", "entropy", "lc", "pe", "vote"]
    assert get_measure("bald").min_samples == 2 and get_measure("bald").joint
    assert get_measure("vote").needs_sampled_answers and not get_measure("vote").needs_logits
    with pytest.raises(UnknownNameError, match="valid: bald, entropy, lc, pe, vote"):
        get_measure("entropi")
