"""Select: choose round r's batch and record it (``round-<r>/selection.json`` and ``state.json``).

Round 0 is the seeded random initial set (the whole pool for passive learning); a later
round asks the strategy, which reads the pool scores the previous round saved. For a strategy
that learns from its answers at selection (``Needs.selection_feedback``), the model of the
moment answers the chosen batch first (:mod:`activelora.run.selection_feedback`).
"""

from __future__ import annotations

import json

import numpy as np

from ...errors import ConfigError, PoolExhaustedError
from ...models.lora import adapter_disabled
from ...multiprocess.distributed import map_sharded
from ...strategies import PoolView, get_strategy
from ..context import RunContext
from ..pool_embeddings import saved_embeddings
from ..selection_feedback import answer_checks, greedy_answers, read_selection_answers, write_selection_answers
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
        if ctx.needs.selection_feedback:  # before the selection is recorded: a resume redoes both
            self.keep_answers(r, selection.ids)
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
        if ctx.needs.selection_feedback:
            arrays.update(self.feedback(saved["labelled_ids"]))
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

    def keep_answers(self, r: int, ids: list[str]) -> None:
        """The greedy answers of the model that selected round r's batch: round r-1's adapter,
        or the base model for the initial set (no adapter exists yet)."""
        ctx = self.ctx
        chosen = [ctx.pool_by_id[i] for i in ids]

        def share_answers(share: list) -> list[str]:  # under a launch: this process's share
            return greedy_answers(ctx.model, ctx.tokenizer, ctx.data.task, share, ctx.config,
                                  label=f"round {r} answers at selection", progress=ctx.progress)

        if r == 0:
            with adapter_disabled(ctx.model):
                ctx.model.eval()
                answers = map_sharded(share_answers, chosen, what=f"round {r} answers at selection")
            answered_by = "base model"
        else:
            ctx.hold_adapter(r - 1)
            ctx.model.eval()
            answers = map_sharded(share_answers, chosen, what=f"round {r} answers at selection")
            answered_by = f"round-{r - 1} adapter"
        write_selection_answers(ctx.round_dir(r), ids, answers, answered_by)

    def feedback(self, labelled_ids: list[str]) -> dict[str, np.ndarray]:
        """``labelled_correct`` and ``labelled_rounds`` for ``labelled_ids`` (the order of the
        saved labelled embeddings), from the answers each round kept and the labels given."""
        ctx = self.ctx
        bought_in = {i: q for q, record in enumerate(ctx.state.rounds) for i in record.ids}
        answers: dict[str, str] = {}
        for q in sorted(set(bought_in[i] for i in labelled_ids)):
            answers.update(read_selection_answers(ctx.round_dir(q)))
        examples = [ctx.pool_by_id[i] for i in labelled_ids]
        return {"labelled_correct": answer_checks(ctx.data.task, examples, answers, ctx.state.training_labels()),
                "labelled_rounds": np.asarray([bought_in[i] for i in labelled_ids], dtype=np.int64)}
