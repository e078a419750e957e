"""Loading examples from files, folders, the generator and the hub: formats, ids, every error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from _shared import SHARED_DATASETS, requires_shared

from activelora.data import Example, generate_arith, load_examples
from activelora.errors import DataError


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def data_error(*args, **kwargs) -> str:
    """The message of the DataError that load_examples raises; it must be one line."""
    with pytest.raises(DataError) as info:
        load_examples(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)
    return message


# --------------------------------------------------------------------------- formats


def test_jsonl_rows_become_examples(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [
        {"id": "a", "question": "1 + 1?", "answer": "2"},
        "",  # blank lines are skipped
        {"id": 7, "question": "2 + 2?", "answer": "4", "extra": [1, 2]},
    ])
    examples = load_examples(str(path))
    assert examples == [Example("a", "1 + 1?", "2"), Example("7", "2 + 2?", "4")]
    assert examples[1].meta["where"] == f"{path}:3"


def test_field_names_are_configurable(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"key": "k1", "input": "q", "output": "a"}])
    (example,) = load_examples(str(path), question_field="input", answer_field="output", id_field="key")
    assert (example.id, example.question, example.answer) == ("k1", "q", "a")


def test_null_answer_is_unlabelled_and_answer_field_none_reads_a_pool(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q1", "answer": None}, {"question": "q2"}])
    assert data_error(str(path)).startswith(f"{path}:2: missing field 'answer'")
    write_jsonl(path, [{"question": "q1", "answer": None}])
    assert load_examples(str(path))[0].answer is None
    write_jsonl(path, [{"question": "q1"}, {"question": "q2", "answer": "x"}])
    assert [e.answer for e in load_examples(str(path), answer_field=None)] == [None, None]


def test_non_string_answers_are_converted(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"question": "q1", "answer": 72}, {"question": "q2", "answer": True}, {"question": "q3", "answer": 0.5},
    ])
    assert [e.answer for e in load_examples(str(path))] == ["72", "true", "0.5"]


def test_json_array_file(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"question": "q1", "answer": "a"}, {"question": "q2", "answer": "b"}], indent=1))
    assert [e.question for e in load_examples(str(path))] == ["q1", "q2"]
    path.write_text('[{"question": "q1", "answer": "a"}, 3]')
    assert data_error(str(path)) == f"{path}: item 2: expected a JSON object, got int"


def test_json_lines_with_json_suffix(tmp_path):
    path = write_jsonl(tmp_path / "d.json", [{"question": "q1", "answer": "a"}])
    assert load_examples(str(path))[0].question == "q1"


def test_csv_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,question,answer\nr1,"Two, with a comma?",2\nr2,"A question\nover two lines",\n')
    examples = load_examples(str(path))
    assert [(e.id, e.question, e.answer) for e in examples] == [
        ("r1", "Two, with a comma?", "2"),
        ("r2", "A question\nover two lines", None),  # an empty cell is unlabelled
    ]
    assert examples[1].meta["where"] == f"{path}:4"  # where the row ends


def test_csv_with_a_byte_order_mark_and_derived_ids(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffquestion,answer\nq1,a1\nq2,a2\n".encode("utf-8"))
    examples = load_examples(str(path))
    assert [e.question for e in examples] == ["q1", "q2"]
    assert examples[0].id.startswith("d-2-") and examples[1].id.startswith("d-3-")


def test_folder_reads_the_split_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"question": "tq", "answer": "ta"}])
    (tmp_path / "test.csv").write_text("question,answer\nsq,sa\n")
    assert load_examples(str(tmp_path), "train")[0].question == "tq"
    test = load_examples(str(tmp_path), "test")
    assert test[0].question == "sq"
    assert test[0].id.startswith(f"{tmp_path.name}-test-2-")
    message = data_error(str(tmp_path), "validation")
    assert "no validation.jsonl" in message and "found: test.csv, train.jsonl" in message


def test_split_is_ignored_for_a_file(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    assert load_examples(str(path), "test") == load_examples(str(path), "train")


def test_limit_takes_the_first_rows_and_stops_reading(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(5)] + ["{broken"])
    assert [e.question for e in load_examples(str(path), limit=3)] == ["q0", "q1", "q2"]
    assert "invalid JSON" in data_error(str(path))
    for bad in (0, -1, 1.5, True):
        assert "limit must be a positive integer" in data_error(str(path), limit=bad)


# --------------------------------------------------------------------------- ids


def test_derived_ids_are_stable_and_distinct_for_duplicates(tmp_path):
    rows = [{"question": "same?", "answer": "x"}, {"question": "same?", "answer": "x"}, {"question": "other", "answer": "y"}]
    path = write_jsonl(tmp_path / "pool.jsonl", rows)
    first = [e.id for e in load_examples(str(path))]
    assert first == [e.id for e in load_examples(str(path))]
    assert len(set(first)) == 3
    assert first[0].startswith("pool-1-") and first[1].startswith("pool-2-") and len(first[0]) == len("pool-1-") + 8
    assert first[0][-8:] == first[1][-8:]  # same content, different position
    # The id depends on the content as well as on the position.
    write_jsonl(path, [{"question": "changed?", "answer": "x"}] + rows[1:])
    assert load_examples(str(path))[0].id != first[0]


def test_ids_from_id_field_fall_back_when_absent(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"id": "given", "question": "q1", "answer": "a"}, {"id": None, "question": "q2", "answer": "a"},
        {"question": "q3", "answer": "a"},
    ])
    ids = [e.id for e in load_examples(str(path))]
    assert ids[0] == "given" and ids[1].startswith("d-2-") and ids[2].startswith("d-3-")
    assert [e.id for e in load_examples(str(path), id_field=None)][0].startswith("d-1-")


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"id": "q1", "question": "a", "answer": "a"}, {"id": "q2", "question": "b", "answer": "b"},
        {"id": "q1", "question": "c", "answer": "c"},
    ])
    assert data_error(str(path)) == f"{path}:3: duplicate id 'q1' (first at {path}:1)"


# --------------------------------------------------------------------------- errors


def test_invalid_json_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"question": "q", "answer": "a"}, '{"question": "q2", "answer" "a"}'])
    message = data_error(str(path))
    assert message.startswith(f"{path}:2: invalid JSON (")
    assert "column" in message


def test_a_line_that_is_not_an_object(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [["q", "a"]])
    assert data_error(str(path)) == f"{path}:1: expected a JSON object, got list"


def test_missing_field_lists_the_fields(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"question": "q", "answer": "a"}] * 2 + [{"question": "q", "label": "a"}])
    message = data_error(str(path))
    assert message.startswith(f"{path}:3: missing field 'answer' (fields: question, label)")
    path = write_jsonl(tmp_path / "data.jsonl", [{"prompt": "q", "answer": "a"}])
    assert data_error(str(path)) == f"{path}:1: missing field 'question' (fields: prompt, answer)"
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("question,label\nq,a\n")
    assert data_error(str(csv_path)).startswith(f"{csv_path}:2: missing field 'answer' (fields: question, label)")


@pytest.mark.parametrize("question, expected", [
    (None, "field 'question' must be a string, got NoneType"),
    (12, "field 'question' must be a string, got int"),
    ("   ", "field 'question' is empty"),
])
def test_bad_question(tmp_path, question, expected):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": question, "answer": "a"}])
    assert data_error(str(path)) == f"{path}:1: {expected}"


@pytest.mark.parametrize("answer, expected", [
    ("", "field 'answer' is empty; write null for an unlabelled row"),
    ({"text": "a"}, "field 'answer' must be a string, got dict"),
])
def test_bad_answer(tmp_path, answer, expected):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": answer}])
    assert data_error(str(path)) == f"{path}:1: {expected}"


def test_bad_id(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": ["x"], "question": "q", "answer": "a"}])
    assert data_error(str(path)) == f"{path}:1: field 'id' must be a string or a number, got list"


@pytest.mark.parametrize("name, content", [
    ("empty.jsonl", ""), ("blank.jsonl", "\n\n  \n"), ("empty.csv", ""), ("header.csv", "question,answer\n"),
    ("empty.json", "[]"),
])
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert data_error(str(path)) == f"{path}: empty file (no rows)"


def test_file_not_found(tmp_path):
    missing = tmp_path / "nope.jsonl"
    assert data_error(str(missing)) == f"{missing}: file not found"
    assert data_error("./nope") == "./nope: file not found"


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("q\ta\n")
    assert "unsupported file type '.txt'" in data_error(str(path))


def test_invalid_utf8(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"question": "q", "answer": "a"}\n{"question": "\xff", "answer": "a"}\n')
    assert data_error(str(path)).startswith(f"{path}:2: not valid UTF-8")
    csv_path = tmp_path / "d.csv"
    csv_path.write_bytes(b"question,answer\n\xff,a\n")
    assert data_error(str(csv_path)).startswith(f"{csv_path}: not valid UTF-8")


def test_invalid_csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('question,answer\n"fine",a\n"broken"x,b\n')
    assert data_error(str(path)).startswith(f"{path}:3: invalid CSV (")
    path.write_text('question,answer\nq,a\n"never closed,a\nmore\n')
    assert data_error(str(path)) == f"{path}:3: invalid CSV (unexpected end of data)"


def test_task_check_reports_the_line(tmp_path):
    path = write_jsonl(tmp_path / "gsm.jsonl", [
        {"question": "q1", "answer": "1 + 1 = 2\n#### 2"}, {"question": "q2", "answer": "no final number"},
        {"question": "q3", "answer": None},
    ])
    message = data_error(str(path), task="gsm8k")
    assert message.startswith(f"{path}:2: not a valid gsm8k answer (")
    assert len(load_examples(str(path), task="gsm8k", limit=1)) == 1
    assert len(load_examples(str(path), task="plain")) == 3  # any text is a plain answer
    path = write_jsonl(tmp_path / "ok.jsonl", [{"question": "q1", "answer": "2"}, {"question": "q3", "answer": None}])
    assert [e.answer for e in load_examples(str(path), task="gsm8k")] == ["2", None]  # unlabelled rows pass


# --------------------------------------------------------------------------- generator and hub


def test_arith_source_is_the_generator():
    examples = load_examples("arith", "test", limit=7, seed=3)
    assert examples == generate_arith("test", 500, seed=3)[:7]
    assert len(load_examples("arith", "train", limit=20, task="arith")) == 20
    assert "unknown split 'validation'" in data_error("arith", "validation")


def test_hub_without_datasets_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    message = data_error("some-org/some-dataset", "train")
    assert "pip install 'activelora[hub]'" in message
    assert "'some-org/some-dataset' is not a file or folder" in message


def test_hub_errors_and_rows_go_through_the_same_checks(monkeypatch):
    class FakeDatasets:
        @staticmethod
        def load_dataset(name, config, split):
            if name == "missing/ds":
                raise FileNotFoundError("Dataset 'missing/ds' doesn't exist on the Hub\nmore detail")
            assert (name, config, split) == ("org/ds", "main", "test")
            return [{"question": "q1", "answer": True}, {"question": "q2", "answer": False}]

    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets)
    message = data_error("missing/ds", "train")
    assert message == ("missing/ds: cannot load split 'train' from the Hugging Face hub "
                       "(FileNotFoundError: Dataset 'missing/ds' doesn't exist on the Hub)")
    examples = load_examples("org/ds:main", "test", task="boolq")
    assert [e.answer for e in examples] == ["true", "false"]
    assert examples[0].id.startswith("org_ds_main-test-0-")
    assert examples[1].meta["where"] == "org/ds:main[test] row 1"


# --------------------------------------------------------------------------- real files


@pytest.mark.needs_shared
@requires_shared
def test_real_obqa_train_duplicates_get_distinct_stable_ids():
    source = str(SHARED_DATASETS / "OBQA")
    examples = load_examples(source, "train")
    assert len(examples) == 4957
    assert len({e.question for e in examples}) == 4952  # the README's 5 duplicated questions
    ids = [e.id for e in examples]
    assert len(set(ids)) == len(ids)
    assert ids == [e.id for e in load_examples(source, "train")]
    assert ids[:10] == [e.id for e in load_examples(source, "train", limit=10)]
    assert ids[0].startswith("OBQA-train-1-")


@pytest.mark.needs_shared
@requires_shared
@pytest.mark.parametrize("folder, sizes", [("GSM8K", (7473, 1319)), ("BoolQ", (9427, 3270)), ("OBQA", (4957, 500))])
def test_real_folders_load_completely(folder, sizes):
    for split, size in zip(("train", "test"), sizes):
        examples = load_examples(str(SHARED_DATASETS / folder), split)
        assert len(examples) == size
        assert all(e.answer for e in examples)
