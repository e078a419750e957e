"""The public Python API (``from activelora import ...``) against the command line it mirrors:
the same settings, the same runs and files, the same campaign guarantees, the same scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import activelora
from activelora import (Campaign, ConfigError, DataError, Experiment, RunStateError, UnknownNameError, load_config,
                        score_examples)
from activelora.cli import main
from activelora.config import build_config, parse_set

SMALL = ["model.dtype=float32", "loop.pool_limit=20", "loop.test_limit=6", "loop.probe_size=4", "loop.initial=4",
         "loop.query_size=3", "loop.rounds=1", "train.epochs=1", "train.batch_size=4", "eval.max_new_tokens=6",
         "score.max_new_tokens=6", "score.batch_size=8", "strategy.mc_samples=2", "lora.r=2",
         "lora.target_modules=[q_proj,v_proj]"]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------------- the package's surface


def test_importing_the_package_loads_no_torch_and_exports_what_all_lists():
    code = ("import sys, activelora; assert 'torch' not in sys.modules, 'torch loaded by import activelora'; "
            "missing = [n for n in activelora.__all__ if not hasattr(activelora, n)]; assert not missing, missing")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        activelora.nothing_here  # noqa: B018


def test_the_package_ships_its_type_hints():
    root = Path(activelora.__file__).parent
    assert (root / "py.typed").is_file()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'activelora = ["py.typed"]' in pyproject


# ---------------------------------------------------------------------- settings


def test_overrides_in_every_form_give_the_clis_config(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("loop: {rounds: 4}\ntrain: {epochs: 3}\n")
    cli = build_config(yaml_file, parse_set(["loop.rounds=2", "lora.target_modules=[q_proj,v_proj]"]))
    forms = [["loop.rounds=2", "lora.target_modules=[q_proj,v_proj]"],
             {"loop.rounds": 2, "lora.target_modules": ["q_proj", "v_proj"]},
             {"loop": {"rounds": 2}, "lora": {"target_modules": ["q_proj", "v_proj"]}}]
    for overrides in forms:
        assert load_config(yaml_file, overrides) == cli
        assert Experiment.from_yaml(yaml_file, tmp_path / "out", overrides=overrides).config == cli
    assert cli.train.epochs == 3 and cli.loop.rounds == 2
    assert load_config(load_config(None, {"loop.rounds": 3}), ["loop.seeds=[1,2]"]).loop.seeds == [1, 2]


@pytest.mark.parametrize("overrides, message", [
    ({"loop.roundz": 2}, "unknown config key 'loop.roundz' (nearest valid: 'rounds')"),
    ({"loops": {"rounds": 2}}, "unknown config section 'loops'"),
    (["loop.rounds"], "expected section.key=value"),
    ("loop.rounds=2", "got the string"),
    ({"rounds": 2}, "must be section.key"),
    ({"loop.rounds": "many"}, "loop.rounds"),
])
def test_a_bad_override_is_one_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, overrides)


def test_a_config_that_is_neither_a_config_nor_a_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="expected a Config or the path of a YAML file"):
        Experiment(42, tmp_path)
    with pytest.raises(ConfigError, match="config file not found"):
        Experiment(tmp_path / "missing.yaml", tmp_path)


# ---------------------------------------------------------------------- experiment


def test_an_experiment_runs_as_the_command_does(tmp_path, tiny_model_dir):
    settings = [*SMALL, f"model.name={tiny_model_dir}"]
    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    assert main(["run", "--output", str(cli_out), "--quiet", "--strategy", "random", "--strategy", "entropy",
                 *[arg for s in settings for arg in ("--set", s)]]) == 0
    result = Experiment(None, api_out, overrides=[*settings, "loop.strategies=[random, entropy]"]).run()

    assert [(r.strategy, r.seed) for r in result.runs] == [("entropy", 0), ("random", 0)]
    for run in result.runs:
        cli_dir = cli_out / run.strategy / "seed-0"
        assert run.folder == api_out / run.strategy / "seed-0"
        assert run.selections == [r["ids"] for r in json.loads((cli_dir / "state.json").read_text())["rounds"]]
        cli_rows = [json.loads(line) for line in (cli_dir / "metrics.jsonl").read_text().splitlines()]
        drop = lambda row: {k: v for k, v in row.items() if not k.endswith("seconds")}  # noqa: E731
        assert [drop(r) for r in run.metrics] == [drop(r) for r in cli_rows]
        assert sorted(run.labels) == sorted(i for ids in run.selections for i in ids)
    for name in ("report.md", "summary.json", "curves.png", "zero_shot.json"):
        assert (api_out / name).is_file()

    summary = json.loads((api_out / "summary.json").read_text())
    for name, curve in result.curves.items():
        written = summary["strategies"][name]["curve"]
        assert [(p.labels, p.mean) for p in curve.points] == [(c["labeled"], c["accuracy_mean"]) for c in written]
        assert curve.aulc == summary["strategies"][name]["aulc"]
        assert curve.final == summary["strategies"][name]["final_accuracy"]
    assert [p.labels for p in result.curve("entropy", "ece").points] == [4, 7]
    paired = result.paired["entropy"]
    assert paired.reference == "random" and paired.verdict.startswith("**entropy** is ")
    assert paired.diff_aulc.mean == summary["paired_against_random"]["entropy"]["diff_aulc"][0]
    assert result.zero_shot_accuracy == json.loads((api_out / "zero_shot.json").read_text())["accuracy"]
    assert Experiment(None, api_out).results().runs == result.runs
    with pytest.raises(KeyError, match="no runs of strategy 'star'"):
        result.curve("star")

    # A changed config in the same folder is refused as the command refuses it.
    with pytest.raises(RunStateError):
        Experiment(None, api_out, overrides=[*settings, "loop.strategies=[random]", "train.epochs=2"]).run()


# ---------------------------------------------------------------------- campaign


@pytest.fixture
def campaign(tmp_path, tiny_model_dir) -> Campaign:
    pool = tmp_path / "prompts.jsonl"
    pool.write_text("".join(json.dumps({"id": f"p{i}", "question": f"What is {i} plus {i + 1}?"}) + "\n"
                            for i in range(10)))
    return Campaign.init(tmp_path / "camp", pool, task="plain", strategy="entropy", batch_size=3, stop_set=2,
                         model=str(tiny_model_dir), overrides=[s for s in SMALL if not s.startswith("loop.")])


def test_a_campaign_round_trip_and_its_guarantees(campaign, tmp_path):
    batch = campaign.next_batch()
    assert batch.round == 0 and len(batch.ids) == 3 and batch.trained_on == 0
    assert batch.jsonl.is_file() and batch.csv.is_file()
    state_before = (campaign.folder / "state.json").read_bytes()

    # All or nothing: one unknown id, one empty answer, one non-mapping: nothing changes.
    for bad, message in (([{"id": batch.ids[0], "answer": "1"}, {"id": "zz", "answer": "2"}], r"records\[1\]: unknown id 'zz'"),
                         ([{"id": batch.ids[0], "answer": " "}], "empty answer"),
                         (["p1"], r"records\[0\]: expected a mapping"),
                         ([], "no answers given")):
        with pytest.raises(DataError, match=message):
            campaign.add_labels(bad)
        assert (campaign.folder / "state.json").read_bytes() == state_before

    answers = {batch.ids[0]: "1", batch.ids[1]: None}  # None: skipped
    report = campaign.add_labels(answers)
    assert report.added == [batch.ids[0]] and report.skipped == [batch.ids[1]]
    again = campaign.add_labels(answers)
    assert not again.changed  # re-importing the same answers changes nothing

    answer_file = tmp_path / "answers.jsonl"
    answer_file.write_text(json.dumps({"id": batch.ids[2], "answer": "7"}) + "\n")
    assert campaign.add_labels(answer_file).added == [batch.ids[2]]
    conflict = campaign.add_labels({batch.ids[0]: "9"})  # an existing label is kept unless replace
    assert conflict.replaced == [] and [c.kind for c in conflict.conflicts] == ["existing label"]
    assert campaign.add_labels({batch.ids[0]: "9"}, replace=True).replaced == [batch.ids[0]]

    status = campaign.status()
    assert status["labelled"] == 2 and status["skipped"] == 1 and status["pending"] == 0
    second = campaign.next_batch()
    assert second.round == 1 and second.trained_on == 2 and not set(second.ids) & set(batch.ids)
    out = tmp_path / "labels.jsonl"
    assert campaign.export(out) == 2
    assert {json.loads(line)["id"]: json.loads(line)["answer"] for line in out.read_text().splitlines()} == {
        batch.ids[0]: "9", batch.ids[2]: "7"}
    # The CLI sees the same folder.
    assert main(["campaign", "status", str(campaign.folder), "--json"]) == 0


def test_a_sigkill_during_add_labels_leaves_the_campaign_as_before(campaign, tmp_path):
    from test_campaign_crash import kill_at, snapshot

    batch = campaign.next_batch()
    before = snapshot(campaign.folder)
    code = ("import sys; from activelora import Campaign; "
            "Campaign(sys.argv[1]).add_labels({sys.argv[2]: '5', sys.argv[3]: None})")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    kill_at([str(campaign.folder), *batch.ids[:2]], "import:before-commit", env, program=[sys.executable, "-c", code])
    assert snapshot(campaign.folder) == before
    assert campaign.add_labels({batch.ids[0]: "5", batch.ids[1]: None}).added == [batch.ids[0]]  # works afterwards


def test_campaign_mistakes_are_one_clear_exception(tmp_path, campaign, tiny_model_dir):
    with pytest.raises(RunStateError):
        Campaign(tmp_path / "nowhere")
    with pytest.raises(UnknownNameError, match="unknown strategy 'entrop'"):
        Campaign.init(tmp_path / "c2", tmp_path / "prompts.jsonl", strategy="entrop", model=str(tiny_model_dir))
    with pytest.raises(DataError, match="file not found"):
        campaign.add_labels(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------- scoring


def test_scoring_a_pool_gives_what_the_scorer_gives(make_tiny_llama, smol_tokenizer, fake_task, fake_examples):
    from activelora.data.tasks import get_task
    from activelora.uncertainty.scorer import score_pool

    model = make_tiny_llama()
    rows = [{"id": ex.id, "question": ex.question} for ex in fake_examples]
    got = score_examples(rows, model, tokenizer=smol_tokenizer, measure="pe", max_new_tokens=6, batch_size=2)
    expected = score_pool(model, smol_tokenizer, get_task("plain"), [ex.__class__(ex.id, ex.question, None)
                                                                      for ex in fake_examples],
                          measure="pe", max_new_tokens=6, batch_size=2, cache=False, progress=False)
    assert [s.id for s in got] == [ex.id for ex in fake_examples]
    assert [(s.score, s.answer) for s in got] == [(s.score, s.answer) for s in expected]
    plain = score_examples([ex.question for ex in fake_examples], model, tokenizer=smol_tokenizer, measure="pe",
                           max_new_tokens=6, batch_size=2)
    assert [s.id for s in plain] == [str(i) for i in range(len(fake_examples))]
    assert [s.score for s in plain] == [s.score for s in got]


def test_scoring_mistakes_are_one_clear_exception(make_tiny_llama, smol_tokenizer):
    model = make_tiny_llama()
    with pytest.raises(ConfigError, match="needs its tokenizer"):
        score_examples(["a?"], model)
    with pytest.raises(ConfigError, match="give adapter=FOLDER"):
        score_examples(["a?"], model, tokenizer=smol_tokenizer, mc_samples=3, measure="entropy")
    with pytest.raises(UnknownNameError, match="unknown measure 'entropi'"):
        score_examples(["a?"], model, tokenizer=smol_tokenizer, measure="entropi")
    with pytest.raises(DataError, match="id 'x' appears more than once"):
        score_examples([{"id": "x", "question": "a?"}, {"id": "x", "question": "b?"}], model, tokenizer=smol_tokenizer)
    with pytest.raises(DataError, match=r"examples\[0\]: missing field 'question'"):
        score_examples([{"id": "x"}], model, tokenizer=smol_tokenizer)


# ---------------------------------------------------------------------- plugins


def test_a_plugin_that_cannot_be_imported_is_one_line_exit_2(tmp_path, capsys):
    assert main(["run", "--plugin", str(tmp_path / "nope.py"), "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"activelora run: error: --plugin {tmp_path / 'nope.py'}: file not found"
    assert main(["run", "--plugin", "no_such_module_here", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("activelora run: error: --plugin no_such_module_here: cannot import it") and "\n" not in err
