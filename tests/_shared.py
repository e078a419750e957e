"""Where the read-only reference datasets live, and a marker that skips without them."""

from __future__ import annotations

from pathlib import Path

import pytest

# ../shared/datasets relative to the project root (tests/ -> project root -> its parent).
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

requires_shared = pytest.mark.skipif(
    not SHARED_DATASETS.is_dir(),
    reason=f"reference datasets not found at {SHARED_DATASETS} (optional; see its README)",
)
