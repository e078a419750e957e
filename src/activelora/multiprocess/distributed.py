"""One active-learning run across several processes (``accelerate launch``/``torchrun``).

Every process runs the same loop on the same data. The parallel parts are split by example:

* **Sharding by stable id.** :func:`my_share` gives each process a fixed part of a list of
  examples. The part depends only on the *set* of ids: the ids are ordered by a hash
  (SHA-256 of the id) and dealt out in turn, so shards are balanced to within one example
  and neither the list's order nor where an id sits in it matters.
* **Gathering.** :func:`map_sharded` runs a per-example function on this process's share
  and gathers every share to every process (``torch.distributed.all_gather_object``), in
  the input order. So all processes hold the same scores and make the same selection.
* **Failing together.** A per-example function that raises on one process does not leave
  the others waiting: the failure travels in the gather, and every process raises
  :class:`RankFailedError` with the failing process's message. A process that dies outright
  (SIGKILL, out of memory) is noticed by the launcher, which stops the others; a process
  that neither fails nor answers is given up on after the process group's timeout
  (``ACTIVELORA_DIST_TIMEOUT`` seconds, default 1800), never waited for forever.
* **Main-process writes.** Only the main process writes a run folder. The other processes
  keep a private scratch copy of it (:func:`open_mirrored`), updated by the same
  deterministic steps from the same gathered results, and deleted at exit.

A single process (no launcher) takes none of these paths: sharding returns everything,
gathering returns its input, and nothing touches ``torch.distributed``.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence, TypeVar

from ..errors import ActiveLoraError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

TIMEOUT_ENV = "ACTIVELORA_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800
# How long a non-main process waits before printing its own error: when every process
# fails the same way (a bad setting), the main process prints first and exits, the
# launcher then stops the others within this time, and the user reads one line.
REPORT_GRACE_S = 3.0


class RankFailedError(ActiveLoraError, RuntimeError):
    """A process of this launch failed; every process raises this with its message."""

    def __init__(self, rank: int, message: str):
        super().__init__(f"process {rank} of the launch failed: {message}")
        self.rank = rank


class DivergedError(ActiveLoraError, RuntimeError):
    """The processes disagree on something they must agree on (a selection)."""


# --------------------------------------------------------------------------- who am I


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the launch."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_world_size(environ=None) -> int:
    """How many processes the launcher started (``WORLD_SIZE`` from torchrun/accelerate)."""
    environ = os.environ if environ is None else environ
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if environ.get(name):
            return int(environ[name])
    return 1


def timeout_seconds() -> float:
    """The process group's timeout: how long a collective waits for a silent process."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return float(DEFAULT_TIMEOUT_S)
    try:
        value = float(text)
    except ValueError:
        raise ActiveLoraError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds") from None
    if value <= 0:
        raise ActiveLoraError(f"{TIMEOUT_ENV}={text!r}: must be > 0")
    return value


@functools.lru_cache(maxsize=1)
def process_info() -> ProcessInfo:
    """This process's rank, set up once through accelerate's ``PartialState``.

    Without a launcher this is rank 0 of 1 and no process group is created. Under a
    launcher, the group uses NCCL on GPUs and gloo on CPUs: accelerate picks gloo only when
    told the run is on CPUs, so ``cpu`` is passed when no GPU is present (else each process
    would believe it was alone and all of them would write the run folder).
    """
    if launched_world_size() <= 1:
        return ProcessInfo(rank=0, world_size=1, local_rank=0)
    import torch
    from accelerate import PartialState

    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
    state = PartialState(cpu=cpu, timeout=datetime.timedelta(seconds=timeout_seconds()))
    return ProcessInfo(rank=state.process_index, world_size=state.num_processes,
                       local_rank=state.local_process_index)


def is_main_process() -> bool:
    return process_info().is_main


# --------------------------------------------------------------------------- sharding


def _id_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def shard_of(keys: Sequence[str], world_size: int) -> dict[str, int]:
    """``{key: rank}``: keys ordered by their SHA-256 and dealt out in turn.

    A function of the set of keys only (not their order), balanced to within one key.
    Keys must be distinct.
    """
    ordered = sorted(set(keys), key=lambda k: (_id_hash(k), k))
    if len(ordered) != len(keys):
        raise ValueError("shard_of: keys must be distinct")
    return {k: i % world_size for i, k in enumerate(ordered)}


def my_share(items: Sequence[T], key: Callable[[T], str] = lambda ex: ex.id,
             info: ProcessInfo | None = None) -> list[T]:
    """The items this process handles, in their input order."""
    info = info or process_info()
    if not info.distributed:
        return list(items)
    owner = shard_of([key(x) for x in items], info.world_size)
    return [x for x in items if owner[key(x)] == info.rank]


# --------------------------------------------------------------------------- collectives


def _collective(call: Callable[[], T], what: str) -> T:
    """Run a torch.distributed collective; a peer lost or a timeout becomes one clear error."""
    try:
        return call()
    except ActiveLoraError:
        raise
    except RuntimeError as exc:  # DistBackendError and gloo's transport errors are RuntimeErrors
        raise PeerLostError(what, exc) from exc


class PeerLostError(ActiveLoraError, RuntimeError):
    """Another process stopped answering (it crashed, was killed, or timed out)."""

    def __init__(self, what: str, cause: BaseException):
        text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        timed_out = "timed out" in text.lower() or "timeout" in text.lower()
        reason = (f"no answer within {timeout_seconds():.0f}s (set {TIMEOUT_ENV} to wait longer)"
                  if timed_out else "another process of the launch stopped; its own message is above")
        super().__init__(f"{what}: {reason}")
        self.timed_out = timed_out


def gather_objects(obj: Any, what: str = "gather", info: ProcessInfo | None = None) -> list[Any]:
    """Every process's ``obj``, indexed by rank, on every process."""
    info = info or process_info()
    if not info.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * info.world_size
    _collective(lambda: dist.all_gather_object(out, obj), what)
    return out


def broadcast_object(obj: Any, what: str = "broadcast", info: ProcessInfo | None = None) -> Any:
    """The main process's ``obj`` on every process (the others pass anything, e.g. None)."""
    info = info or process_info()
    if not info.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if info.is_main else None]
    _collective(lambda: dist.broadcast_object_list(box, src=0), what)
    return box[0]


def barrier(what: str = "barrier", info: ProcessInfo | None = None) -> None:
    """Wait for every process (up to the process group's timeout)."""
    info = info or process_info()
    if info.distributed:
        import torch.distributed as dist

        _collective(dist.barrier, what)


@dataclass(frozen=True)
class _Failure:
    rank: int
    message: str


def _failure_of(exc: BaseException, rank: int) -> _Failure:
    if isinstance(exc, ActiveLoraError):
        return _Failure(rank, str(exc))
    # A bug rather than a user mistake: its traceback is kept on this process's stderr.
    traceback.print_exception(exc, file=sys.stderr)
    return _Failure(rank, f"{type(exc).__name__}: {exc}")


def _raise_first_failure(parts: Sequence[Any]) -> None:
    for part in parts:
        if isinstance(part, _Failure):
            raise RankFailedError(part.rank, part.message)


def all_or_none(fn: Callable[[], T], what: str, info: ProcessInfo | None = None) -> T:
    """Run ``fn`` on every process; if it raises on any, raise :class:`RankFailedError` on all.

    ``fn`` must not itself call collectives (they would pair up with this function's).
    """
    info = info or process_info()
    if not info.distributed:
        return fn()
    try:
        value: Any = fn()
    except Exception as exc:  # noqa: BLE001 - forwarded to every process, then raised
        value = _failure_of(exc, info.rank)
    statuses = gather_objects(value if isinstance(value, _Failure) else None, what, info)
    _raise_first_failure(statuses)
    return value


def map_sharded(fn: Callable[[list[T]], Sequence[R]], items: Sequence[T], *,
                key: Callable[[T], str] = lambda ex: ex.id, what: str = "sharded step",
                info: ProcessInfo | None = None) -> list[R]:
    """``fn`` over every item, each process doing its share; results in ``items`` order.

    ``fn(share)`` returns one result per item of ``share``, aligned (it may get an empty
    share). Each result must depend only on its own item, so that the split does not
    change it; the results must be picklable (they travel between processes).
    """
    info = info or process_info()
    if not info.distributed:
        results = list(fn(list(items)))
        if len(results) != len(items):
            raise ValueError(f"{what}: {len(results)} results for {len(items)} items")
        return results
    share = my_share(items, key, info)
    try:
        results = list(fn(share)) if share else []
        if len(results) != len(share):
            raise ValueError(f"{what}: {len(results)} results for {len(share)} items")
        payload: Any = [(key(x), r) for x, r in zip(share, results)]
    except Exception as exc:  # noqa: BLE001 - forwarded to every process, then raised
        payload = _failure_of(exc, info.rank)
    parts = gather_objects(payload, what, info)
    _raise_first_failure(parts)
    by_key = {k: r for part in parts for k, r in part}
    return [by_key[key(x)] for x in items]


def check_agreement(value: Hashable | Sequence, what: str, info: ProcessInfo | None = None) -> None:
    """Raise :class:`DivergedError` on every process unless all hold an equal ``value``."""
    info = info or process_info()
    if not info.distributed:
        return
    digest = hashlib.sha256(repr(value).encode("utf-8")).hexdigest()
    digests = gather_objects(digest, what, info)
    if len(set(digests)) > 1:
        differing = [r for r, d in enumerate(digests) if d != digests[0]]
        raise DivergedError(f"{what}: processes {differing} disagree with process 0")


# --------------------------------------------------------------------------- run folders


def _read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes); temp files of atomic writes skipped."""
    files = {}
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _scratch_folder(name: str, rank: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"activelora-rank{rank}-{name}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def open_mirrored(build: Callable[[Path], T], folder: Path, info: ProcessInfo | None = None) -> T:
    """``build(folder)`` on the main process; ``build(copy)`` on the others.

    The main process builds first (it may create, resume or restart the run folder); its
    folder's files are then sent to the others (no shared filesystem needed), which build on
    a private scratch copy, deleted at exit. A failure of the main process's build is raised
    on every process. The copy is taken once: afterwards each process advances its own
    copy by the same deterministic steps.
    """
    info = info or process_info()
    if not info.distributed:
        return build(folder)
    result: Any = None
    snapshot: Any = None
    if info.is_main:
        try:
            result = build(folder)
            snapshot = _read_tree(Path(folder))
        except Exception as exc:  # noqa: BLE001 - forwarded to every process, then raised
            snapshot = _failure_of(exc, info.rank)
    snapshot = broadcast_object(snapshot, f"{folder}: share the run folder", info)
    _raise_first_failure([snapshot])
    if info.is_main:  # takes part in the others' status exchange
        return all_or_none(lambda: result, f"{folder}: open the copies", info)

    def build_copy():
        copy = _scratch_folder(Path(folder).name, info.rank)
        _write_tree(copy, snapshot)
        return build(copy)

    return all_or_none(build_copy, f"{folder}: open the copies", info)


def main_only(fn: Callable[[], T], what: str, info: ProcessInfo | None = None) -> T:
    """``fn()`` on the main process only (a write); its result, or its failure, on all."""
    info = info or process_info()
    if not info.distributed:
        return fn()
    value: Any = None
    if info.is_main:
        try:
            value = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - forwarded to every process, then raised
            value = ("failed", _failure_of(exc, info.rank))
    value = broadcast_object(value, what, info)
    if value[0] == "failed":
        _raise_first_failure([value[1]])
    return value[1]


# --------------------------------------------------------------------------- errors at the top


def should_report(exc: BaseException) -> bool:
    """Whether this process prints ``exc`` (the CLI's one line), so the launch shows it once.

    The main process reports everything. A :class:`RankFailedError` reached every process
    and is left to the main one; a lost peer is reported by whoever failed. A non-main
    process's own error is printed after :data:`REPORT_GRACE_S`: when all processes failed
    alike, the launcher stops this one first, once the main process has exited.
    """
    if launched_world_size() <= 1:
        return True
    info = process_info()
    if info.is_main:
        return not (isinstance(exc, PeerLostError) and not exc.timed_out)
    if isinstance(exc, (RankFailedError, PeerLostError)):
        return False
    time.sleep(REPORT_GRACE_S)
    return True


def is_peer_loss(exc: BaseException) -> bool:
    """A torch.distributed failure that says another process went away (not our bug)."""
    if launched_world_size() <= 1 or not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return any(s in text for s in ("connection closed by peer", "connection reset", "broken pipe",
                                   "timed out", "nccl", "gloo"))


# --------------------------------------------------------------------------- seeds


def example_seed(seed: int, example_id: str, *salt: int | str) -> int:
    """A 63-bit seed from ``(seed, example id, salt...)``: the same on any number of
    processes and in any batch, so per-example random draws do not depend on the split."""
    text = "\x1f".join([str(int(seed)), example_id, *map(str, salt)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1
