"""What a campaign knows: its labels, skips, rounds and the history of every change.

The whole state is one JSON document (``state.json``), replaced atomically as a whole, so a
reader (or a process killed mid-write) sees it either before or after a change, never between.
A label, once given, is never dropped or silently changed: a different answer for a labelled
id is recorded as a *conflict* and changes nothing, unless the import says ``replace``, in
which case the old answer moves to ``history``.

``state.json``::

    {"version": 1,
     "labels":   {id: {"answer": str, "source": "file:line", "at": iso-time, "seconds": float | null}},
     "skipped":  {id: {"source": ..., "at": ..., "seconds": ...}},
     "history":  [{"id", "answer", "source", "at", "replaced_by", "replaced_at"}],
     "conflicts": [{"id", "kept", "offered", "source", "kind"}],
     "rounds":   [{"round", "ids", "scores", "suggestions", "trained_on", "dev_accuracy", ...}],
     "imports":  [{"source", "sha256", "added", "skipped", "replaced", "unchanged", "conflicts", "at"}],
     "labelstudio": {"url": str, "project": int} | null}
"""

from __future__ import annotations

import copy
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import RunStateError

STATE_VERSION = 1


def now() -> str:
    """The current UTC time as ISO 8601 (seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def same_answer(a: str, b: str) -> bool:
    """Two answers are the same when they differ at most in white space."""
    return " ".join(a.split()) == " ".join(b.split())


@dataclass(frozen=True)
class AnswerRow:
    """One answer (or skip) read from an import, with where it came from."""

    id: str
    answer: str | None  # None when skipped
    where: str  # "file:line" or "task 12"
    seconds: float | None = None  # time the annotator spent, when known

    @property
    def skip(self) -> bool:
        return self.answer is None


@dataclass(frozen=True)
class Conflict:
    """An answer that disagrees with what the campaign (or another annotator) says."""

    id: str
    kept: str | None
    offered: str | None
    source: str
    kind: str  # "existing label" | "annotators"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kept": self.kept, "offered": self.offered, "source": self.source, "kind": self.kind}

    def line(self) -> str:
        what = "annotators disagree" if self.kind == "annotators" else "already labelled"
        return f"{self.id}: {what}: kept {self.kept!r}, not {self.offered!r} ({self.source})"


@dataclass
class ImportReport:
    """What one import did (or, with nothing changed, would have done)."""

    source: str
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    new_conflicts: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.skipped or self.replaced or self.new_conflicts)

    def summary(self) -> str:
        parts = [f"{len(self.added)} labels added", f"{len(self.skipped)} skipped",
                 f"{len(self.replaced)} replaced", f"{len(self.unchanged)} unchanged",
                 f"{len(self.conflicts)} conflicts"]
        return ", ".join(parts)


class CampaignState:
    """The in-memory state document with the rules for changing it (no file access here)."""

    def __init__(self, data: dict[str, Any] | None = None):
        self.data = copy.deepcopy(data) if data is not None else {
            "version": STATE_VERSION, "labels": {}, "skipped": {}, "history": [], "conflicts": [],
            "rounds": [], "imports": [], "labelstudio": None,
        }
        if self.data.get("version") != STATE_VERSION:
            raise RunStateError(f"state version {self.data.get('version')!r} is not {STATE_VERSION}")

    def copy(self) -> "CampaignState":
        return CampaignState(self.data)

    # ------------------------------------------------------------------ reading

    @property
    def labels(self) -> dict[str, dict[str, Any]]:
        return self.data["labels"]

    @property
    def skipped(self) -> dict[str, dict[str, Any]]:
        return self.data["skipped"]

    @property
    def rounds(self) -> list[dict[str, Any]]:
        return self.data["rounds"]

    def asked_ids(self) -> list[str]:
        """Every id sent to annotators in a batch, in batch order."""
        return [i for record in self.rounds for i in record["ids"]]

    def pending_ids(self) -> list[str]:
        """Asked, and neither answered nor skipped yet."""
        return [i for i in self.asked_ids() if i not in self.labels and i not in self.skipped]

    def training_labels(self) -> dict[str, str]:
        return {i: record["answer"] for i, record in self.labels.items()}

    def unlabelled(self, pool_ids: Iterable[str]) -> list[str]:
        """Pool ids a query may still pick: not labelled, skipped or waiting in a batch."""
        taken = set(self.asked_ids()) | set(self.labels) | set(self.skipped)
        return [i for i in pool_ids if i not in taken]

    def annotation_seconds(self) -> float | None:
        """Annotator time over every answer and skip whose time is known, replaced ones
        included: that time was spent (None: no time known at all)."""
        records = (*self.labels.values(), *self.skipped.values(), *self.data["history"])
        times = [r.get("seconds") for r in records]
        known = [t for t in times if t is not None]
        return float(sum(known)) if known else None

    # ------------------------------------------------------------------ changing

    def apply(self, rows: list[AnswerRow], *, source: str, sha256: str | None = None,
              replace: bool = False, annotator_conflicts: Iterable[Conflict] = ()) -> ImportReport:
        """Apply already-validated answers. Returns the report; changes ``self`` only when the
        report says :attr:`ImportReport.changed` (so re-importing a file changes nothing)."""
        report = ImportReport(source=source)
        at = now()
        labels, skipped = self.labels, self.skipped
        known_conflicts = {(c["id"], c["offered"], c["kind"]) for c in self.data["conflicts"]}
        conflicts = []

        def note(conflict: Conflict) -> None:
            report.conflicts.append(conflict)
            if (conflict.id, conflict.offered, conflict.kind) not in known_conflicts:
                known_conflicts.add((conflict.id, conflict.offered, conflict.kind))
                conflicts.append(conflict.to_dict())

        for conflict in annotator_conflicts:
            note(conflict)
        for row in rows:
            entry = {"source": row.where, "at": at, "seconds": row.seconds}
            if row.id in labels:
                current = labels[row.id]["answer"]
                if row.answer is not None and same_answer(current, row.answer):
                    report.unchanged.append(row.id)
                    continue
                if not replace:
                    note(Conflict(row.id, current, row.answer, row.where, "existing label"))
                    continue
                self.data["history"].append({**labels.pop(row.id), "id": row.id,
                                             "replaced_by": row.answer, "replaced_at": at})
                report.replaced.append(row.id)
                if row.answer is None:
                    skipped[row.id] = entry
                else:
                    labels[row.id] = {"answer": row.answer, **entry}
            elif row.answer is None:
                if row.id in skipped:
                    report.unchanged.append(row.id)
                else:
                    skipped[row.id] = entry
                    report.skipped.append(row.id)
            else:
                # A skipped example that later gets an answer is simply labelled: the skip
                # stays in the history so its annotator time is not lost.
                if row.id in skipped:
                    self.data["history"].append({**skipped.pop(row.id), "id": row.id, "answer": None,
                                                 "replaced_by": row.answer, "replaced_at": at})
                labels[row.id] = {"answer": row.answer, **entry}
                report.added.append(row.id)
        report.new_conflicts = len(conflicts)
        self.data["conflicts"].extend(conflicts)
        if report.changed:
            self.data["imports"].append({
                "source": source, "sha256": sha256, "added": len(report.added), "skipped": len(report.skipped),
                "replaced": len(report.replaced), "unchanged": len(report.unchanged),
                "conflicts": len(report.conflicts), "at": at,
            })
        return report
