"""Run directory: atomic writes, JSON lines, config hash, resume and label bookkeeping."""

from __future__ import annotations

import json

import pytest

from activelora import atomic_files
from activelora.run import rundir
from activelora.config import Config
from activelora.errors import RunStateError
from activelora.atomic_files import append_jsonl, atomic_write_json, atomic_write_text, read_jsonl
from activelora.run.rundir import RunState, config_difference, config_hash


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- atomic files


def test_atomic_write_roundtrip(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic_write_json(path, {"a": [1, 2], "b": "é"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1, 2], "b": "é"}
    atomic_write_text(path, "hello")
    assert path.read_text() == "hello"
    assert leftovers(path.parent) == []


def test_failed_serialisation_keeps_old_file(tmp_path):
    path = tmp_path / "state.json"
    atomic_write_json(path, {"ok": 1})
    # json.dump streams: the list's first items reach the temp file before the object fails.
    with pytest.raises(TypeError):
        atomic_write_json(path, {"ok": 2, "rows": [1, 2, 3, object()]})
    with pytest.raises(ValueError):
        atomic_write_json(path, {"score": float("nan")})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert leftovers(tmp_path) == []


def test_failed_fsync_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    atomic_write_json(path, {"ok": 1})

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(atomic_files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"ok": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"ok": 1}
    assert leftovers(tmp_path) == []


def test_jsonl_append_and_torn_tail(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"round": 0, "acc": 0.5})
    append_jsonl(path, {"round": 1, "acc": 0.6})
    with pytest.raises(ValueError):
        append_jsonl(path, {"acc": float("inf")})  # nothing written
    assert read_jsonl(path) == [{"round": 0, "acc": 0.5}, {"round": 1, "acc": 0.6}]
    with open(path, "a") as handle:
        handle.write('{"round": 2, "ac')  # a crash mid-append
    assert [r["round"] for r in read_jsonl(path)] == [0, 1]
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(RunStateError, match=":2"):
        read_jsonl(path)


# ----------------------------------------------------------------------------- config hash


def test_config_hash_ignores_only_listed_keys():
    base = Config().to_dict()
    digest = config_hash(base)
    assert digest == config_hash(json.loads(json.dumps(base)))  # key order / copies irrelevant
    memory = Config().to_dict()
    memory["eval"]["batch_size"] = 4
    memory["score"]["batch_size"] = 2
    memory["train"]["gradient_checkpointing"] = True
    memory["loop"]["strategies"] = ["random", "star", "subtract"]  # a run is one strategy
    assert config_hash(memory) == digest
    changed = Config().to_dict()
    changed["train"]["batch_size"] = 4
    assert config_hash(changed) != digest
    assert config_difference(base, changed) == "train.batch_size: 8 -> 4"
    assert config_difference(base, memory) is None
    assert config_hash(memory, ignore=()) != digest
    assert config_hash(changed, ignore=["train"]) == config_hash(base, ignore=["train"])  # a whole section


# ----------------------------------------------------------------------------- run state


def full_round(state, ids, answers=None, last=False):
    state.add_round(ids, scores=[1.0] * len(ids), lambda_=0.9)
    state.add_labels({i: (answers or {}).get(i, f"ans-{i}") for i in ids})
    state.set_phase("label")
    state.set_phase("train")
    state.set_phase("evaluate")
    state.set_phase("done" if last else "score")


def test_create_save_resume(tmp_path):
    config = Config().to_dict()
    state = RunState.load_or_create(tmp_path, config)
    assert state.phase == "new" and state.next_step() == "select"
    assert (tmp_path / "state.json").exists()
    full_round(state, ["a", "b"])
    state.add_round(["c", "d"], scores=[0.5, 0.25], lambda_=0.8, info={"lambda": 0.8})
    state.add_labels({"c": "3"})
    # A crash here: the next process resumes mid-labelling.
    resumed = RunState.load_or_create(tmp_path, config)
    assert resumed.to_dict() == state.to_dict()
    assert resumed.next_step() == "label"
    assert resumed.pending_label_ids() == ["d"]
    assert resumed.labeled_ids() == ["a", "b", "c"]
    assert resumed.selected_ids() == ["a", "b", "c", "d"]
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["version"] == 1
    assert saved["rounds"][1] == {"round": 1, "ids": ["c", "d"], "scores": [0.5, 0.25], "lambda": 0.8,
                                  "info": {"lambda": 0.8}, "phase": "select"}
    assert saved["labels"] == {"a": "ans-a", "b": "ans-b", "c": "3"}


def test_phases_in_order(tmp_path):
    state = RunState.load_or_create(tmp_path, {"x": 1})
    with pytest.raises(RunStateError):
        state.set_phase("train")
    state.add_round(["a"])
    with pytest.raises(RunStateError, match="no label"):
        state.set_phase("label")
    state.add_labels({"a": None})  # ignored by the labeller: consumed, not trained on
    state.set_phase("label")
    with pytest.raises(RunStateError):
        state.set_phase("evaluate")  # train skipped
    with pytest.raises(RunStateError):
        state.add_round(["b"])  # the round is not finished
    state.set_phase("train")
    assert state.next_step() == "evaluate"
    state.set_phase("evaluate")
    state.set_phase("done")
    assert state.done and state.next_step() == "done"
    assert state.training_labels() == {}
    with pytest.raises(RunStateError):
        state.add_round(["b"])
    with pytest.raises(ValueError):
        state.set_phase("bogus")
    assert RunState.load_or_create(tmp_path, {"x": 1}).done


def test_done_straight_after_train(tmp_path):
    # The loop evaluates, sees the stop rule, and closes the run in one write.
    state = RunState.load_or_create(tmp_path, {"x": 1})
    state.add_round(["a"])
    state.add_labels({"a": "1"})
    state.set_phase("label")
    with pytest.raises(RunStateError):
        state.set_phase("done")  # not before training
    state.set_phase("train")
    state.set_phase("done")
    assert state.rounds[-1].phase == "evaluate"
    reloaded = RunState.load_or_create(tmp_path, {"x": 1})
    assert reloaded.done and reloaded.next_step() == "done"


def test_changed_config_refused_unless_restart(tmp_path):
    config = Config().to_dict()
    state = RunState.load_or_create(tmp_path, config)
    full_round(state, ["a"])
    changed = Config().to_dict()
    changed["train"]["epochs"] = 3.0
    with pytest.raises(RunStateError, match=r"train\.epochs: 2\.0 -> 3\.0.*--restart") as info:
        RunState.load_or_create(tmp_path, changed)
    assert "\n" not in str(info.value)
    # A memory knob is not a change.
    smaller = Config().to_dict()
    smaller["score"]["batch_size"] = 1
    assert RunState.load_or_create(tmp_path, smaller).labeled_ids() == ["a"]
    fresh = RunState.load_or_create(tmp_path, changed, restart=True)
    assert fresh.phase == "new" and fresh.labels == {}
    assert RunState.load_or_create(tmp_path, changed).phase == "new"


def test_where_a_run_ends_is_not_a_config_change(tmp_path):
    # loop.rounds and loop.target_accuracy decide only where a run stops: a finished run
    # resumes under other values (the loop then reopens or closes it), anything else is refused.
    config = Config().to_dict()
    state = RunState.load_or_create(tmp_path, config)
    full_round(state, ["a"], last=True)
    longer = Config().to_dict()
    longer["loop"]["rounds"] = config["loop"]["rounds"] + 3
    longer["loop"]["target_accuracy"] = 0.9
    resumed = RunState.load_or_create(tmp_path, longer)
    assert resumed.done and resumed.labeled_ids() == ["a"]
    budget = Config().to_dict()
    budget["loop"]["budget"] = 64  # sizes the last batch: a real change
    with pytest.raises(RunStateError, match=r"loop\.budget"):
        RunState.load_or_create(tmp_path, budget)


def test_reopen_continues_after_the_last_evaluation(tmp_path):
    state = RunState.load_or_create(tmp_path, {"x": 1})
    full_round(state, ["a"])
    with pytest.raises(RunStateError, match="only a finished run"):
        state.reopen()
    state.set_phase("done")  # after score: a resume under fewer rounds closes the run there
    assert state.done and state.rounds[-1].phase == "evaluate"
    state.reopen()
    reloaded = RunState.load_or_create(tmp_path, {"x": 1})
    assert reloaded.phase == "evaluate" and reloaded.next_step() == "score"
    assert reloaded.labels == {"a": "ans-a"} and [r.ids for r in reloaded.rounds] == [["a"]]
    reloaded.set_phase("score")
    full_round(reloaded, ["b"], last=True)
    assert reloaded.done and reloaded.labeled_ids() == ["a", "b"]


def test_corrupt_state_refused(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(RunStateError, match="--restart"):
        RunState.load_or_create(tmp_path, {"x": 1})
    (tmp_path / "state.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(RunStateError, match="version 99"):
        RunState.load_or_create(tmp_path, {"x": 1})
    assert RunState.load_or_create(tmp_path, {"x": 1}, restart=True).phase == "new"


def test_labels_never_duplicated_or_changed(tmp_path):
    state = RunState.load_or_create(tmp_path, {"x": 1})
    full_round(state, ["a", "b"])
    with pytest.raises(RunStateError, match="already selected"):
        state.add_round(["c", "a"])
    with pytest.raises(RunStateError, match="twice"):
        state.add_round(["c", "c"])
    state.add_round(["c", "d"])
    assert state.add_labels({"c": "1"}) == 1
    assert state.add_labels({"c": "1", "d": "2"}) == 1  # a replayed label is not counted again
    with pytest.raises(RunStateError, match="already labelled"):
        state.add_labels({"c": "9"})
    with pytest.raises(RunStateError, match="already labelled"):
        state.add_labels({"a": "other"})  # an earlier round's label cannot be rewritten
    with pytest.raises(RunStateError, match="not in the current round"):
        state.add_labels({"zz": "1"})
    with pytest.raises(ValueError):
        state.add_labels({"d": 2})
    assert state.labels == {"a": "ans-a", "b": "ans-b", "c": "1", "d": "2"}
    assert state.labeled_ids() == ["a", "b", "c", "d"]
    reloaded = RunState.load_or_create(tmp_path, {"x": 1})
    assert reloaded.labels == state.labels
    assert len(reloaded.labeled_ids()) == len(set(reloaded.labeled_ids()))


def test_failed_save_keeps_last_good_state(tmp_path, monkeypatch):
    state = RunState.load_or_create(tmp_path, {"x": 1})
    state.add_round(["a"])
    before = (tmp_path / "state.json").read_text()

    def broken(*args, **kwargs):
        raise OSError("no space left")

    monkeypatch.setattr(atomic_files.os, "replace", broken)
    with pytest.raises(OSError):
        state.add_labels({"a": "x"})
    monkeypatch.undo()
    assert (tmp_path / "state.json").read_text() == before
    assert state.labels == {} and state.pending_label_ids() == ["a"]  # memory rolled back too
    state.add_labels({"a": "x"})  # and the retry works
    assert RunState.load_or_create(tmp_path, {"x": 1}).labels == {"a": "x"}
    (tmp_path / "state.json").write_text(before)
    assert RunState.load_or_create(tmp_path, {"x": 1}).pending_label_ids() == ["a"]
    assert leftovers(tmp_path) == []


def test_a_setting_added_later_reads_as_its_old_behaviour_in_a_saved_run(tmp_path):
    """A run saved before strategy.mc_estimator existed ran the full-sequence estimator: it
    resumes under a config that asks for that, and is refused, naming the key, under one that
    does not."""
    from activelora.config import SETTINGS_ADDED_LATER, Config

    old = Config().to_dict()
    del old["strategy"]["mc_estimator"]
    RunState.load_or_create(tmp_path / "run", old)
    same = Config().to_dict()
    same["strategy"]["mc_estimator"] = "sequence"
    assert RunState.load_or_create(tmp_path / "run", same).config == old
    other = Config().to_dict()
    other["strategy"]["mc_estimator"] = "answer"
    with pytest.raises(RunStateError, match=r'strategy\.mc_estimator: "sequence" -> "answer"'):
        RunState.load_or_create(tmp_path / "run", other)
    flat = rundir.flatten_config(Config().to_dict())
    assert set(SETTINGS_ADDED_LATER) <= set(flat)  # every entry names a real setting


def test_a_run_saved_before_mixed_batches_resumes_only_without_one(tmp_path):
    from activelora.config import Config

    old = Config().to_dict()
    del old["strategy"]["random_share"]
    RunState.load_or_create(tmp_path / "run", old)
    unmixed = Config().to_dict()  # as the loop records it: the share resolved, here none
    unmixed["strategy"]["random_share"] = 0.0
    assert RunState.load_or_create(tmp_path / "run", unmixed).config == old
    mixed = Config().to_dict()  # star's default since the fourteenth session
    mixed["strategy"]["random_share"] = 0.5
    with pytest.raises(RunStateError, match=r"strategy\.random_share: 0\.0 -> 0\.5"):
        RunState.load_or_create(tmp_path / "run", mixed)
