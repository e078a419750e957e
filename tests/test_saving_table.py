"""benchmarks/saving_table.py: interpolated label savings from validity tables' JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "saving_table.py"
LABELS = [32, 64, 96, 128]


def write(path: Path, curves: dict[str, dict[int, list[float]]], metric: str = "accuracy") -> str:
    """A validity table's JSON as validity_table.py writes the keys this script reads."""
    path.write_text(json.dumps({"metric": metric, "strategies": {
        name: {"labels": LABELS, "per_seed_accuracy": {str(s): c for s, c in seeds.items()}}
        for name, seeds in curves.items()}}))
    return str(path)


def run(tmp_path: Path, *tables: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *tables, "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)


def crossing(accuracy: list[float], target: float) -> float | None:
    """Where the piecewise-linear curve first reaches ``target``, written out again."""
    for i, a in enumerate(accuracy):
        if a >= target:
            if i == 0:
                return float(LABELS[0])
            return float(np.interp(target, [accuracy[i - 1], a], [LABELS[i - 1], LABELS[i]]))
    return None


def test_savings_match_a_float64_reference(tmp_path):
    rng = np.random.default_rng(11)
    random = {s: sorted(rng.uniform(0.2, 0.5, 4).tolist()) for s in range(4)}
    # A strategy that is ahead everywhere (so every seed reaches random's final), in another table.
    ahead = {s: [min(1.0, a + 0.08) for a in random[s]] for s in range(4)}
    first = write(tmp_path / "a.json", {"random": random})
    second = write(tmp_path / "b.json", {"random": {0: random[0]}, "ahead": ahead})
    done = run(tmp_path, first, second)
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "out.json").read_text())["strategies"]["ahead"]
    per_seed = np.array([1 - crossing(ahead[s], random[s][-1]) / LABELS[-1] for s in range(4)])
    assert [info["saving_per_seed"][str(s)] for s in range(4)] == pytest.approx(per_seed.tolist(), abs=1e-12)
    lo, hi = stats.t.interval(0.95, 3, loc=per_seed.mean(), scale=stats.sem(per_seed))
    assert info["saving"] == pytest.approx([per_seed.mean(), lo, hi], abs=1e-9)
    mean_curve = np.mean([ahead[s] for s in range(4)], axis=0).tolist()
    target = np.mean([random[s][-1] for s in range(4)])
    assert info["mean_curve_labels"] == pytest.approx(crossing(mean_curve, target), abs=1e-9)


def test_a_seed_that_never_reaches_leaves_no_interval_and_labels_keep_studies_apart(tmp_path):
    random = {0: [0.3, 0.4, 0.45, 0.5], 1: [0.3, 0.4, 0.45, 0.5]}
    behind = {0: [0.3, 0.35, 0.4, 0.45], 1: [0.3, 0.5, 0.5, 0.6]}
    other = {0: [0.3, 0.5, 0.55, 0.6]}
    done = run(tmp_path, write(tmp_path / "a.json", {"random": random, "star": behind}),
               write(tmp_path / "b.json", {"random": random, "star": other}) + "@mixed")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out.json").read_text())["strategies"]
    assert result["star"]["saving"] is None and result["star"]["reached"] == [1, 2]
    assert result["star"]["saving_per_seed"]["0"] is None
    assert result["star (mixed)"]["saving_per_seed"]["0"] == pytest.approx(1 - 64 / 128)
    assert "| star | 2 | 1 of 2 seeds reached |" in (tmp_path / "out.md").read_text()


def test_conflicting_tables_are_one_line_and_exit_2(tmp_path):
    random = {0: [0.3, 0.4, 0.45, 0.5]}
    a = write(tmp_path / "a.json", {"random": random, "star": {0: [0.3, 0.4, 0.5, 0.5]}})
    b = write(tmp_path / "b.json", {"random": random, "star": {0: [0.3, 0.4, 0.5, 0.6]}})
    done = run(tmp_path, a, b)
    assert done.returncode == 2 and done.stderr.strip() == f"{b}: star seed 0 differs from the same run in an earlier table"
    c = write(tmp_path / "c.json", {"random": random}, metric="accuracy_pool_like")
    done = run(tmp_path, a, c)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "different metrics (accuracy, accuracy_pool_like)" in done.stderr
    (tmp_path / "bad.json").write_text("{")
    done = run(tmp_path, str(tmp_path / "bad.json"))
    assert done.returncode == 2 and done.stderr.startswith(f"{tmp_path / 'bad.json'}: not a validity_table.py JSON")
    assert not (tmp_path / "out.md").exists()
