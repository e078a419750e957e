"""Oracle strategies: they read the gold answers or the source's meta, which a real pool does
not have. **For headroom studies only** (issue 16): run beside ``random`` in simulation, they
bound what a label-free strategy could gain on a task; where even the best oracle is within
noise of random, the task has no headroom for selection. A campaign refuses them.

Each declares what it reads in :class:`~activelora.strategies.base.Needs` (``gold_answers``,
``gold_meta``), is marked ``oracle = True`` and is named ``oracle-*``;
:func:`~activelora.strategies.base.get_strategy` refuses any other combination, and
:meth:`~activelora.strategies.base.Strategy.select` refuses meta handed to a label-free one.

* ``oracle-loss``: the highest gold loss under the current adapter, the mean per-token NLL of
  the gold answer, teacher-forced: ``-(1/T)·Σ_t log p(y_t | y_<t, x)`` (the ``pe`` measure,
  normalised, on ``target=gold``). What STAR's released code scores.
* ``oracle-balanced``: a batch spread evenly over the pool's groups (mix: ``skill``; arith:
  ``steps``), round-robin in a random order, random within a group.
* ``oracle-easy``: easiest first (arith: fewest ``steps``; mix: lowest designed ``level``),
  random within ties.

All of them train plain LoRA, as ``random`` does, so the comparison is one of selection.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from .base import Needs, PoolView, Strategy, child_rng, register

# The meta key an oracle groups or orders by: the first one every pool example carries.
BALANCE_KEYS = ("skill", "steps")
DIFFICULTY_KEYS = ("steps", "level")


def meta_key(meta: Sequence[dict[str, Any]], candidates: Sequence[str], strategy: str) -> str:
    """The first of ``candidates`` present in every example's meta; ConfigError if none is."""
    for key in candidates:
        if all(key in (m or {}) for m in meta):
            return key
    raise ConfigError(f"strategy {strategy!r} needs a meta field {' or '.join(candidates)} on every pool "
                      f"example (the embedded arith and mix sources have one; files do not)")


def within_group_positions(groups: Sequence[Any], ids: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Each example's position (0, 1, ...) within its group, in a random order per group.

    The order comes from i.i.d. U(0, 1) keys drawn in sorted-id order, so it does not depend
    on the order of the pool list.
    """
    keys = np.empty(len(ids))
    keys[np.argsort(np.asarray(ids, dtype=object), kind="stable")] = rng.random(len(ids))
    positions = np.empty(len(ids), dtype=np.int64)
    members: dict[Any, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    for idx in members.values():
        order = sorted(idx, key=lambda i: keys[i])
        positions[order] = np.arange(len(order))
    return positions


@register
class OracleLoss(Strategy):
    """ORACLE, reads gold answers; headroom studies only. Top-n by the gold answer's mean
    per-token NLL under the current adapter (see the module docstring)."""

    name = "oracle-loss"
    oracle = True

    def needs(self) -> Needs:
        return Needs(full_scores=True, measure="pe", normalize=True, gold_answers=True, b_l2=self.cfg.b_l2,
                     hidden_states=self.wants_embeddings)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        return pool.require("full_scores", self.name), {}


@register
class OracleBalanced(Strategy):
    """ORACLE, reads the source's meta; headroom studies only. A batch balanced over the
    groups of ``meta[key]`` (the first of :data:`BALANCE_KEYS` the pool carries).

    ``score_i = -(position of i within its group)``, positions in a seeded random order, so the
    ranking takes one example of every group still in the pool (groups in a random order,
    :func:`~activelora.strategies.base.rank`'s tie-break), then a second of each, and so on: a
    group that runs out leaves its share to the others. ``info["balanced_by"]`` names the key.
    """

    name = "oracle-balanced"
    oracle = True

    def needs(self) -> Needs:
        return Needs(gold_meta=True, b_l2=self.cfg.b_l2)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        meta = pool.require("meta", self.name)
        key = meta_key(meta, BALANCE_KEYS, self.name)
        # A child generator: the within-group order never shifts rank()'s tie-break draws.
        positions = within_group_positions([m[key] for m in meta], pool.ids, child_rng(pool))
        return -positions.astype(np.float64), {"balanced_by": key}


@register
class OracleEasy(Strategy):
    """ORACLE, reads the source's meta; headroom studies only. Easiest first:
    ``score_i = -meta[key]_i`` (the first of :data:`DIFFICULTY_KEYS` the pool carries), ties
    broken at random by the seeded :func:`~activelora.strategies.base.rank`."""

    name = "oracle-easy"
    oracle = True

    def needs(self) -> Needs:
        return Needs(gold_meta=True, b_l2=self.cfg.b_l2)

    def score(self, pool: PoolView) -> tuple[np.ndarray, dict[str, Any]]:
        meta = pool.require("meta", self.name)
        key = meta_key(meta, DIFFICULTY_KEYS, self.name)
        return -np.asarray([float(m[key]) for m in meta]), {"easiest_by": key}
