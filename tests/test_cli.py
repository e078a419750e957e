"""The command line: every --help, one-line errors with exit code 2, train/evaluate/probe on a tiny model."""

from __future__ import annotations

import json

import pytest

from activelora.cli import COMMANDS, main


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: activelora " + command in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_bad_flag_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "arith", "--out", "x", "--epochs", "many"])
    assert exit_info.value.code == 2
    assert "--epochs" in _one_line_error(capsys)


def test_missing_data_file(tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "none.jsonl" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_malformed_jsonl_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "q", "answer": "a"}\n{not json\n')
    assert main(["evaluate", "--data", str(data), "--task", "plain", "--out", str(tmp_path / "o")]) == 2
    err = _one_line_error(capsys)
    assert "d.jsonl:2" in err
    assert not (tmp_path / "o").exists()


def test_unknown_task_lists_valid(capsys, tmp_path):
    assert main(["evaluate", "--data", "arith", "--task", "gsm9k", "--out", str(tmp_path / "o")]) == 2
    err = _one_line_error(capsys)
    assert "gsm9k" in err and "gsm8k" in err


def test_bad_yaml_config(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochs: [1\n")
    assert main(["run", "--config", str(config), "--output", str(tmp_path / "r")]) == 2
    assert "c.yaml" in _one_line_error(capsys)
    config.write_text("train:\n  epoch: 1\n")
    assert main(["run", "--config", str(config), "--output", str(tmp_path / "r")]) == 2
    err = _one_line_error(capsys)
    assert "train.epoch" in err and "epochs" in err


def test_missing_model_folder(tmp_path, capsys):
    code = main(["evaluate", "--data", "arith", "--limit", "2", "--model", str(tmp_path / "nomodel"),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "nomodel" in _one_line_error(capsys)


def test_train_then_evaluate_then_probe(tmp_path, tiny_model_dir, capsys, recwarn):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"question": f"Say {w}.", "answer": w}) + "\n"
                            for w in ["yes", "no", "red", "blue", "cat", "dog"]))
    common = ["--data", str(data), "--task", "plain", "--model", str(tiny_model_dir)]
    small = ["--set", "lora.r=2", "--set", "lora.target_modules=[q_proj,v_proj]", "--set", "train.epochs=1"]
    assert main(["train", *common, "--out", str(tmp_path / "t"), *small]) == 0
    adapter = tmp_path / "t" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert not list(adapter.glob("*.bin")) and not list(adapter.glob("*.pt"))

    assert main(["evaluate", *common, "--adapter", str(adapter), "--max-new-tokens", "4",
                 "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["n"] == 6 and 0.0 <= metrics["accuracy"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "e" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert {"id", "prediction", "answer", "correct", "confidence"} <= set(rows[0])
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rows)
    assert metrics["accuracy"] == sum(r["correct"] for r in rows) / 6
    assert "accuracy" in capsys.readouterr().out

    assert main(["probe", *common, "--adapter", str(adapter), "--set", "score.max_new_tokens=4",
                 "--set", "eval.max_new_tokens=4", "--out", str(tmp_path / "p")]) == 0
    probe = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert {"ece", "ece_equal_mass", "mce", "brier", "spearman", "auroc_base", "auroc_full"} <= set(probe)
    rows = [json.loads(line) for line in (tmp_path / "p" / "predictions.jsonl").read_text().splitlines()]
    assert {"id", "confidence", "correct", "u_base", "u_full"} <= set(rows[0])
    for name in ("reliability.png", "confidence.png", "gap.png"):
        assert (tmp_path / "p" / name).read_bytes()[:4] == b"\x89PNG"
    entropy_rows = rows
    assert probe["base_measure"] == "entropy" and probe["mc_samples"] == 1

    # bald over K=2 LoRA-dropout passes of the tuned model; the base has no dropout, so its
    # u_base is one pass of entropy (the same as above, here from the cache).
    capsys.readouterr()
    assert main(["probe", *common, "--adapter", str(adapter), "--measure", "bald", "--mc-samples", "2",
                 "--set", "score.max_new_tokens=4", "--set", "eval.max_new_tokens=4",
                 "--out", str(tmp_path / "pb")]) == 0
    probe = json.loads((tmp_path / "pb" / "probe.json").read_text())
    assert (probe["measure"], probe["base_measure"], probe["mc_samples"]) == ("bald", "entropy", 2)
    rows = [json.loads(line) for line in (tmp_path / "pb" / "predictions.jsonl").read_text().splitlines()]
    assert [r["u_base"] for r in rows] == [r["u_base"] for r in entropy_rows]
    assert all(r["u_full"] >= 0 for r in rows)
    assert "bald, K=2" in capsys.readouterr().out

    # Temperature fitted on the probed split: on the rows after the probed ones, never the same.
    probe_args = ["probe", *common, "--adapter", str(adapter), "--set", "score.max_new_tokens=4",
                  "--set", "eval.max_new_tokens=4", "--limit", "4", "--calibration-split", "train"]
    assert main([*probe_args, "--calibration-limit", "5", "--out", str(tmp_path / "pc")]) == 0
    probe = json.loads((tmp_path / "pc" / "probe.json").read_text())
    assert (probe["n"], probe["calibration_split"], probe["calibration_n"]) == (4, "train", 2)
    assert "temperature" in probe
    capsys.readouterr()
    assert main([*probe_args[:-4], "--limit", "6", "--calibration-split", "train", "--out", str(tmp_path / "pd")]) == 2
    assert "no rows left after the 6 probed ones" in capsys.readouterr().err
    assert not (tmp_path / "pd").exists()

    # peft reads transformers' deprecated is_gradient_checkpointing on attach and load:
    # silenced where it happens, so no two-line FutureWarning precedes our output.
    assert not [w for w in recwarn if "is_gradient_checkpointing" in str(w.message)]


def test_bad_set_values_fail_before_loading_the_model(tmp_path, capsys):
    nomodel = ["--model", str(tmp_path / "nomodel")]  # reached only if the config passed
    cases = [
        (["run", "--output", str(tmp_path / "r"), "--set", "loop.seeds=[a]"], "loop.seeds[0]"),
        (["run", "--output", str(tmp_path / "r"), "--set", "loop.target_accuracy=high"], "loop.target_accuracy"),
        (["run", "--output", str(tmp_path / "r"), "--set", "loop.budget=0"], "loop.budget"),
        (["run", "--output", str(tmp_path / "r"), "--set", "strategy.measure=entropyy"], "strategy.measure"),
        (["train", "--data", "arith", "--out", str(tmp_path / "t"), "--set", "train.epochs=abc"],
         "train.epochs: must be a number, got 'abc'"),
    ]
    for argv, expected in cases:
        assert main([*argv, *nomodel]) == 2, argv
        err = _one_line_error(capsys)
        assert expected in err and "nomodel" not in err, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "t").exists()


def test_score_out_is_checked_before_scoring(tmp_path, capsys):
    argv = ["score", "--data", "arith", "--limit", "2", "--model", str(tmp_path / "nomodel")]
    folder = tmp_path / "existing"
    folder.mkdir()
    assert main([*argv, "--out", str(folder)]) == 2
    err = _one_line_error(capsys)
    assert "--out" in err and "is a folder" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([*argv, "--out", str(blocker / "scores.jsonl")]) == 2
    err = _one_line_error(capsys)
    assert "--out" in err and "not a folder" in err


@pytest.mark.parametrize("command", ["train", "evaluate", "probe"])
def test_out_folder_is_checked_before_loading(command, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = [command, "--data", "arith", "--limit", "2", "--model", str(tmp_path / "nomodel")]
    assert main([*argv, "--out", str(blocker)]) == 2
    assert "exists and is not a folder" in _one_line_error(capsys)
    assert main([*argv, "--out", str(blocker / "sub")]) == 2
    assert "not a folder" in _one_line_error(capsys)
    assert blocker.read_text() == "x"


def test_run_output_is_checked(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--output", str(blocker), "--model", str(tmp_path / "nomodel")]) == 2
    assert "--output" in _one_line_error(capsys)


@pytest.mark.parametrize("extra", [[], ["--mc-samples", "1"]])
@pytest.mark.parametrize("measure", ["bald", "vote"])
def test_probe_mc_measures_need_two_samples_up_front(measure, extra, tmp_path, capsys):
    code = main(["probe", "--data", "arith", "--limit", "2", "--model", str(tmp_path / "nomodel"),
                 "--measure", measure, *extra, "--out", str(tmp_path / "p")])
    assert code == 2
    err = _one_line_error(capsys)
    assert measure in err and "--mc-samples" in err and ">= 2" in err
    assert not (tmp_path / "p").exists()
