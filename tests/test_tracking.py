"""--report-to through accelerate's trackers, read back from TensorBoard's event files."""

from __future__ import annotations

from pathlib import Path

import pytest

from activelora.errors import ConfigError
from activelora.run.tracking import TENSORBOARD_FOLDER, RunTracker, check_report_to, flat_config

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


def test_run_reports_to_tensorboard(tmp_path, make_tiny_llama, smol_tokenizer, monkeypatch):
    """``activelora run --report-to tensorboard``: each round's metrics and every training
    step's loss, read back from the event files, equal what the run folder holds."""
    import json

    from activelora.cli import main
    from activelora.atomic_files import read_jsonl

    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    model_dir = tmp_path / "tiny"
    make_tiny_llama().save_pretrained(model_dir)
    smol_tokenizer.save_pretrained(model_dir)
    out = tmp_path / "exp"
    small = ["--set", "loop.pool_limit=12", "--set", "loop.test_limit=4", "--set", "loop.probe_size=0",
             "--set", "loop.initial=4", "--set", "loop.query_size=3", "--set", "train.batch_size=2",
             "--set", "eval.max_new_tokens=4", "--set", "score.max_new_tokens=4", "--set", "lora.r=2",
             "--set", "lora.target_modules=[q_proj,v_proj]"]
    assert main(["run", "--output", str(out), "--model", str(model_dir), "--quiet", "--strategy", "entropy",
                 "--rounds", "1", "--report-to", "tensorboard", *small]) == 0
    scalars = read_scalars(out / TENSORBOARD_FOLDER / "entropy" / "seed-0")
    rows = read_jsonl(out / "entropy" / "seed-0" / "metrics.jsonl")
    assert [s for s, _ in scalars["eval/accuracy"]] == [0, 1]
    assert [v for _, v in scalars["eval/accuracy"]] == pytest.approx([r["accuracy"] for r in rows])
    assert [v for _, v in scalars["eval/labeled"]] == [4.0, 7.0]
    steps = [json.loads((out / "entropy" / "seed-0" / f"round-{r}" / "train.json").read_text())["steps"]
             for r in (0, 1)]
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, sum(steps) + 1))
    assert [v for _, v in scalars["train/final_loss"]] == pytest.approx([r["train_loss"] for r in rows])
    # Off by default: a run without the flag writes no event files.
    assert main(["run", "--output", str(tmp_path / "plain"), "--model", str(model_dir), "--quiet",
                 "--strategy", "random", "--rounds", "0", *small]) == 0
    assert not (tmp_path / "plain" / TENSORBOARD_FOLDER).exists()
