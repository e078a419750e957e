"""What the study tables in benchmarks/ share: how an interval is printed and where a table goes.

Imported by the table scripts (``validity_table.py``, ``curve_table.py``, ``star_terms.py``), which run as
``python benchmarks/<script>.py`` and so find this module beside them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn


def fail(message: str) -> NoReturn:
    """One line on stderr and exit status 2, the project's answer to a user mistake."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def fmt(mean: float, lo: float | None, hi: float | None, digits: int = 3) -> str:
    """``mean [lo, hi]``, or the mean alone when there is no interval (one seed)."""
    if lo is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def write_table(out: Path, markdown: str, result: dict) -> None:
    """``<out>.md`` (the table) and ``<out>.json`` (what it was computed from), then print the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(markdown)
