"""What the study tables in benchmarks/ share: how an interval is printed and where a table goes.

Imported by the table scripts (``validity_table.py``, ``curve_table.py``), which run as
``python benchmarks/<script>.py`` and so find this module beside them.
"""

from __future__ import annotations

import json
from pathlib import Path


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
