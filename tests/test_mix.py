"""The embedded mix pool: determinism, skewed skill shares, near-duplicates, disjoint test sets,
the answer check of every skill, and its second test set's accuracy in a run's metrics."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest

from activelora.cli import main
from activelora.data import SKILL_NAMES, SKILLS, generate_mix, get_task, load_examples
from activelora.data.mix import (DEFAULT_SIZES, DEV_CLEAR_OF_TRAIN_ROWS, DEV_SPLITS, DUPLICATE_SHARE,
                                 skill_schedule, split_of)
from activelora.run.experiment_data import load_experiment_data
from activelora.config import Config
from activelora.errors import ConfigError, DataError
from activelora.atomic_files import read_jsonl


@pytest.fixture(scope="module")
def pool():
    return generate_mix("train")


@pytest.fixture(scope="module")
def tests():
    return {split: generate_mix(split) for split in ("test", "test_pool_like")}


def fingerprint(examples) -> str:
    rows = [[e.id, e.question, e.answer, e.meta] for e in examples]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- an independent reader

_WORD = r"[a-z]+"


def content(example) -> tuple:
    """The item behind a question, read from its text alone (not from the generator): the
    skill and its words, letters or numbers, whatever the wording. Questions put the item
    last (or after "word"/"of"), so its words/letters are the trailing ones and its numbers
    are all the numbers."""
    skill, text = example.meta["skill"], example.question
    numbers = tuple(int(v) for v in re.findall(r"\d+", text))
    if skill == "copy":
        return skill, tuple(text.split(":")[-1].split())
    if skill in ("plural", "first_letter"):
        return skill, tuple(re.findall(r"(?:word|of) ([a-z]+)", text)[-1:])  # the noun after the last "word"/"of"
    if skill == "reverse":
        letters = re.findall(r"\b[a-z]\b", text)
        return skill, tuple(letters[-3:])
    return skill, numbers


def expected_answer(example) -> str:
    """The gold answer recomputed from the question text, independently of the generator."""
    skill, item = content(example)
    if skill == "copy":
        return " ".join(item)
    if skill == "plural":  # written out per ending, not calling the generator's rule
        noun = item[0]
        if noun[-1] in "sxz" or noun[-2:] in ("ch", "sh"):
            return noun + "es"
        return noun[:-1] + "ies" if noun[-1] == "y" and noun[-2] not in "aeiou" else noun + "s"
    if skill == "first_letter":
        return item[0][0]
    if skill == "reverse":
        return " ".join(reversed(item))
    if skill == "successor":
        return str(item[0] + 1)
    if skill == "add":
        return str(item[0] + item[1])
    if skill == "compare":
        return str(max(item))
    if skill == "chain":
        a, b, c, d = item
        return str(a + b - c + d)
    if skill == "sort":
        return ", ".join(str(v) for v in sorted(item))
    raise AssertionError(f"unknown skill {skill}")


# --------------------------------------------------------------------------- generator


def test_deterministic_for_a_seed_and_prefix_stable(pool):
    assert fingerprint(generate_mix("train")) == fingerprint(pool)
    assert fingerprint(generate_mix("train", 300)) == fingerprint(pool[:300])
    other = generate_mix("train", seed=1)
    assert fingerprint(other) != fingerprint(pool)
    assert [e.meta["skill"] for e in other] == [e.meta["skill"] for e in pool]  # the schedule, not the items
    assert len({e.id for e in pool}) == len(pool) == DEFAULT_SIZES["train"]


def test_at_least_six_skills_of_every_level(pool):
    assert len(SKILLS) >= 6 and len(set(SKILL_NAMES)) == len(SKILLS)
    assert {s.level for s in SKILLS} == {1, 2, 3}
    assert set(Counter(e.meta["skill"] for e in pool)) == set(SKILL_NAMES)


@pytest.mark.parametrize("n", [100, 333, 2000])
def test_pool_shares_are_skewed_within_the_bounds(n):
    counts = Counter(e.meta["skill"] for e in generate_mix("train", n))
    shares = {s: counts[s] / n for s in SKILL_NAMES}
    assert max(shares.values()) >= 0.40
    assert min(shares.values()) <= 0.03
    for skill in SKILLS:  # every prefix within one row of the declared share
        assert abs(counts[skill.name] - skill.weight * n) <= 1, skill.name


def test_schedule_prefixes_stay_within_one_row_on_random_weights():
    import random

    rng = random.Random(7)
    for _ in range(20):
        weights = {f"s{i}": rng.uniform(0.01, 1.0) for i in range(rng.randint(2, 9))}
        total = sum(weights.values())
        rows = skill_schedule(weights, 257)
        for end in range(1, 258):
            counts = Counter(rows[:end])
            for name, w in weights.items():
                assert abs(counts[name] - w / total * end) <= 1.0 + 1e-9


def test_test_sets_weight_skills_equally_or_like_the_pool(tests):
    balanced = Counter(e.meta["skill"] for e in tests["test"])
    assert DEFAULT_SIZES["test"] % len(SKILLS) == 0
    assert set(balanced.values()) == {DEFAULT_SIZES["test"] // len(SKILLS)}
    pool_like = Counter(e.meta["skill"] for e in tests["test_pool_like"])
    n = DEFAULT_SIZES["test_pool_like"]
    for skill in SKILLS:
        assert abs(pool_like[skill.name] - skill.weight * n) <= 1
    for rows in tests.values():
        assert all(e.meta["duplicate"] == "no" and e.meta["duplicate_of"] is None for e in rows)
        assert len({content(e) for e in rows}) == len(rows)  # no item twice in a test set


def test_near_duplicates_are_marked_and_really_near(pool):
    by_id = {e.id: e for e in pool}
    dups = [e for e in pool if e.meta["duplicate"] != "no"]
    share = len(dups) / len(pool)
    assert 0.10 <= share <= 0.20 and share <= DUPLICATE_SHARE + 0.005
    kinds = Counter(e.meta["duplicate"] for e in dups)
    assert kinds["reworded"] > 0 and kinds["renumbered"] > 0
    for e in dups:
        source = by_id[e.meta["duplicate_of"]]
        assert pool.index(source) < pool.index(e) and source.meta["duplicate"] == "no"
        assert source.meta["skill"] == e.meta["skill"] and e.question != source.question
        if e.meta["duplicate"] == "reworded":
            assert content(e) == content(source) and e.answer == source.answer
        else:  # one number moved by 1 to 3
            moved = [(a, b) for a, b in zip(content(e)[1], content(source)[1]) if a != b]
            assert len(moved) == 1 and 1 <= abs(moved[0][0] - moved[0][1]) <= 3
    fresh = [content(e) for e in pool if e.meta["duplicate"] == "no"]
    assert len(set(fresh)) == len(fresh)  # apart from the marked ones, no repeats


def test_test_sets_are_disjoint_from_the_pool_and_each_other(pool, tests):
    """Disjoint = no item (skill + content, in any wording) in two splits; a near-duplicate's
    source is a pool row, so no test item enters the pool reworded either."""
    pool_items = {content(e) for e in pool}
    balanced = {content(e) for e in tests["test"]}
    pool_like = {content(e) for e in tests["test_pool_like"]}
    assert not pool_items & balanced and not pool_items & pool_like and not balanced & pool_like
    assert not {e.question for e in pool} & {e.question for rows in tests.values() for e in rows}
    pool_ids = {e.id for e in pool}
    assert all(e.meta["duplicate_of"] in pool_ids for e in pool if e.meta["duplicate"] != "no")
    for seed in (1, 2):  # for any seeds: the split of an item does not depend on the seed
        other_test = {content(e) for e in generate_mix("test", 200, seed=seed)}
        assert not pool_items & other_test


def test_every_answer_is_right_and_reads_back_exactly(pool, tests):
    task = get_task("mix")
    for e in pool + tests["test"] + tests["test_pool_like"]:
        assert e.answer == expected_answer(e), e
        assert task.gold(e) == e.answer and task.target(e) == " " + e.answer
        assert task.is_correct(task.target(e), e)
        assert task.is_correct(task.target(e) + ".\nQuestion: next", e)  # period and a next example


@pytest.mark.parametrize("skill", SKILL_NAMES)
def test_extract_round_trip_and_strictness_per_skill(skill, tests):
    task = get_task("mix")
    example = next(e for e in tests["test"] if e.meta["skill"] == skill)
    assert task.extract(task.target(example)) == example.answer
    assert task.extract("  " + example.answer.replace(" ", "  ") + " .") == example.answer
    assert task.extract(" " + example.answer.upper()) == example.answer  # case does not count
    assert not task.is_correct(" " + example.answer + " and more", example)
    assert not task.is_correct(" so " + example.answer, example)
    # An instruct model's sentence: the part after "is"/"are", quotes and the period dropped.
    assert task.is_correct(' The answer is "' + example.answer + '".', example)
    assert task.is_correct("\n The answers are: " + example.answer + "\nmore text", example)
    assert not task.is_correct(" The answer is " + example.answer + " or 7", example)
    assert task.extract("   \n \n") is None
    if skill == "sort":
        assert task.extract(" " + example.answer.replace(", ", " ,")) == example.answer


def test_loader_and_splits(tests):
    assert load_examples("mix", "test", limit=7, seed=0) == tests["test"][:7]
    assert len(load_examples("mix", "train", limit=50, task="mix")) == 50
    with pytest.raises(DataError, match="unknown split 'validation'"):
        load_examples("mix", "validation")
    with pytest.raises(DataError, match="non-negative"):
        generate_mix("train", -1)


def test_experiment_data_holds_the_pool_like_test_set():
    config = Config()
    config.data.source = "mix"
    config.loop.pool_limit, config.loop.test_limit, config.loop.probe_size = 40, 16, 4
    data = load_experiment_data(config)
    assert [e.id for e in data.test] == [e.id for e in generate_mix("test", 16)]
    assert [e.id for e in data.extra_tests["pool_like"]] == [e.id for e in generate_mix("test_pool_like", 16)]
    assert data.fingerprint()["extra_tests"] == {"pool_like": 16}
    config.data.source = "arith"
    assert "extra_tests" not in load_experiment_data(config).fingerprint()  # arith runs resume as before


# --------------------------------------------------------------------------- dev splits (tuning)


@pytest.fixture(scope="module")
def devs():
    return {split: generate_mix(split) for split in DEV_SPLITS}


def test_dev_splits_are_shaped_like_the_test_sets(devs):
    balanced = Counter(e.meta["skill"] for e in devs["dev"])
    assert set(balanced.values()) == {DEFAULT_SIZES["dev"] // len(SKILLS)}
    pool_like = Counter(e.meta["skill"] for e in devs["dev_pool_like"])
    for skill in SKILLS:
        assert abs(pool_like[skill.name] - skill.weight * DEFAULT_SIZES["dev_pool_like"]) <= 1
    for split, rows in devs.items():
        assert all(e.meta["duplicate"] == "no" for e in rows)
        assert len({content(e) for e in rows}) == len(rows)
        assert all(e.answer == expected_answer(e) for e in rows)
        assert fingerprint(generate_mix(split, 50)) == fingerprint(rows[:50])  # prefix-stable


@pytest.mark.parametrize("seed", [0, 3])
def test_dev_splits_never_meet_the_pool_the_test_sets_or_each_other(seed):
    """Read from the question text (content), not from the generator's bookkeeping: no dev item
    is in the pool's leading DEV_CLEAR_OF_TRAIN_ROWS rows (in any wording), in a test set, or in
    the other dev split; and every dev item is a train-side one (it could have been a pool row)."""
    pool = {content(e) for e in generate_mix("train", DEV_CLEAR_OF_TRAIN_ROWS, seed)}
    tests = {content(e) for split in ("test", "test_pool_like") for e in generate_mix(split, None, seed)}
    dev = {content(e) for e in generate_mix("dev", None, seed)}
    dev_pool_like = {content(e) for e in generate_mix("dev_pool_like", None, seed)}
    assert not dev & pool and not dev_pool_like & pool
    assert not dev & tests and not dev_pool_like & tests
    assert not dev & dev_pool_like
    for skill, item in dev | dev_pool_like:
        assert split_of(skill, item) == "train"
    # The avoided rows are a real constraint: the train split goes on to use dev-side items.
    later = {content(e) for e in generate_mix("train", None, seed)[DEV_CLEAR_OF_TRAIN_ROWS:]}
    assert later & (dev | dev_pool_like)


def test_a_dev_run_reads_both_dev_splits_and_refuses_a_pool_that_would_meet_them():
    config = Config()
    config.data.source, config.data.test_split = "mix", "dev"
    config.loop.pool_limit, config.loop.test_limit, config.loop.probe_size = 40, 16, 4
    data = load_experiment_data(config)
    assert [e.id for e in data.test] == [e.id for e in generate_mix("dev", 16)]
    assert [e.id for e in data.extra_tests["pool_like"]] == [e.id for e in generate_mix("dev_pool_like", 16)]
    config.loop.pool_limit = DEV_CLEAR_OF_TRAIN_ROWS - 3  # with the probe's 4 rows: one too many
    with pytest.raises(ConfigError, match=f"loop.pool_limit to at most {DEV_CLEAR_OF_TRAIN_ROWS - 4}"):
        load_experiment_data(config)
    config.loop.pool_limit = None  # the whole train split (2000 rows)
    with pytest.raises(ConfigError, match="avoids only the first 1000 train rows"):
        load_experiment_data(config)


def test_cli_refuses_a_dev_run_whose_pool_is_too_long_in_one_line(tmp_path, capsys):
    out = tmp_path / "exp"
    code = main(["run", "--output", str(out), "--quiet", "--data", "mix", "--strategy", "random",
                 "--set", "data.test_split=dev", "--set", "loop.pool_limit=1500"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "loop.pool_limit" in err and "Traceback" not in err
    assert not out.exists()  # nothing half-written


# --------------------------------------------------------------------------- in a run


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def test_run_on_mix_writes_both_accuracies_and_skill_shares(tmp_path, tiny_model_dir, isolated_cache):
    out = tmp_path / "exp"
    code = main(["run", "--output", str(out), "--model", str(tiny_model_dir), "--quiet", "--data", "mix",
                 "--strategy", "random", "--rounds", "1",
                 "--set", "loop.pool_limit=20", "--set", "loop.test_limit=8", "--set", "loop.probe_size=0",
                 "--set", "loop.initial=4", "--set", "loop.query_size=3", "--set", "train.epochs=1",
                 "--set", "train.batch_size=4", "--set", "eval.max_new_tokens=4", "--set", "lora.r=2",
                 "--set", "lora.target_modules=[q_proj,v_proj]"])
    assert code == 0
    run_dir = out / "random" / "seed-0"
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["round"] for r in rows] == [0, 1]
    for r, row in enumerate(rows):
        assert row["n_test"] == 8 and row["n_test_pool_like"] == 8
        assert 0.0 <= row["accuracy_pool_like"] <= 1.0
        predictions = read_jsonl(run_dir / f"round-{r}" / "predictions_pool_like.jsonl")
        assert [p["id"] for p in predictions] == [e.id for e in generate_mix("test_pool_like", 8)]
        assert row["accuracy_pool_like"] == sum(p["correct"] for p in predictions) / 8
        main_predictions = read_jsonl(run_dir / f"round-{r}" / "predictions.jsonl")
        assert [p["id"] for p in main_predictions] == [e.id for e in generate_mix("test", 8)]
        shares = {k: v for k, v in row.items() if k.startswith("batch_share_skill=")}
        assert shares and abs(sum(shares.values()) - 1.0) < 1e-9
        assert any(k.startswith("pool_share_duplicate=") for k in row)
