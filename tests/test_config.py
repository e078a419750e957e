"""Config building: type checks driven by the annotations, range checks, measure names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from activelora.config import Config, LoopConfig, ScoreConfig, StrategyConfig, build_config, parse_set
from activelora.errors import ConfigError, DataError
from activelora.strategies.normalize import check_finite


def _flags(*items: str) -> Config:
    return build_config(overrides=parse_set(list(items)))


def _error(*items: str) -> str:
    with pytest.raises(ConfigError) as info:
        _flags(*items)
    return str(info.value)


@pytest.mark.parametrize("item, key, value", [
    ("train.epochs=abc", "train.epochs", "'abc'"),
    ("loop.target_accuracy=high", "loop.target_accuracy", "'high'"),
    ("lora.lora_dropout=[0.1]", "lora.lora_dropout", "[0.1]"),
    ("train.learning_rate=true", "train.learning_rate", "True"),
])
def test_float_fields_reject_non_numbers(item, key, value):
    message = _error(item)
    assert message == f"flags: {key}: must be a number, got {value}"


def test_float_fields_accept_ints_and_numeric_strings():
    config = _flags("train.epochs=3", "train.learning_rate=1e-3", "loop.target_accuracy=0.5")
    assert config.train.epochs == 3.0 and isinstance(config.train.epochs, float)
    assert config.train.learning_rate == pytest.approx(1e-3)  # YAML reads 1e-3 as a string
    assert config.loop.target_accuracy == 0.5
    assert _flags("loop.target_accuracy=null").loop.target_accuracy is None


def test_float_fields_reject_non_finite():
    assert "train.epochs: must be a finite number" in _error("train.epochs=.inf")


@pytest.mark.parametrize("item, where", [
    ("loop.seeds=[a]", "loop.seeds[0]: must be an integer, got 'a'"),
    ("loop.seeds=[1, 2.5]", "loop.seeds[1]: must be an integer, got 2.5"),
    ("loop.seeds=[true]", "loop.seeds[0]: must be an integer, got True"),
    ("loop.strategies=[random, [star]]", "loop.strategies[1]: must be a string, got ['star']"),
    ("loop.strategies=[random, null]", "loop.strategies[1]: may not be null"),
    ("lora.target_modules=[q_proj, {a: 1}]", "lora.target_modules[1]: must be a string"),
    ("loop.seeds=3", "loop.seeds: must be a list, got 3"),
])
def test_list_elements_are_checked(item, where):
    assert where in _error(item)


def test_lists_of_the_right_type_pass():
    config = _flags("loop.seeds=[0, 1, 2]", "loop.strategies=[random, star]", "lora.target_modules=[q_proj]")
    assert config.loop.seeds == [0, 1, 2]
    assert config.loop.strategies == ["random", "star"]
    assert config.lora.target_modules == ["q_proj"]


def test_yaml_file_errors_name_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loop:\n  seeds: [0, x]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: loop\.seeds\[1\]: must be an integer, got 'x'"):
        build_config(path)


@pytest.mark.parametrize("item, key", [
    ("loop.budget=0", "loop.budget"),
    ("loop.budget=-5", "loop.budget"),
    ("loop.pool_limit=0", "loop.pool_limit"),
    ("loop.test_limit=-1", "loop.test_limit"),
    ("loop.target_accuracy=1.5", "loop.target_accuracy"),
    ("loop.target_accuracy=-0.1", "loop.target_accuracy"),
])
def test_loop_ranges(item, key):
    assert _error(item).startswith(f"flags: {key}: must be")


def test_loop_ranges_accept_valid_and_null():
    config = _flags("loop.budget=64", "loop.pool_limit=null", "loop.test_limit=10", "loop.target_accuracy=1")
    assert (config.loop.budget, config.loop.pool_limit, config.loop.test_limit) == (64, None, 10)
    assert config.loop.target_accuracy == 1.0
    with pytest.raises(ConfigError, match="loop.budget"):
        LoopConfig(budget=0)


@pytest.mark.parametrize("section", ["strategy", "score"])
def test_unknown_measure_fails_at_config_time_listing_the_valid_ones(section):
    message = _error(f"{section}.measure=entropyy")
    assert message.startswith(f"flags: {section}.measure: unknown measure 'entropyy'")
    assert "valid: bald, entropy, lc, pe, vote" in message


def test_known_measures_pass():
    for name in ("entropy", "pe", "lc", "bald", "vote"):
        assert StrategyConfig(measure=name).measure == name
        assert ScoreConfig(measure=name).measure == name
    with pytest.raises(ConfigError, match="strategy.measure"):
        StrategyConfig(measure="nope")


def test_check_finite_is_a_one_line_data_error():
    with pytest.raises(DataError, match="id 'b'"):
        check_finite(np.array([0.1, np.nan]), ["a", "b"])
    with pytest.raises(ValueError):  # still a ValueError for library callers
        check_finite(np.array([np.inf]))


def test_a_run_folders_config_json_reads_as_its_settings(tmp_path):
    ran = build_config(overrides=parse_set(["model.chat_template=true", "lora.r=4", "strategy.feedback_window=3"]))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**ran.to_dict(), "run": {"strategy": "star", "seed": 1, "data": "abc"}}))
    assert build_config(path) == ran
    path.write_text(json.dumps({**ran.to_dict(), "run": {"rounds": 3}}))  # not a run's record
    with pytest.raises(ConfigError, match="unknown config section 'run'"):
        build_config(path)


def test_evaluate_takes_a_run_folders_config(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """A run's adapter, evaluated with ``--config RUN/config.json``: the run's prompt format comes
    from the run folder. Without it, the adapter's recorded format refuses the default one."""
    from activelora.cli import main
    from test_loop import SMALL

    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "exp"
    assert main(["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", *SMALL,
                 "--set", "model.chat_template=true", "--strategy", "random", "--rounds", "0"]) == 0
    run_dir = out / "random" / "seed-0"
    evaluate = ["evaluate", "--data", "arith", "--limit", "3", "--model", str(tiny_model_dir),
                "--adapter", str(run_dir / "round-0" / "adapter")]
    assert main([*evaluate, "--out", str(tmp_path / "plain")]) == 2
    assert "chat_template" in capsys.readouterr().err
    assert main([*evaluate, "--out", str(tmp_path / "as-run"), "--config", str(run_dir / "config.json")]) == 0
    assert json.loads((tmp_path / "as-run" / "metrics.json").read_text())["n"] == 3
