"""A SIGKILL during `campaign import` or `campaign next` leaves the campaign as before or as
after, never between. The commands run in a subprocess that is killed at named points (the
test hook ``ACTIVELORA_CAMPAIGN_PAUSE_AT`` makes it wait there) and at random moments."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from activelora.campaign import Campaign
from activelora.campaign.folder import PAUSE_ENV
from activelora.cli import main

from test_campaign import TINY, write_jsonl

CLI = [sys.executable, "-c", "import sys; from activelora.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "ACTIVELORA_CACHE": str(tmp_path / "cache"), "ACTIVELORA_TEST_THREADS": "1",
            "OMP_NUM_THREADS": "1"}


@pytest.fixture
def campaign(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))
    pool = write_jsonl(tmp_path / "prompts.jsonl", [{"id": f"p{i}", "question": f"Question {i}?"} for i in range(10)])
    folder = tmp_path / "camp"
    assert main(["campaign", "init", str(folder), "--pool", str(pool), "--model", str(tiny_model_dir),
                 "--task", "plain", "--strategy", "random", "--batch-size", "3", "--stop-set", "2", *TINY]) == 0
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of the campaign as a reader sees it (after Campaign.open's recovery)."""
    Campaign.open(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def kill_at(argv: list[str], point: str, env: dict[str, str], timeout: float = 300.0, while_paused=None,
            program: list[str] = CLI) -> None:
    """Run the CLI (or another ``program``) until it reports that it waits at ``point``, call
    ``while_paused()``, then SIGKILL it."""
    process = subprocess.Popen(program + argv, env={**env, PAUSE_ENV: point}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    seen = b""
    try:
        while f"paused at {point}".encode() not in seen:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never paused at {point} (exit {process.poll()}): {seen[-2000:]!r}")
            ready, _, _ = select.select([process.stderr], [], [], 1.0)
            if ready:
                seen += os.read(process.stderr.fileno(), 65536)
        if while_paused is not None:
            while_paused()
    finally:
        process.kill()  # SIGKILL
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def test_kill_during_import_before_its_commit(campaign, tmp_path, env):
    answers = write_jsonl(tmp_path / "a.jsonl", [{"id": "p1", "answer": "1"}, {"id": "p2", "skip": True}])
    before = snapshot(campaign)
    kill_at(["campaign", "import", str(campaign), str(answers)], "import:before-commit", env)
    assert snapshot(campaign) == before
    assert main(["campaign", "import", str(campaign), str(answers)]) == 0  # and it works afterwards
    assert list(Campaign.open(campaign).state.labels) == ["p1"]


def test_kill_during_import_right_after_its_commit(campaign, tmp_path, env):
    answers = write_jsonl(tmp_path / "a.jsonl", [{"id": "p1", "answer": "1"}, {"id": "p2", "skip": True}])
    kill_at(["campaign", "import", str(campaign), str(answers)], "commit:before-publish", env)
    state = Campaign.open(campaign).state
    assert list(state.labels) == ["p1"] and list(state.skipped) == ["p2"]


def test_import_killed_at_random_moments_is_before_or_after(campaign, tmp_path, env):
    rows = [{"id": f"p{i}", "answer": str(i)} for i in range(10)]
    answers = write_jsonl(tmp_path / "a.jsonl", rows)
    rng = random.Random(0)
    outcomes = set()
    for _ in range(6):
        before = snapshot(campaign)
        process = subprocess.Popen(CLI + ["campaign", "import", str(campaign), str(answers)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 3.0))
        process.kill()
        process.wait()
        labels = Campaign.open(campaign).state.labels
        if labels:
            assert {i: r["answer"] for i, r in labels.items()} == {r["id"]: r["answer"] for r in rows}
            outcomes.add("after")
            break
        assert snapshot(campaign) == before
        outcomes.add("before")
    assert outcomes  # each kill left one of the two states


def test_kill_during_next_before_its_commit(campaign, tmp_path, env, tiny_model_dir):
    before = snapshot(campaign)

    def reader_meanwhile():
        # A reader while `next` works (holding the lock) sees the committed state and leaves
        # the staged files of the running command alone.
        assert Campaign.open(campaign).state.rounds == []
        assert (campaign / ".staging" / "round.json").is_file()

    kill_at(["campaign", "next", str(campaign), "--quiet"], "next:before-commit", env, while_paused=reader_meanwhile)
    assert (campaign / ".staging").exists()  # the interrupted round's files, not yet real
    assert snapshot(campaign) == before  # opening drops them
    assert not (campaign / ".staging").exists()
    assert main(["campaign", "next", str(campaign), "--quiet"]) == 0
    assert len(Campaign.open(campaign).state.rounds) == 1 and (campaign / "batches" / "batch-0.jsonl").is_file()


def test_kill_during_next_after_its_commit(campaign, tmp_path, env):
    kill_at(["campaign", "next", str(campaign), "--quiet"], "commit:before-publish", env)
    assert not (campaign / "batches" / "batch-0.jsonl").exists()  # committed, not yet moved into place
    opened = Campaign.open(campaign)  # finishes the round
    (record,) = opened.state.rounds
    batch = [json.loads(line)["id"] for line in (campaign / "batches" / "batch-0.jsonl").read_text().splitlines()]
    assert batch == record["ids"] and len(batch) == 3
    assert (campaign / "batches" / "batch-0.csv").is_file() and (campaign / "rounds" / "round-0" / "round.json").is_file()
    assert not (campaign / ".staging").exists()
