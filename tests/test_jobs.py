"""``activelora run --jobs N``: runs side by side in worker processes, on a tiny LLaMA.

The failing strategies below are registered in this module; a spawned worker imports the
module that registered a strategy it is asked to run (see ``workers.plugin_modules``),
so they exist there too. They fail only while the file named by ``CRASH_FLAG_ENV`` exists,
so the same command can then resume them.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from activelora.experiment import workers
from activelora.multiprocess import threads
from activelora.cli import main
from activelora.atomic_files import read_jsonl
from activelora.strategies import STRATEGIES, Needs, PoolView, Strategy, register

CRASH_FLAG_ENV = "ACTIVELORA_TEST_CRASH_FLAG"

SMALL = [
    "--set", "loop.pool_limit=16", "--set", "loop.test_limit=4", "--set", "loop.probe_size=4",
    "--set", "loop.initial=4", "--set", "loop.query_size=3",
    "--set", "train.epochs=1", "--set", "train.batch_size=4",
    "--set", "eval.max_new_tokens=4", "--set", "score.max_new_tokens=4", "--set", "score.batch_size=8",
    "--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]",
]


def _crash_armed() -> bool:
    flag = os.environ.get(CRASH_FLAG_ENV)
    return bool(flag) and Path(flag).exists()


class _RandomScores(Strategy):
    informative_scores = False

    def needs(self) -> Needs:
        return Needs()

    def score(self, pool: PoolView):
        return pool.rng.random(len(pool.ids)), {}


class RaisingStrategy(_RandomScores):
    """Random selection, except that its first query raises while the crash flag exists."""

    name = "test-raises"

    def score(self, pool: PoolView):
        if _crash_armed():
            raise RuntimeError("injected failure in the query step")
        return super().score(pool)


class KilledStrategy(_RandomScores):
    """Random selection, except that its first query SIGKILLs its own process while the flag exists."""

    name = "test-killed"

    def score(self, pool: PoolView):
        if _crash_armed():
            os.kill(os.getpid(), signal.SIGKILL)
        return super().score(pool)


for _strategy in (RaisingStrategy, KilledStrategy):
    if _strategy.name not in STRATEGIES:
        register(_strategy)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def two_cores(monkeypatch):
    """Two workers on 'two cores': one torch thread each, as this test process has (conftest),
    so --jobs 1 and --jobs 2 do the same arithmetic and must agree exactly."""
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def run_cli(out: Path, model: Path, *extra: str, quiet: bool = True) -> int:
    return main(["run", "--output", str(out), "--model", str(model), *(["--quiet"] if quiet else []), *SMALL, *extra])


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def selections(run_dir: Path) -> list[list[str]]:
    return [r["ids"] for r in json.loads((run_dir / "state.json").read_text())["rounds"]]


def test_jobs_2_gives_the_runs_and_report_of_jobs_1(tmp_path, tiny_model_dir, two_cores, capsys):
    args = ["--strategy", "random", "--strategy", "entropy", "--rounds", "1"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_cli(one, tiny_model_dir, *args) == 0
    table_one = capsys.readouterr().out
    assert run_cli(two, tiny_model_dir, *args, "--jobs", "2", quiet=False) == 0
    captured = capsys.readouterr()
    table_two = captured.out
    assert "worker 0" in captured.err and "worker 1" in captured.err  # one bar per worker
    assert files_under(one) == files_under(two)
    assert table_one.splitlines()[:-1] == table_two.splitlines()[:-1]  # the last line is the time taken
    for strategy in ("random", "entropy"):
        a, b = one / strategy / "seed-0", two / strategy / "seed-0"
        assert selections(a) == selections(b)
        rows_a, rows_b = read_jsonl(a / "metrics.jsonl"), read_jsonl(b / "metrics.jsonl")
        drop = {"seconds", "train_seconds", "eval_seconds", "score_seconds", "time"}
        assert [{k: v for k, v in r.items() if k not in drop} for r in rows_a] == \
               [{k: v for k, v in r.items() if k not in drop} for r in rows_b]
    zero_a = json.loads((one / "zero_shot.json").read_text())
    zero_b = json.loads((two / "zero_shot.json").read_text())
    assert zero_a == zero_b
    summary_a = json.loads((one / "summary.json").read_text())
    summary_b = json.loads((two / "summary.json").read_text())
    assert set(summary_a) == set(summary_b) and summary_a["strategies"] == summary_b["strategies"]


@pytest.mark.parametrize("strategy, cause", [("test-raises", "RuntimeError: injected failure in the query step"),
                                             ("test-killed", "killed by SIGKILL")])
def test_a_failed_run_leaves_the_others_finished_and_resumes(tmp_path, tiny_model_dir, two_cores, monkeypatch,
                                                            capsys, strategy, cause):
    flag = tmp_path / "crash-armed"
    flag.touch()
    monkeypatch.setenv(CRASH_FLAG_ENV, str(flag))
    out = tmp_path / "exp"
    args = ["--strategy", "random", "--strategy", strategy, "--rounds", "1", "--jobs", "2"]
    assert run_cli(out, tiny_model_dir, *args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    failed_dir = out / strategy / "seed-0"
    assert len(err) == 1, err
    assert f"run {failed_dir} failed" in err[0] and cause in err[0] and "re-run the same command" in err[0]
    # The other run finished; the failed one stopped after its round 0, which it keeps.
    assert json.loads((out / "random" / "seed-0" / "state.json").read_text())["phase"] == "done"
    assert [r["round"] for r in read_jsonl(out / "random" / "seed-0" / "metrics.jsonl")] == [0, 1]
    failed_state = json.loads((failed_dir / "state.json").read_text())
    assert failed_state["phase"] != "done" and len(failed_state["rounds"]) == 1
    assert not (out / "report.md").exists()  # no report over an unfinished experiment
    if strategy == "test-raises":
        assert "injected failure" in (failed_dir / workers.TRACEBACK_FILE).read_text()
    kept = {p: (out / p).stat().st_mtime_ns for p in ("random/seed-0/state.json", "zero_shot.json",
                                                     f"{strategy}/seed-0/round-0/adapter/adapter_model.safetensors")}

    flag.unlink()  # the same command now resumes the failed run and touches nothing else
    assert run_cli(out, tiny_model_dir, *args) == 0
    assert {p: (out / p).stat().st_mtime_ns for p in kept} == kept
    rows = read_jsonl(failed_dir / "metrics.jsonl")
    assert [r["round"] for r in rows] == [0, 1] and [r["labeled"] for r in rows] == [4, 7]
    assert json.loads((failed_dir / "state.json").read_text())["rounds"][0] == failed_state["rounds"][0]
    assert not (failed_dir / workers.TRACEBACK_FILE).exists()
    assert (out / "report.md").is_file()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_invalid_jobs_is_one_line_exit_2(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--output", str(tmp_path / "exp"), "--jobs", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--jobs" in err and value in err
    assert not (tmp_path / "exp").exists()


def test_finished_runs_start_no_worker_and_a_changed_config_is_refused(tmp_path, tiny_model_dir, two_cores,
                                                                       capsys, monkeypatch):
    out = tmp_path / "exp"
    args = ["--strategy", "random", "--rounds", "1"]
    assert run_cli(out, tiny_model_dir, *args) == 0
    state = (out / "random" / "seed-0" / "state.json").read_text()
    mtime = (out / "random" / "seed-0" / "round-1" / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns

    def no_worker(*_, **__):
        raise AssertionError("a worker was started for finished runs")

    monkeypatch.setattr(workers, "_Pool", no_worker)
    assert run_cli(out, tiny_model_dir, *args, "--jobs", "2") == 0  # another N resumes the same runs
    assert (out / "random" / "seed-0" / "state.json").read_text() == state
    assert (out / "random" / "seed-0" / "round-1" / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == mtime
    capsys.readouterr()
    assert run_cli(out, tiny_model_dir, *args, "--jobs", "2", "--set", "train.epochs=2") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.epochs" in err and "--restart" in err


def test_worker_environment_carries_threads_and_one_gpu():
    env = workers.worker_environment(3, threads=2, gpus=["4", "6"])
    assert env == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "6"}
    assert "CUDA_VISIBLE_DEVICES" not in workers.worker_environment(0, threads=1, gpus=[])


def test_plugin_modules_name_only_strategies_registered_outside_the_library():
    from activelora.config import build_config

    config = build_config(None, {"loop": {"strategies": ["random", "star", "test-raises"]}})
    assert workers.plugin_modules(config) == [RaisingStrategy.__module__]


def test_longest_runs_are_handed_out_first_and_the_zero_shot_baseline_last(tmp_path):
    from activelora.config import build_config
    from activelora.run.experiment_data import load_experiment_data
    from activelora.experiment.plan import planned_runs

    config = build_config(None, {"loop": {"strategies": ["random", "star", "entropy"], "pool_limit": 12,
                                          "test_limit": 4, "probe_size": 2, "initial": 4}})
    data = load_experiment_data(config)
    tasks = workers.pending_tasks(config, data, tmp_path, planned_runs(config), restart=False)
    assert [t.label() for t in tasks] == ["star seed 0", "entropy seed 0", "random seed 0", "zero-shot"]
