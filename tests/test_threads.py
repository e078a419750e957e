"""--threads: the plan per process, elastic shares under --jobs, and the worker taking a new count."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from activelora.cli import main
from activelora.experiment import workers
from activelora.multiprocess import threads
from activelora.multiprocess.threads import ThreadPlan, shares


@pytest.fixture
def cores(monkeypatch):
    def set_cores(n: int, local_processes: int | None = None):
        monkeypatch.setattr(threads, "available_cores", lambda: n)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        if local_processes is None:
            monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_processes))
    return set_cores


def test_default_divides_the_cores_among_the_jobs(cores):
    cores(8)
    assert ThreadPlan.decide(None, 1) == ThreadPlan(8, False, 8)
    assert ThreadPlan.decide(None, 3) == ThreadPlan(2, False, 8)
    cores(2)
    assert ThreadPlan.decide(None, 4).per_process == 1  # never zero threads


def test_a_launch_divides_the_cores_among_its_local_processes_too(cores):
    cores(16, local_processes=4)
    assert ThreadPlan.decide(None, 1) == ThreadPlan(4, False, 4)
    assert ThreadPlan.decide(None, 2).per_process == 2


def test_an_explicit_count_or_omp_num_threads_is_fixed(cores, monkeypatch):
    cores(8)
    assert ThreadPlan.decide(3, 2) == ThreadPlan(3, True, 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert ThreadPlan.decide(None, 2) == ThreadPlan(5, True, 8)
    assert ThreadPlan.decide(2, 2).per_process == 2  # the flag wins over the environment
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # OpenMP's nested form: not a count we read
    assert ThreadPlan.decide(None, 2) == ThreadPlan(4, False, 8)
    with pytest.raises(ValueError, match="--threads"):
        ThreadPlan.decide(0)


@pytest.mark.parametrize("total, running", [(2, 1), (2, 2), (8, 3), (7, 7), (16, 5), (3, 4)])
def test_shares_add_up_to_the_cores_and_differ_by_at_most_one(total, running):
    got = shares(total, running)
    assert len(got) == running and min(got) >= 1
    assert sum(got) == max(total, running)
    assert max(got) - min(got) <= 1
    assert shares(total, 0) == []


class _Pipe:
    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message)


def _pool(plan: ThreadPlan, tasks_left: int, running_threads: list[int], done_threads: int):
    pool = object.__new__(workers._Pool)
    pool.plan, pool.pending = plan, [object()] * tasks_left
    running = [SimpleNamespace(slot=i, finished=False, task=object(), connection=_Pipe(), threads=t)
               for i, t in enumerate(running_threads)]
    done = SimpleNamespace(slot=len(running), finished=True, task=None, connection=_Pipe(), threads=done_threads)
    pool.workers = running + [done]
    return pool, running, done


def test_a_finished_worker_passes_its_threads_to_the_running_ones():
    pool, running, done = _pool(ThreadPlan(1, False, 4), 0, [1, 1, 1], 1)
    pool._pass_on_threads()
    assert [w.threads for w in running] == [2, 1, 1]
    assert running[0].connection.sent == [("threads", 2)] and running[1].connection.sent == []
    assert sum(w.threads for w in running) == 4 and done.connection.sent == []


def test_threads_stay_while_tasks_wait_or_when_the_count_is_fixed():
    pool, running, _ = _pool(ThreadPlan(1, False, 2), 1, [1], 1)
    pool._pass_on_threads()
    assert running[0].threads == 1 and running[0].connection.sent == []
    pool, running, _ = _pool(ThreadPlan(1, True, 2), 0, [1], 1)
    pool._pass_on_threads()
    assert running[0].threads == 1 and running[0].connection.sent == []


def test_a_worker_takes_a_thread_message_between_phases():
    before = torch.get_num_threads()
    try:
        assert workers._apply_thread_message(("threads", before + 1))
        assert torch.get_num_threads() == before + 1
        assert not workers._apply_thread_message(("status", "x"))
        assert not workers._apply_thread_message(None)
    finally:
        torch.set_num_threads(before)


def test_the_threads_flag_sets_this_process(monkeypatch, capsys):
    before = torch.get_num_threads()
    try:
        assert main(["compare", "--threads", "3", "/nonexistent-folder"]) == 2
        assert torch.get_num_threads() == 3
        capsys.readouterr()
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit) as exc:
        main(["score", "--threads", "zero"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--threads" in err
