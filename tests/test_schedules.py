"""λ_t schedules: values, the dynamic=False ablation, bad input."""

from __future__ import annotations

import math

import pytest

from activelora.config import StrategyConfig
from activelora.errors import ConfigError, UnknownNameError
from activelora.strategies import SCHEDULES, make_schedule


def test_registry_names():
    assert SCHEDULES.names() == ["constant", "cosine", "exponential", "linear"]


def test_linear_default_reproduces_authors_code():
    schedule = make_schedule(StrategyConfig())
    values = [schedule(t) for t in range(12)]
    expected = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0]
    assert values == pytest.approx(expected, abs=1e-12)
    assert all(v >= 0.0 for v in values)


def test_linear_custom_step_floors_at_zero():
    schedule = make_schedule(StrategyConfig(schedule_step=0.3))
    assert [schedule(t) for t in range(5)] == pytest.approx([0.7, 0.4, 0.1, 0.0, 0.0])


def test_cosine():
    rounds = 4
    schedule = make_schedule(StrategyConfig(schedule="cosine", schedule_rounds=rounds))
    for t in range(8):
        expected = 0.5 * (1 + math.cos(math.pi * min(t + 1, rounds) / rounds))
        assert schedule(t) == pytest.approx(expected)
    assert schedule(0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert schedule(3) == pytest.approx(0.0, abs=1e-15)
    assert schedule(100) == pytest.approx(0.0, abs=1e-15)


def test_exponential():
    schedule = make_schedule(StrategyConfig(schedule="exponential", schedule_rate=0.5))
    assert [schedule(t) for t in range(4)] == pytest.approx([0.5, 0.25, 0.125, 0.0625])


def test_constant():
    schedule = make_schedule(StrategyConfig(schedule="constant", constant_lambda=0.3))
    assert {schedule(t) for t in range(5)} == {0.3}


@pytest.mark.parametrize("name", ["linear", "cosine", "exponential"])
def test_no_dynamic_ablation_ignores_schedule(name):
    schedule = make_schedule(StrategyConfig(schedule=name, dynamic=False, constant_lambda=0.25))
    assert [schedule(t) for t in range(4)] == [0.25] * 4


@pytest.mark.parametrize("name", ["linear", "cosine", "exponential", "constant"])
def test_values_in_unit_interval_and_non_increasing(name):
    schedule = make_schedule(StrategyConfig(schedule=name))
    values = [schedule(t) for t in range(30)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_unknown_schedule_lists_valid():
    with pytest.raises(UnknownNameError, match="linear"):
        make_schedule(StrategyConfig(schedule="linaer"))


def test_bad_query_index():
    schedule = make_schedule(StrategyConfig())
    with pytest.raises(ValueError):
        schedule(-1)
    with pytest.raises(TypeError):
        schedule(1.5)


def test_cosine_bad_rounds():
    with pytest.raises(ConfigError, match="schedule_rounds"):
        make_schedule(StrategyConfig(schedule="cosine", schedule_rounds=0))
