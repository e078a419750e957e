"""How many compute threads each of activelora's processes takes: ``--threads``.

The rule, in order:

1. ``--threads N`` given: every process that computes takes N threads, fixed for its life.
2. ``OMP_NUM_THREADS`` set in the environment: that number, fixed (a launcher or a batch
   system that set it knows the machine's share better than we do).
3. Otherwise the cores this process may use (its affinity mask) divided among the processes
   that compute at once: ``--jobs`` workers, times the processes a launcher started on this
   machine (``LOCAL_WORLD_SIZE``, set by ``accelerate launch`` and ``torchrun``), at least one
   each. Under ``--jobs`` these shares are *elastic*: when a worker has no run left, its
   threads pass to the workers still running (:func:`shares`), at their next phase.

So no two of activelora's own processes ever run more threads between them than the cores
they may use (with the default), and none idles while another still has work.

Why fixed counts exist at all: a reduction split over 2 threads adds its partial sums in
another order than over 1, so floats differ in the last bits and a near-tie in the pool can
flip a selection. Elastic shares make a run's thread count depend on when the other runs
end; give ``--threads`` (or ``OMP_NUM_THREADS``) when runs must repeat bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_processes() -> int:
    """Processes a launcher started on this machine (1 outside a launch)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _environment_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        threads = int(value)
    except ValueError:
        return None  # unset or not a plain count (e.g. OpenMP's nested "4,2"): not ours to read
    return threads if threads > 0 else None


@dataclass(frozen=True)
class ThreadPlan:
    """Threads per computing process, and whether the count may change while runs go on."""

    per_process: int
    fixed: bool
    cores: int  # the cores shared out (elastic shares never add up to more)

    @classmethod
    def decide(cls, requested: int | None = None, processes: int = 1) -> "ThreadPlan":
        """The plan for ``processes`` computing side by side (``--jobs``), by the rule above."""
        cores = available_cores()
        if requested is not None:
            if requested < 1:
                raise ValueError(f"--threads: must be a positive integer, got {requested!r}")
            return cls(requested, True, cores)
        from_environment = _environment_threads()
        if from_environment is not None:
            return cls(from_environment, True, cores)
        share = cores // local_processes()
        return cls(max(1, share // max(1, processes)), False, max(1, share))


def shares(cores: int, running: int) -> list[int]:
    """Elastic shares: ``cores`` threads among ``running`` processes, at least one each,
    differing by at most one, summing to ``max(cores, running)``.

    ``shares(2, 1) == [2]``: the last worker still running takes both cores of two.
    """
    if running <= 0:
        return []
    base, extra = divmod(max(cores, running), running)
    return [base + 1 if i < extra else base for i in range(running)]


def apply_threads(threads: int) -> None:
    """Make this process compute with ``threads`` threads (torch's intra-op pool)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def child_environment(threads: int) -> dict[str, str]:
    """What a spawned worker's OpenMP and MKL read before torch starts in it."""
    return {name: str(threads) for name in THREAD_VARIABLES}
