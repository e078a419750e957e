"""The embedded arith generator: determinism, split disjointness, frequencies, sound arithmetic."""

from __future__ import annotations

import collections
import hashlib
import json
import re
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.data import FAMILIES, FAMILY_NAMES, generate_arith, get_task
from activelora.data.arith import DEFAULT_SIZES, DEV_START, split_of
from activelora.errors import DataError


@pytest.fixture(scope="module")
def train():
    return generate_arith("train")


@pytest.fixture(scope="module")
def test_split():
    return generate_arith("test")


def fingerprint(examples) -> str:
    rows = [[e.id, e.question, e.answer, e.meta] for e in examples]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- an independent checker

_TOKEN = re.compile(r"\s*(\d+|[-+*/()])")


def evaluate(expression: str) -> Fraction:
    """A small recursive-descent evaluator (usual precedence, left-associative), exact."""
    tokens = _TOKEN.findall(expression)
    assert "".join(tokens) == expression.replace(" ", ""), f"unparsable: {expression!r}"
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def atom() -> Fraction:
        token = take()
        if token == "(":
            value = expr()
            assert take() == ")"
            return value
        return Fraction(int(token))

    def term() -> Fraction:
        value = atom()
        while peek() in ("*", "/"):
            value = value * atom() if take() == "*" else value / atom()
        return value

    def expr() -> Fraction:
        value = term()
        while peek() in ("+", "-"):
            value = value + term() if take() == "+" else value - term()
        return value

    value = expr()
    assert position == len(tokens), f"trailing tokens in {expression!r}"
    return value


_STEP = re.compile(r"([\d\s+\-*/()]+?) = (\d+)\.")
_FINAL = re.compile(r"The final answer is (\d+)\.$")


def check_worked_answer(question: str, answer: str) -> list[int]:
    """Re-derive every step; return the step results. Each operand must be a number of the
    question (or 100 for a percentage) or an earlier result."""
    final = _FINAL.search(answer)
    assert final, answer
    body = answer[: final.start()].strip()
    steps = _STEP.findall(body)
    assert " ".join(f"{e.strip()} = {v}." for e, v in steps) == body, f"unexpected text in {answer!r}"
    given = {int(n) for n in re.findall(r"\d+", question)}
    if "%" in question:
        given.add(100)
    results: list[int] = []
    for expression, stated in steps:
        value = evaluate(expression)
        assert value == int(stated), f"{expression} = {stated} is wrong in {answer!r}"
        assert value.denominator == 1 and value >= 0
        for operand in map(int, re.findall(r"\d+", expression)):
            assert operand in given or operand in results, f"{operand} comes from nowhere: {question!r} {answer!r}"
        results.append(int(stated))
    assert results and int(final.group(1)) == results[-1]
    return results


def test_the_checker_catches_mistakes():
    assert evaluate("80 * 25 / 100") == 20 and evaluate("2 + 3 * 4") == 14 and evaluate("(2 + 3) * 4") == 20
    assert check_worked_answer("3 boxes of 12, 50 in all", "3 * 12 = 36. 50 - 36 = 14. The final answer is 14.") == [36, 14]
    with pytest.raises(AssertionError):
        check_worked_answer("3 boxes of 12", "3 * 12 = 35. The final answer is 35.")
    with pytest.raises(AssertionError):
        check_worked_answer("3 boxes of 12", "3 * 12 = 36. The final answer is 37.")
    with pytest.raises(AssertionError):
        check_worked_answer("3 boxes of 12", "3 * 13 = 39. The final answer is 39.")


# --------------------------------------------------------------------------- soundness


def test_every_answer_is_sound(train, test_split):
    for example in train + test_split:
        results = check_worked_answer(example.question, example.answer)
        assert len(results) == example.meta["steps"]


def test_the_arith_task_scores_every_target_correct(train, test_split):
    task = get_task("arith")
    for example in train[:1000] + test_split:
        target = task.target(example)
        assert target == " " + example.answer
        assert task.is_correct(target, example)
        gold = int(task.gold(example))
        assert not task.is_correct(f" The final answer is {gold + 1}.", example)
        assert task.prompt(example) == f"Question: {example.question}\nAnswer:"
        assert not any(stop in target for stop in task.stop_strings)


def test_numbers_are_non_negative_integers(train):
    for example in train:
        for number in re.findall(r"-?\d+(?:\.\d+)?", example.answer):
            assert not number.startswith("-") and "." not in number


# --------------------------------------------------------------------------- determinism


def test_same_call_gives_the_same_list(train):
    assert fingerprint(generate_arith("train")) == fingerprint(train)


def test_same_list_in_a_fresh_process(test_split):
    code = (
        "import hashlib, json; from activelora.data import generate_arith;"
        "rows = [[e.id, e.question, e.answer, e.meta] for e in generate_arith('test')];"
        "print(hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == fingerprint(test_split)


def test_seeds_differ_and_smaller_n_is_a_prefix(test_split):
    assert fingerprint(generate_arith("test", seed=1)) != fingerprint(test_split)
    assert generate_arith("test", 37) == test_split[:37]
    longer = generate_arith("test", 600)
    assert longer[:500] == test_split and len(longer) == 600


# --------------------------------------------------------------------------- splits


def test_default_sizes_and_unique_ids_and_questions(train, test_split):
    assert (len(train), len(test_split)) == (DEFAULT_SIZES["train"], DEFAULT_SIZES["test"]) == (2000, 500)
    for examples, split in ((train, "train"), (test_split, "test")):
        assert len({e.id for e in examples}) == len(examples)
        assert len({e.question for e in examples}) == len(examples)
        assert examples[0].id == f"arith-0-{split}-00000"
        assert all(split_of(e.question) == split for e in examples)


def test_train_and_test_share_no_question(train, test_split):
    assert not {e.question for e in train} & {e.question for e in test_split}
    # Not even across seeds: the split of a question text is fixed by its hash.
    other_test = generate_arith("test", 300, seed=7)
    assert not {e.question for e in train} & {e.question for e in other_test}


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=-(10**6), max_value=10**6))
def test_any_seed_gives_sound_disjoint_splits(seed):
    train = generate_arith("train", 120, seed=seed)
    test = generate_arith("test", 60, seed=seed)
    assert not {e.question for e in train} & {e.question for e in test}
    for example in train + test:
        check_worked_answer(example.question, example.answer)


# --------------------------------------------------------------------------- families


def test_family_table():
    assert 6 <= len(FAMILIES) <= 8
    assert abs(sum(f.weight for f in FAMILIES) - 1.0) < 1e-9
    assert len(set(FAMILY_NAMES)) == len(FAMILIES)
    steps = {f.name: f.steps for f in FAMILIES}
    assert min(steps.values()) == 1 and max(steps.values()) >= 3
    easiest = max(FAMILIES, key=lambda f: f.weight)
    hardest = max(FAMILIES, key=lambda f: f.steps)
    assert easiest.steps == 1 and easiest.weight >= 0.25
    assert hardest.weight <= 0.08


def test_family_frequencies_match_the_table(train):
    counts = collections.Counter(e.meta["family"] for e in train)
    assert set(counts) == set(FAMILY_NAMES)
    for family in FAMILIES:
        observed = counts[family.name] / len(train)
        assert abs(observed - family.weight) < 0.03, (family.name, observed, family.weight)
    for example in train:
        assert example.meta["steps"] == next(f.steps for f in FAMILIES if f.name == example.meta["family"])


def test_families_vary_their_wording(train):
    """At least three templates per family once numbers, names and items are masked."""
    from activelora.data.arith import GOODS, ITEMS, NAMES

    words = sorted({*NAMES, *ITEMS, *(g for pair in GOODS for g in pair)}, key=len, reverse=True)
    mask = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b")
    skeletons = collections.defaultdict(set)
    for example in train:
        skeleton = mask.sub("W", re.sub(r"\d+", "N", example.question))
        skeletons[example.meta["family"]].add(skeleton)
    for family in FAMILY_NAMES:
        assert len(skeletons[family]) >= 3, family


def test_harder_families_need_bigger_numbers(train):
    largest = collections.defaultdict(int)
    for example in train:
        top = max(map(int, re.findall(r"\d+", example.answer)))
        largest[example.meta["family"]] = max(largest[example.meta["family"]], top)
    assert largest["add_sub"] < 200
    assert largest["bulk"] >= 1000  # two-digit by two-digit products


# --------------------------------------------------------------------------- knobs and errors


def test_weights_override_the_frequencies():
    only_budget = generate_arith("train", 30, weights={"budget": 1.0})
    assert {e.meta["family"] for e in only_budget} == {"budget"}
    assert all(e.meta["steps"] == 4 for e in only_budget)
    mixed = generate_arith("train", 200, weights={"add_sub": 1, "compare": 1})
    assert {e.meta["family"] for e in mixed} == {"add_sub", "compare"}


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "validation"}, "unknown split 'validation'; valid: train, test, dev"),
    ({"split": "dev", "n": 501}, "the dev split holds 500 problems, not 501"),
    ({"split": "train", "n": -1}, "must be a non-negative integer"),
    ({"split": "train", "n": 2.5}, "must be a non-negative integer"),
    ({"split": "train", "weights": {"algebra": 1}}, "unknown families ['algebra']"),
    ({"split": "train", "weights": {"budget": 0}}, "weights must be >= 0 with one > 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(DataError) as info:
        generate_arith(**kwargs)
    assert message in str(info.value)


def test_dev_is_the_train_side_after_the_pool_rows(train, test_split):
    dev = generate_arith("dev")
    assert [e.question for e in dev] == [e.question for e in train[DEV_START:DEV_START + len(dev)]]
    assert len(dev) == DEFAULT_SIZES["dev"] and [e.question for e in generate_arith("dev", 40)] == [
        e.question for e in dev[:40]]
    pool_side = {e.question for e in train[:DEV_START]}
    assert not {e.question for e in dev} & pool_side
    assert not {e.question for e in dev} & {e.question for e in test_split}


def test_a_dev_run_refuses_a_pool_that_would_meet_the_dev_split():
    from activelora.config import Config
    from activelora.run.experiment_data import load_experiment_data
    from activelora.errors import ConfigError

    config = Config()
    config.data.test_split = "dev"
    config.loop.pool_limit, config.loop.test_limit, config.loop.probe_size = 40, 20, 4
    data = load_experiment_data(config)
    assert [e.id for e in data.test] == [e.id for e in generate_arith("dev", 20)] and data.extra_tests == {}
    config.loop.pool_limit = DEV_START  # plus the probe's 4 rows: 4 too many
    with pytest.raises(ConfigError, match=f"at most {DEV_START - 4}"):
        load_experiment_data(config)


def test_zero_rows():
    assert generate_arith("train", 0) == []
