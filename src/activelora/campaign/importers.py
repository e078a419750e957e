"""Reading answers back: a JSONL or CSV answer file, or a Label Studio JSON export.

Everything is checked before anything is applied, so an import is all or nothing: a bad row
raises one :class:`DataError` naming the file and line, and the campaign is untouched.

Answer files (``.jsonl`` or ``.csv``; other columns, e.g. ``question`` and ``suggestion`` of a
batch file, are ignored)::

    {"id": "q-17", "answer": "42"}
    {"id": "q-18", "skip": true}
    {"id": "q-19", "answer": "7", "seconds": 31.5}     # optional: the annotator's time

A ``.json`` file holding a list of Label Studio tasks (``data``, ``annotations``) is read as
a Label Studio export; see :func:`rows_from_labelstudio` for the policy on several annotations.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..data.example import Example
from ..data.loaders import _read_file as read_rows  # the loaders' file reader: file:line errors
from ..errors import DataError
from .state import AnswerRow, Conflict, same_answer

_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


@dataclass
class AnswerSheet:
    """Validated answers from one source, ready for :meth:`CampaignState.apply`."""

    source: str
    rows: list[AnswerRow]
    sha256: str | None = None
    annotator_conflicts: list[Conflict] = field(default_factory=list)
    pending: int = 0  # Label Studio tasks with no annotation yet


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_answers(path: str | Path, *, pool: Mapping[str, Example], task, campaign_id: str,
                 project_id: int | None = None) -> AnswerSheet:
    """Read and validate an answer file or a Label Studio export file (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() not in (".jsonl", ".csv", ".json"):
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl or .csv answers, "
                        "or a Label Studio .json export")
    items = list(read_rows(path))
    if not items:
        raise DataError(f"{path}: empty file (no rows)")
    if path.suffix.lower() == ".json" and all("annotations" in row or "data" in row for _, _, row in items):
        sheet = rows_from_labelstudio([row for _, _, row in items], pool=pool, task=task,
                                      campaign_id=campaign_id, project_id=project_id, source=str(path))
    else:
        rows = [_answer_row(row, where) for where, _, row in items]
        sheet = AnswerSheet(source=str(path), rows=check_rows(rows, pool=pool, task=task))
    sheet.sha256 = file_sha256(path)
    return sheet


def sheet_from_records(records: Iterable[Mapping[str, Any]], *, pool: Mapping[str, Example], task,
                       source: str = "records") -> AnswerSheet:
    """Validate answers given as rows in memory (the answer file's fields: ``id``, ``answer``
    or ``skip``, optional ``seconds``), with the same checks as a file; ``records[i]`` in
    an error names the row."""
    rows = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise DataError(f"{source}[{i}]: expected a mapping with 'id' and 'answer' (or 'skip'), "
                            f"got {type(record).__name__}")
        rows.append(_answer_row(dict(record), f"{source}[{i}]"))
    if not rows:
        raise DataError(f"{source}: no answers given")
    return AnswerSheet(source=source, rows=check_rows(rows, pool=pool, task=task))


def _answer_row(row: dict[str, Any], where: str) -> AnswerRow:
    if "id" not in row or row["id"] is None or not str(row["id"]).strip():
        raise DataError(f"{where}: missing field 'id' (fields: {', '.join(map(str, row)) or 'none'})")
    if isinstance(row["id"], (dict, list, bool)):
        raise DataError(f"{where}: field 'id' must be a string or a number, got {type(row['id']).__name__}")
    example_id = str(row["id"]).strip()
    skip = _flag(row.get("skip"), where)
    seconds = _seconds(row.get("seconds"), where)
    answer = row.get("answer")
    if skip:
        return AnswerRow(example_id, None, where, seconds)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise DataError(f"{where}: empty answer for id {example_id!r}; write the answer, set skip to true, "
                        "or delete the row to leave it pending")
    if isinstance(answer, bool):
        answer = "true" if answer else "false"
    elif isinstance(answer, (int, float)):
        answer = str(answer)
    elif not isinstance(answer, str):
        raise DataError(f"{where}: field 'answer' must be a string, got {type(answer).__name__}")
    return AnswerRow(example_id, answer, where, seconds)


def _flag(value: Any, where: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(f"{where}: field 'skip' must be true or false, got {value!r}")


def _seconds(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: field 'seconds' must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise DataError(f"{where}: field 'seconds' must be a number >= 0, got {value!r}")
    return seconds


def check_rows(rows: Iterable[AnswerRow], *, pool: Mapping[str, Example], task) -> list[AnswerRow]:
    """Refuse unknown ids, one id with two different answers, and answers the task cannot
    read; drop exact repeats. Returns the rows to apply, in file order."""
    first: dict[str, AnswerRow] = {}
    kept: list[AnswerRow] = []
    for row in rows:
        if row.id not in pool:
            raise DataError(f"{row.where}: unknown id {row.id!r} (not in the campaign's pool)")
        if row.id in first:
            earlier = first[row.id]
            same = (earlier.answer is None and row.answer is None) or (
                earlier.answer is not None and row.answer is not None and same_answer(earlier.answer, row.answer))
            if not same:
                raise DataError(f"{row.where}: id {row.id!r} appears twice with different answers "
                                f"({earlier.answer!r} at {earlier.where}, {row.answer!r} here)")
            continue
        if row.answer is not None:
            _check_readable(row, pool[row.id], task)
        first[row.id] = row
        kept.append(row)
    return kept


def _check_readable(row: AnswerRow, example: Example, task) -> None:
    try:
        task.gold(Example(id=example.id, question=example.question, answer=row.answer))
    except DataError:
        raise DataError(f"{row.where}: answer {row.answer!r} for id {row.id!r} is not a valid "
                        f"{task.name} answer") from None


# --------------------------------------------------------------------------- Label Studio

CAMPAIGN_FIELD = "activelora_campaign"  # task data field naming the campaign a task belongs to
ROUND_FIELD = "activelora_round"
ANSWER_CONTROL = "answer"  # name of the labelling config's answer control


def annotation_answer(annotation: Mapping[str, Any], where: str) -> str | None:
    """The answer in one annotation's ``result``: the ``answer`` text area's text (lines joined
    with newlines) or the ``answer`` choice. None when the annotator left it empty."""
    results = [r for r in annotation.get("result") or [] if isinstance(r, dict)
               and r.get("from_name") == ANSWER_CONTROL]
    if not results:
        others = sorted({str(r.get("from_name")) for r in annotation.get("result") or [] if isinstance(r, dict)})
        if others:
            raise DataError(f"{where}: no result from a control named {ANSWER_CONTROL!r} (found: "
                            f"{', '.join(others)}); the project's labelling config is not one this campaign can read")
        return None
    value = results[-1].get("value") or {}
    if "text" in value:
        text = value["text"]
        text = "\n".join(map(str, text)) if isinstance(text, list) else str(text)
    elif "choices" in value and value["choices"]:
        text = str(value["choices"][0])
    else:
        raise DataError(f"{where}: the {ANSWER_CONTROL!r} result holds neither text nor a choice "
                        f"(keys: {', '.join(value) or 'none'}); the labelling config is not one this campaign can read")
    return text if text.strip() else None


def _order_key(annotation: Mapping[str, Any]) -> tuple:
    return (str(annotation.get("updated_at") or annotation.get("created_at") or ""), annotation.get("id") or 0)


def rows_from_labelstudio(tasks: list[Any], *, pool: Mapping[str, Example], task, campaign_id: str,
                          project_id: int | None, source: str) -> AnswerSheet:
    """Answers from a Label Studio JSON export (a list of tasks).

    Policy: cancelled ("skipped" in the UI) annotations count as skips; among the submitted
    ones the most recently updated wins, and when submitted annotations disagree the
    disagreement is listed as a conflict. A task whose annotations were all cancelled is a
    skip. ``lead_time`` (seconds) of every annotation of a task, cancelled ones included, adds
    up to the example's annotation time. Tasks with no annotation stay pending. Every task
    must carry this campaign's id in its data: an export of another project is refused.
    """
    rows: list[AnswerRow] = []
    conflicts: list[Conflict] = []
    pending = 0
    for index, item in enumerate(tasks, 1):
        where = f"{source}: task {item.get('id', index) if isinstance(item, dict) else index}"
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            raise DataError(f"{where}: not a Label Studio task (no 'data' object)")
        data = item["data"]
        if data.get(CAMPAIGN_FIELD) != campaign_id or (
                project_id is not None and item.get("project") not in (None, project_id)):
            raise DataError(f"{where}: not a task of this campaign's Label Studio project "
                            f"(an export from another project?)")
        example_id = str(data.get("id"))
        annotations = [a for a in item.get("annotations") or [] if isinstance(a, dict)]
        if not annotations:
            pending += 1
            continue
        times = [a.get("lead_time") for a in annotations if isinstance(a.get("lead_time"), (int, float))]
        seconds = float(sum(times)) if times else None
        submitted = sorted((a for a in annotations if not a.get("was_cancelled")), key=_order_key)
        if not submitted:
            rows.append(AnswerRow(example_id, None, where, seconds))
            continue
        answers = [(annotation_answer(a, f"{where} annotation {a.get('id')}"), a) for a in submitted]
        empty = [a for text, a in answers if text is None]
        if empty:
            raise DataError(f"{where} annotation {empty[0].get('id')}: empty answer for id {example_id!r} "
                            "(submit an answer, or skip the task in Label Studio)")
        chosen, chosen_annotation = answers[-1]
        for text, annotation in answers[:-1]:
            if not same_answer(text, chosen):
                conflicts.append(Conflict(example_id, chosen, text,
                                          f"{where}, annotations {annotation.get('id')} and "
                                          f"{chosen_annotation.get('id')}", "annotators"))
        rows.append(AnswerRow(example_id, chosen, where, seconds))
    checked = check_rows(rows, pool=pool, task=task)
    return AnswerSheet(source=source, rows=checked, annotator_conflicts=conflicts, pending=pending)


def read_export_json(payload: bytes, where: str) -> list[Any]:
    """A Label Studio export body (JSON list of tasks)."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{where}: the export is not JSON ({exc})") from None
    if not isinstance(data, list):
        raise DataError(f"{where}: the export is not a list of tasks")
    return data
