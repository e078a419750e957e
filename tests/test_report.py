"""compare: curves over seeds, normalised AULC and labels-to-target against independent references."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.cli import main
from activelora.experiment.report import labels_to_target, normalized_aulc, summarize


def write_run(root, strategy, seed, accuracies, labels):
    folder = root / strategy / f"seed-{seed}"
    folder.mkdir(parents=True)
    rows = [{"round": r, "labeled": n, "accuracy": a, "strategy": strategy, "seed": seed, "ece": 0.1 * a}
            for r, (n, a) in enumerate(zip(labels, accuracies))]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.floats(0, 1)), min_size=2, max_size=8))
def test_aulc_matches_reference_integral(steps):
    xs = np.cumsum([s[0] for s in steps]).astype(float)
    ys = [s[1] for s in steps]
    points = [(int(x), y, 0.0) for x, y in zip(xs, ys)]
    # Reference: integrate the piecewise-linear curve on a fine grid, divide by the span.
    grid = np.linspace(xs[0], xs[-1], 20001)
    reference = np.trapezoid(np.interp(grid, xs, ys), grid) / (xs[-1] - xs[0])
    assert normalized_aulc(points) == pytest.approx(reference, abs=1e-6)


def test_labels_to_target_first_crossing():
    points = [(10, 0.1, 0), (20, 0.5, 0), (30, 0.4, 0), (40, 0.6, 0)]
    assert labels_to_target(points, 0.45) == 20
    assert labels_to_target(points, 0.7) is None


def test_compare_mean_std_over_seeds(tmp_path, capsys):
    labels = [16, 32, 48]
    write_run(tmp_path, "random", 0, [0.1, 0.2, 0.3], labels)
    write_run(tmp_path, "random", 1, [0.1, 0.4, 0.5], labels)
    write_run(tmp_path, "star", 0, [0.1, 0.3, 0.6], labels)
    assert main(["compare", str(tmp_path), "--target", "0.4"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    random_curve = summary["strategies"]["random"]["curve"]
    assert random_curve[1]["accuracy_mean"] == pytest.approx(0.3)
    assert random_curve[1]["accuracy_std"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert summary["strategies"]["random"]["labels_to_target"] == 48
    assert summary["strategies"]["star"]["labels_to_target"] == 48
    assert summary["strategies"]["star"]["final_accuracy"] == pytest.approx(0.6)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "| 32 |" in out and "0.300 ± 0.141" in out
    # star has one seed: no spread to show (None), unlike seeds that agree (± 0.000).
    assert summary["strategies"]["star"]["curve"][0]["accuracy_std"] is None
    assert "| 16 | 0.100 ± 0.000 | 0.100 |" in out


def test_default_target_is_ninety_percent_of_best_final():
    runs = {"a": {0: [{"round": 0, "labeled": 5, "accuracy": 0.5}]},
            "b": {0: [{"round": 0, "labeled": 5, "accuracy": 0.8}]}}
    assert summarize(runs)["target_accuracy"] == pytest.approx(0.72)


def test_compare_without_runs_is_one_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no runs found" in capsys.readouterr().err


def test_compare_two_experiments_with_the_same_strategy_and_seed(tmp_path, capsys):
    first, second = tmp_path / "baseline", tmp_path / "tuned"
    write_run(first, "random", 0, [0.1, 0.2], [16, 32])
    write_run(first, "star", 0, [0.1, 0.3], [16, 32])
    write_run(second, "random", 0, [0.2, 0.4], [16, 32])
    out = tmp_path / "cmp"
    assert main(["compare", str(first), str(second), "--out", str(out)]) == 0
    strategies = json.loads((out / "summary.json").read_text())["strategies"]
    assert set(strategies) == {"baseline:random", "tuned:random", "star"}
    assert strategies["tuned:random"]["final_accuracy"] == pytest.approx(0.4)


def test_duplicate_run_within_one_experiment_is_refused(tmp_path, capsys):
    write_run(tmp_path / "a", "random", 0, [0.1], [16])
    (tmp_path / "a" / "copy" / "seed-0").mkdir(parents=True)
    (tmp_path / "a" / "copy" / "seed-0" / "metrics.jsonl").write_text(
        (tmp_path / "a" / "random" / "seed-0" / "metrics.jsonl").read_text())
    assert main(["compare", str(tmp_path / "a"), "--out", str(tmp_path / "cmp")]) == 2
    assert "a second run of strategy 'random' seed 0" in capsys.readouterr().err


def test_compare_reports_the_zero_shot_reference(tmp_path, capsys):
    write_run(tmp_path, "random", 0, [0.1, 0.2], [16, 32])
    (tmp_path / "zero_shot.json").write_text(json.dumps({"accuracy": 0.04, "n": 50}))
    assert main(["compare", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["zero_shot_accuracy"] == {tmp_path.name: 0.04}
    assert "zero-shot accuracy (base model, no labels): 0.040" in capsys.readouterr().out
