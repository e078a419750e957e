"""The unit of data: one example with a stable id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One question with its gold answer.

    ``id`` is stable across runs and never a position in a shrinking pool (see STYLE.md).
    ``answer`` is the gold answer exactly as the source gave it; an unlabelled pool may
    carry ``None``. ``meta`` holds source details (e.g. arith's problem family).
    """

    id: str
    question: str
    answer: str | None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
