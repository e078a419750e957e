"""Loading examples from the embedded generator, local files, or the Hugging Face hub.

``load_examples(source, split)`` reads:

* ``"arith"`` and ``"mix"``: the embedded generators (:func:`activelora.data.arith.generate_arith`,
  :func:`activelora.data.mix.generate_mix`);
* a ``.jsonl``/``.json`` (JSON lines; a ``.json`` holding one JSON array works too) or
  ``.csv`` file, whatever ``split`` says;
* a folder: its ``{split}.jsonl`` (or ``.json``, ``.csv``);
* anything else: a Hugging Face ``datasets`` name (``name`` or ``name:config``), which needs
  the optional extra ``pip install 'activelora[hub]'``.

Ids are the ``id_field`` value when a row has one, else ``{stem}-{line}-{sha1[:8]}`` from the
position and the content, so duplicated questions stay distinct and ids do not move when a
file is re-read. Every problem with a file is one :class:`DataError` line naming the file and
the line. A row whose answer is ``null`` (or an empty CSV cell) is unlabelled (``answer=None``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError
from .arith import generate_arith
from .example import Example
from .mix import generate_mix
from .tasks import get_task

SUFFIXES = (".jsonl", ".json", ".csv")
GENERATORS = {"arith": generate_arith, "mix": generate_mix}  # embedded sources, by name
HUB_HINT = "pip install 'activelora[hub]'"

_Row = tuple[str, int, dict[str, Any]]  # (where, line or row number, fields)


def load_examples(
    source: str,
    split: str = "train",
    *,
    task: str | None = None,
    limit: int | None = None,
    question_field: str = "question",
    answer_field: str | None = "answer",
    id_field: str | None = "id",
    seed: int = 0,
) -> list[Example]:
    """The first ``limit`` examples of ``split`` of ``source`` (see the module docstring).

    ``task``: a task name; when given, every labelled example must have a gold answer that
    task can read (e.g. GSM8K's ``#### N``), checked here so that a bad row is reported with
    its file and line rather than in the middle of a run. ``answer_field=None`` reads an
    unlabelled pool; ``id_field=None`` always derives ids. ``seed`` is the embedded generators'.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    if not question_field:
        raise DataError("question_field must name a field")
    checker = get_task(task) if task is not None else None

    if source in GENERATORS:
        examples = GENERATORS[source](split, n=limit, seed=seed)
        wheres = [f"{source}[{split}] row {i}" for i in range(len(examples))]
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            path, prefix = _split_file(path, split), f"{path.name}-{split}"
            rows = _read_file(path)
        elif path.is_file():
            prefix = path.stem
            rows = _read_file(path)
        elif _looks_like_path(source):
            raise DataError(f"{source}: file not found")
        else:
            prefix = re.sub(r"[^\w.]+", "_", source) + f"-{split}"
            rows = _read_hub(source, split)
        wheres, examples = _build(rows, prefix, limit, question_field, answer_field, id_field,
                                  empty_is_null=path.suffix.lower() == ".csv")
        if not examples:
            empty = f"{path}: empty file (no rows)" if path.exists() else f"{source}[{split}]: no rows"
            raise DataError(empty)

    if checker is not None:
        for where, example in zip(wheres, examples):
            if example.answer is not None:
                try:
                    checker.gold(example)
                except DataError as exc:
                    raise DataError(f"{where}: not a valid {checker.name} answer ({exc})") from None
    return examples


# --------------------------------------------------------------------------- sources


def _looks_like_path(source: str) -> bool:
    return (
        Path(source).suffix.lower() in SUFFIXES
        or source.startswith((".", "/", "~", "\\"))
        or "\\" in source
    )


def _split_file(folder: Path, split: str) -> Path:
    for suffix in SUFFIXES:
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    found = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    raise DataError(
        f"{folder}: no {split}.jsonl, {split}.json or {split}.csv for split {split!r}"
        f" (found: {', '.join(found) or 'no data files'})"
    )


def _read_file(path: Path) -> Iterator[_Row]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".jsonl", ".json"):
        return _read_json(path)
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .json or .csv")


def _read_json(path: Path) -> Iterator[_Row]:
    """JSON lines (blank lines skipped); a ``.json`` file that starts with ``[`` is one array."""
    with path.open("rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if path.suffix.lower() == ".json" and head.startswith("["):
        yield from _read_json_array(path)
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{where}: not valid UTF-8 (byte {exc.start} of the line)") from None
            if number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
            yield where, number, row


def _read_json_array(path: Path) -> Iterator[_Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, list):  # pragma: no cover - guarded by the "[" check
        raise DataError(f"{path}: expected JSON lines or one JSON array")
    for index, row in enumerate(data, 1):
        where = f"{path}: item {index}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield where, index, row


def _read_csv(path: Path) -> Iterator[_Row]:
    """A CSV file with a header row. A row is reported at the line where it ends (a quoted
    field may span lines); a malformed row at the line where it starts."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, strict=True)
            start = 1
            try:
                if reader.fieldnames is None:
                    return
                start = reader.reader.line_num + 1
                for row in reader:
                    start = reader.reader.line_num + 1
                    fields = {k: v for k, v in row.items() if k is not None}
                    missing = [k for k, v in fields.items() if v is None]  # a short row
                    for key in missing:
                        del fields[key]
                    yield f"{path}:{reader.line_num}", reader.line_num, fields
            except csv.Error as exc:
                raise DataError(f"{path}:{start}: invalid CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


def _read_hub(source: str, split: str) -> Iterator[_Row]:
    try:
        import datasets  # optional extra
    except ImportError:
        raise DataError(
            f"{source!r} is not a file or folder, and reading it from the Hugging Face hub needs "
            f"the optional 'datasets' package: {HUB_HINT}"
        ) from None
    name, _, config = source.partition(":")
    try:
        dataset = datasets.load_dataset(name, config or None, split=split)
    except Exception as exc:  # noqa: BLE001 - any hub failure is a data problem for the user
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(
            f"{source}: cannot load split {split!r} from the Hugging Face hub "
            f"({type(exc).__name__}: {first_line})"
        ) from None
    for index, row in enumerate(dataset):
        yield f"{source}[{split}] row {index}", index, dict(row)


# --------------------------------------------------------------------------- rows


def _build(
    rows: Iterator[_Row],
    prefix: str,
    limit: int | None,
    question_field: str,
    answer_field: str | None,
    id_field: str | None,
    *,
    empty_is_null: bool,
) -> tuple[list[str], list[Example]]:
    wheres: list[str] = []
    examples: list[Example] = []
    first_seen: dict[str, str] = {}
    for where, number, row in rows:
        if limit is not None and len(examples) >= limit:
            break
        example = _to_example(row, where, prefix, number, question_field, answer_field, id_field,
                              empty_is_null=empty_is_null)
        if example.id in first_seen:
            raise DataError(f"{where}: duplicate id {example.id!r} (first at {first_seen[example.id]})")
        first_seen[example.id] = where
        wheres.append(where)
        examples.append(example)
    return wheres, examples


def _fields(row: dict[str, Any]) -> str:
    return ", ".join(str(k) for k in row) or "none"


def _to_example(
    row: dict[str, Any],
    where: str,
    prefix: str,
    number: int,
    question_field: str,
    answer_field: str | None,
    id_field: str | None,
    *,
    empty_is_null: bool,
) -> Example:
    if question_field not in row:
        raise DataError(f"{where}: missing field {question_field!r} (fields: {_fields(row)})")
    question = row[question_field]
    if not isinstance(question, str):
        raise DataError(f"{where}: field {question_field!r} must be a string, got {type(question).__name__}")
    if not question.strip():
        raise DataError(f"{where}: field {question_field!r} is empty")

    answer: str | None = None
    if answer_field is not None:
        if answer_field not in row:
            raise DataError(
                f"{where}: missing field {answer_field!r} (fields: {_fields(row)});"
                f" write null for an unlabelled row"
            )
        answer = _answer(row[answer_field], where, answer_field, empty_is_null)

    raw_id = row.get(id_field) if id_field is not None else None
    if isinstance(raw_id, (dict, list)):
        raise DataError(
            f"{where}: field {id_field!r} must be a string or a number, got {type(raw_id).__name__}"
        )
    if raw_id is not None and str(raw_id).strip():
        example_id = str(raw_id).strip()
    else:
        digest = hashlib.sha1(f"{question}\x1f{answer or ''}".encode("utf-8")).hexdigest()[:8]
        example_id = f"{prefix}-{number}-{digest}"
    return Example(id=example_id, question=question, answer=answer, meta={"where": where})


def _answer(value: Any, where: str, field: str, empty_is_null: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # e.g. BoolQ on the hub
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        if empty_is_null:
            return None
        raise DataError(f"{where}: field {field!r} is empty; write null for an unlabelled row")
    return value
