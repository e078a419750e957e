"""Distances in embedding space, computed in row blocks so memory stays O(block · N).

The low-budget strategies (:mod:`~activelora.strategies.typiclust`,
:mod:`~activelora.strategies.probcover`, :mod:`~activelora.strategies.cluster_weighted`) need
nearest-neighbour distances and distance balls over N embeddings. An N x N distance matrix
would grow with the square of the pool (N = 20 000 is 3.2 GB in float64), so every function
here walks the rows in blocks of at most :data:`BLOCK_ELEMENTS` distances and keeps only what
it reduces them to: O(N) numbers, or the ball members (as many as there are pairs in balls).

Distances are Euclidean, from ``||a - b||² = ||a||² + ||b||² - 2 a·b`` in float64, clipped at
0: one matrix product per block instead of an (rows, N, d) difference tensor. The expansion
loses about ``1e-16 · ||a||²`` to cancellation, far below the distances these rules compare
(the k-center step in :mod:`~activelora.strategies.diversity`, which must tell exact
duplicates apart, uses differences instead).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

# Distances held at once: 2**22 float64 = 32 MiB per block.
BLOCK_ELEMENTS = 2**22


def as_points(embeddings: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """``embeddings`` as a finite float64 (N, d) array, or ``ValueError`` naming ``what``."""
    points = np.asarray(embeddings, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"{what} must be 2-D (N, d), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError(f"{what} contain non-finite values")
    return points


def row_blocks(rows: int, columns: int) -> Iterator[slice]:
    """Slices of ``range(rows)`` whose blocks of ``columns`` distances fit :data:`BLOCK_ELEMENTS`."""
    step = max(1, BLOCK_ELEMENTS // max(1, columns))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) between the rows of ``a`` and ``b`` (float64)."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def neighbour_distances(points: np.ndarray, k: int) -> np.ndarray:
    """The distances from each point to its ``k`` nearest *other* points, sorted: (N, k).

    A point is never its own neighbour (its row position is excluded), but an exact
    duplicate at another position is, at distance 0. Needs ``1 <= k <= N - 1``.
    """
    n = points.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"cannot take {k} nearest neighbours among {n} points")
    out = np.empty((n, k))
    for block in row_blocks(n, n):
        d = distances(points[block], points)  # (rows, N)
        rows = np.arange(block.stop - block.start)
        d[rows, rows + block.start] = np.inf  # not its own neighbour
        nearest = np.partition(d, k - 1, axis=1)[:, :k]
        out[block] = np.sort(nearest, axis=1)
    return out


def balls(points: np.ndarray, centres: np.ndarray, radius: float) -> list[np.ndarray]:
    """For each centre row, the indices of ``points`` within ``radius`` (``<=``), ascending."""
    members: list[np.ndarray] = []
    for block in row_blocks(centres.shape[0], points.shape[0]):
        d = distances(centres[block], points)
        members.extend(np.flatnonzero(row <= radius) for row in d)
    return members
