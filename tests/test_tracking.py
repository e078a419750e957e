"""--report-to through accelerate's trackers, read back from TensorBoard's event files."""

from __future__ import annotations

from pathlib import Path

import pytest

from activelora.errors import ConfigError
from activelora.tracking import TENSORBOARD_FOLDER, RunTracker, check_report_to, flat_config

pytest.importorskip("tensorboard")


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from every event file under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(values) for tag, values in out.items()}


def test_check_report_to():
    assert check_report_to(None) == ()
    assert check_report_to(["none"]) == ()
    assert check_report_to(["tensorboard", "tensorboard"]) == ("tensorboard",)
    with pytest.raises(ConfigError, match="unknown tracker"):
        check_report_to(["tensorbored"])


def test_flat_config_gives_scalars_only():
    flat = flat_config({"train": {"epochs": 2.0, "bf16": False}, "loop": {"seeds": [0, 1], "budget": None}})
    assert flat == {"train.epochs": 2.0, "train.bf16": False, "loop.seeds": "[0, 1]", "loop.budget": "None"}


def test_tensorboard_gets_losses_and_round_metrics(tmp_path):
    with RunTracker(["tensorboard"], tmp_path, "star/seed-0", {"train": {"epochs": 1}}) as tracker:
        tracker.log_training(0, [2.5, 2.0], first_step=0)
        tracker.log_round({"round": 0, "labeled": 4, "accuracy": 0.25, "strategy": "star", "seed": 0,
                           "lambda": None, "ece": float("nan")})
        tracker.log_training(1, [1.5, 1.0, 0.5], first_step=2)
        tracker.log_round({"round": 1, "labeled": 7, "accuracy": 0.5, "strategy": "star", "seed": 0})
    scalars = read_scalars(tmp_path / TENSORBOARD_FOLDER / "star" / "seed-0")
    assert scalars["train/loss"] == [(1, 2.5), (2, 2.0), (3, 1.5), (4, 1.0), (5, 0.5)]
    assert scalars["train/final_loss"] == [(0, 2.0), (1, 0.5)]
    assert scalars["eval/accuracy"] == [(0, 0.25), (1, 0.5)]
    assert scalars["eval/labeled"] == [(0, 4.0), (1, 7.0)]
    assert "eval/ece" not in scalars and "eval/seed" not in scalars and "eval/round" not in scalars


def test_no_trackers_write_nothing(tmp_path):
    with RunTracker([], tmp_path, "random/seed-0", {}) as tracker:
        tracker.log_training(0, [1.0], first_step=0)
        tracker.log_round({"round": 0, "accuracy": 1.0})
    assert not any(tmp_path.iterdir())
