"""A run directory's durable state, ``state.json``, and the config hash that guards it.

No model code lives here. A run is a sequence of rounds; round ``r`` buys batch ``r``
(round 0: the seeded random initial set, or the whole pool for passive) and then learns
from it. Its steps, in order::

    select -> label -> train -> evaluate -> score      (score: only if another round follows)
                             \\-----------> done       (evaluate of the last round, + close)

``phase`` is the last COMPLETED step. The loop calls :meth:`RunState.set_phase` right after a
step's outputs are on disk, so a crash resumes at :meth:`RunState.next_step`, redoing at
most the step that was running. Every mutation is saved atomically before it returns.

``state.json``::

    {"version": 1, "config_hash": "...", "config": {...}, "phase": "label",
     "rounds": [{"round": 0, "ids": [...], "scores": [...], "lambda": null, "info": {},
                 "phase": "label"}],
     "labels": {"id": "answer" | null}}

``labels[id] = None`` means "ignored": the labeller saw it and declined; it leaves the pool
but is not trained on. A label once stored is never dropped or changed (changing it raises).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..atomic_files import atomic_write_json
from ..errors import RunStateError

STATE_FILE = "state.json"
STATE_VERSION = 1

# Steps of one round in order; "done" closes the run after the last round's "evaluate".
ROUND_STEPS = ("select", "label", "train", "evaluate", "score")
PHASES = ("new",) + ROUND_STEPS + ("done",)

# Dotted config keys left out of the hash (see config_hash):
# - memory/speed knobs with the same mathematics, so a run that ran out of memory can resume
#   with a smaller batch (batch size can change floating-point rounding, never the
#   algorithm); train.batch_size is NOT one: it changes the optimisation;
# - loop.strategies / loop.seeds: which runs an experiment holds. Each run's state is for one
#   (strategy, seed), which the loop records under run.*, so adding a strategy to the list
#   must not invalidate the finished runs of the others;
# - loop.rounds / loop.target_accuracy: where a run ends, never what a round selects or trains
#   (the λ schedule has its own strategy.schedule_rounds). The loop re-decides the end on every
#   resume (ActiveLearningRun.settle_end), so more rounds extend a finished curve and fewer
#   close a run early. loop.budget is NOT one: it sizes the last batch.
# The config has no output paths; a caller passing some should add them here.
IGNORED_CONFIG_KEYS = frozenset({
    "eval.batch_size", "score.batch_size", "train.gradient_checkpointing",
    "loop.strategies", "loop.seeds", "loop.rounds", "loop.target_accuracy",
})


# --------------------------------------------------------------------------- config hash


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 2}}`` -> ``{"train.epochs": 2}`` (lists stay whole)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _kept(flat: dict[str, Any], ignore: Iterable[str]) -> dict[str, Any]:
    """``flat`` without the keys in ``ignore`` or under them (``"eval"`` drops ``eval.*``)."""
    skip = tuple(ignore)
    return {k: v for k, v in flat.items() if not any(k == s or k.startswith(s + ".") for s in skip)}


def with_added_settings(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config with each setting added to activelora since it was written filled in
    with the value that reproduces what that older code did
    (:data:`activelora.config.SETTINGS_ADDED_LATER`), so a new setting alone never locks an
    older run out; a run resumes only when today's config asks for that same behaviour."""
    from ..config import SETTINGS_ADDED_LATER

    filled = json.loads(_canonical(dict(saved)))
    present = flatten_config(filled)
    for dotted, value in SETTINGS_ADDED_LATER.items():
        if dotted not in present:
            section, _, key = dotted.rpartition(".")
            node = filled
            for part in section.split("."):
                node = node.setdefault(part, {})
            node[key] = value
    return filled


def config_hash(config: Mapping[str, Any], ignore: Iterable[str] = IGNORED_CONFIG_KEYS) -> str:
    """SHA-256 (hex) of the config's canonical JSON (nested keys flattened to dotted ones),
    leaving out the keys in ``ignore`` and everything under them."""
    flat = _kept(flatten_config(config), ignore)
    return hashlib.sha256(_canonical(flat).encode("utf-8")).hexdigest()


def config_difference(old: Mapping[str, Any], new: Mapping[str, Any],
                      ignore: Iterable[str] = IGNORED_CONFIG_KEYS) -> str | None:
    """``"train.epochs: 2.0 -> 3.0"`` for the first differing dotted key (sorted), or None."""
    a, b = _kept(flatten_config(old), ignore), _kept(flatten_config(new), ignore)
    missing = "<absent>"
    for key in sorted(set(a) | set(b)):
        left = _canonical(a[key]) if key in a else missing
        right = _canonical(b[key]) if key in b else missing
        if left != right:
            return f"{key}: {left} -> {right}"
    return None


# --------------------------------------------------------------------------- run state


@dataclass
class RoundRecord:
    """One round: the batch it bought (best first), the strategy's scores and λ_t."""

    round: int
    ids: list[str]
    scores: list[float | None]
    lambda_: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    phase: str = "select"

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "ids": self.ids, "scores": self.scores, "lambda": self.lambda_,
                "info": self.info, "phase": self.phase}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundRecord:
        return cls(round=int(data["round"]), ids=list(data["ids"]), scores=list(data["scores"]),
                   lambda_=data.get("lambda"), info=dict(data.get("info") or {}),
                   phase=str(data["phase"]))


@dataclass
class RunState:
    """The durable state of one run in ``run_dir/state.json``; see the module docstring."""

    run_dir: Path
    config_hash: str
    config: dict[str, Any]
    rounds: list[RoundRecord] = field(default_factory=list)
    phase: str = "new"
    labels: dict[str, str | None] = field(default_factory=dict)

    # ---------------------------------------------------------------- loading and saving

    @property
    def path(self) -> Path:
        return self.run_dir / STATE_FILE

    @classmethod
    def load_or_create(cls, run_dir: str | Path, config_dict: Mapping[str, Any],
                       restart: bool = False, ignore: Iterable[str] = IGNORED_CONFIG_KEYS) -> RunState:
        """Resume the run in ``run_dir`` or start a new one (saved at once).

        A saved run whose config differs (outside ``ignore``, dotted keys) is refused
        with :class:`RunStateError` naming the first differing key, unless ``restart``; with
        ``restart`` the old state is replaced by a fresh one (the caller clears its other
        files). A corrupt or newer-version ``state.json`` is refused the same way.
        """
        run_dir = Path(run_dir)
        config = json.loads(_canonical(dict(config_dict)))  # a JSON-safe deep copy
        ignore = frozenset(ignore)
        digest = config_hash(config, ignore)
        path = run_dir / STATE_FILE
        if path.exists() and not restart:
            state = cls._load(path, run_dir)
            # Rehash the saved config rather than trust the stored hash, so that a change to
            # the ignore list alone never locks a run out.
            # Both sides filled alike: a config that holds every setting is unchanged by it.
            saved, current = with_added_settings(state.config), with_added_settings(config)
            if config_hash(saved, ignore) != config_hash(current, ignore):
                what = config_difference(saved, current, ignore) or f"hash {state.config_hash[:12]} -> {digest[:12]}"
                raise RunStateError(
                    f"{run_dir}: the config differs from the saved run ({what}); "
                    "use --restart to start this run over"
                )
            return state
        state = cls(run_dir=run_dir, config_hash=digest, config=config)
        state.save()
        return state

    @classmethod
    def _load(cls, path: Path, run_dir: Path) -> RunState:
        hint = "; use --restart to start this run over"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunStateError(f"{path}: cannot read the run state ({exc}){hint}") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise RunStateError(f"{path}: unsupported state version {version!r} (expected {STATE_VERSION}){hint}")
        try:
            state = cls(run_dir=run_dir, config_hash=str(data["config_hash"]), config=dict(data["config"]),
                        rounds=[RoundRecord.from_dict(r) for r in data["rounds"]],
                        phase=str(data["phase"]), labels=dict(data["labels"]))
            state._validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise RunStateError(f"{path}: corrupt run state ({exc}){hint}") from None
        return state

    def _validate(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}")
        seen: set[str] = set()
        for number, record in enumerate(self.rounds):
            if record.round != number or record.phase not in ROUND_STEPS:
                raise ValueError(f"round {number} is malformed")
            if seen & set(record.ids) or len(set(record.ids)) != len(record.ids):
                raise ValueError(f"round {number} repeats an id")
            seen |= set(record.ids)
        if set(self.labels) - seen:
            raise ValueError("labels for ids that no round selected")
        if (self.phase == "new") != (not self.rounds):
            raise ValueError("phase and rounds disagree")
        if self.rounds and self.rounds[-1].phase != ("evaluate" if self.phase == "done" else self.phase):
            raise ValueError("phase and the last round's phase disagree")

    def to_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "config_hash": self.config_hash, "config": self.config,
                "phase": self.phase, "rounds": [r.to_dict() for r in self.rounds], "labels": self.labels}

    def save(self) -> None:
        """Write ``state.json`` atomically (every mutating method already does)."""
        atomic_write_json(self.path, self.to_dict())

    @contextmanager
    def _commit(self) -> Iterator[None]:
        """Apply the block's changes and save them; if anything fails, memory goes back to the
        last saved state, so the object never claims what the disk does not hold."""
        snapshot = json.loads(_canonical(self.to_dict()))
        try:
            yield
            self.save()
        except BaseException:
            self.rounds = [RoundRecord.from_dict(r) for r in snapshot["rounds"]]
            self.phase, self.labels = snapshot["phase"], snapshot["labels"]
            raise

    # ---------------------------------------------------------------- queries

    @property
    def current_round(self) -> int | None:
        """Index of the last round started, or None before the first selection."""
        return len(self.rounds) - 1 if self.rounds else None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def next_step(self) -> str:
        """The step to run now: ``select`` (a new round), ``label``, ``train``, ``evaluate``,
        ``score`` or ``done``. A loop that stops after evaluating (last round, budget spent,
        target reached) calls ``set_phase("done")`` instead of ``set_phase("evaluate")``."""
        if self.phase in ("new", "score"):
            return "select"
        if self.phase == "done":
            return "done"
        return ROUND_STEPS[ROUND_STEPS.index(self.phase) + 1]

    def selected_ids(self) -> list[str]:
        """Every id any round selected, in selection order (labelled or still pending)."""
        return [i for record in self.rounds for i in record.ids]

    def labeled_ids(self) -> list[str]:
        """Ids with a stored label (including ignored ones), in selection order."""
        return [i for i in self.selected_ids() if i in self.labels]

    def pending_label_ids(self) -> list[str]:
        """Ids of the current round still waiting for a label."""
        if not self.rounds:
            return []
        return [i for i in self.rounds[-1].ids if i not in self.labels]

    def training_labels(self) -> dict[str, str]:
        """``{id: answer}`` to train on: stored labels minus the ignored ones."""
        return {i: self.labels[i] for i in self.labeled_ids() if self.labels[i] is not None}

    # ---------------------------------------------------------------- mutations

    def add_round(self, ids: Sequence[str], scores: Sequence[float | None] | None = None,
                  lambda_: float | None = None, info: Mapping[str, Any] | None = None) -> RoundRecord:
        """Record the batch of a new round (completes its ``select`` step) and save.

        Allowed at the start and after a round's ``score`` step. Refuses an id selected twice,
        in this batch or an earlier one.
        """
        if self.next_step() != "select":
            raise RunStateError(f"{self.path}: cannot start a new round in phase {self.phase!r}")
        ids = [str(i) for i in ids]
        scores = list(scores) if scores is not None else [None] * len(ids)
        if len(scores) != len(ids):
            raise ValueError(f"add_round: {len(ids)} ids but {len(scores)} scores")
        if len(set(ids)) != len(ids):
            raise RunStateError(f"{self.path}: the new batch lists an id twice")
        again = set(ids) & set(self.selected_ids())
        if again:
            raise RunStateError(f"{self.path}: {len(again)} ids were already selected, e.g. {sorted(again)[0]!r}")
        record = RoundRecord(round=len(self.rounds), ids=ids,
                             scores=[None if s is None else float(s) for s in scores],
                             lambda_=None if lambda_ is None else float(lambda_), info=dict(info or {}))
        with self._commit():
            self.rounds.append(record)
            self.phase = "select"
        return record

    def add_labels(self, labels: Mapping[str, str | None]) -> int:
        """Store labels for ids of the current round and save; returns how many were new.

        A repeated label equal to the stored one is ignored (a resumed labelling step may
        replay it); a different answer for a labelled id, or an id outside the current
        round, raises :class:`RunStateError`. ``None`` marks an ignored example.
        """
        if self.phase != "select":
            raise RunStateError(f"{self.path}: labels are taken only after a selection, not in phase {self.phase!r}")
        batch = set(self.rounds[-1].ids)
        new: dict[str, str | None] = {}
        for key, answer in labels.items():
            if answer is not None and not isinstance(answer, str):
                raise ValueError(f"label for {key!r} must be a string or None, got {answer!r}")
            if key in self.labels:
                if self.labels[key] != answer:
                    raise RunStateError(
                        f"{self.path}: id {key!r} is already labelled {self.labels[key]!r}; refusing {answer!r}"
                    )
                continue
            if key not in batch:
                raise RunStateError(f"{self.path}: id {key!r} is not in the current round's batch")
            new[key] = answer
        if new:
            with self._commit():
                self.labels.update(new)
        return len(new)

    def set_phase(self, phase: str) -> None:
        """Mark ``phase`` completed for the current round and save.

        Only the next step is accepted; ``label`` requires every id of the round to be
        labelled. ``done`` is accepted after ``train`` (it then also completes ``evaluate``,
        in one write, so a crash cannot fall between the last evaluation and closing the run),
        after ``evaluate``, or after ``score`` (a resume under fewer rounds: those scores then
        go unread). New rounds start with :meth:`add_round`.
        """
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")
        allowed = {self.next_step()} | ({"done"} if self.phase in ("train", "evaluate", "score") else set())
        if phase == "select" or phase not in allowed:
            raise RunStateError(
                f"{self.path}: cannot move from phase {self.phase!r} to {phase!r} (next: {self.next_step()!r})"
            )
        if phase == "label":
            missing = self.pending_label_ids()
            if missing:
                raise RunStateError(f"{self.path}: {len(missing)} ids of round {self.current_round} have no label yet")
        with self._commit():
            self.phase = phase
            self.rounds[-1].phase = "evaluate" if phase == "done" else phase

    def reopen(self) -> None:
        """Undo ``done``: the run is back after its last round's ``evaluate``, so the next step
        scores the pool for one more round (a resume under more rounds, or a target not yet
        reached). Every label and round stays as it was."""
        if not self.done:
            raise RunStateError(f"{self.path}: only a finished run can be reopened (phase {self.phase!r})")
        with self._commit():
            self.phase = "evaluate"
