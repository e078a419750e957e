"""Every code block of the documentation's "Python API" section runs, in order, on the tiny model.

The section is read from README.md when it has one (``## Python API``), else from
docs/api.md. The blocks run as a reader would run them, in one working folder:

- a block whose first line is ``# <file name>`` is that file's content: it is written there
  (a YAML config, a plugin module), not executed;
- ``python`` blocks run one after another in one namespace, like cells of a notebook, with
  the working folder on ``sys.path`` (as when Python is started there);
- ``bash`` blocks hold ``activelora`` commands; each runs through ``activelora.cli.main`` with
  ``$VARIABLES`` expanded and must exit 0.

``ACTIVELORA_MODEL`` points at the tiny LLaMA, which the blocks read as their model.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from activelora.cli import main

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
FILE_HEADER = re.compile(r"^# ([\w.-]+\.(?:py|yaml|yml|jsonl|json|csv))\s*$")


def api_section() -> tuple[str, Path]:
    """The "Python API" section's text and where it came from (README.md first)."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Python API\s*$(.*?)(?=^## |\Z)", readme, re.S | re.M)
    if match:
        return match.group(1), ROOT / "README.md"
    return (ROOT / "docs" / "api.md").read_text(), ROOT / "docs" / "api.md"


def blocks(text: str) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in FENCE.findall(text)]


def commands(bash: str) -> list[str]:
    """The shell commands of a bash block (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\s*\\\n\s*", " ", bash)
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def test_the_block_reader_splits_files_code_and_commands():
    text = ("intro\n```yaml\n# a.yaml\nx: 1\n```\n```python\nprint(1)\n```\n"
            "```bash\nactivelora run \\\n    --quiet  # why\n```\n")
    found = blocks(text)
    assert [lang for lang, _ in found] == ["yaml", "python", "bash"]
    assert FILE_HEADER.match(found[0][1].splitlines()[0]).group(1) == "a.yaml"
    assert commands(found[2][1]) == ["activelora run --quiet"]


@pytest.fixture
def reader_folder(tmp_path, monkeypatch, tiny_model_dir):
    """A fresh working folder, the tiny model as ACTIVELORA_MODEL, and afterwards the strategy
    registry and module cache as they were (a plugin the docs register must not leak)."""
    from activelora.strategies import STRATEGIES

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTIVELORA_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path))
    registered, modules = set(STRATEGIES.names()), set(sys.modules)
    yield tmp_path
    for name in set(STRATEGIES.names()) - registered:
        del STRATEGIES._items[name]  # the registry has no public removal: tests only
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_every_block_of_the_python_api_section_runs(reader_folder, capsys):
    text, source = api_section()
    found = blocks(text)
    code = "\n".join(body for lang, body in found if lang == "python")
    # The section shows all four things it promises.
    for promised in ("Experiment", "Campaign", "score_examples", "register_strategy", "--plugin"):
        assert promised in text, f"{source}: the Python API section does not show {promised}"
    assert "--plugin" in "".join(body for lang, body in found if lang == "bash")
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for i, (lang, body) in enumerate(found):
        first = body.splitlines()[0] if body.strip() else ""
        header = FILE_HEADER.match(first)
        where = f"{source.name} block {i + 1} ({lang})"
        if header:
            (reader_folder / header.group(1)).write_text(body)
        elif lang == "python":
            exec(compile(body, where, "exec"), namespace)  # noqa: S102 - the documentation's own code
        elif lang == "bash":
            for command in commands(body):
                argv = shlex.split(os.path.expandvars(command))
                assert argv[0] == "activelora", f"{where}: only activelora commands can run here: {command}"
                assert main(argv[1:]) == 0, f"{where}: {command} failed: {capsys.readouterr().err}"
        else:
            pytest.fail(f"{where}: a {lang} block that is neither a file nor code to run")
        ran += 1
    assert ran == len(found) >= 6 and code
    out = capsys.readouterr().out
    # What the blocks print comes from real runs: the custom strategy ran and was reported.
    assert "AULC" in out and "labels exported" in out
    assert (reader_folder / "runs" / "mine" / "disagreement" / "seed-0" / "metrics.jsonl").is_file()
    assert (reader_folder / "labels.jsonl").read_text().count("\n") == 4
