"""Batch composition against the pool: metrics per round, the report's tables and plot."""

from __future__ import annotations

import json
import random

import pytest

from activelora.cli import main
from activelora.probes.composition import batch_composition, composition_tables, queried_means
from activelora.data.example import Example


def make_pool(n=40, seed=0):
    rng = random.Random(seed)
    families = {"add_sub": 1, "multiply": 1, "change": 2, "budget": 4}
    pool = []
    for i in range(n):
        family = rng.choice(sorted(families))
        pool.append(Example(f"p{i}", f"q{i}", "x " * rng.randint(1, 9),
                            meta={"family": family, "steps": families[family], "where": f"file:{i}"}))
    return pool


def length(ex):
    return None if ex.answer is None else len(ex.answer.split())


def test_batch_composition_against_a_plain_count():
    pool = make_pool()
    batch = pool[:7]
    row = batch_composition(batch, pool, length)
    assert row["batch_n"] == 7
    assert row["batch_answer_tokens"] == pytest.approx(sum(length(e) for e in batch) / 7)
    assert row["pool_answer_tokens"] == pytest.approx(sum(length(e) for e in pool) / 40)
    for group, name in ((batch, "batch"), (pool, "pool")):
        for steps in (1, 2, 4):
            expected = sum(e.meta["steps"] == steps for e in group) / len(group)
            assert row[f"{name}_share_steps={steps}"] == pytest.approx(expected)
        for family in ("add_sub", "multiply", "change", "budget"):
            expected = sum(e.meta["family"] == family for e in group) / len(group)
            assert row[f"{name}_share_family={family}"] == pytest.approx(expected)
        assert row[f"{name}_mean_steps"] == pytest.approx(sum(e.meta["steps"] for e in group) / len(group))
    assert "batch_mean_family" not in row  # not numeric
    assert not any("where" in key for key in row)  # one value per example: no composition
    # Shares of one key sum to one.
    assert sum(v for k, v in row.items() if k.startswith("batch_share_family=")) == pytest.approx(1.0)


def test_unknown_answers_and_missing_meta():
    pool = [Example("a", "q", None), Example("b", "q", None, meta={"k": "x"})]
    row = batch_composition([], pool, length)
    assert row["pool_answer_tokens"] is None and row["batch_answer_tokens"] is None
    assert row["pool_share_k=x"] == 0.5 and row["batch_share_k=x"] is None


def write_run(root, strategy, seed, batches, pool):
    folder = root / strategy / f"seed-{seed}"
    folder.mkdir(parents=True)
    rows, taken, labeled = [], set(), 0
    for r, batch in enumerate(batches):
        rest = [e for e in pool if e.id not in taken]
        labeled += len(batch)
        rows.append({"round": r, "labeled": labeled, "accuracy": 0.1 * r, "strategy": strategy, "seed": seed,
                     **batch_composition(batch, rest, length)})
        taken |= {e.id for e in batch}
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_report_tables_and_plot(tmp_path):
    pool = make_pool()
    one_step = [e for e in pool if e.meta["steps"] == 1]
    long = [e for e in pool if e.meta["steps"] == 4]
    write_run(tmp_path, "random", 0, [pool[:4], pool[4:8]], pool)
    write_run(tmp_path, "entropy", 0, [pool[:4], [e for e in long if e not in pool[:4]][:4]], pool)
    write_run(tmp_path, "mid", 0, [pool[:4], [e for e in one_step if e not in pool[:4]][:4]], pool)
    assert main(["compare", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Batch composition" in report and "Share of each `steps`" in report
    assert (tmp_path / "composition.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "summary.json").read_text())["composition"]
    assert summary["entropy"]["batch_share_steps=4"] == 1.0
    assert summary["mid"]["batch_share_steps=1"] == 1.0
    assert summary["entropy"]["batches"] == 1  # the query round only; round 0 is the shared initial set
    pool_one_step = sum(e.meta["steps"] == 1 for e in pool) / len(pool)
    assert summary["random"]["pool_share_steps=1"] == pytest.approx(pool_one_step)


def test_queried_means_weight_by_batch_size():
    rows = [{"round": 1, "batch_n": 1, "batch_answer_tokens": 10.0},
            {"round": 2, "batch_n": 3, "batch_answer_tokens": 2.0},
            {"round": 0, "batch_n": 5, "batch_answer_tokens": 100.0, "pool_answer_tokens": 7.0}]
    means = queried_means({"s": {0: rows}})["s"]
    assert means["batch_answer_tokens"] == pytest.approx((10 + 3 * 2) / 4)
    assert means["pool_answer_tokens"] == 7.0 and means["labels"] == 4
    assert composition_tables({}) == ""
