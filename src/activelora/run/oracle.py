"""Where labels come from. The query step returns ids; an oracle turns ids into answers.

In simulation the oracle reveals the gold answers the dataset already holds. A human
labeller plugs in by implementing the same one-method protocol (e.g. exporting the ids to
a file and reading the answers back); the loop never reads gold answers any other way.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence

from ..data.example import Example
from ..errors import DataError


class Oracle(Protocol):
    def label(self, ids: Sequence[str]) -> dict[str, str]:
        """Answers for ``ids``; an id may be left out to mean "could not be labelled"."""
        ...


class SimulatedOracle:
    """Reveals the gold answer of each queried example (a simulated active-learning run)."""

    def __init__(self, examples: Sequence[Example]):
        self._answers: Mapping[str, str | None] = {ex.id: ex.answer for ex in examples}

    def label(self, ids: Sequence[str]) -> dict[str, str]:
        labels = {}
        for example_id in ids:
            if example_id not in self._answers:
                raise DataError(f"oracle: unknown example id {example_id!r}")
            answer = self._answers[example_id]
            if answer is None:
                raise DataError(f"oracle: example {example_id!r} has no gold answer to reveal")
            labels[example_id] = answer
        return labels
