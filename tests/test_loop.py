"""The active-learning loop end to end on a tiny LLaMA saved as a local model folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from activelora.cli import main
from activelora.atomic_files import read_jsonl

SMALL = [
    "--set", "loop.pool_limit=20", "--set", "loop.test_limit=6", "--set", "loop.probe_size=4",
    "--set", "loop.initial=4", "--set", "loop.query_size=3",
    "--set", "train.epochs=1", "--set", "train.batch_size=4",
    "--set", "eval.max_new_tokens=6", "--set", "score.max_new_tokens=6", "--set", "score.batch_size=8",
    "--set", "strategy.mc_samples=2", "--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]",
]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def run_cli(out: Path, model: Path, *extra: str) -> int:
    return main(["run", "--output", str(out), "--model", str(model), "--quiet", *SMALL, *extra])


def selections(run_dir: Path) -> list[list[str]]:
    state = json.loads((run_dir / "state.json").read_text())
    return [r["ids"] for r in state["rounds"]]


def test_run_writes_every_artifact(tmp_path, tiny_model_dir):
    out = tmp_path / "exp"
    # STAR from the first query (no cold start), so that its scores and λ_t are written every round.
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--strategy", "star", "--rounds", "2",
                   "--set", "strategy.cold_start_rounds=0") == 0
    for strategy in ("random", "star"):
        run_dir = out / strategy / "seed-0"
        rows = read_jsonl(run_dir / "metrics.jsonl")
        assert [r["round"] for r in rows] == [0, 1, 2]
        assert [r["labeled"] for r in rows] == [4, 7, 10]
        assert {"accuracy", "ece", "brier", "gap_spearman", "gap_auroc_full", "strategy", "seed"} <= set(rows[0])
        state = json.loads((run_dir / "state.json").read_text())
        assert state["phase"] == "done"
        ids = [i for r in state["rounds"] for i in r["ids"]]
        assert len(ids) == len(set(ids)) == 10 and set(state["labels"]) == set(ids)
        for r in range(3):
            assert (run_dir / f"round-{r}" / "adapter" / "adapter_model.safetensors").is_file()
            assert (run_dir / f"round-{r}" / "predictions.jsonl").is_file()
            selection = json.loads((run_dir / f"round-{r}" / "selection.json").read_text())
            assert selection["ids"] == state["rounds"][r]["ids"] and selection["round"] == r
    star_rounds = json.loads((out / "star" / "seed-0" / "state.json").read_text())["rounds"]
    assert [r["lambda"] for r in star_rounds] == [None, 0.9, 0.8]  # linear schedule, t = 0, 1
    assert all(s is not None for s in star_rounds[1]["scores"])
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["strategies"]) == {"random", "star"}
    assert "| labels |" in (out / "report.md").read_text()
    zero_shot = json.loads((out / "zero_shot.json").read_text())
    assert zero_shot["n"] == 6 and 0.0 <= zero_shot["accuracy"] <= 1.0
    assert summary["zero_shot_accuracy"] == {"exp": zero_shot["accuracy"]}
    assert "zero-shot accuracy" in (out / "report.md").read_text()


def test_same_config_and_seed_give_same_selections(tmp_path, tiny_model_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert run_cli(out, tiny_model_dir, "--strategy", "entropy", "--rounds", "2") == 0
    assert selections(a / "entropy" / "seed-0") == selections(b / "entropy" / "seed-0")
    assert run_cli(tmp_path / "c", tiny_model_dir, "--strategy", "entropy", "--rounds", "2", "--seed", "1") == 0
    assert selections(a / "entropy" / "seed-0") != selections(tmp_path / "c" / "entropy" / "seed-1")


def test_rerun_of_finished_run_redoes_nothing_and_changed_config_is_refused(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1") == 0
    state_before = (out / "random" / "seed-0" / "state.json").read_text()
    adapter = out / "random" / "seed-0" / "round-1" / "adapter" / "adapter_model.safetensors"
    mtime = adapter.stat().st_mtime_ns
    zero_shot_mtime = (out / "zero_shot.json").stat().st_mtime_ns
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1") == 0
    assert (out / "random" / "seed-0" / "state.json").read_text() == state_before
    assert adapter.stat().st_mtime_ns == mtime
    assert (out / "zero_shot.json").stat().st_mtime_ns == zero_shot_mtime
    capsys.readouterr()
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1", "--set", "train.epochs=2") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.epochs" in err and "--restart" in err
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1", "--set", "train.epochs=2",
                   "--restart") == 0


def test_more_rounds_extend_a_finished_run_as_if_asked_from_the_start(tmp_path, tiny_model_dir):
    extended, fresh = tmp_path / "extended", tmp_path / "fresh"
    assert run_cli(extended, tiny_model_dir, "--strategy", "entropy", "--rounds", "1") == 0
    run_dir = extended / "entropy" / "seed-0"
    adapter = run_dir / "round-1" / "adapter" / "adapter_model.safetensors"
    mtime = adapter.stat().st_mtime_ns
    assert run_cli(extended, tiny_model_dir, "--strategy", "entropy", "--rounds", "2") == 0
    assert adapter.stat().st_mtime_ns == mtime  # rounds 0-1 kept, not retrained
    assert [r["round"] for r in read_jsonl(run_dir / "metrics.jsonl")] == [0, 1, 2]
    assert json.loads((run_dir / "state.json").read_text())["phase"] == "done"
    assert run_cli(fresh, tiny_model_dir, "--strategy", "entropy", "--rounds", "2") == 0
    assert selections(run_dir) == selections(fresh / "entropy" / "seed-0")
    # Asked for fewer rounds than it holds, a finished run is left as it is.
    before = (run_dir / "state.json").read_text()
    assert run_cli(extended, tiny_model_dir, "--strategy", "entropy", "--rounds", "1") == 0
    assert (run_dir / "state.json").read_text() == before


def test_fewer_rounds_end_a_run_still_going(tmp_path, tiny_model_dir):
    from activelora.run.rundir import RunState

    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1") == 0
    run_dir = out / "random" / "seed-0"
    saved = json.loads((run_dir / "state.json").read_text())
    # As if stopped after round 1's evaluation of a run asked for 3 rounds.
    RunState.load_or_create(run_dir, saved["config"]).reopen()
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1") == 0
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phase"] == "done" and len(state["rounds"]) == 2
    assert not (run_dir / "round-1" / "pool_scores.json").exists()  # closed before scoring


def test_restart_starts_over_only_runs_that_cannot_resume(tmp_path, tiny_model_dir):
    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1") == 0
    adapter = out / "random" / "seed-0" / "round-1" / "adapter" / "adapter_model.safetensors"
    mtime = adapter.stat().st_mtime_ns
    # Same config: --restart has nothing to start over; the finished run keeps its labels.
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1", "--restart") == 0
    assert adapter.stat().st_mtime_ns == mtime
    # Changed config: that run starts over.
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "1", "--restart",
                   "--set", "train.epochs=2") == 0
    assert adapter.stat().st_mtime_ns != mtime


@pytest.mark.parametrize("strategy", ["bald", "vote"])
def test_mc_only_measures_run_with_gap_metrics(tmp_path, tiny_model_dir, strategy):
    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--strategy", strategy, "--rounds", "1") == 0
    rows = read_jsonl(out / strategy / "seed-0" / "metrics.jsonl")
    assert [r["round"] for r in rows] == [0, 1]
    # The base model has no dropout to sample: the gap compares entropies instead.
    assert all(r["gap_measure"] == "entropy" and r["gap_spearman"] is not None for r in rows)


def test_passive_beside_others_still_checks_the_initial_set(tmp_path, tiny_model_dir, capsys):
    code = run_cli(tmp_path / "exp", tiny_model_dir, "--strategy", "passive", "--strategy", "random",
                   "--set", "loop.initial=50")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "50" in err
    assert not (tmp_path / "exp").exists()


def test_passive_labels_whole_pool_once(tmp_path, tiny_model_dir):
    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--strategy", "passive", "--rounds", "3") == 0
    rows = read_jsonl(out / "passive" / "seed-0" / "metrics.jsonl")
    assert [(r["round"], r["labeled"]) for r in rows] == [(0, 20)]


def test_budget_stops_the_loop(tmp_path, tiny_model_dir):
    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--strategy", "random", "--rounds", "5", "--set", "loop.budget=9") == 0
    rows = read_jsonl(out / "random" / "seed-0" / "metrics.jsonl")
    assert [r["labeled"] for r in rows] == [4, 7, 9]


def test_pool_too_small_is_one_line(tmp_path, tiny_model_dir, capsys):
    code = run_cli(tmp_path / "exp", tiny_model_dir, "--strategy", "random", "--set", "loop.initial=50")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "50" in err and "20" in err
    assert not (tmp_path / "exp" / "random").exists()


def test_unknown_strategy_lists_valid_ones(tmp_path, tiny_model_dir, capsys):
    assert run_cli(tmp_path / "exp", tiny_model_dir, "--strategy", "stra") == 2
    err = capsys.readouterr().err
    assert "unknown strategy 'stra'" in err and "random" in err and "star" in err


def test_sigkill_then_rerun_gives_same_selections(tmp_path, tiny_model_dir):
    """Kill the run mid-way with SIGKILL, run the same command again: same result as uninterrupted."""
    args = ["--strategy", "star", "--rounds", "3"]
    reference = tmp_path / "reference"
    assert run_cli(reference, tiny_model_dir, *args) == 0

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "activelora.cli", "run", "--output", str(out), "--model", str(tiny_model_dir),
               "--quiet", *SMALL, *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = out / "star" / "seed-0" / "state.json"
    deadline = time.time() + 240
    killed = False
    while time.time() < deadline and process.poll() is None:
        if state_file.is_file():
            try:
                state = json.loads(state_file.read_text())
            except json.JSONDecodeError:
                state = {"rounds": []}
            if len(state["rounds"]) >= 2:  # inside round 1: after its selection
                process.send_signal(signal.SIGKILL)
                killed = True
                break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert killed, "the run finished before it could be killed; make it longer"
    assert json.loads(state_file.read_text())["phase"] != "done"
    assert run_cli(out, tiny_model_dir, *args) == 0
    assert selections(out / "star" / "seed-0") == selections(reference / "star" / "seed-0")
    rows = read_jsonl(out / "star" / "seed-0" / "metrics.jsonl")
    assert [r["round"] for r in rows] == [0, 1, 2, 3]


def test_temperature_scaling_is_fitted_and_reported(tmp_path, tiny_model_dir):
    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--strategy", "entropy", "--rounds", "1",
                   "--set", "score.temperature_scaling=true") == 0
    rows = read_jsonl(out / "entropy" / "seed-0" / "metrics.jsonl")
    for row in rows:
        assert 0.25 <= row["temperature"] <= 4.0
        assert 0.0 <= row["ece_temperature_scaled"] <= 1.0


def test_one_data_file_is_split_into_disjoint_test_and_pool(tmp_path, tiny_model_dir):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"Say {i}.", "answer": str(i)}) + "\n" for i in range(40)))
    out = tmp_path / "exp"
    assert run_cli(out, tiny_model_dir, "--data", str(data), "--task", "plain", "--strategy", "random",
                   "--rounds", "1") == 0
    run_dir = out / "random" / "seed-0"
    tested = [json.loads(line)["id"] for line in (run_dir / "round-0" / "predictions.jsonl").read_text().splitlines()]
    pool = json.loads((run_dir / "round-0" / "pool_scores.json").read_text())["ids"]
    labelled = json.loads((run_dir / "state.json").read_text())["labels"]
    assert len(tested) == 6 and not set(tested) & (set(pool) | set(labelled))


def test_star_by_default_skips_scoring_and_draws_what_random_draws_for_two_queries(tmp_path, tiny_model_dir,
                                                                                  monkeypatch):
    from activelora.run.pool_scoring import PoolScorer

    scored_rounds = []
    original = PoolScorer.strategy_inputs

    def recording(self, examples, r, **kwargs):
        scored_rounds.append(r)
        return original(self, examples, r, **kwargs)

    monkeypatch.setattr(PoolScorer, "strategy_inputs", recording)
    cold = tmp_path / "cold"
    # No --set: strategy.cold_start_rounds is null, and star's own default is 2.
    assert run_cli(cold, tiny_model_dir, "--strategy", "star", "--rounds", "3") == 0
    assert scored_rounds == [2]  # queries 0 and 1 are drawn at random: only the third scores the pool
    run_dir = cold / "star" / "seed-0"
    assert json.loads((run_dir / "config.json").read_text())["strategy"]["cold_start_rounds"] == 2
    for r in (0, 1):
        saved = json.loads((run_dir / f"round-{r}" / "pool_scores.json").read_text())
        assert saved["cold_start"] and "full_scores" not in saved and "base_scores" not in saved
    assert len(json.loads((run_dir / "round-2" / "pool_scores.json").read_text())["full_scores"]) == 20 - 10
    assert run_cli(tmp_path / "random", tiny_model_dir, "--strategy", "random", "--rounds", "3") == 0
    assert selections(run_dir)[:3] == selections(tmp_path / "random" / "random" / "seed-0")[:3]
    rounds = json.loads((run_dir / "state.json").read_text())["rounds"]
    assert [r["info"].get("cold_start", False) for r in rounds] == [False, True, True, False]
    # strategy.random_share is null too: star's default mixes half of each batch it scores.
    assert json.loads((run_dir / "config.json").read_text())["strategy"]["random_share"] == 0.5
    assert rounds[3]["info"]["random_share"]["share"] == 0.5


def test_a_run_folder_records_the_cold_start_it_ran_with(tmp_path, tiny_model_dir, capsys):
    """Folders written while the setting was 0 for every strategy: one whose behaviour the
    null default keeps (entropy) resumes; one whose behaviour it changes (star) is refused in
    one line naming the setting, with its labels kept; star-paper keeps the paper's 0."""
    out = tmp_path / "exp"
    zero = ("--set", "strategy.cold_start_rounds=0")
    assert run_cli(out, tiny_model_dir, "--strategy", "entropy", "--strategy", "star", "--rounds", "1", *zero) == 0
    entropy_state, star_state = ((out / name / "seed-0" / "state.json").read_text() for name in ("entropy", "star"))
    capsys.readouterr()
    assert run_cli(out, tiny_model_dir, "--strategy", "entropy", "--rounds", "1") == 0  # a finished run: resumed as is
    assert "differs" not in capsys.readouterr().err
    assert (out / "entropy" / "seed-0" / "state.json").read_text() == entropy_state
    assert run_cli(out, tiny_model_dir, "--strategy", "star", "--rounds", "1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "strategy.cold_start_rounds: 0 -> 2" in err, err
    assert (out / "star" / "seed-0" / "state.json").read_text() == star_state
    assert run_cli(out, tiny_model_dir, "--strategy", "star-paper", "--rounds", "1") == 0
    paper = out / "star-paper" / "seed-0"
    assert json.loads((paper / "config.json").read_text())["strategy"]["cold_start_rounds"] == 0
    assert all(s is not None for s in selections_scores(paper)[1])


def selections_scores(run_dir: Path) -> list[list]:
    return [r["scores"] for r in json.loads((run_dir / "state.json").read_text())["rounds"]]


def test_a_mixed_batch_runs_end_to_end_and_records_its_random_part(tmp_path, tiny_model_dir, caplog):
    out = tmp_path / "mixed"
    with caplog.at_level("WARNING"):
        assert run_cli(out, tiny_model_dir, "--strategy", "star", "--strategy", "random", "--rounds", "1",
                       "--set", "strategy.cold_start_rounds=0", "--set", "strategy.random_share=0.5") == 0
    # random, beside it in the same config, has no ranking to mix into: one line says so.
    notices = [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()]
    assert notices == ["strategy random ignores strategy.random_share=0.5: it has no ranking for them to change"]
    run_dir = out / "star" / "seed-0"
    assert json.loads((run_dir / "config.json").read_text())["strategy"]["random_share"] == 0.5
    query = json.loads((run_dir / "state.json").read_text())["rounds"][1]
    mixed = query["info"]["random_share"]
    assert mixed["drawn"] == 2 and query["ids"][1:] == mixed["ids"]  # 3 labels: 1 ranked, then floor(1.5 + 0.5) drawn
    assert all(s is not None for s in query["scores"])  # every pick keeps its STAR score
