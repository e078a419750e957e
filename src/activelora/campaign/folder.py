"""A campaign folder on disk: its fixed settings, its state, and how both change safely.

Layout::

    DIR/campaign.json            fixed at init: task, model and training config, strategy, batch size,
                                 stopping settings, the stop set's ids, the campaign's id
    DIR/pool.jsonl               the pool as read at init (id, question): ids never move
    DIR/dev.jsonl                the labelled dev set, when one was given
    DIR/state.json               labels, skips, history, rounds (see activelora.campaign.state)
    DIR/batches/batch-<n>.jsonl  what to label in round n (and a .csv of the same rows)
    DIR/rounds/round-<n>/        the adapter trained in round n, its dev and stop-set answers

``state.json`` is the single source of truth and changes only by an atomic replace. A round
(``next``) first writes everything it makes into ``DIR/.staging/``, then commits the state that
names the round, then moves the staged files into place. :meth:`Campaign.open` finishes that
move if a process died after the commit, or throws the staging away if it died before, so a
SIGKILL at any moment leaves the campaign as before or as after. One command at a time may
change a campaign (a lock file).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from ..config import Config, config_from_dict
from ..data.example import Example
from ..errors import ConfigError, RunStateError
from ..atomic_files import atomic_write_json, atomic_write_text, fsync_dir
from ..run.rundir import with_added_settings
from .state import CampaignState
from .stopping import StopSettings

CAMPAIGN_FILE = "campaign.json"
STATE_FILE = "state.json"
POOL_FILE = "pool.jsonl"
DEV_FILE = "dev.jsonl"
STAGING = ".staging"
LOCK_FILE = ".lock"
CAMPAIGN_VERSION = 1
PAUSE_ENV = "ACTIVELORA_CAMPAIGN_PAUSE_AT"  # tests: stop here so that a kill lands mid-command


def pause_point(name: str) -> None:
    """For the crash tests only: when ``ACTIVELORA_CAMPAIGN_PAUSE_AT`` names this point, say so
    on stderr and wait, so the test can SIGKILL the process exactly there."""
    if os.environ.get(PAUSE_ENV) == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        time.sleep(3600)


@dataclass
class Settings:
    """What ``campaign init`` fixed. ``config`` is the full :class:`Config` as a dict."""

    id: str
    task: str
    strategy: str
    batch_size: int
    seed: int
    config: dict[str, Any]
    stop: dict[str, Any]  # StopSettings fields
    stop_set: list[str]  # pool ids whose answers are compared round to round
    pool_source: str
    dev_source: str | None = None
    created: str = ""
    version: int = CAMPAIGN_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> "Settings":
        try:
            settings = cls(**data)
        except TypeError as exc:
            raise RunStateError(f"{where}: not a campaign settings file ({exc})") from None
        if settings.version != CAMPAIGN_VERSION:
            raise RunStateError(f"{where}: campaign version {settings.version!r}, expected {CAMPAIGN_VERSION}")
        return settings

    def build_config(self) -> Config:
        """The campaign's config; a setting added to activelora after the campaign began holds
        the value that reproduces what the code then did (a mixed batch: none)."""
        return config_from_dict(with_added_settings(self.config))

    def stop_settings(self) -> StopSettings:
        return StopSettings(**self.stop)


def write_examples(path: Path, examples: list[Example], with_answer: bool) -> None:
    rows = []
    for ex in examples:
        row = {"id": ex.id, "question": ex.question}
        if with_answer:
            row["answer"] = ex.answer
        rows.append(json.dumps(row, ensure_ascii=False) + "\n")
    atomic_write_text(path, "".join(rows))


def read_examples(path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                examples.append(Example(id=row["id"], question=row["question"], answer=row.get("answer")))
    return examples


def _not_a_campaign(folder: Path) -> RunStateError:
    return RunStateError(f"{folder}: not a campaign folder (no {CAMPAIGN_FILE}); "
                         f"create one with: activelora campaign init {folder} --pool FILE")


class Campaign:
    """An open campaign folder. Read with the properties; change through :meth:`commit`."""

    def __init__(self, folder: Path, settings: Settings, state: CampaignState):
        self.folder = folder
        self.settings = settings
        self.state = state
        self._pool: list[Example] | None = None
        self._dev: list[Example] | None = None

    # ------------------------------------------------------------------ creating, opening

    @classmethod
    def create(cls, folder: str | Path, settings: Settings, pool: list[Example],
               dev: list[Example] | None) -> "Campaign":
        """Write a new campaign folder all at once: built beside it, then renamed into place."""
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            what = "a campaign already" if (folder / CAMPAIGN_FILE).is_file() else "not an empty folder"
            raise ConfigError(f"{folder}: {what}; choose a new folder")
        folder.absolute().parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{folder.name}.init-", dir=folder.absolute().parent))
        try:
            write_examples(build / POOL_FILE, pool, with_answer=False)
            if dev:
                write_examples(build / DEV_FILE, dev, with_answer=True)
            (build / "batches").mkdir()
            (build / "rounds").mkdir()
            atomic_write_json(build / STATE_FILE, CampaignState().data)
            atomic_write_json(build / CAMPAIGN_FILE, settings.to_dict())
            if folder.exists():
                folder.rmdir()  # empty, checked above; rename cannot replace a folder otherwise
            os.rename(build, folder)
            fsync_dir(folder.absolute().parent)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        return cls.open(folder)

    @classmethod
    def open(cls, folder: str | Path) -> "Campaign":
        """Open a campaign, first finishing or undoing a round that a crash interrupted."""
        folder = Path(folder)
        settings_path = folder / CAMPAIGN_FILE
        if not settings_path.is_file():
            raise _not_a_campaign(folder)
        try:
            settings = Settings.from_dict(json.loads(settings_path.read_text(encoding="utf-8")), str(settings_path))
            state = CampaignState(json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise RunStateError(f"{folder}: unreadable campaign state ({exc})") from None
        campaign = cls(folder, settings, state)
        campaign._recover_if_idle()
        return campaign

    # ------------------------------------------------------------------ reading

    @property
    def pool(self) -> list[Example]:
        if self._pool is None:
            self._pool = read_examples(self.folder / POOL_FILE)
        return self._pool

    @property
    def pool_by_id(self) -> dict[str, Example]:
        return {ex.id: ex for ex in self.pool}

    @property
    def dev(self) -> list[Example]:
        if self._dev is None:
            path = self.folder / DEV_FILE
            self._dev = read_examples(path) if path.is_file() else []
        return self._dev

    def batch_path(self, n: int, suffix: str = ".jsonl") -> Path:
        return self.folder / "batches" / f"batch-{n}{suffix}"

    def round_dir(self, n: int) -> Path:
        return self.folder / "rounds" / f"round-{n}"

    @property
    def staging(self) -> Path:
        return self.folder / STAGING

    def latest_adapter(self) -> Path | None:
        for record in reversed(self.state.rounds):
            adapter = self.round_dir(record["round"]) / "adapter"
            if record.get("trained_on") and adapter.is_dir():
                return adapter
        return None

    # ------------------------------------------------------------------ changing

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the campaign's lock: one changing command at a time."""
        lock = FileLock(str(self.folder / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RunStateError(f"{self.folder}: another activelora command is changing this campaign "
                                f"(lock {self.folder / LOCK_FILE}); wait for it to finish") from None
        try:
            # Another process may have changed the state since this one opened it.
            self.state = Campaign.open(self.folder).state
            self._recover()
            yield
        finally:
            lock.release()

    def _recover_if_idle(self) -> None:
        """Recover only when no other command holds the lock: a running ``next`` has staged
        files it has not committed yet, which are not leftovers."""
        try:
            lock = FileLock(str(self.folder / LOCK_FILE))
            lock.acquire(timeout=0)
        except (Timeout, OSError):  # busy, or a read-only folder: read the committed state as it is
            return
        try:
            self._recover()
        finally:
            lock.release()

    def commit(self, state: CampaignState) -> None:
        """Make ``state`` the campaign's state (one atomic replace), then publish any staged round."""
        atomic_write_json(self.folder / STATE_FILE, state.data)
        self.state = state
        pause_point("commit:before-publish")
        self._recover()

    def _recover(self) -> None:
        """Publish the staged round if the state names it, else drop the staging folder."""
        staging = self.staging
        if not staging.exists():
            return
        marker = staging / "round.json"
        r = json.loads(marker.read_text())["round"] if marker.is_file() else None
        committed = r is not None and any(rec["round"] == r for rec in self.state.rounds)
        if not committed:
            shutil.rmtree(staging)
            return
        batches = self.folder / "batches"
        for suffix in (".jsonl", ".csv"):
            staged = staging / f"batch-{r}{suffix}"
            if staged.exists():
                os.replace(staged, batches / staged.name)
        fsync_dir(batches)
        target = self.round_dir(r)
        if target.exists():  # a leftover of an earlier, interrupted publish of this very round
            shutil.rmtree(target)
        os.rename(staging, target)
        fsync_dir(target.parent)
