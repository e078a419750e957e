"""benchmarks/validity_table.py --reference-table: random's recorded curves pair with run folders."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "validity_table.py"
LABELS = [32, 64, 96]
N_TEST = 200


def _write_run(root: Path, strategy: str, seed: int, accuracies: list[float]) -> None:
    run = root / strategy / f"seed-{seed}"
    run.mkdir(parents=True)
    rows = [{"round": r, "labeled": labels, "accuracy": acc, "n_test": N_TEST, "strategy": strategy, "seed": seed}
            for r, (labels, acc) in enumerate(zip(LABELS, accuracies))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def _table(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)


def _aulc_float64(accuracies: list[float]) -> float:
    """Trapezoids over the label range divided by its width, written out again as a reference."""
    x, y = np.asarray(LABELS, dtype=np.float64), np.asarray(accuracies, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def _record(tmp_path: Path, random_curves: dict[int, list[float]], metric: str = "accuracy") -> Path:
    """An earlier table's JSON holding only random, as this script writes it."""
    table = {"metric": metric, "n_test": [N_TEST], "strategies": {"random": {
        "labels": LABELS, "per_seed_accuracy": {str(s): c for s, c in random_curves.items()}}}}
    path = tmp_path / "recorded.json"
    path.write_text(json.dumps(table))
    return path


def test_recorded_random_pairs_with_the_strategy_seeds_it_lacks(tmp_path):
    rng = np.random.default_rng(7)
    random_curves = {s: sorted(rng.uniform(0.2, 0.6, size=3).tolist()) for s in range(3)}
    star_curves = {s: sorted(rng.uniform(0.2, 0.6, size=3).tolist()) for s in range(3)}
    runs = tmp_path / "runs"
    for s in range(3):
        _write_run(runs, "star", s, star_curves[s])
    _write_run(runs, "random", 0, random_curves[0])  # one seed has its folder too: it must agree
    out = _table(tmp_path, str(runs), "--reference-table", str(_record(tmp_path, random_curves)))
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    star = result["strategies"]["star"]
    assert star["paired_seeds"] == [0, 1, 2]
    assert result["reference_recorded_seeds"] == [1, 2]
    for s in range(3):
        expected = _aulc_float64(star_curves[s]) - _aulc_float64(random_curves[s])
        assert abs(star["diff_aulc_per_seed"][str(s)] - expected) < 1e-12
    assert "random's seeds 1, 2 are the curves recorded in" in (tmp_path / "out.md").read_text()


def test_without_the_record_only_the_folder_seed_pairs(tmp_path):
    runs = tmp_path / "runs"
    for s in range(2):
        _write_run(runs, "star", s, [0.3, 0.4, 0.5])
    _write_run(runs, "random", 0, [0.3, 0.35, 0.45])
    out = _table(tmp_path, str(runs))
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "out.json").read_text())["strategies"]["star"]["paired_seeds"] == [0]


def test_a_record_that_disagrees_with_a_folder_stops_the_table(tmp_path):
    runs = tmp_path / "runs"
    _write_run(runs, "star", 0, [0.3, 0.4, 0.5])
    _write_run(runs, "random", 0, [0.3, 0.35, 0.45])
    out = _table(tmp_path, str(runs), "--reference-table", str(_record(tmp_path, {0: [0.3, 0.36, 0.45]})))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"--reference-table {tmp_path / 'recorded.json'}: random seed 0 round 1 has accuracy 0.35 at 64 labels "
        "in its folder and 0.36 at 64 in the record"]
    assert not (tmp_path / "out.md").exists()


def test_a_record_of_another_test_set_or_not_a_table_is_one_line(tmp_path):
    runs = tmp_path / "runs"
    _write_run(runs, "star", 0, [0.3, 0.4, 0.5])
    other = _record(tmp_path, {0: [0.3, 0.36, 0.45]}, metric="accuracy_pool_like")
    out = _table(tmp_path, str(runs), "--reference-table", str(other))
    assert (out.returncode, out.stderr.strip()) == (
        2, f"--reference-table {other}: its metric is accuracy_pool_like, not accuracy")
    broken = tmp_path / "broken.json"
    broken.write_text('{"metric": "accuracy"}')
    out = _table(tmp_path, str(runs), "--reference-table", str(broken))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith(f"--reference-table {broken}: not a table of this script with random in it")


def test_a_table_from_before_metric_existed_is_of_accuracy(tmp_path):
    runs = tmp_path / "runs"
    _write_run(runs, "star", 1, [0.3, 0.4, 0.5])
    record = _record(tmp_path, {1: [0.3, 0.35, 0.45]})
    table = json.loads(record.read_text())
    del table["metric"]
    record.write_text(json.dumps(table))
    assert _table(tmp_path, str(runs), "--reference-table", str(record)).returncode == 0
    assert json.loads((tmp_path / "out.json").read_text())["strategies"]["star"]["paired_seeds"] == [1]
    out = _table(tmp_path, str(runs), "--metric", "accuracy_pool_like", "--reference-table", str(record))
    assert (out.returncode, out.stderr.strip()) == (
        2, f"--reference-table {record}: its metric is accuracy, not accuracy_pool_like")


def test_savings_are_given_in_rounds_and_read_between_them(tmp_path):
    # random ends at 0.45 on both seeds. star crosses it between 32 and 64 labels on seed 0
    # (0.40 -> 0.50: at 48) and between 64 and 96 on seed 1 (0.35 -> 0.55: at 80).
    runs = tmp_path / "runs"
    _write_run(runs, "random", 0, [0.30, 0.40, 0.45])
    _write_run(runs, "random", 1, [0.30, 0.40, 0.45])
    _write_run(runs, "star", 0, [0.40, 0.50, 0.55])
    _write_run(runs, "star", 1, [0.30, 0.35, 0.55])
    out = _table(tmp_path, str(runs))
    assert out.returncode == 0, out.stderr
    star = json.loads((tmp_path / "out.json").read_text())["strategies"]["star"]
    assert [star["label_saving_per_seed"][s]["labels"] for s in ("0", "1")] == [64, 96]
    assert [star["label_saving_per_seed"][s]["labels_interpolated"] for s in ("0", "1")] == [48.0, 80.0]
    mean, lo, hi = star["label_saving_interpolated"]
    assert abs(mean - (1 - 64 / 96)) < 1e-12  # (1/2 + 1/6) / 2
    assert lo < mean < hi
    # The mean curve (0.35, 0.425, 0.55) crosses 0.45 at 64 + 0.025/0.125 * 32 = 70.4.
    assert abs(star["labels_to_reference_final_interpolated"] - 70.4) < 1e-9
    assert star["labels_to_reference_final"] == 96
    assert "| 96 (70) |" in (tmp_path / "out.md").read_text()
