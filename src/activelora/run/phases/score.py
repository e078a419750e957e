"""Score: the unlabelled pool after round r, scored with what the strategy declared it needs
(:meth:`activelora.run.pool_scoring.PoolScorer.strategy_inputs`), kept in
``round-<r>/pool_scores.json`` (embeddings in ``pool_embeddings.safetensors``) for the next
round's select."""

from __future__ import annotations

import json
import time

from ..context import RunContext
from ..pool_embeddings import move_embeddings_out
from ...atomic_files import atomic_write_json


class ScorePhase:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def run(self, r: int) -> None:
        ctx = self.ctx
        ctx.hold_adapter(r)
        started = time.time()
        ids = ctx.unlabeled_ids()
        examples = [ctx.pool_by_id[i] for i in ids]
        if ctx.strategy.draws_at_random(r):  # a cold-start query: its scores would go unread
            out = {"ids": ids, "cold_start": True}
        else:
            # Strategies over the labelled and unlabelled set (typiclust, probcover) also see
            # where the examples selected so far lie (Needs.labelled_embeddings).
            labelled = ([ctx.pool_by_id[i] for i in ctx.state.selected_ids()]
                        if ctx.needs.labelled_embeddings else [])
            out = {"ids": ids, **ctx.scorer.strategy_inputs(examples, r, temperature=self.temperature(r),
                                                            labelled=labelled)}
            if ctx.needs.labelled_embeddings:
                out["labelled_ids"] = [ex.id for ex in labelled]
        out["seconds"] = round(time.time() - started, 2)  # where a round's time goes (with train.json, metrics)
        # The embedding matrices go beside it as safetensors (run/pool_embeddings.py): as JSON
        # text they were most of a round folder.
        atomic_write_json(ctx.round_dir(r) / "pool_scores.json", move_embeddings_out(ctx.round_dir(r), out))

    def temperature(self, r: int) -> float:
        """Round r's fitted logit temperature (1 when temperature scaling is off)."""
        path = self.ctx.round_dir(r) / "metrics.json"
        if not self.ctx.config.score.temperature_scaling or not path.is_file():
            return 1.0
        return float(json.loads(path.read_text()).get("temperature") or 1.0)
