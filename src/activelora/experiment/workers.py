"""Independent (strategy, seed) runs side by side in worker processes: ``activelora run --jobs N``.

The parent process plans and checks everything a user can get wrong (strategy names, data,
each run's saved config) before it starts a worker, then hands out one task at a time to
whichever worker is free: every run not yet done, the longest first, then the zero-shot
baseline (when ``zero_shot.json`` is missing or stale). Each worker is a fresh *spawned*
interpreter (forking a process that holds torch's thread pools is unsafe), which loads its
own copy of the model once, takes its share of the cores as torch threads (and the same
OpenMP/MKL limits; :mod:`activelora.multiprocess.threads`) and, where GPUs are present, the
GPU ``worker index mod GPUs``. When a worker has no task left, its threads pass to the
workers still running, unless ``--threads`` or ``OMP_NUM_THREADS`` fixed the count. A worker writes only the folder of the run it
holds, so runs never share a file; the zero-shot baseline is one task, so it is computed
once.

Parent and worker talk over one pipe per worker (no shared queue whose lock a killed
worker could leave held). The worker reports its progress through that pipe; the parent
draws one tqdm bar for the experiment and one per worker. A run that raises fails with one
line naming its folder and the cause (a crash also leaves ``worker-traceback.txt`` in that
folder); a worker that dies outright (SIGKILL, out of memory) fails the run it held, and a
new worker takes the remaining tasks. Every run's state is written atomically step by step
(:mod:`activelora.run.rundir`), so a failed run resumes where it stopped when the same command
runs again, and the other runs are never touched. Failures are raised together at the end
as :class:`RunsFailedError`, after every other run has finished.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Iterator

from tqdm.auto import tqdm

from ..config import Config
from ..errors import ActiveLoraError
from ..run.experiment_data import ExperimentData, load_experiment_data
from ..run.context import METRICS_FILE
from ..run.loop import ActiveLearningRun
from ..multiprocess.threads import ThreadPlan, apply_threads, child_environment, shares
from ..atomic_files import read_jsonl
from .baseline import saved_zero_shot, zero_shot_baseline
from .plan import check_strategies, planned_rounds, run_folder
from .report import ZERO_SHOT_FILE
from .runs import load_experiment_model, run_one

log = logging.getLogger(__name__)

TRACEBACK_FILE = "worker-traceback.txt"


# ---------------------------------------------------------------------- tasks and failures


@dataclass(frozen=True)
class Task:
    """One unit of work for a worker: a (strategy, seed) run, or the zero-shot baseline
    when ``strategy`` is None."""

    strategy: str | None = None
    seed: int | None = None

    @property
    def is_zero_shot(self) -> bool:
        return self.strategy is None

    def label(self) -> str:
        return "zero-shot" if self.is_zero_shot else f"{self.strategy} seed {self.seed}"

    def folder(self, output: Path) -> Path:
        """Where the task writes: its run folder (the zero-shot baseline: its one file)."""
        return output / ZERO_SHOT_FILE if self.is_zero_shot else run_folder(output, self.strategy, self.seed)

    def what(self, output: Path) -> str:
        """The task as a failure line names it."""
        return f"zero-shot baseline {self.folder(output)}" if self.is_zero_shot else f"run {self.folder(output)}"


@dataclass(frozen=True)
class RunFailure:
    """A task that did not finish: what it is (naming its folder), why, and whether the user
    can fix it."""

    what: str
    cause: str
    user_mistake: bool

    def line(self) -> str:
        return f"{self.what} failed: {self.cause}; re-run the same command to resume"


class RunsFailedError(RuntimeError):
    """Some runs failed while the others finished. ``exit_code`` is 1 if any crashed
    (an exception other than a user mistake, or a killed worker), else 2."""

    def __init__(self, failures: list[RunFailure], total: int):
        self.failures = list(failures)
        self.total = total
        super().__init__(f"{len(failures)} of {total} tasks failed: " + " | ".join(f.line() for f in failures))

    @property
    def exit_code(self) -> int:
        return 2 if all(f.user_mistake for f in self.failures) else 1


# ---------------------------------------------------------------------- resources


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries; [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [entry.strip() for entry in listed.split(",") if entry.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def worker_environment(index: int, threads: int, gpus: list[str]) -> dict[str, str]:
    """Variables a worker starts with: its thread limits and, with GPUs, the one GPU it sees
    (so every ``cuda`` device in the library means that GPU)."""
    env = child_environment(threads)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return env


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block (a spawned child inherits them), then restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def plugin_modules(config: Config) -> list[str]:
    """Modules outside activelora that registered a strategy this experiment uses: a spawned
    worker imports them so that its registry holds the same names as the parent's."""
    from ..strategies import get_strategy

    modules = {type(get_strategy(name, config.strategy)).__module__ for name in config.loop.strategies}
    return sorted(m for m in modules if m != "__main__" and m.split(".")[0] != "activelora")


def _describe(exc: BaseException) -> str:
    """One line: the message of a user mistake, ``Type: message`` for anything else."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ActiveLoraError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _death_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"its worker process was killed by {name} (out of memory, or killed from outside)"
    return f"its worker process exited with code {exitcode} before reporting a result"


# ---------------------------------------------------------------------- worker side


class _ProgressToParent:
    """What :func:`activelora.experiment.runs.run_one` needs of a tqdm bar, sent to the parent
    instead. A run reports at every phase, so that is also where it takes up a new thread
    count the parent sent (the only message that reaches a worker in the middle of a run)."""

    def __init__(self, connection: Connection):
        self._connection = connection

    def update(self, n: int = 1) -> None:
        if n:
            self._connection.send(("advance", n))
        self._take_thread_changes()

    def set_postfix_str(self, text: str) -> None:
        self._connection.send(("status", text))
        self._take_thread_changes()

    def _take_thread_changes(self) -> None:
        while self._connection.poll():
            _apply_thread_message(self._connection.recv())


def _apply_thread_message(message) -> bool:
    """Apply ``("threads", n)`` from the parent; False for any other message."""
    if isinstance(message, tuple) and message and message[0] == "threads":
        apply_threads(message[1])
        return True
    return False


def _worker_main(index: int, connection: Connection, config: Config, output: Path, restart: bool,
                 threads: int, plugins: list[str], test_ids: list[str], log_level: int) -> None:
    """A worker: load data and model once, then run the tasks the parent sends until None."""
    try:
        import importlib

        import torch

        logging.basicConfig(level=log_level, format=f"%(levelname)s worker {index} %(name)s: %(message)s")
        torch.set_num_threads(threads)
        try:
            for module in plugins:
                importlib.import_module(module)
            data = load_experiment_data(config)
            if [ex.id for ex in data.test] != test_ids:
                raise RuntimeError("the worker loaded a different test set than the parent")
            model, tokenizer = load_experiment_model(config)
        except Exception as exc:
            connection.send(("startup_failed", _describe(exc), isinstance(exc, ActiveLoraError)))
            return
        connection.send(("ready",))
        while True:
            task: Task | None = connection.recv()
            if _apply_thread_message(task):
                continue
            if task is None:
                return
            _run_task(task, connection, config, data, model, tokenizer, output, restart)
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        # Ctrl-C reaches every process of the group, and the parent then stops waiting: the
        # run state on disk is consistent after any step, so a quiet exit is all it takes.
        return


def _run_task(task: Task, connection: Connection, config: Config, data: ExperimentData, model, tokenizer,
              output: Path, restart: bool) -> None:
    folder = task.folder(output)
    try:
        if task.is_zero_shot:
            zero_shot_baseline(config, data, model, tokenizer, output, progress=False)
            connection.send(("advance", 1))
        else:
            run_one(config, data, model, tokenizer, output, task.strategy, task.seed, restart=restart,
                    progress=False, bar=_ProgressToParent(connection))
            (folder / TRACEBACK_FILE).unlink(missing_ok=True)  # from an earlier failure, now resumed
    except Exception as exc:
        user_mistake = isinstance(exc, ActiveLoraError)
        cause = _describe(exc)
        if not user_mistake and not task.is_zero_shot:
            # The one line says what; the traceback beside the run says where, for a bug report.
            (folder / TRACEBACK_FILE).write_text(traceback.format_exc())
            cause += f" (traceback in {folder / TRACEBACK_FILE})"
        connection.send(("failed", cause, user_mistake))
    else:
        connection.send(("done",))


# ---------------------------------------------------------------------- parent side


@dataclass
class _Worker:
    slot: int  # which progress bar it draws on; a replacement takes the dead worker's slot
    process: multiprocessing.process.BaseProcess
    connection: Connection
    task: Task | None = None
    ready: bool = False
    finished: bool = False  # told to stop (or failed to start): its exit is expected
    threads: int = 1


def expected_cost(config: Config, strategy_name: str) -> int:
    """A rough size of a run, to hand out the longest first: its rounds times the passes each
    round makes (training and evaluation as one, plus one per pool-scoring pass)."""
    from ..strategies import get_strategy

    needs = get_strategy(strategy_name, config.strategy).needs()
    passes = (needs.mc_samples if needs.full_scores else 0) + (1 if needs.base_scores else 0)
    return planned_rounds(config, strategy_name) * (1 + passes)


def pending_tasks(config: Config, data: ExperimentData, output: Path, runs: list[tuple[str, int]], *,
                  restart: bool) -> list[Task]:
    """Every run not done yet, the longest first, then the zero-shot baseline unless saved:
    handed out in this order, the short tasks fill the time the long ones leave (with the
    demo's star and random runs on two workers, the zero-shot baseline follows random).
    Opening each run's state here refuses a changed config (or, with ``restart``, starts that
    run over) before any worker starts; the model is not needed for that."""
    tasks = []
    for strategy_name, seed in runs:
        run = ActiveLearningRun(config, strategy_name, seed, run_folder(output, strategy_name, seed), data,
                                model=None, tokenizer=None, restart=restart, progress=False)
        if not run.state.done:
            tasks.append(Task(strategy_name, seed))
    tasks.sort(key=lambda task: -expected_cost(config, task.strategy))  # stable: ties keep their order
    if saved_zero_shot(config, data, output) is None:
        tasks.append(Task())
    return tasks


class _Pool:
    """The parent's view of the workers: start, hand out tasks, collect events, replace the dead."""

    def __init__(self, config: Config, data: ExperimentData, output: Path, tasks: list[Task], *, jobs: int,
                 restart: bool, progress: bool, threads: int | None = None):
        self.config, self.output, self.restart = config, output, restart
        self.pending: deque[Task] = deque(tasks)
        self.size = min(jobs, len(tasks))
        self.plan = ThreadPlan.decide(threads, self.size)
        self.threads = self.plan.per_process
        self.gpus = visible_gpus()
        self.plugins = plugin_modules(config)
        self.test_ids = [ex.id for ex in data.test]
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        self.failures: list[RunFailure] = []
        self.startup_failure: RunFailure | None = None
        self.progress = progress
        runs_total = sum(planned_rounds(config, t.strategy) for t in tasks if not t.is_zero_shot)
        self.overall = tqdm(total=runs_total, desc="experiment", unit="round", position=0, disable=not progress)
        self.bars = [tqdm(total=1, desc=f"worker {slot}", unit="round", position=slot + 1, leave=False,
                          disable=not progress) for slot in range(self.size)]

    # -------------------------------------------------------------- workers

    def _start(self, slot: int) -> None:
        parent_end, child_end = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_worker_main, name=f"activelora-worker-{slot}",
            args=(slot, child_end, self.config, self.output, self.restart, self.threads, self.plugins,
                  self.test_ids, logging.getLogger().getEffectiveLevel()))
        with _environment(worker_environment(slot, self.threads, self.gpus)):
            process.start()
        child_end.close()  # the parent keeps only its end, so a dead child reads as EOF
        self.workers.append(_Worker(slot, process, parent_end, threads=self.threads))
        self.bars[slot].set_postfix_str("loading the model")
        log.info("worker %d: pid %d, %d threads", slot, process.pid, self.threads)

    def _fill(self) -> None:
        """Keep as many live workers as there are tasks left to start, up to the pool size."""
        if self.startup_failure is not None:
            return
        busy = {w.slot for w in self.workers if not w.finished}
        waiting = sum(1 for w in self.workers if not w.finished and w.task is None)
        for slot in range(self.size):
            if len(self.pending) <= waiting:
                break
            if slot not in busy:
                self._start(slot)
                waiting += 1

    def _dispatch(self, worker: _Worker) -> None:
        if self.pending and self.startup_failure is None:
            worker.task = self.pending.popleft()
            bar = self.bars[worker.slot]
            rounds = 1 if worker.task.is_zero_shot else planned_rounds(self.config, worker.task.strategy)
            bar.reset(total=rounds)
            bar.set_description(f"worker {worker.slot}: {worker.task.label()}")
            bar.set_postfix_str("")
            worker.connection.send(worker.task)
        else:
            worker.task = None
            worker.finished = True
            with contextlib.suppress(OSError):
                worker.connection.send(None)
            self.bars[worker.slot].set_description(f"worker {worker.slot}: idle")
            self.bars[worker.slot].set_postfix_str("")
            self._pass_on_threads()

    def _pass_on_threads(self) -> None:
        """A worker is done: share the cores among the workers still running a task. Only
        once no task is left to start, so a new worker never adds threads to a full machine."""
        if self.plan.fixed or self.pending:
            return
        running = [w for w in self.workers if not w.finished and w.task is not None]
        for worker, threads in zip(running, shares(self.plan.cores, len(running))):
            if threads != worker.threads:
                with contextlib.suppress(OSError):
                    worker.connection.send(("threads", threads))
                log.info("worker %d: %d -> %d threads", worker.slot, worker.threads, threads)
                worker.threads = threads

    def _fail(self, worker: _Worker, cause: str, user_mistake: bool) -> None:
        failure = RunFailure(worker.task.what(self.output), cause, user_mistake)
        self.failures.append(failure)
        if self.progress:  # now, so it is seen at once; the command lists every failure at the end
            tqdm.write(f"{failure.what} failed: {cause}; the other runs go on", file=sys.stderr)
        worker.task = None

    # -------------------------------------------------------------- events

    def _handle(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            self._dispatch(worker)
        elif kind == "advance":
            self.bars[worker.slot].update(message[1])
            if worker.task is not None and not worker.task.is_zero_shot:
                self.overall.update(message[1])
        elif kind == "status":
            self.bars[worker.slot].set_postfix_str(message[1])
        elif kind == "done":
            worker.task = None
            self._dispatch(worker)
        elif kind == "failed":
            self._fail(worker, message[1], message[2])
            self._dispatch(worker)
        elif kind == "startup_failed":
            # Every worker loads the same data and model: what stopped one stops all.
            worker.finished = True
            self._startup_failed(message[1], message[2])

    def _startup_failed(self, cause: str, user_mistake: bool) -> None:
        if self.startup_failure is None:
            left = ", ".join(task.label() for task in self.pending) or "nothing"
            self.startup_failure = RunFailure(f"experiment {self.output}", f"a worker could not start ({cause}); "
                                              f"not started: {left}", user_mistake)

    def _reap(self, worker: _Worker) -> None:
        """A worker's pipe closed or its process ended: read what it sent, then bury it."""
        with contextlib.suppress(EOFError, OSError):
            while worker.connection.poll():
                self._handle(worker, worker.connection.recv())
        worker.process.join()
        if worker.task is not None:
            self._fail(worker, _death_cause(worker.process.exitcode), user_mistake=False)
        elif not worker.ready and not worker.finished:  # died while loading: a replacement would too
            self._startup_failed(_death_cause(worker.process.exitcode), user_mistake=False)
        worker.finished = True
        worker.connection.close()
        self.workers.remove(worker)

    def run(self) -> None:
        try:
            self._fill()
            while self.workers:
                by_handle = {}
                for worker in self.workers:
                    by_handle[worker.connection] = worker
                    by_handle[worker.process.sentinel] = worker
                for handle in wait(list(by_handle), timeout=1.0):
                    worker = by_handle[handle]
                    if worker not in self.workers:
                        continue
                    if handle is worker.connection:
                        try:
                            message = worker.connection.recv()
                        except (EOFError, OSError):
                            self._reap(worker)
                            continue
                        self._handle(worker, message)
                    else:
                        self._reap(worker)
                self._fill()
        finally:
            self._stop_all()
        if self.startup_failure is not None:
            self.failures.append(self.startup_failure)

    def _stop_all(self) -> None:
        """On the way out (also after Ctrl-C or an error here): no worker outlives the parent."""
        for worker in list(self.workers):
            if worker.process.is_alive():
                worker.process.terminate()
            worker.process.join(timeout=30)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
        self.workers.clear()
        for bar in self.bars:
            bar.close()
        self.overall.close()


def run_in_workers(config: Config, data: ExperimentData, output: Path, runs: list[tuple[str, int]], *,
                   jobs: int, restart: bool = False, progress: bool = True, threads: int | None = None) -> dict:
    """The runs of :func:`activelora.experiment.runner.run_experiment` in ``jobs`` worker processes;
    returns {(strategy, seed): metrics rows}, or raises :class:`RunsFailedError` after every
    run that could finish has finished."""
    from ..models.loading import resolve_model

    check_strategies(config)
    resolve_model(config.model.name)  # a missing model fails here, once, not in every worker
    tasks = pending_tasks(config, data, output, runs, restart=restart)
    if tasks:  # else every run is done and the zero-shot baseline saved: nothing to start
        pool = _Pool(config, data, output, tasks, jobs=jobs, restart=restart, progress=progress, threads=threads)
        pool.run()
        if pool.failures:
            raise RunsFailedError(pool.failures, total=len(tasks))
    results = {}
    for strategy_name, seed in runs:
        folder = run_folder(output, strategy_name, seed)
        results[(strategy_name, seed)] = read_jsonl(folder / METRICS_FILE)
    return results


__all__ = ["RunFailure", "RunsFailedError", "Task", "pending_tasks", "run_in_workers", "visible_gpus",
           "worker_environment"]
