"""Files written whole or not at all, and a JSON-lines log that survives a crash.

Every folder the package writes (a run, a campaign, a command's output) goes through these:
a reader sees either the old file or the complete new one, never half of it, so a process
killed at any moment (even SIGKILL) leaves nothing that a resume would misread. Used by
:mod:`activelora.run.rundir` for ``state.json`` and by everything else that writes results.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from .errors import RunStateError


def fsync_dir(folder: Path) -> None:
    """Make the renames and creations in ``folder`` durable (after an ``os.replace`` into it).

    Not possible on every OS or filesystem (e.g. Windows): there it does nothing.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str | Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Write via a temp file in the same folder, flush, fsync, ``os.replace``, fsync the folder.

    Readers see either the old file or the complete new one; if ``write`` fails midway the
    old file is untouched and the temp file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably."""
    _atomic_write(path, lambda handle: handle.write(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (e.g. an ``np.save`` buffer)."""
    _atomic_write(path, lambda handle: handle.write(data), binary=True)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Replace ``path`` with ``obj`` as indented JSON atomically and durably.

    NaN/inf are refused (``allow_nan=False``): they are not JSON and other readers choke.
    """

    def write(handle: TextIO) -> None:
        json.dump(obj, handle, indent=1, allow_nan=False, ensure_ascii=False)
        handle.write("\n")

    _atomic_write(path, write)


def append_jsonl(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append ``row`` as one JSON line, then flush and fsync.

    The line is serialised before the file is opened, so a bad row writes nothing. A crash
    mid-write can leave a torn last line; :func:`read_jsonl` drops it.
    """
    line = json.dumps(row, allow_nan=False, ensure_ascii=False) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file ([] if absent). A torn final line (no newline, invalid JSON:
    a crash during :func:`append_jsonl`) is dropped; a bad line elsewhere raises RunStateError."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # last piece, no newline after it: torn by a crash
                break
            raise RunStateError(f"{path}:{number}: not valid JSON") from None
    return rows
