"""One (strategy, seed) run of an experiment, on a model loaded once for the experiment: the
piece that both the in-process runner and each worker process call."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..config import Config
from ..run.experiment_data import ExperimentData
from ..multiprocess.distributed import open_mirrored
from ..run.loop import ActiveLearningRun
from ..run.tracking import RunTracker
from .plan import planned_rounds, run_folder


def load_experiment_model(config: Config):
    """``(model, tokenizer)``: the configured base model with a LoRA adapter attached, on
    which every run of the experiment trains its own adapters one after another."""
    from ..models.loading import load_model
    from ..models.lora import attach_lora

    model, tokenizer = load_model(config.model.name, dtype=config.model.dtype,
                                  trust_remote_code=config.model.trust_remote_code)
    return attach_lora(model, config.lora, seed=0), tokenizer


def run_one(config: Config, data: ExperimentData, model, tokenizer, output: Path, strategy_name: str,
            seed: int, *, restart: bool = False, progress: bool = True, bar=None,
            report_to: Sequence[str] = ()) -> list[dict]:
    """Run (or resume) one (strategy, seed) on an already loaded model; returns its metrics
    rows. ``bar`` is anything with tqdm's ``update(n)`` and ``set_postfix_str(text)``: it
    first advances by the rounds already done, then by one per trained round."""
    # Under a launch only the main process writes the run folder; the others keep a private
    # copy of it, advanced by the same steps (activelora.multiprocess.distributed.open_mirrored).
    tracker = RunTracker(report_to, output, f"{strategy_name}/seed-{seed}", config.to_dict())
    with tracker:
        run = open_mirrored(lambda folder: ActiveLearningRun(config, strategy_name, seed, folder, data, model, tokenizer,
                                                             restart=restart, progress=progress, tracker=tracker),
                            run_folder(output, strategy_name, seed))
        if bar is not None:
            done_rounds = sum(1 for rec in run.state.rounds if rec.phase in ("train", "evaluate", "score"))
            if run.state.done:
                done_rounds = len(run.state.rounds)
            bar.update(min(done_rounds, planned_rounds(config, strategy_name)))
        return run.run(bar)
