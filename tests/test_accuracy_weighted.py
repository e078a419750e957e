"""accuracy-weighted and learning-zone: the rule against a plain float64 reference, the answers
kept at selection, and the feedback as the loop and a campaign hand it over."""

from __future__ import annotations

import json

import numpy as np
import pytest

from activelora.cli import main
from activelora.config import StrategyConfig
from activelora.data.example import Example
from activelora.data.tasks import get_task
from activelora.errors import ConfigError
from activelora.run.selection_feedback import answer_checks
from activelora.strategies import get_strategy
from activelora.strategies.remedies import kmeans

from test_loop import SMALL
from test_low_budget_strategies import blobs, ref_allocate, roll_back_last_selection, started_campaign, view


# Step 3's weight of each strategy, written from its docstring's formula.
REFERENCE_WEIGHTS = {
    "accuracy-weighted": lambda p, explore: 1.0 - p + explore,
    "learning-zone": lambda p, explore: p * (1.0 - p) + explore,
}


def ref_rule(points, labelled, correct, rounds, n, seed, cfg, name="accuracy-weighted"):
    """Steps 1-3 of the module docstring written out in loops: the quotas and each cluster's
    (answered, right, p̂). The clustering is the library's k-means with the same seeded child
    generator (k-means has its own tests); everything after it is recomputed here."""
    rng = np.random.default_rng(seed)
    k = min(cfg.weighted_clusters, len(points) + len(labelled))
    labels = kmeans(np.vstack([points, labelled]), k, np.random.default_rng(rng.integers(2**63)))
    pool_labels, labelled_labels = labels[:len(points)], labels[len(points):]
    rounds_with_feedback = sorted({int(q) for q, c in zip(rounds, correct) if not np.isnan(c)})
    recent = set(rounds_with_feedback[-cfg.feedback_window:])
    answered, right = [0] * k, [0.0] * k
    for c, ok, q in zip(labelled_labels, correct, rounds):
        if not np.isnan(ok) and int(q) in recent:
            answered[c] += 1
            right[c] += float(ok)
    p_hat = [(right[c] + cfg.feedback_prior / 2) / (answered[c] + cfg.feedback_prior) for c in range(k)]
    weight = [REFERENCE_WEIGHTS[name](p, cfg.feedback_explore) for p in p_hat]
    sizes = [int((pool_labels == c).sum()) for c in range(k)]
    return ref_allocate(weight, sizes, n), answered, right, p_hat, pool_labels, weight


@pytest.mark.parametrize("name", sorted(REFERENCE_WEIGHTS))
@pytest.mark.parametrize("seed", range(6))
def test_quotas_and_estimates_against_reference(seed, name):
    rng = np.random.default_rng(100 + seed)
    cfg = StrategyConfig(weighted_clusters=int(rng.integers(2, 6)), feedback_window=int(rng.integers(1, 4)),
                         feedback_prior=float(rng.uniform(0.5, 3)), feedback_explore=float(rng.uniform(0, 0.2)))
    n_pool, m = int(rng.integers(20, 40)), int(rng.integers(5, 15))
    points, labelled = rng.normal(size=(n_pool, 3)), rng.normal(size=(m, 3))
    correct = rng.integers(0, 2, m).astype(float)
    correct[rng.random(m) < 0.2] = np.nan  # skipped or never answered
    rounds = np.sort(rng.integers(0, 4, m))
    n = int(rng.integers(1, n_pool + 1))
    got = get_strategy(name, cfg).select(
        view(points, labelled, seed=seed, labelled_correct=correct, labelled_rounds=rounds), n)
    quota, answered, right, p_hat, pool_labels, weight = ref_rule(points, labelled, correct, rounds, n, seed, cfg,
                                                                  name)
    clusters = got.info["accuracy_weighted"]["clusters"]
    assert [c["quota"] for c in clusters] == quota
    assert [c["answered"] for c in clusters] == answered
    assert [c["right"] for c in clusters] == [int(r) for r in right]
    np.testing.assert_allclose([c["accuracy"] for c in clusters], p_hat, rtol=1e-12)
    chosen = [int(i[2:]) for i in got.ids]
    assert np.bincount(pool_labels[chosen], minlength=len(quota)).tolist() == quota
    np.testing.assert_allclose(got.scores, [weight[pool_labels[i]] for i in chosen], rtol=1e-12)


def two_modes(rng, wrong_in_first: bool, rounds=(0, 0, 0, 0)):
    """Two far blobs of 20 pool points, two labelled examples in each; the first blob's were
    answered wrong (or right) and the second's the other way."""
    unlabelled = blobs(rng, np.array([[0.0, 0.0], [10.0, 0.0]]), 20)
    labelled = np.array([[0.1, 0.0], [0.0, 0.1], [10.1, 0.0], [10.0, 0.1]])
    first = 0.0 if wrong_in_first else 1.0
    correct = np.array([first, first, 1 - first, 1 - first])
    return view(unlabelled, labelled, labelled_correct=correct, labelled_rounds=np.asarray(rounds))


@pytest.mark.parametrize("wrong_in_first", [True, False])
def test_labels_go_where_the_new_labels_were_answered_wrong(wrong_in_first):
    strategy = get_strategy("accuracy-weighted", StrategyConfig(weighted_clusters=2))
    chosen = strategy.select(two_modes(np.random.default_rng(0), wrong_in_first), 8)
    in_first = sum(int(i[2:]) < 20 for i in chosen.ids)
    # p̂ = 1/6 against 5/6: weights 0.883 and 0.217, so 8 labels split 6 and 2 (largest remainder).
    assert in_first == (6 if wrong_in_first else 2)


def test_learning_zone_passes_over_the_solved_and_the_hopeless():
    """Three far blobs whose labelled examples were answered all wrong (6 of 6), half right
    (3 of 6) and all right. p̂ = 1/14, 1/2, 13/14: learning-zone's weights 0.116, 0.30, 0.116
    split 10 labels 2, 6, 2; accuracy-weighted's 0.979, 0.55, 0.121 split them 6, 3, 1."""
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    rng = np.random.default_rng(3)
    unlabelled = blobs(rng, centres, 20)
    labelled = blobs(rng, centres, 6)
    correct = np.array([0.0] * 6 + [1.0, 0.0] * 3 + [1.0] * 6)
    shares = {}
    for name in ("learning-zone", "accuracy-weighted"):
        chosen = get_strategy(name, StrategyConfig(weighted_clusters=3)).select(
            view(unlabelled, labelled, labelled_correct=correct, labelled_rounds=np.zeros(18)), 10)
        shares[name] = [sum(20 * b <= int(i[2:]) < 20 * (b + 1) for i in chosen.ids) for b in range(3)]
    assert shares == {"learning-zone": [2, 6, 2], "accuracy-weighted": [6, 3, 1]}


def test_feedback_older_than_the_window_is_not_read():
    # The first blob's wrong answers are from round 0 and its right... none; the window of one
    # round keeps only round 1 (the second blob's right answers): the first blob has no
    # feedback (p̂ = 1/2) and still gets the larger share against p̂ = 5/6.
    cfg = StrategyConfig(weighted_clusters=2, feedback_window=1)
    chosen = get_strategy("accuracy-weighted", cfg).select(
        two_modes(np.random.default_rng(1), True, rounds=(0, 0, 1, 1)), 8)
    clusters = chosen.info["accuracy_weighted"]["clusters"]
    assert sorted(c["answered"] for c in clusters) == [0, 2]
    assert sorted(c["accuracy"] for c in clusters) == pytest.approx([0.5, 2.5 / 3])


def test_no_feedback_means_equal_weights():
    rng = np.random.default_rng(2)
    pool = two_modes(rng, True)
    pool.labelled_correct = np.full(4, np.nan)
    chosen = get_strategy("accuracy-weighted", StrategyConfig(weighted_clusters=2)).select(pool, 8)
    assert sum(int(i[2:]) < 20 for i in chosen.ids) == 4
    assert {c["accuracy"] for c in chosen.info["accuracy_weighted"]["clusters"]} == {0.5}


def test_feedback_arrays_are_checked_against_the_labelled_set():
    with pytest.raises(ValueError, match="labelled_correct"):
        view(np.zeros((3, 2)), np.zeros((2, 2)), labelled_correct=np.zeros(3))
    with pytest.raises(ValueError, match="labelled_embeddings"):
        from activelora.strategies import Needs
        Needs(hidden_states=True, selection_feedback=True)
    missing = view(np.zeros((3, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="needs PoolView.labelled_correct"):
        get_strategy("accuracy-weighted", StrategyConfig()).select(missing, 2)


@pytest.mark.parametrize("field,value", [("feedback_window", 0), ("feedback_prior", 0.0),
                                         ("feedback_explore", -0.1)])
def test_settings_are_validated(field, value):
    with pytest.raises(ConfigError, match=f"strategy.{field}"):
        StrategyConfig(**{field: value})


def test_answer_checks_use_the_task_and_leave_gaps_unknown():
    task = get_task("arith")
    examples = [Example(f"e{i}", f"What is {i} + 1?", None) for i in range(4)]
    answers = {"e0": "The answer is 1.", "e1": "The answer is 7.", "e2": "The answer is 3."}
    labels = {"e0": "#### 1", "e1": "#### 2", "e3": "#### 4"}
    got = answer_checks(task, examples, answers, labels)
    assert got[:2].tolist() == [1.0, 0.0]
    assert np.isnan(got[2]) and np.isnan(got[3])  # no label; no answer


def run_small(tmp_path, monkeypatch, tiny_model_dir, *extra):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "exp"
    args = ["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", *SMALL,
            "--strategy", "accuracy-weighted", "--rounds", "2", *extra]
    assert main(args) == 0
    return out / "accuracy-weighted" / "seed-0", args


def test_the_loop_keeps_answers_and_hands_over_their_checks(tmp_path, tiny_model_dir, monkeypatch):
    run_dir, _ = run_small(tmp_path, monkeypatch, tiny_model_dir)
    state = json.loads((run_dir / "state.json").read_text())
    kept = [json.loads((run_dir / f"round-{r}" / "selection_answers.json").read_text()) for r in range(3)]
    assert [k["ids"] for k in kept] == [r["ids"] for r in state["rounds"]]
    assert [k["answered_by"] for k in kept] == ["base model", "round-0 adapter", "round-1 adapter"]
    assert all(isinstance(a, str) for k in kept for a in k["answers"])
    task = get_task("arith")
    by_id = {}
    for k in kept[:2]:
        by_id.update(zip(k["ids"], k["answers"]))
    # Round 2's choice saw rounds 0 and 1 (the default window of 2): every answer checked.
    clusters = state["rounds"][2]["info"]["accuracy_weighted"]["clusters"]
    assert sum(c["answered"] for c in clusters) == 7
    right = sum(task.is_correct(by_id[i], Example(i, "", state["labels"][i])) for i in by_id)
    assert sum(c["right"] for c in clusters) == right


def test_resumed_at_a_selection_it_decides_the_same(tmp_path, tiny_model_dir, monkeypatch):
    """The answers are read back from the run folder: redoing round 2's selection from disk
    gives the same batch, record and kept answers."""
    run_dir, args = run_small(tmp_path, monkeypatch, tiny_model_dir)
    path = run_dir / "state.json"
    finished = json.loads(path.read_text())
    kept = (run_dir / "round-2" / "selection_answers.json").read_text()
    roll_back_last_selection(path)
    (run_dir / "round-2" / "selection_answers.json").unlink()
    assert main(args) == 0
    again = json.loads(path.read_text())
    assert again["rounds"][2]["ids"] == finished["rounds"][2]["ids"]
    assert again["rounds"][2]["info"] == finished["rounds"][2]["info"]
    assert (run_dir / "round-2" / "selection_answers.json").read_text() == kept


def test_a_campaign_checks_its_suggestions_against_the_answers(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    folder = started_campaign(tmp_path, tiny_model_dir, "accuracy-weighted")
    rows = [json.loads(line) for line in (folder / "batches" / "batch-0.jsonl").read_text().splitlines()]
    # Accept the model's suggestion for two examples, correct the third, skip the fourth.
    answers = [{"id": rows[0]["id"], "answer": rows[0]["suggestion"] or "x"},
               {"id": rows[1]["id"], "answer": rows[1]["suggestion"] or "x"},
               {"id": rows[2]["id"], "answer": "not " + rows[2]["suggestion"]},
               {"id": rows[3]["id"], "skip": True}]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in answers))
    assert main(["campaign", "import", str(folder), str(path)]) == 0
    assert main(["campaign", "next", str(folder), "--quiet"]) == 0
    state = json.loads((folder / "state.json").read_text())
    clusters = state["rounds"][1]["info"]["accuracy_weighted"]["clusters"]
    task = get_task("plain")
    expected_right = sum(task.is_correct(rows[j]["suggestion"], Example(rows[j]["id"], "", answers[j]["answer"]))
                         for j in range(3))
    assert sum(c["answered"] for c in clusters) == 3  # the skipped one has no label
    assert sum(c["right"] for c in clusters) == expected_right
    assert expected_right >= 2 - sum(not rows[j]["suggestion"] for j in range(2))
