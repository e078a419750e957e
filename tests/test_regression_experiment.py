"""Behaviour unchanged across refactors: a small experiment on the tiny LLaMA, compared with a
fixture recorded from the code before the package was restructured (issue 17).

The fixture ``tests/reference/regression_experiment.json`` holds, for random, entropy and
star with 2 query rounds: the ids selected in every round and their scores, the metrics rows (floats rounded
to 1e-6, timings left out) and the files of each run folder and of the experiment folder.

Every setting that decides a selection or a metric is pinned here, not taken from the
defaults, so that a changed default (bf16, another Monte-Carlo estimator) cannot move the
reference; a deliberate change of behaviour regenerates the fixture with
``ACTIVELORA_WRITE_REFERENCE=1 pytest tests/test_regression_experiment.py`` and says why.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from activelora.cli import main

REFERENCE = Path(__file__).parent / "reference" / "regression_experiment.json"
STRATEGIES = ("random", "entropy", "star")

# The defaults of the time the fixture was recorded, written out.
PINNED = {
    "model.dtype": "float32", "model.chat_template": "false", "train.bf16": "false",
    "loop.pool_limit": "20", "loop.test_limit": "6", "loop.probe_size": "4",
    "loop.initial": "4", "loop.query_size": "3", "loop.warm_start": "false",
    "train.epochs": "1", "train.batch_size": "4", "train.learning_rate": "5e-4", "train.grad_accum": "1",
    "eval.max_new_tokens": "6", "score.max_new_tokens": "6", "score.batch_size": "8",
    "score.measure": "entropy", "score.target": "generated", "score.mc_samples": "1",
    "score.normalize": "false", "score.temperature_scaling": "false",
    "strategy.measure": "entropy", "strategy.mc_samples": "2", "strategy.schedule": "linear",
    "strategy.schedule_step": "0.1", "strategy.dynamic": "true", "strategy.mc_dropout": "true",
    "strategy.b_l2": "true", "strategy.diversity_factor": "0", "strategy.normalize": "null",
    "strategy.base_normalize": "true", "strategy.base_target": "tuned", "strategy.answer_end": "generated",
    "strategy.cold_start_rounds": "0", "strategy.skip_top": "0", "strategy.target_quantile": "null",
    "strategy.strata": "0",
    # Added the same day (issue 15): "sequence" is the estimator the fixture was recorded with.
    "strategy.mc_estimator": "sequence",
    # star's mixed batch (its default since the fourteenth session): none when it was recorded.
    "strategy.random_share": "0",
    "regularization.apply": "star", "regularization.b_l2_mode": "decay",
    "lora.r": "2", "lora.target_modules": "[q_proj,v_proj]", "lora.lora_dropout": "0.1",
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def pinned_settings() -> list[str]:
    return [arg for key, value in PINNED.items() for arg in ("--set", f"{key}={value}")]


def rounded(value):
    """Floats to 1e-6 (bit-level float differences from thread scheduling are not behaviour)."""
    if isinstance(value, float):
        return value if not math.isfinite(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def observed(out: Path) -> dict:
    runs = {}
    for strategy in STRATEGIES:
        run_dir = out / strategy / "seed-0"
        state = json.loads((run_dir / "state.json").read_text())
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
        runs[strategy] = {
            "selections": [record["ids"] for record in state["rounds"]],
            "selection_scores": [rounded(record["scores"]) for record in state["rounds"]],
            "metrics": [rounded({k: v for k, v in row.items() if not k.endswith("seconds")}) for row in rows],
            "files": sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()),
        }
    experiment_files = sorted(p.name for p in out.iterdir() if p.is_file())
    return {"runs": runs, "experiment_files": experiment_files}


def assert_close(actual, expected, where: str) -> None:
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        assert math.isclose(actual, expected, abs_tol=2e-6), f"{where}: {actual} != {expected}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), (
            f"{where}: keys {sorted(actual)} != {sorted(expected)}")
        for key in expected:
            assert_close(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual} != {expected}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_small_experiment_matches_the_recorded_reference(tmp_path, tiny_model_dir):
    out = tmp_path / "exp"
    strategies = [arg for s in STRATEGIES for arg in ("--strategy", s)]
    assert main(["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", "--rounds", "2",
                 "--seed", "0", *strategies, *pinned_settings()]) == 0
    result = observed(out)
    if os.environ.get("ACTIVELORA_WRITE_REFERENCE") == "1":
        REFERENCE.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {REFERENCE}")
    expected = json.loads(REFERENCE.read_text())
    assert_close(result, expected, "experiment")


def test_the_comparison_can_fail():
    """The comparison is strict where it must be: an id, a file or a metric beyond 1e-6 differs."""
    expected = {"ids": ["a", "b"], "accuracy": 0.5, "files": ["x"]}
    assert_close({"ids": ["a", "b"], "accuracy": 0.5000004, "files": ["x"]}, expected, "same")
    for changed in ({"ids": ["b", "a"]}, {"accuracy": 0.50001}, {"files": ["x", "y"]}):
        with pytest.raises(AssertionError):
            assert_close({**expected, **changed}, expected, "changed")
