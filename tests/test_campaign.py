"""`activelora campaign`: the file path end to end on a tiny LLaMA, answers in and out, and the
rules that keep every label: all-or-nothing imports, conflicts, --replace with history,
idempotent re-imports, one-line errors with exit code 2 and no change."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from activelora.campaign import Campaign
from activelora.cli import main

TINY = ["--set", "train.epochs=1", "--set", "train.batch_size=4", "--set", "eval.max_new_tokens=4",
        "--set", "score.max_new_tokens=4", "--set", "score.batch_size=8", "--set", "strategy.mc_samples=2",
        "--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]"]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def pool_file(tmp_path):
    return write_jsonl(tmp_path / "prompts.jsonl",
                       [{"id": f"p{i}", "question": f"What is {i} plus {i + 1}?"} for i in range(12)])


@pytest.fixture
def dev_file(tmp_path):
    return write_jsonl(tmp_path / "dev.jsonl",
                       [{"id": f"d{i}", "question": f"What is {i} times 2?", "answer": str(2 * i)} for i in range(3)])


def init(tmp_path, pool_file, model, *extra, name="camp") -> Path:
    folder = tmp_path / name
    assert main(["campaign", "init", str(folder), "--pool", str(pool_file), "--model", str(model),
                 "--task", "plain", "--batch-size", "4", "--stop-set", "4", *TINY, *extra]) == 0
    return folder


def state_bytes(folder: Path) -> bytes:
    return (folder / "state.json").read_bytes()


def batch_ids(folder: Path, n: int) -> list[str]:
    return [json.loads(line)["id"] for line in (folder / "batches" / f"batch-{n}.jsonl").read_text().splitlines()]


def run_next(folder: Path) -> int:
    return main(["campaign", "next", str(folder), "--quiet"])


# --------------------------------------------------------------------------- the round trip


def test_file_round_trip_on_tiny_model(tmp_path, pool_file, dev_file, tiny_model_dir, capsys):
    # STAR from its first query (no cold start), so that the second batch carries its scores.
    folder = init(tmp_path, pool_file, tiny_model_dir, "--dev", str(dev_file), "--strategy", "star",
                  "--set", "strategy.cold_start_rounds=0")
    assert run_next(folder) == 0
    out = capsys.readouterr().out
    assert "batch 0: 4 examples" in out and f"campaign import {folder}" in out

    rows = [json.loads(line) for line in (folder / "batches" / "batch-0.jsonl").read_text().splitlines()]
    assert [set(r) for r in rows] == [{"id", "question", "suggestion", "score"}] * 4
    pool = {json.loads(line)["id"]: json.loads(line)["question"] for line in pool_file.read_text().splitlines()}
    assert all(pool[r["id"]] == r["question"] for r in rows)
    with (folder / "batches" / "batch-0.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    assert [r["suggestion"] for r in table] == [r["suggestion"] for r in rows]

    # The annotator fills in the CSV: three answers and one skip.
    for row, answer in zip(table, ["a1", "a2", "a3", ""]):
        row["answer"], row["skip"] = answer, "" if answer else "true"
    answers = tmp_path / "answers-0.csv"
    with answers.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    assert main(["campaign", "import", str(folder), str(answers)]) == 0

    assert run_next(folder) == 0
    campaign = Campaign.open(folder)
    first, second = campaign.state.rounds
    assert first["trained_on"] == 0 and second["trained_on"] == 3
    assert first["initial"] and not second["initial"] and second["strategy"] == "star"
    assert second["lambda"] is not None and all(s is not None for s in second["scores"])
    assert not set(batch_ids(folder, 1)) & set(batch_ids(folder, 0))
    assert (folder / "rounds" / "round-1" / "adapter" / "adapter_model.safetensors").is_file()
    assert second["dev_accuracy"] is not None and second["stop_kappa"] is not None
    assert len(second["stop_answers"]) == 4

    out_file = tmp_path / "labels.jsonl"
    assert main(["campaign", "export", str(folder), "--out", str(out_file)]) == 0
    exported = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [set(r) for r in exported] == [{"id", "question", "answer"}] * 3
    assert {r["id"]: r["answer"] for r in exported} == {table[i]["id"]: f"a{i + 1}" for i in range(3)}
    assert all(pool[r["id"]] == r["question"] for r in exported)

    capsys.readouterr()
    assert main(["campaign", "status", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["labelled"], info["skipped"], info["pending"], info["asked"]) == (3, 1, 4, 8)
    assert [r["trained_on"] for r in info["rounds"]] == [0, 3]
    assert info["latest_adapter"].endswith("round-1/adapter")


def test_a_cold_start_round_scores_nothing_and_asks_what_random_asks(tmp_path, pool_file, tiny_model_dir,
                                                                       monkeypatch):
    import activelora.campaign.round as campaign_round

    scored = []
    original = campaign_round.strategy_inputs
    monkeypatch.setattr(campaign_round, "strategy_inputs", lambda *a, **k: scored.append(k["strategy_name"]) or original(*a, **k))
    folders = {name: init(tmp_path, pool_file, tiny_model_dir, "--strategy", name, "--set",
                          "strategy.cold_start_rounds=1", name=name) for name in ("star", "random")}
    for folder in folders.values():
        assert run_next(folder) == 0
        write_jsonl(tmp_path / "first.jsonl", [{"id": i, "answer": "1"} for i in batch_ids(folder, 0)])
        assert main(["campaign", "import", str(folder), str(tmp_path / "first.jsonl")]) == 0
        assert run_next(folder) == 0
    assert "star" not in scored  # its first query after the initial batch is the cold start
    assert batch_ids(folders["star"], 1) == batch_ids(folders["random"], 1)
    rows = [json.loads(line) for line in (folders["star"] / "batches" / "batch-1.jsonl").read_text().splitlines()]
    assert [r["score"] for r in rows] == [None] * 4


def test_partial_batch_stays_pending_and_is_not_queried_again(tmp_path, pool_file, tiny_model_dir):
    folder = init(tmp_path, pool_file, tiny_model_dir, "--strategy", "random")
    assert run_next(folder) == 0
    first = batch_ids(folder, 0)
    write_jsonl(tmp_path / "half.jsonl", [{"id": first[0], "answer": "x"}])
    assert main(["campaign", "import", str(folder), str(tmp_path / "half.jsonl")]) == 0
    assert run_next(folder) == 0
    assert run_next(folder) == 0  # no new labels: still nothing asked twice
    campaign = Campaign.open(folder)
    asked = campaign.state.asked_ids()
    assert len(asked) == len(set(asked)) == 12
    assert campaign.state.pending_ids() == [i for i in asked if i != first[0]]
    assert [r["trained_on"] for r in campaign.state.rounds] == [0, 1, 1]
    # The pool is used up: next trains on what there is and writes no batch.
    assert run_next(folder) == 0
    assert Campaign.open(folder).state.rounds[-1]["ids"] == []
    assert not (folder / "batches" / "batch-3.jsonl").exists()


def test_budget_cuts_the_batch_and_is_a_stopping_signal(tmp_path, pool_file, tiny_model_dir, capsys):
    folder = init(tmp_path, pool_file, tiny_model_dir, "--strategy", "random", "--budget", "6")
    assert run_next(folder) == 0 and run_next(folder) == 0
    assert [len(r["ids"]) for r in Campaign.open(folder).state.rounds] == [4, 2]
    capsys.readouterr()
    assert main(["campaign", "status", str(folder)]) == 0
    assert "stop: label budget spent (6 of 6 asked)" in capsys.readouterr().out


# --------------------------------------------------------------------------- labels are kept


@pytest.fixture
def asked(tmp_path, pool_file, tiny_model_dir):
    """A campaign whose first batch is out."""
    folder = init(tmp_path, pool_file, tiny_model_dir, "--strategy", "random")
    assert run_next(folder) == 0
    return folder, batch_ids(folder, 0)


def test_conflict_changes_nothing_and_replace_keeps_history(tmp_path, asked, capsys):
    folder, ids = asked
    write_jsonl(tmp_path / "one.jsonl", [{"id": ids[0], "answer": "first"}])
    write_jsonl(tmp_path / "two.jsonl", [{"id": ids[0], "answer": "second"}, {"id": ids[1], "answer": "b"}])
    assert main(["campaign", "import", str(folder), str(tmp_path / "one.jsonl")]) == 0
    assert main(["campaign", "import", str(folder), str(tmp_path / "two.jsonl")]) == 0
    out = capsys.readouterr().out
    assert f"conflict {ids[0]}: already labelled: kept 'first', not 'second'" in out
    state = Campaign.open(folder).state
    assert state.labels[ids[0]]["answer"] == "first" and state.labels[ids[1]]["answer"] == "b"
    assert [c["id"] for c in state.data["conflicts"]] == [ids[0]]

    assert main(["campaign", "import", str(folder), str(tmp_path / "two.jsonl"), "--replace"]) == 0
    state = Campaign.open(folder).state
    assert state.labels[ids[0]]["answer"] == "second"
    assert [(h["id"], h["answer"], h["replaced_by"]) for h in state.data["history"]] == [(ids[0], "first", "second")]


def test_reimporting_the_same_file_changes_nothing(tmp_path, asked, capsys):
    folder, ids = asked
    answers = write_jsonl(tmp_path / "a.jsonl", [{"id": ids[0], "answer": "7", "seconds": 12},
                                                 {"id": ids[1], "skip": True, "seconds": 3}])
    assert main(["campaign", "import", str(folder), str(answers)]) == 0
    before = state_bytes(folder)
    assert main(["campaign", "import", str(folder), str(answers)]) == 0
    assert "the campaign is unchanged" in capsys.readouterr().out
    assert state_bytes(folder) == before
    state = Campaign.open(folder).state
    assert state.annotation_seconds() == 15.0 and list(state.skipped) == [ids[1]]


def test_a_later_answer_fills_a_skip_without_losing_its_time(tmp_path, asked):
    folder, ids = asked
    write_jsonl(tmp_path / "skip.jsonl", [{"id": ids[0], "skip": "yes", "seconds": 5}])
    write_jsonl(tmp_path / "answer.jsonl", [{"id": ids[0], "answer": "9", "seconds": 20}])
    assert main(["campaign", "import", str(folder), str(tmp_path / "skip.jsonl")]) == 0
    assert main(["campaign", "import", str(folder), str(tmp_path / "answer.jsonl")]) == 0
    state = Campaign.open(folder).state
    assert state.labels[ids[0]]["answer"] == "9" and not state.skipped
    assert state.annotation_seconds() == 25.0


BAD_FILES = {
    "malformed JSON": ("a.jsonl", lambda ids: f'{{"id": "{ids[0]}", "answer": "1"}}\n{{"id": oops}}\n', ":2: invalid JSON"),
    "binary file": ("a.jsonl", lambda ids: b"\x89PNG\r\n\x1a\n\x00\xff\xfe", ": not valid UTF-8"),
    "malformed CSV": ("a.csv", lambda ids: f'id,answer\n{ids[0]},"unclosed\n', "invalid CSV"),
    "unknown id": ("a.jsonl", lambda ids: f'{{"id": "{ids[0]}", "answer": "1"}}\n{{"id": "nope", "answer": "1"}}\n',
                   ":2: unknown id 'nope'"),
    "same id, two answers": ("a.csv", lambda ids: f"id,answer\n{ids[0]},1\n{ids[1]},2\n{ids[0]},3\n",
                             f":4: id '{{0}}' appears twice with different answers"),
    "empty answer": ("a.jsonl", lambda ids: f'{{"id": "{ids[0]}", "answer": "1"}}\n{{"id": "{ids[1]}", "answer": " "}}\n',
                     ":2: empty answer"),
    "empty CSV cell": ("a.csv", lambda ids: f"id,answer,skip\n{ids[0]},1,\n{ids[1]},,\n", ":3: empty answer"),
    "bad skip": ("a.jsonl", lambda ids: f'{{"id": "{ids[0]}", "skip": "perhaps"}}\n', ":1: field 'skip'"),
    "no id column": ("a.csv", lambda ids: "key,answer\nx,1\n", ":2: missing field 'id'"),
    "unsupported type": ("a.txt", lambda ids: "hello", "unsupported file type"),
    "empty file": ("a.jsonl", lambda ids: "", "empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_answer_file_is_one_line_exit_2_and_no_change(case, tmp_path, asked, capsys):
    folder, ids = asked
    name, content, expected = BAD_FILES[case]
    path = tmp_path / name
    data = content(ids)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    write_jsonl(tmp_path / "good.jsonl", [{"id": ids[2], "answer": "kept"}])
    assert main(["campaign", "import", str(folder), str(tmp_path / "good.jsonl")]) == 0
    before = state_bytes(folder)
    capsys.readouterr()
    assert main(["campaign", "import", str(folder), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("activelora campaign: error: ")
    assert str(path) in err and expected.replace("{0}", ids[0]) in err
    assert state_bytes(folder) == before


def test_an_answer_the_task_cannot_read_is_refused(tmp_path, pool_file, tiny_model_dir, capsys):
    folder = tmp_path / "arith"
    assert main(["campaign", "init", str(folder), "--pool", str(pool_file), "--model", str(tiny_model_dir),
                 "--task", "arith", "--stop-set", "0", *TINY]) == 0
    write_jsonl(tmp_path / "a.jsonl", [{"id": "p1", "answer": "3"}, {"id": "p2", "answer": "no idea"}])
    before = state_bytes(folder)
    assert main(["campaign", "import", str(folder), str(tmp_path / "a.jsonl")]) == 2
    assert "a.jsonl:2: answer 'no idea' for id 'p2' is not a valid arith answer" in capsys.readouterr().err
    assert state_bytes(folder) == before


# --------------------------------------------------------------------------- init and folder errors


def test_init_errors_are_one_line(tmp_path, pool_file, dev_file, tiny_model_dir, capsys):
    taken = init(tmp_path, pool_file, tiny_model_dir)
    cases = [
        (["campaign", "init", str(taken), "--pool", str(pool_file)], "a campaign already"),
        (["campaign", "init", str(tmp_path / "x"), "--pool", str(tmp_path / "missing.jsonl")], "file not found"),
        (["campaign", "init", str(tmp_path / "x"), "--pool", str(pool_file), "--strategy", "passive"],
         "labels the whole pool"),
        (["campaign", "init", str(tmp_path / "x"), "--pool", str(pool_file), "--strategy", "nope"], "nope"),
        (["campaign", "init", str(tmp_path / "x"), "--pool", str(pool_file), "--dev", str(pool_file)], "missing field 'answer'"),
        (["campaign", "init", str(tmp_path / "x"), "--pool", str(pool_file), "--stop-set", "99"], "--stop-set"),
        (["campaign", "next", str(tmp_path / "nothing")], "not a campaign folder"),
        (["campaign", "import", str(taken)], "give either FILE or --labelstudio"),
    ]
    write_jsonl(tmp_path / "noq.jsonl", [{"id": "a", "text": "hi"}])
    cases.append((["campaign", "init", str(tmp_path / "x"), "--pool", str(tmp_path / "noq.jsonl")],
                  "noq.jsonl:1: missing field 'question'"))
    write_jsonl(tmp_path / "overlap.jsonl", [{"id": "p1", "question": "q", "answer": "1"}])
    cases.append((["campaign", "init", str(tmp_path / "x"), "--pool", str(pool_file), "--dev",
                   str(tmp_path / "overlap.jsonl")], "in the pool too"))
    for argv, expected in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, (argv, err)
        assert not (tmp_path / "x").exists()


def test_ids_come_from_the_pool_or_from_the_content(tmp_path, tiny_model_dir):
    pool = tmp_path / "mixed.csv"
    pool.write_text("id,question\nown-id,First?\n,Second?\n", encoding="utf-8")
    folder = tmp_path / "c"
    assert main(["campaign", "init", str(folder), "--pool", str(pool), "--model", str(tiny_model_dir)]) == 0
    ids = [ex.id for ex in Campaign.open(folder).pool]
    assert ids[0] == "own-id" and ids[1].startswith("mixed-3-")
    again = tmp_path / "c2"
    assert main(["campaign", "init", str(again), "--pool", str(pool), "--model", str(tiny_model_dir)]) == 0
    assert [ex.id for ex in Campaign.open(again).pool] == ids


def test_every_campaign_action_has_help(capsys):
    for action in ("init", "next", "import", "status", "export"):
        with pytest.raises(SystemExit) as exit_info:
            main(["campaign", action, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: activelora campaign {action}" in capsys.readouterr().out


# --------------------------------------------------------------------------- the embedded model


@pytest.mark.slow
def test_file_round_trip_on_the_embedded_model(tmp_path, monkeypatch, capsys):
    """prompts -> batch -> a person's answers (here: the generator's gold answers) -> trained
    adapter -> next batch -> labels exported, on SmolLM2-135M with a tiny budget."""
    import os

    from activelora.data.arith import generate_arith

    # The converted model and the base-score cache are shared with the rest of the suite.
    monkeypatch.setenv("ACTIVELORA_CACHE", os.environ.get("ACTIVELORA_CACHE", str(Path.home() / ".cache" / "activelora")))
    problems = generate_arith("train", n=12, seed=3)
    gold = {ex.id: ex.answer for ex in problems}
    pool = write_jsonl(tmp_path / "prompts.jsonl", [{"id": ex.id, "question": ex.question} for ex in problems])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"id": ex.id, "question": ex.question, "answer": ex.answer}
                                               for ex in generate_arith("test", n=4, seed=3)])
    folder = tmp_path / "camp"
    assert main(["campaign", "init", str(folder), "--pool", str(pool), "--dev", str(dev), "--task", "arith",
                 "--batch-size", "4", "--stop-set", "4", "--set", "train.epochs=1", "--set", "train.batch_size=4",
                 "--set", "eval.max_new_tokens=32", "--set", "score.max_new_tokens=32",
                 "--set", "strategy.mc_samples=2"]) == 0
    for r in range(2):
        assert run_next(folder) == 0
        rows = [json.loads(line) for line in (folder / "batches" / f"batch-{r}.jsonl").read_text().splitlines()]
        assert len(rows) == 4 and all(isinstance(row["suggestion"], str) for row in rows)
        write_jsonl(tmp_path / f"answers-{r}.jsonl", [{"id": row["id"], "answer": gold[row["id"]]} for row in rows])
        assert main(["campaign", "import", str(folder), str(tmp_path / f"answers-{r}.jsonl")]) == 0
    assert run_next(folder) == 0
    rounds = Campaign.open(folder).state.rounds
    assert [r["trained_on"] for r in rounds] == [0, 4, 8]
    assert all(0.0 <= r["dev_accuracy"] <= 1.0 for r in rounds)
    assert rounds[2]["stop_kappa"] is not None and rounds[2]["strategy"] == "star"
    assert (folder / "rounds" / "round-2" / "adapter" / "adapter_model.safetensors").is_file()
    out = tmp_path / "labels.jsonl"
    assert main(["campaign", "export", str(folder), "--out", str(out)]) == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(exported) == 8 and all(row["answer"] == gold[row["id"]] for row in exported)


def test_a_campaign_keeps_the_mixed_batch_it_began_with(tmp_path, pool_file, tiny_model_dir):
    """init records star's resolved share; a campaign begun before the setting reads none."""
    from activelora.campaign.folder import Campaign

    folder = init(tmp_path, pool_file, tiny_model_dir, "--strategy", "star")
    saved = json.loads((folder / "campaign.json").read_text())
    assert saved["config"]["strategy"]["random_share"] == 0.5
    assert Campaign.open(folder).settings.build_config().strategy.random_share == 0.5
    del saved["config"]["strategy"]["random_share"]
    (folder / "campaign.json").write_text(json.dumps(saved))
    assert Campaign.open(folder).settings.build_config().strategy.random_share == 0.0


def test_a_campaign_names_a_switch_its_strategy_ignores(tmp_path, pool_file, tiny_model_dir, caplog):
    with caplog.at_level("WARNING", logger="activelora.campaign.workflow"):
        init(tmp_path, pool_file, tiny_model_dir, "--strategy", "typiclust", "--set", "strategy.skip_top=0.1")
    assert [r.getMessage() for r in caplog.records] == [
        "strategy typiclust ignores strategy.skip_top=0.1: it has no ranking for them to change"]
