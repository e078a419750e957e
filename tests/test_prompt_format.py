"""An adapter's prompt format: recorded beside it when trained, checked when it is loaded."""
from __future__ import annotations

import json

import pytest

from activelora.cli import main
from activelora.config import config_from_dict
from activelora.errors import ConfigError
from activelora.models.prompt_format import API_HINTS, check_prompt_format, prompt_record


def _adapter_with_record(tmp_path, record) -> str:
    (tmp_path / "adapter").mkdir()
    if record is not None:
        (tmp_path / "train.json").write_text(json.dumps({"steps": 1, **({"prompt": record} if record else {})}))
    return str(tmp_path / "adapter")


def test_the_record_names_the_model_and_the_chat_template():
    config = config_from_dict({"model": {"name": "some-model", "chat_template": True}})
    assert prompt_record(config) == {"model": "some-model", "chat_template": True}


@pytest.mark.parametrize("record", [None, {}, {"model": "m", "chat_template": False}])
def test_a_matching_or_missing_record_loads(tmp_path, record):
    adapter = _adapter_with_record(tmp_path, record)
    check_prompt_format(adapter, model_name="m", chat_template=False)


def test_an_unreadable_record_checks_nothing(tmp_path):
    adapter = _adapter_with_record(tmp_path, None)
    (tmp_path / "train.json").write_text("{not json")
    check_prompt_format(adapter, model_name="m", chat_template=True)


def test_another_chat_template_is_refused_naming_the_setting(tmp_path):
    adapter = _adapter_with_record(tmp_path, {"model": "m", "chat_template": True})
    with pytest.raises(ConfigError, match=r"chat template on .*pass --set model.chat_template=true$"):
        check_prompt_format(adapter, model_name="m", chat_template=False)
    with pytest.raises(ConfigError, match=r"pass chat_template=True$"):
        check_prompt_format(adapter, model_name=None, chat_template=False, where="adapter", hints=API_HINTS)


def test_another_base_model_is_refused_unless_the_model_is_already_loaded(tmp_path):
    adapter = _adapter_with_record(tmp_path, {"model": "m", "chat_template": False})
    with pytest.raises(ConfigError, match=r"trained on model 'm'.*pass --model m$"):
        check_prompt_format(adapter, model_name="other", chat_template=False)
    check_prompt_format(adapter, model_name=None, chat_template=False)  # a loaded model has no name to compare


def test_train_records_the_format_and_evaluate_refuses_another(tmp_path, tiny_model_dir, plain_adapter, capsys):
    common, _ = plain_adapter
    record = json.loads((tmp_path / "t" / "train.json").read_text())["prompt"]
    assert record == {"model": str(tiny_model_dir), "chat_template": False}
    capsys.readouterr()
    adapter = str(tmp_path / "t" / "adapter")
    out = tmp_path / "eval"
    assert main(["evaluate", *common, "--adapter", adapter, "--out", str(out),
                 "--set", "model.chat_template=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and adapter in err and "--set model.chat_template=false" in err
    assert not out.exists()
    assert main(["evaluate", *common, "--adapter", adapter, "--out", str(out)]) == 0  # the same format loads
