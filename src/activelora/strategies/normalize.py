"""Score normalisation shared by the strategies that mix two uncertainty scores."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def check_finite(scores: np.ndarray, ids: list[str] | None = None, what: str = "scores") -> None:
    """Raise ``DataError`` (a ``ValueError``) naming the first non-finite entry (and its id).

    NaN or infinite uncertainties are a numerical fault (e.g. a bfloat16 overflow); ranking
    or normalising them would silently pick or hide examples, so we stop instead.
    """
    bad = ~np.isfinite(scores)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        where = f"id {ids[first]!r}" if ids is not None else f"position {first}"
        raise DataError(
            f"{what}: {int(bad.sum())} of {scores.size} values are not finite "
            f"(first at {where}: {scores.flat[first]!r}); if the model runs in bfloat16, "
            "try model.dtype=float32"
        )


def min_max_normalize(x: np.ndarray | list[float]) -> np.ndarray:
    """Min-max normalise a 1-D score vector to [0, 1] in float64.

    ``norm(x)_i = (x_i - min(x)) / (max(x) - min(x))``, the per-pool normalisation of STAR
    (Zhang et al. 2024, Eq. 3). A constant vector (``max == min``, including length 1) carries
    no ranking information and maps to zeros, so in a mix ``λ·norm(a) + (1-λ)·norm(b)`` the
    constant term drops out and the other decides. An empty vector maps to an empty vector.
    Non-finite input raises ``ValueError``.
    """
    # float64 before subtracting: float32 scores close together would lose their order.
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"min_max_normalize expects a 1-D vector, got shape {values.shape}")
    if values.size == 0:
        return values.copy()
    check_finite(values)
    lo, hi = values.min(), values.max()
    if hi == lo:
        return np.zeros_like(values)
    with np.errstate(over="ignore"):
        span = hi - lo
    if not np.isfinite(span):  # |values| near the float64 limit: halve both sides first
        return (values / 2 - lo / 2) / (hi / 2 - lo / 2)
    # Rounding of x - lo is monotone, so every result lies in [0, 1] without clipping.
    return (values - lo) / span
