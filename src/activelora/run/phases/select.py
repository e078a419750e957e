"""Select: choose round r's batch and record it (``round-<r>/selection.json`` and ``state.json``).

Round 0 is the seeded random initial set (the whole pool for passive learning); a later
round asks the strategy, which reads the pool scores the previous round saved.
"""

from __future__ import annotations

import json

import numpy as np

from ...errors import ConfigError, PoolExhaustedError
from ...strategies import PoolView, get_strategy
from ..context import RunContext
from ..pool_embeddings import saved_embeddings
from ...atomic_files import atomic_write_json


class SelectPhase:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def run(self) -> list[str]:
        """Choose and record the next round's batch; returns its ids."""
        ctx = self.ctx
        r = len(ctx.state.rounds)
        rng = np.random.default_rng([ctx.seed, r])
        ids = ctx.unlabeled_ids()
        if r == 0:
            whole_pool = ctx.needs.trains_on_whole_pool
            n = len(ids) if whole_pool else ctx.config.loop.initial
            if n > len(ids):
                raise PoolExhaustedError(n, len(ids), where="pool for the initial labelled set")
            chooser = ctx.strategy if whole_pool else get_strategy("random", ctx.config.strategy)
            selection = chooser.select(PoolView(ids=ids, rng=rng, round_index=0), n)
            selection.info = {"initial": True, **selection.info}
        else:
            selection = ctx.strategy.select(self.saved_pool_view(r - 1, rng), ctx.next_batch_size())
        lam = selection.info.get("lambda")
        atomic_write_json(ctx.round_dir(r) / "selection.json", {
            "round": r, "strategy": ctx.strategy_name, "ids": selection.ids,
            "scores": selection.scores, "lambda": lam, "info": selection.info,
        })
        ctx.state.add_round(selection.ids, selection.scores, lambda_=lam, info=selection.info)
        return selection.ids

    def saved_pool_view(self, r: int, rng: np.random.Generator) -> PoolView:
        """The unlabelled pool as round r's score phase left it (``round-<r>/pool_scores.json``)."""
        ctx = self.ctx
        saved = json.loads((ctx.round_dir(r) / "pool_scores.json").read_text())
        ids = saved["ids"]
        if ids != ctx.unlabeled_ids():  # pragma: no cover - guarded by the state machine
            raise ConfigError(f"{ctx.run_dir}: saved pool scores do not match the unlabelled pool")
        arrays = {k: np.asarray(saved[k], dtype=np.float64) for k in ("full_scores", "base_scores") if k in saved}
        arrays.update(saved_embeddings(ctx.round_dir(r), saved))
        # The source's meta only for an oracle that declared it (Needs.gold_meta).
        meta = [ctx.pool_by_id[i].meta for i in ids] if ctx.needs.gold_meta else None
        if ctx.needs.previous_scores:
            arrays.update(self.previous_scores(r, ids))
        return PoolView(ids=ids, rng=rng, round_index=r, meta=meta, **arrays)

    def previous_scores(self, r: int, ids: list[str]) -> dict:
        """``previous_full_scores`` (round r-1's full scores of ``ids``, when it computed them)
        and ``previous_info`` (the info of round r's selection, the query before this one),
        both read from the run folder (Needs.previous_scores)."""
        ctx = self.ctx
        out: dict = {"previous_info": ctx.state.rounds[r].info}
        path = ctx.round_dir(r - 1) / "pool_scores.json"
        if r >= 1 and path.is_file():
            before = json.loads(path.read_text())
            if "full_scores" in before:  # not a cold-start round
                by_id = dict(zip(before["ids"], before["full_scores"]))
                out["previous_full_scores"] = np.asarray([by_id[i] for i in ids], dtype=np.float64)
        return out
