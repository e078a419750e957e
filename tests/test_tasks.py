"""Tasks: prompts, targets, answer extraction and scoring (synthetic cases and real rows)."""

from __future__ import annotations

import pytest
from _shared import SHARED_DATASETS, requires_shared
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.data import (
    TASKS,
    ArithTask,
    BoolQTask,
    Example,
    GSM8KTask,
    OBQATask,
    PlainTask,
    Task,
    get_task,
    infer_task,
    load_examples,
    normalize_number,
    numbers_equal,
)
from activelora.errors import DataError, UnknownNameError


def ex(question: str, answer: str | None, id: str = "x1") -> Example:
    return Example(id=id, question=question, answer=answer)


# --------------------------------------------------------------------------- registry


def test_registry_holds_the_builtin_tasks():
    assert TASKS.names() == ["arith", "boolq", "gsm8k", "mix", "obqa", "plain"]
    for name in TASKS.names():
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name
        assert task.max_new_tokens > 0
        assert isinstance(task.stop_strings, tuple)
    assert isinstance(get_task("arith"), ArithTask) and isinstance(get_task("arith"), GSM8KTask)


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        get_task("gsm8")
    message = str(info.value)
    assert "gsm8" in message and "did you mean 'gsm8k'" in message
    assert "arith, boolq, gsm8k, mix, obqa, plain" in message
    assert isinstance(info.value, KeyError)


@pytest.mark.parametrize("source, expected", [
    ("arith", "arith"),
    ("mix", "mix"),
    ("mix.jsonl", "plain"),
    ("../shared/datasets/GSM8K", "gsm8k"),
    ("/data/gsm8k/test.jsonl", "gsm8k"),
    ("openai/gsm8k:main", "gsm8k"),
    ("data/BoolQ/train.jsonl", "boolq"),
    ("OBQA", "obqa"),
    ("allenai/openbookqa", "obqa"),
    ("/runs/gsm8k-experiments/boolq/train.jsonl", "boolq"),  # the innermost mention wins
    ("my_questions.csv", "plain"),
    ("arith.jsonl", "plain"),  # only the exact name is the generator
])
def test_infer_task(source, expected):
    assert infer_task(source) == expected


def test_prompt_and_target_shapes():
    example = ex("What is 2 + 2?", "2 + 2 = 4. The final answer is 4.")
    for name in ("arith", "gsm8k"):
        task = get_task(name)
        assert task.prompt(example) == "Question: What is 2 + 2?\nAnswer:"
        target = task.target(example)
        assert target.startswith(" ") and not target.startswith("  ")
        assert "\nQuestion:" in task.stop_strings


@pytest.mark.parametrize("name", ["arith", "gsm8k", "boolq", "mix", "obqa", "plain"])
def test_unlabelled_example_has_no_target_or_gold(name):
    task = get_task(name)
    unlabelled = ex("Question text?", None, id="u7")
    with pytest.raises(DataError, match="'u7' has no answer"):
        task.target(unlabelled)
    with pytest.raises(DataError, match="'u7'"):
        task.gold(unlabelled)


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("text, expected", [
    ("72", "72"), ("72.0", "72"), ("72.", "72"), ("$72", "72"), ("1,080", "1080"),
    ("$1,080.00", "1080"), ("-7", "-7"), ("0.50", "0.5"), ("-0", "0"), ("0.125", "0.125"),
    ("1e3", "1000"), ("1e999999999", "1E999999999"), ("100e999999", "1E1000001"), ("abc", None), ("", None), ("nan", None), ("inf", None),
])
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


def test_numbers_equal_is_exact():
    assert numbers_equal("72", "72.000")
    assert numbers_equal("$1,080", "1080.")
    assert not numbers_equal("0.1", "0.10000000000000001")  # equal as floats, not as decimals
    assert not numbers_equal("x", "x")


@pytest.mark.parametrize("text, expected", [
    (" 3 * 12 = 36. 50 - 36 = 14. The final answer is 14.", "14"),
    ("The final answer is $1,080.", "1080"),
    ("the FINAL ANSWER IS: 72.0", "72"),
    ("so the final answer is 15 gallons ... The final answer is 120.", "120"),  # the last one
    ("He sprints 9 times\n#### 540", "540"),
    ("I think it is 12 apples, or maybe 13.", "13"),  # no marker: the last number
    ("The temperature falls to -7 degrees.", "-7"),
    ("50-36 is what is left", "36"),  # a hyphen between numbers is not a sign
    ("The final answer is 14.\nQuestion: How many? Answer: 99", "14"),  # a new example is cut off
    ("I do not know.", None),
    ("", None),
])
def test_numeric_extraction(text, expected):
    assert get_task("gsm8k").extract(text) == expected
    assert get_task("arith").extract(text) == expected


def test_gsm8k_target_strips_calculator_annotations():
    example = ex(
        "Natalia sold clips ...",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
    )
    task = get_task("gsm8k")
    assert task.target(example) == (
        " Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips.\nThe final answer is 72."
    )
    assert task.gold(example) == "72"
    assert task.is_correct(task.target(example), example)


@pytest.mark.parametrize("answer, gold, target", [
    ("Costs rose.\n#### 1,080", "1080", " Costs rose.\nThe final answer is 1080."),
    ("#### -3", "-3", " The final answer is -3."),
    ("5 + 5 = 10. The final answer is 10.", "10", " 5 + 5 = 10. The final answer is 10."),
    ("72", "72", " The final answer is 72."),  # a bare number, e.g. from a CSV
])
def test_gsm8k_gold_formats(answer, gold, target):
    task = get_task("gsm8k")
    example = ex("q?", answer)
    assert task.gold(example) == gold
    assert task.target(example) == target


def test_gsm8k_gold_without_a_final_answer_is_a_data_error():
    with pytest.raises(DataError, match="no gsm8k answer found"):
        get_task("gsm8k").gold(ex("q?", "no number here"))


@pytest.mark.parametrize("generated, correct", [
    (" 3 * 12 = 36. 50 - 36 = 14. The final answer is 14.", True),
    (" The final answer is 14.0", True),
    (" The final answer is $14.", True),
    (" The final answer is 15.", False),
    (" The final answer is 1.4", False),
    (" 14 apples, then 20", False),
    ("", False),
])
def test_numeric_correctness(generated, correct):
    example = ex("q?", "Work.\n#### 14")
    assert get_task("gsm8k").is_correct(generated, example) is correct


@settings(max_examples=60, deadline=None)
@given(value=st.integers(min_value=0, max_value=10**9), dollar=st.booleans(),
       commas=st.booleans(), trailing=st.sampled_from(["", ".", ".0", ".00"]))
def test_numeric_formats_match_their_value(value, dollar, commas, trailing):
    task = get_task("arith")
    written = (f"{value:,}" if commas else str(value)) + trailing
    written = ("$" if dollar else "") + written
    example = ex("q?", f"1 + 1 = 2. The final answer is {value}.")
    assert task.is_correct(f" The final answer is {written}", example)
    assert not task.is_correct(f" The final answer is {value + 1}", example)


# --------------------------------------------------------------------------- boolq

BOOLQ_QUESTION = (
    "Please answer the following question with true or false, question: "
    "is confectionary sugar the same as powdered sugar?\n\nAnswer format: true/false"
)


def test_boolq_prompt_drops_the_instruction_wrapper():
    task = get_task("boolq")
    example = ex(BOOLQ_QUESTION, "the correct answer is true")
    assert task.prompt(example) == (
        "Question: is confectionary sugar the same as powdered sugar? True or false?\nAnswer:"
    )
    assert task.prompt(ex("is the sky blue", "true")) == "Question: is the sky blue? True or false?\nAnswer:"
    assert task.target(example) == " The correct answer is true."
    assert task.gold(example) == "true"
    assert task.max_new_tokens <= 16


@pytest.mark.parametrize("text, expected", [
    ("the correct answer is true", "true"),
    (" The correct answer is FALSE.", "false"),
    (" True", "true"),
    (" yes, it is", "true"),
    (" No.", "false"),
    ("The answer is: false. It is true that...", "false"),  # the word after "answer is" wins
    (" I am not sure", None),
    (" untrue", None),
])
def test_boolq_extraction(text, expected):
    assert get_task("boolq").extract(text) == expected


def test_boolq_correctness():
    task = get_task("boolq")
    example = ex(BOOLQ_QUESTION, "the correct answer is false")
    assert task.is_correct(" The correct answer is false.", example)
    assert task.is_correct(" no", example)
    assert not task.is_correct(" The correct answer is true.", example)
    assert not task.is_correct(" maybe", example)
    assert task.gold(ex("q", "true")) == "true"  # a bare label (e.g. from the hub)


# --------------------------------------------------------------------------- obqa

OBQA_TRAIN = ("The sun is responsible for\nAnswerA puppies learning new tricks\nAnswerB children growing up"
              "\nAnswerC flowers wilting in a vase\nAnswerD plants sprouting, blooming and wilting"
              "\nThe correct answer is ")
OBQA_TEST = ("There is most likely going to be fog around:\nAnswerA: a marsh\nAnswerB: a tundra"
             "\nAnswerC: the plains\nAnswerD: a desert\nThe correct answer is ")


@pytest.mark.parametrize("question, stem, first", [
    (OBQA_TRAIN, "The sun is responsible for", "puppies learning new tricks"),
    (OBQA_TEST, "There is most likely going to be fog around:", "a marsh"),
])
def test_obqa_parses_both_option_styles(question, stem, first):
    parsed_stem, options = OBQATask.parse(question)
    assert parsed_stem == stem
    assert list(options) == ["A", "B", "C", "D"]
    assert options["A"] == first


def test_obqa_prompt_and_target():
    task = get_task("obqa")
    example = ex(OBQA_TEST, "A")
    assert task.prompt(example) == (
        "Question: There is most likely going to be fog around:\nA. a marsh\nB. a tundra"
        "\nC. the plains\nD. a desert\nAnswer:"
    )
    assert task.target(example) == " The correct answer is A."
    assert task.gold(example) == "A"
    # Without option lines the question is shown as it is.
    assert task.prompt(ex("Which is a metal?", "B")) == "Question: Which is a metal?\nAnswer:"


@pytest.mark.parametrize("text, expected", [
    (" The correct answer is B.", "B"),
    ("B", "B"),
    (" (C) the plains", "C"),
    ("D. a desert", "D"),
    ("AnswerB", "B"),
    ("Answer: c", None),  # lower-case letters are too ambiguous ("a")
    ("The answer is a marsh", None),
    ("Fog forms over water.", None),
    (" The correct answer is E.", None),
])
def test_obqa_extraction(text, expected):
    assert get_task("obqa").extract(text) == expected


def test_obqa_correctness_accepts_the_option_text():
    task = get_task("obqa")
    example = ex(OBQA_TEST, "A")
    assert task.is_correct(" The correct answer is A.", example)
    assert task.is_correct(" a marsh.", example)  # the text of the gold option
    assert not task.is_correct(" a desert", example)
    assert not task.is_correct(" The correct answer is D.", example)
    assert not task.is_correct("", example)


# --------------------------------------------------------------------------- plain


def test_plain_is_exact_up_to_whitespace():
    task = get_task("plain")
    example = ex("Translate 'chat' to English:", "cat")
    assert task.prompt(example) == "Translate 'chat' to English:"
    assert task.target(example) == "cat"
    assert task.is_correct(" cat\n\n", example)
    assert task.is_correct("cat", ex("q", "  cat "))
    assert task.is_correct("a  big\ncat", ex("q", "a big cat"))
    assert not task.is_correct("Cat", example)
    assert not task.is_correct("", example)
    assert task.extract("  \n ") is None


# --------------------------------------------------------------------------- a custom task


def test_a_subclass_needs_only_extract():
    class Upper(Task):
        name = "upper"

        def extract(self, text: str) -> str | None:
            return text.strip().upper() or None

    task = Upper()
    example = ex("Say hi", "hi")
    assert task.target(example) == " hi"
    assert task.gold(example) == "HI"
    assert task.is_correct(task.target(example), example)
    assert isinstance(PlainTask(), Task) and isinstance(BoolQTask(), Task)


# --------------------------------------------------------------------------- real rows

REAL = [("GSM8K", "gsm8k"), ("BoolQ", "boolq"), ("OBQA", "obqa")]


def _corrupt(task: Task, example: Example) -> str:
    gold = task.gold(example)
    if task.name == "gsm8k":
        return f" The final answer is {int(gold) + 1}."
    if task.name == "boolq":
        return f" The correct answer is {'false' if gold == 'true' else 'true'}."
    return f" The correct answer is {'ABCD'[('ABCD'.index(gold) + 1) % 4]}."


@pytest.mark.needs_shared
@requires_shared
@pytest.mark.parametrize("folder, name", REAL)
@pytest.mark.parametrize("split", ["train", "test"])
def test_real_targets_score_correct_and_corruptions_do_not(folder, name, split):
    source = str(SHARED_DATASETS / folder)
    assert infer_task(source) == name
    task = get_task(name)
    examples = load_examples(source, split, task=name, limit=1500)
    assert 500 <= len(examples) <= 1500
    for example in examples:
        target = task.target(example)
        assert target.startswith(" ") and "\n\n" not in target and "<<" not in target
        assert task.is_correct(target, example), (example.id, target)
        assert task.extract(target) == task.gold(example)
        assert not task.is_correct(_corrupt(task, example), example), example.id
        prompt = task.prompt(example)
        assert prompt.startswith("Question: ") and prompt.endswith("\nAnswer:")


@pytest.mark.needs_shared
@requires_shared
def test_real_gsm8k_gold_is_the_number_after_the_hashes():
    examples = load_examples(str(SHARED_DATASETS / "GSM8K"), "train")
    task = get_task("gsm8k")
    for example in examples:
        written = example.answer.rpartition("####")[2]
        assert numbers_equal(task.gold(example), written), example.id
    # A row whose reasoning says "the final answer is 15 gallons" before "#### 120".
    tricky = [e for e in examples if "final answer is 15 gallons" in e.answer]
    assert tricky and task.gold(tricky[0]) == "120"
    assert task.is_correct(task.target(tricky[0]), tricky[0])


@pytest.mark.needs_shared
@requires_shared
def test_real_obqa_prompts_list_four_clean_options():
    task = get_task("obqa")
    for split in ("train", "test"):
        for example in load_examples(str(SHARED_DATASETS / "OBQA"), split, limit=300):
            lines = task.prompt(example).split("\n")
            options = [line for line in lines if line[:3] in ("A. ", "B. ", "C. ", "D. ")]
            assert len(options) == 4, example.question
            assert "Answer" not in " ".join(lines[1:-1]).replace("Answer:", "")
            assert "The correct answer is" not in task.prompt(example)
