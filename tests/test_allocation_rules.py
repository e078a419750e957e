"""benchmarks/allocation_rules.py: the rules' estimates and splits, against float64 references."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "allocation_rules.py"


@pytest.fixture(scope="module")
def rules(benchmark_script):
    return benchmark_script("allocation_rules")


def _feedback(rng: np.random.Generator, rounds: int, skills: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for _ in range(rounds):
        answered = rng.integers(0, 6, size=skills)
        out.append((rng.binomial(answered, rng.random(skills)), answered))
    return out


def test_smoothed_accuracy_matches_its_formula(rules):
    rng = np.random.default_rng(0)
    for _ in range(50):
        skills, rounds = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        feedback = _feedback(rng, rounds, skills)
        window, prior = int(rng.integers(1, 4)), float(rng.uniform(0.1, 3.0))
        expected = []
        for s in range(skills):
            correct = sum(float(c[s]) for c, _ in feedback[-window:])
            answered = sum(float(k[s]) for _, k in feedback[-window:])
            expected.append((correct + prior / 2) / (answered + prior))
        np.testing.assert_allclose(rules.smoothed_accuracy(feedback, window, prior), expected, rtol=0, atol=1e-15)


def test_round_robin_is_even_over_the_allowed_skills_within_room(rules):
    rng = np.random.default_rng(1)
    for _ in range(100):
        skills = int(rng.integers(1, 7))
        room = rng.integers(0, 12, size=skills)
        if room.sum() == 0:
            continue
        allowed = np.flatnonzero(rng.random(skills) < 0.7)
        n = int(rng.integers(1, room.sum() + 1))
        quota = rules.round_robin(allowed, room, n, rng)
        assert quota.sum() == n and np.all(quota <= room) and np.all(quota >= 0)
        open_allowed = [s for s in allowed if room[s] > 0]
        if quota[open_allowed].sum() < n:  # spilt over: every allowed skill is full
            assert all(quota[s] == room[s] for s in open_allowed)
        else:
            assert all(quota[s] == 0 for s in range(skills) if s not in allowed)
            # Even: no allowed skill with room left has two fewer than another.
            unfilled = [quota[s] for s in open_allowed if quota[s] < room[s]]
            if unfilled:
                assert max(quota[open_allowed]) - min(unfilled) <= 1


def test_progress_weights_follow_the_last_two_rounds(rules):
    curves = [np.linspace(0.0, 0.2, 11), np.linspace(0.0, 0.01, 11), np.linspace(0.1, 0.3, 11)]
    shares = np.array([0.4, 0.3, 0.3])
    made = rules.make_rules(curves, shares, window=2, prior=1.0, explore=0.0, learnable=0.1)
    feedback = [(np.array([0, 0, 4]), np.array([4, 4, 4])), (np.array([3, 0, 4]), np.array([4, 4, 4]))]
    room = np.array([100, 100, 100])
    # Skill 0 rose from 0.5/5 to 3.5/5, skill 1 stayed, skill 2 stayed: all 10 labels to skill 0.
    quota = made["learning-progress"](feedback, room, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(quota, [10, 0, 0])
    # Only skills 0 (gain 0.2 / 0.4 = 0.5) and 2 (0.2 / 0.3) pass a bar of 0.1; skill 1 (0.033) does not.
    quota = made["balanced-learnable"](feedback, room, 10, np.random.default_rng(0))
    assert quota[1] == 0 and sorted(quota[[0, 2]].tolist()) == [5, 5]


def test_a_simulated_run_buys_a_batch_a_round_within_the_pool(rules):
    rng = np.random.default_rng(2)
    curves = [np.linspace(0.0, 0.3, 41) for _ in range(4)]
    shares = np.full(4, 0.25)
    pool = np.array([40, 12, 20, 8])
    initial = np.array([4, 1, 2, 1])
    clustered = np.array([[30, 12, 0, 0], [10, 0, 20, 8]])  # two clusters mixing the four skills
    made = rules.make_rules(curves, shares, window=2, prior=1.0, explore=0.05, learnable=0.1)
    for membership in (np.diag(pool), clustered):
        for name, rule in made.items():
            if membership is clustered and name not in rules.FEEDBACK_RULES:
                continue
            history, feedback = rules.simulate(rule, membership, initial, 8, 5, lambda c: np.full(4, 0.5), rng)
            assert [int(c.sum()) for c in history] == [8, 16, 24, 32, 40, 48], name
            np.testing.assert_array_equal(history[0], initial)
            assert all(np.all(b >= a) for a, b in zip(history, history[1:])) and np.all(history[-1] <= pool), name
            assert all(np.all(c <= k) for c, k in feedback), name
            assert [int(k.sum()) for _, k in feedback] == [8, 8, 8, 8, 8, 8], name
            assert all(len(k) == len(membership) for _, k in feedback), name


def test_into_cells_draws_each_units_quota_from_what_it_holds(rules):
    rng = np.random.default_rng(3)
    for _ in range(100):
        rows = rng.integers(0, 5, size=(3, 4)) * (rng.random((3, 4)) < 0.6)
        quota = np.array([int(rng.integers(0, r.sum() + 1)) for r in rows])
        cells = rules.into_cells(rows, quota, rng)
        np.testing.assert_array_equal(cells.sum(axis=1), quota)
        assert np.all(cells >= 0) and np.all(cells <= rows)
    # A unit holding one skill puts its whole quota there; its draw takes nothing from the stream.
    a, b = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(rules.into_cells(np.diag([5, 7]), np.array([3, 7]), a), [[3, 0], [0, 7]])
    assert a.random() == b.random()


def test_no_random_run_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("allocation_rules: ") and "\n" not in done.stderr.strip()
    assert not (tmp_path / "out.md").exists()
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--out", str(tmp_path / "out"), "--window", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--window must be at least 1" in done.stderr


def test_round_robin_refuses_a_batch_larger_than_the_pool(rules):
    with pytest.raises(ValueError, match="a batch of 5 from a pool holding 4"):
        rules.round_robin(np.arange(2), np.array([1, 3]), 5, np.random.default_rng(0))


def test_clusters_of_another_pool_are_one_line_and_exit_2(rules, tmp_path):
    import json

    path = tmp_path / "clusters.json"
    path.write_text(json.dumps({"clusters": {"2": [{"a": 3}, {"a": 1, "b": 2}]}}))
    assert len(rules.read_clusters([path], ["a", "b"], np.array([4, 2]))["2 clusters"]) == 1
    with pytest.raises(SystemExit) as exit_:
        rules.read_clusters([path], ["a", "b"], np.array([4, 3]))
    assert exit_.value.code == 2
    path.write_text("[]")
    with pytest.raises(SystemExit) as exit_:
        rules.read_clusters([path], ["a", "b"], np.array([4, 2]))
    assert exit_.value.code == 2
