"""Train: LoRA on every label so far, then the adapter saved to ``round-<r>/adapter/``.

A fresh adapter each round (cold start, as in the paper) or the previous round's (warm
start); the regularisation is the run's :class:`~activelora.strategies.regime.TrainingRegime`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace

from ...models.lora import load_adapter_weights, reset_lora, save_adapter
from ...models.prompt_format import prompt_record
from ..context import RunContext
from ..pool_scoring import run_seed
from ...atomic_files import atomic_write_json
from ..training import train_lora


class TrainPhase:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def run(self, r: int) -> None:
        ctx = self.ctx
        folder = ctx.round_dir(r)
        if ctx.config.loop.warm_start and r > 0:
            load_adapter_weights(ctx.model, ctx.round_dir(r - 1) / "adapter")
        else:
            reset_lora(ctx.model, run_seed(ctx.seed, r, salt=1))
        train_cfg = replace(ctx.config.train, seed=run_seed(ctx.seed, r, salt=2))
        started = time.time()
        result = train_lora(ctx.model, ctx.tokenizer, ctx.data.task, ctx.labeled_examples(), train_cfg,
                            ctx.regime.regularization(), chat_template=ctx.config.model.chat_template,
                            progress=ctx.progress_label(r, "train"))
        self.save_adapter(r)
        ctx.adapter_round = r
        ctx.tracker.log_training(r, result.losses, first_step=self.optimizer_steps_before(r))
        atomic_write_json(folder / "train.json", {
            "examples": result.examples, "steps": result.steps, "final_loss": result.final_loss,
            "seconds": round(time.time() - started, 2), "regularization": ctx.regime.to_dict(),
            "prompt": prompt_record(ctx.config),
        })

    def save_adapter(self, r: int) -> None:
        """The trained adapter into ``round-<r>/adapter``, whole or not at all (staged, renamed)."""
        folder = self.ctx.round_dir(r)
        adapter = folder / "adapter"
        if adapter.exists():
            shutil.rmtree(adapter)
        staging = folder / ".adapter.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        save_adapter(self.ctx.model, staging)
        staging.rename(adapter)

    def optimizer_steps_before(self, r: int) -> int:
        """Optimiser steps of rounds 0..r-1 (the tracker counts steps across rounds)."""
        files = (self.ctx.round_dir(k) / "train.json" for k in range(r))
        return sum(json.loads(f.read_text()).get("steps", 0) for f in files if f.is_file())
