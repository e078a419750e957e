"""A round's embeddings as safetensors beside pool_scores.json: the same float64 numbers as the
JSON it replaces, and folders written before it still read."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.atomic_files import atomic_write_json
from activelora.errors import RunStateError
from activelora.run.pool_embeddings import EMBEDDINGS_FILE, move_embeddings_out, saved_embeddings


def scores_as_the_scorer_hands_them(rng, n_pool, n_labelled, dim):
    """Lists of Python floats, as PoolScorer.strategy_inputs returns them; float32 values, as a
    model's hidden states are, and a few float64 ones that float32 cannot hold."""
    pool = rng.normal(size=(n_pool, dim)).astype(np.float32).astype(np.float64)
    pool[0, 0] = 1 / 3
    return {"ids": [f"p{i}" for i in range(n_pool)], "full_scores": rng.random(n_pool).tolist(),
            "embeddings": pool.tolist(),
            "labelled_embeddings": rng.normal(size=(n_labelled, dim)).tolist()}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n_pool=st.integers(1, 30), n_labelled=st.integers(0, 10), dim=st.integers(1, 16))
def test_the_file_gives_back_what_the_json_held(tmp_path_factory, seed, n_pool, n_labelled, dim):
    folder = tmp_path_factory.mktemp("round")
    scores = scores_as_the_scorer_hands_them(np.random.default_rng(seed), n_pool, n_labelled, dim)
    atomic_write_json(folder / "pool_scores.json", move_embeddings_out(folder, scores))
    saved = json.loads((folder / "pool_scores.json").read_text())
    assert saved["embeddings_file"] == EMBEDDINGS_FILE and (folder / EMBEDDINGS_FILE).is_file()
    assert "embeddings" not in saved and "labelled_embeddings" not in saved
    assert saved["full_scores"] == scores["full_scores"] and saved["ids"] == scores["ids"]
    matrices = saved_embeddings(folder, saved)
    # The reference: the JSON of before, parsed as the select phase parsed it.
    for key in ("embeddings", "labelled_embeddings"):
        expected = np.asarray(json.loads(json.dumps(scores[key])), dtype=np.float64)
        assert matrices[key].dtype == np.float64
        np.testing.assert_array_equal(matrices[key].reshape(expected.shape), expected)
        assert matrices[key].size == expected.size


def test_a_folder_written_before_the_file_reads_as_it_is(tmp_path):
    scores = scores_as_the_scorer_hands_them(np.random.default_rng(0), 5, 2, 3)
    atomic_write_json(tmp_path / "pool_scores.json", scores)  # the old layout: matrices in the JSON
    matrices = saved_embeddings(tmp_path, json.loads((tmp_path / "pool_scores.json").read_text()))
    np.testing.assert_array_equal(matrices["embeddings"], np.asarray(scores["embeddings"]))
    assert not (tmp_path / EMBEDDINGS_FILE).exists()


def test_scores_without_embeddings_write_no_file(tmp_path):
    scores = {"ids": ["a", "b"], "full_scores": [0.1, 0.2]}
    assert move_embeddings_out(tmp_path, scores) == scores
    assert saved_embeddings(tmp_path, scores) == {}
    assert not (tmp_path / EMBEDDINGS_FILE).exists()


def test_the_file_is_smaller_than_the_json_it_replaces(tmp_path):
    scores = scores_as_the_scorer_hands_them(np.random.default_rng(1), 200, 20, 64)
    atomic_write_json(tmp_path / "pool_scores.json", move_embeddings_out(tmp_path, scores))
    as_json = len(json.dumps(scores["embeddings"])) + len(json.dumps(scores["labelled_embeddings"]))
    assert (tmp_path / EMBEDDINGS_FILE).stat().st_size < as_json / 2


def test_a_missing_or_broken_file_is_one_run_state_error_naming_it(tmp_path):
    with pytest.raises(RunStateError, match=f"{EMBEDDINGS_FILE}: cannot read"):
        saved_embeddings(tmp_path, {"embeddings_file": EMBEDDINGS_FILE})
    (tmp_path / EMBEDDINGS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(RunStateError, match="--restart"):
        saved_embeddings(tmp_path, {"embeddings_file": EMBEDDINGS_FILE})
