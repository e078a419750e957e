"""Paired comparisons against random: McNemar's exact test and the t-interval against
independent float64 references (scipy), and the report's sentence on real run folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from activelora.experiment.paired import discordance, label_saving, labels_to_reach, mcnemar_exact, t_interval
from activelora.experiment.report import compare


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60))
def test_mcnemar_matches_scipy_binomial_test(b, c):
    reference = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(reference, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=2, max_size=12))
def test_t_interval_matches_scipy(values):
    mean, lo, hi = t_interval(values)
    x = np.asarray(values, dtype=np.float64)
    ref_lo, ref_hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x)) if x.std() > 0 else (x.mean(), x.mean())
    assert mean == pytest.approx(x.mean(), abs=1e-12)
    assert (lo, hi) == (pytest.approx(ref_lo, abs=1e-9), pytest.approx(ref_hi, abs=1e-9))


accuracy_curves = st.integers(1, 8).flatmap(lambda rounds: st.tuples(
    st.lists(st.floats(0, 1), min_size=rounds, max_size=rounds),
    st.lists(st.floats(0, 1), min_size=rounds, max_size=rounds)))


def reach_float64(labels: np.ndarray, accuracy: np.ndarray, target: float) -> float | None:
    """The first crossing of the piecewise-linear curve: numpy's linear interpolation of
    labels against accuracy over the segment that crosses (the curve inverted there)."""
    hits = np.flatnonzero(accuracy >= target)
    if hits.size == 0:
        return None
    i = hits[0]
    if i == 0:
        return float(labels[0])
    # accuracy rises from below target to at/above it over [labels[i-1], labels[i]]: invert it.
    return float(np.interp(target, [accuracy[i - 1], accuracy[i]], [labels[i - 1], labels[i]]))


@settings(max_examples=80, deadline=None)
@given(accuracy_curves, st.integers(1, 64), st.integers(1, 64))
def test_label_saving_matches_a_float64_reference(curves, first, step):
    strategy_acc, reference_acc = (np.asarray(c, dtype=np.float64) for c in curves)
    labels = first + step * np.arange(len(strategy_acc))
    got = label_saving(list(zip(labels.tolist(), strategy_acc)), list(zip(labels.tolist(), reference_acc)))
    target = reference_acc[-1]
    # Reference: the smallest label count among the rounds at or above the target.
    hits = labels[strategy_acc >= target]
    ref_first = labels[reference_acc >= target].min()
    assert got.target == target and got.reference_labels == labels[-1] and got.reference_first_labels == ref_first
    if hits.size == 0:
        assert got.labels is None and got.saving is None and got.saving_vs_reference_first is None
    else:
        assert got.labels == hits.min()
        assert got.saving == pytest.approx(1.0 - hits.min() / np.float64(labels[-1]), abs=1e-12)
        assert got.saving_vs_reference_first == pytest.approx(1.0 - hits.min() / np.float64(ref_first), abs=1e-12)
    # Read between rounds: never later than the round that first reaches the target, never
    # before the round before it.
    between = reach_float64(labels.astype(np.float64), strategy_acc, target)
    if between is None:
        assert got.labels_interpolated is None and got.saving_interpolated is None
    else:
        assert got.labels_interpolated == pytest.approx(between, abs=1e-9)
        assert got.saving_interpolated == pytest.approx(1.0 - between / labels[-1], abs=1e-12)
        assert labels[max(0, np.flatnonzero(strategy_acc >= target)[0] - 1)] <= got.labels_interpolated <= got.labels


def test_labels_to_reach_interpolates():
    curve = [(64, 0.40), (96, 0.50), (128, 0.60)]
    assert labels_to_reach(curve, 0.55) == pytest.approx(112.0, abs=1e-12)
    assert labels_to_reach(curve, 0.30) == 64.0
    assert labels_to_reach(curve, 0.61) is None


def test_label_saving_counts_rounds_not_interpolation():
    # random ends at 0.50 after 192 labels; the strategy passes it between 96 (0.49) and 128.
    random = [(32, 0.30), (64, 0.40), (96, 0.45), (128, 0.52), (160, 0.55), (192, 0.50)]
    strategy = [(32, 0.30), (64, 0.42), (96, 0.49), (128, 0.51), (160, 0.50), (192, 0.60)]
    saving = label_saving(strategy, random)
    assert (saving.labels, saving.reference_first_labels) == (128, 128)
    assert saving.saving == pytest.approx(1 / 3) and saving.saving_vs_reference_first == 0.0
    # Read between rounds: 0.49 at 96, 0.51 at 128, so 0.50 at 112: 1 − 112/192 saved.
    assert saving.labels_interpolated == pytest.approx(112.0) and saving.saving_interpolated == pytest.approx(5 / 12)


def test_one_value_has_no_interval():
    assert t_interval([0.25]) == (0.25, None, None)


def test_discordance_counts_only_shared_ids():
    counts = discordance({"a": True, "b": True, "c": False, "x": True}, {"a": True, "b": False, "c": True, "y": True})
    assert (counts.only_strategy, counts.only_reference, counts.both, counts.n) == (1, 1, 1, 3)


def write_run(root, strategy, seed, accuracies, correct_last):
    """A run folder as the loop writes it: metrics.jsonl and the last round's predictions."""
    folder = root / strategy / f"seed-{seed}"
    rows = [{"round": r, "labeled": 32 * (r + 1), "accuracy": a, "n_test": len(correct_last),
             "strategy": strategy, "seed": seed} for r, a in enumerate(accuracies)]
    last = folder / f"round-{len(rows) - 1}"
    last.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (last / "predictions.jsonl").write_text("".join(
        json.dumps({"id": f"t{i}", "correct": c}) + "\n" for i, c in enumerate(correct_last)))


def test_one_seed_sentence_names_the_discordant_problems(tmp_path):
    n = 40
    ref = [i < 10 for i in range(n)]  # random solves t0-t9
    star = [i < 4 or 10 <= i < 12 for i in range(n)]  # star solves t0-t3 and t10-t11
    write_run(tmp_path, "random", 0, [0.1, 10 / n], ref)
    write_run(tmp_path, "star", 0, [0.1, 6 / n], star)
    summary, table = compare([tmp_path])
    seed = summary["paired_against_random"]["star"]["seeds"][0]
    assert (seed["only_strategy"], seed["only_reference"]) == (2, 6)
    assert seed["mcnemar_p"] == pytest.approx(stats.binomtest(2, 8, 0.5).pvalue)
    assert "**star** is not distinguishable from random" in table
    assert "-4.0 of 40 test problems" in table


def test_several_seeds_give_an_interval_and_a_direction(tmp_path):
    n = 20
    for seed, (r_acc, s_acc) in enumerate([(0.10, 0.30), (0.15, 0.35), (0.12, 0.30)]):
        write_run(tmp_path, "random", seed, [0.05, r_acc], [i < round(r_acc * n) for i in range(n)])
        write_run(tmp_path, "star", seed, [0.05, s_acc], [i < round(s_acc * n) for i in range(n)])
    summary, table = compare([tmp_path])
    mean, lo, hi = summary["paired_against_random"]["star"]["diff_aulc"]
    assert lo > 0 and mean == pytest.approx(np.mean([0.1, 0.1, 0.09]))
    assert "**star** is ahead of random" in table and "over 3 seeds" in table


def test_an_interval_within_one_test_problem_reads_level_with(tmp_path):
    # A consistent but tiny difference: the interval excludes 0 yet stays inside one of the
    # 200 test problems per round (1/200 = 0.005), so it is no reason to prefer either.
    n = 200
    for seed, (r_acc, s_acc) in enumerate([(0.150, 0.149), (0.160, 0.158), (0.170, 0.169), (0.155, 0.154)]):
        write_run(tmp_path, "random", seed, [0.1, r_acc], [i < round(r_acc * n) for i in range(n)])
        write_run(tmp_path, "hybrid", seed, [0.1, s_acc], [i < round(s_acc * n) for i in range(n)])
    summary, table = compare([tmp_path])
    mean, lo, hi = summary["paired_against_random"]["hybrid"]["diff_aulc"]
    assert hi < 0 and lo > -1 / n  # "behind" by the interval alone
    assert "**hybrid** is level with random" in table
    assert f"{mean * n:+.1f} of 200 test problems per round" in table



def test_a_second_test_set_gets_its_own_table_and_verdict(tmp_path):
    # mix evaluates two test sets: on the skill-balanced one (accuracy) star solves 6 more of 30
    # problems than random, on the pool-like one (accuracy_pool_like) 3 fewer of 30.
    n = 30
    for strategy, (main, pool_like) in {"random": (6, 9), "star": (12, 6)}.items():
        write_run(tmp_path, strategy, 0, [0.1, main / n], [i < main for i in range(n)])
        folder = tmp_path / strategy / "seed-0"
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        for row in rows:
            row.update(accuracy_pool_like=pool_like / n, n_test_pool_like=n)
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "round-1" / "predictions_pool_like.jsonl").write_text("".join(
            json.dumps({"id": f"p{i}", "correct": i < pool_like}) + "\n" for i in range(n)))
    summary, table = compare([tmp_path])
    main_seed = summary["paired_against_random"]["star"]["seeds"][0]
    second = summary["extra_test_sets"]["accuracy_pool_like"]
    second_seed = second["paired_against_random"]["star"]["seeds"][0]
    assert (main_seed["only_strategy"], main_seed["only_reference"]) == (6, 0)
    assert (second_seed["only_strategy"], second_seed["only_reference"]) == (0, 3)
    assert second["strategies"]["star"]["final_accuracy"] == pytest.approx(6 / n)
    assert "On the second test set, `accuracy_pool_like`" in table
    assert "-3.0 of 30 test problems" in table and "+6.0 of 30 test problems" in table
