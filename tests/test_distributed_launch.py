"""``accelerate launch`` with two CPU processes (gloo) on the tiny LLaMA: the same selections
as one process, resume after SIGKILL of the whole launch, one clear line for a failure.

On a machine without GPUs, ``accelerate launch --multi_gpu --num_processes 2`` starts two
processes through torchrun and activelora joins them over gloo (accelerate's own ``--cpu``
starts several processes only through MPI). No test here needs a GPU.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from activelora.cli import main
from activelora.atomic_files import read_jsonl

SMALL = [
    "--set", "loop.pool_limit=20", "--set", "loop.test_limit=7", "--set", "loop.probe_size=5",
    "--set", "loop.initial=4", "--set", "loop.query_size=3",
    "--set", "train.epochs=1", "--set", "train.batch_size=3",
    "--set", "eval.max_new_tokens=6", "--set", "score.max_new_tokens=6", "--set", "score.batch_size=4",
    "--set", "strategy.mc_samples=2", "--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]",
    # float32: the tolerances below are float32's (bf16's rounding differs more between a whole
    # micro-batch and its two halves than the 1e-4 that sharded training is held to).
    "--set", "model.dtype=float32",
]
LAUNCH_TIMEOUT = 420


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, make_tiny_llama, smol_tokenizer):
    """The tiny LLaMA saved as a model folder, with attention dropout 0 as in LLaMA-family
    checkpoints (it is the base model's own dropout, drawn per process: see data_parallel)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model = make_tiny_llama()
    model.config.attention_dropout = 0.0
    model.save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(out: Path, model: Path, *extra: str, processes: int = 2) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), "-m", "activelora",
            "run", "--output", str(out), "--model", str(model), "--quiet", *SMALL, *extra]


def launch_env() -> dict:
    # Two processes on the test machine's cores: one thread each; a hung collective gives up soon.
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "ACTIVELORA_DIST_TIMEOUT": "120",
            "CUDA_VISIBLE_DEVICES": ""}


def launch(out: Path, model: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(launch_command(out, model, *extra), env=launch_env(), capture_output=True, text=True,
                          timeout=LAUNCH_TIMEOUT)


def selections(run_dir: Path) -> list[list[str]]:
    return [r["ids"] for r in json.loads((run_dir / "state.json").read_text())["rounds"]]


ARGS = ["--strategy", "star", "--strategy", "random", "--rounds", "2"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir):
    """One process, in this process."""
    out = tmp_path_factory.mktemp("one") / "exp"
    os.environ["ACTIVELORA_CACHE"] = str(out.parent / "cache")
    try:
        assert main(["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", *SMALL, *ARGS]) == 0
    finally:
        os.environ.pop("ACTIVELORA_CACHE", None)
    return out


def test_two_processes_select_and_score_like_one(tmp_path, tiny_model_dir, reference):
    out = tmp_path / "exp"
    done = launch(out, tiny_model_dir, *ARGS)
    assert done.returncode == 0, done.stderr[-3000:]
    for strategy in ("star", "random"):
        one, two = reference / strategy / "seed-0", out / strategy / "seed-0"
        assert selections(two) == selections(one)
        rows_one, rows_two = read_jsonl(one / "metrics.jsonl"), read_jsonl(two / "metrics.jsonl")
        assert [r["round"] for r in rows_two] == [0, 1, 2]
        for a, b in zip(rows_one, rows_two):
            # Same examples, same masks; float rounding differs (gradients summed across
            # processes, other batch shapes), so a greedy answer may flip: at most one.
            assert abs(a["accuracy"] - b["accuracy"]) <= 1 / a["n_test"] + 1e-12, (strategy, a, b)
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        scores_one = json.loads((one / "round-1" / "pool_scores.json").read_text())
        scores_two = json.loads((two / "round-1" / "pool_scores.json").read_text())
        assert scores_two["ids"] == scores_one["ids"]
        for key in ("full_scores", "base_scores"):
            if key in scores_one:
                assert scores_two[key] == pytest.approx(scores_one[key], rel=1e-3, abs=1e-5)
    # Only the main process wrote: one report, and no scratch copies left behind.
    assert (out / "report.md").is_file() and (out / "zero_shot.json").is_file()
    assert done.stdout.count("finished in") == 1


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    pids = [int(p) for p in out.split()]
    return pids + [c for p in pids for c in _children(p)]


def test_sigkill_of_the_launch_then_the_same_command_resumes(tmp_path, tiny_model_dir, reference):
    out = tmp_path / "exp"
    process = subprocess.Popen(launch_command(out, tiny_model_dir, *ARGS), env=launch_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state_file = out / "star" / "seed-0" / "state.json"
    deadline = time.time() + LAUNCH_TIMEOUT
    killed = False
    while time.time() < deadline and process.poll() is None:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, json.JSONDecodeError):
            state = {"rounds": []}
        if len(state["rounds"]) >= 2:  # inside round 1, after its selection
            os.killpg(process.pid, signal.SIGKILL)  # the launcher and every process it started
            killed = True
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert killed, "the launch finished before it could be killed; make it longer"
    assert json.loads(state_file.read_text())["phase"] != "done"
    done = launch(out, tiny_model_dir, *ARGS)
    assert done.returncode == 0, done.stderr[-3000:]
    for strategy in ("star", "random"):
        assert selections(out / strategy / "seed-0") == selections(reference / strategy / "seed-0")
        assert [r["round"] for r in read_jsonl(out / strategy / "seed-0" / "metrics.jsonl")] == [0, 1, 2]


def test_a_user_mistake_under_the_launch_is_one_line(tmp_path, tiny_model_dir):
    started = time.time()
    done = launch(tmp_path / "exp", tiny_model_dir, "--strategy", "random", "--set", "loop.initial=50")
    ours = [line for line in done.stderr.splitlines() if line.startswith("activelora run: error:")]
    assert done.returncode != 0 and len(ours) == 1, done.stderr[-3000:]
    assert "50" in ours[0] and "20" in ours[0]
    assert "Traceback" not in done.stderr.split("activelora run: error:")[0]  # none from our processes
    assert time.time() - started < LAUNCH_TIMEOUT


def test_a_killed_process_brings_the_launch_down_and_the_run_resumes(tmp_path, tiny_model_dir, reference):
    """A process that dies (SIGKILL of rank 1: out of memory, say) must not leave the other
    waiting at a collective: the launch ends with an error, and the same command resumes."""
    out = tmp_path / "exp"
    process = subprocess.Popen(launch_command(out, tiny_model_dir, *ARGS), env=launch_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    state_file = out / "star" / "seed-0" / "state.json"
    deadline = time.time() + LAUNCH_TIMEOUT
    victim = None
    while time.time() < deadline and process.poll() is None and victim is None:
        if state_file.is_file():
            for pid in _children(process.pid):
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"RANK=1" in environ and b"-m\0activelora" in Path(f"/proc/{pid}/cmdline").read_bytes() + b"\0":
                    victim = pid
                    break
        time.sleep(0.1)
    assert victim is not None, "no rank-1 process found"
    os.kill(victim, signal.SIGKILL)
    try:
        _, err = process.communicate(timeout=180)  # a hang would end here
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the launch hung after one of its processes died")
    assert process.returncode != 0
    # The launcher reports the dead process (its own summary and traceback); the surviving
    # process adds no traceback of ours.
    assert "SIGKILL" in err and "/activelora/" not in err, err[-3000:]
    done = launch(out, tiny_model_dir, *ARGS)
    assert done.returncode == 0, done.stderr[-3000:]
    for strategy in ("star", "random"):
        assert selections(out / strategy / "seed-0") == selections(reference / strategy / "seed-0")


def test_answers_kept_at_selection_are_the_same_under_the_launch(tmp_path, tiny_model_dir):
    """accuracy-weighted's answers at selection go through the sharded greedy generation: two
    processes keep the same answers and so choose the same batches as one."""
    args = ["--strategy", "accuracy-weighted", "--rounds", "2"]
    one = tmp_path / "one"
    assert main(["run", "--output", str(one), "--model", str(tiny_model_dir), "--quiet", *SMALL, *args]) == 0
    two = tmp_path / "two"
    done = launch(two, tiny_model_dir, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    run_one, run_two = one / "accuracy-weighted" / "seed-0", two / "accuracy-weighted" / "seed-0"
    assert selections(run_two) == selections(run_one)
    for r in range(3):
        kept_one = json.loads((run_one / f"round-{r}" / "selection_answers.json").read_text())
        kept_two = json.loads((run_two / f"round-{r}" / "selection_answers.json").read_text())
        assert kept_two == kept_one
