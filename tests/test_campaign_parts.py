"""The campaign's parts without a model: Cohen's kappa against a float64 reference, the
stopping rules, the state's rules for labels, and the Label Studio export policy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.campaign.importers import rows_from_labelstudio
from activelora.campaign.labelstudio import check_label_config, label_config, prediction_result
from activelora.campaign.state import AnswerRow, CampaignState
from activelora.campaign.stopping import StopSettings, cohen_kappa, stabilising, stop_reasons
from activelora.data.example import Example
from activelora.data.tasks import get_task
from activelora.errors import ConfigError, DataError


def kappa_reference(a, b) -> float:
    """Cohen's kappa from the contingency table, in float64 (an independent formulation)."""
    categories = sorted({*a, *b}, key=repr)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)), dtype=np.float64)
    for x, y in zip(a, b):
        table[index[x], index[y]] += 1
    table /= table.sum()
    p_o = np.trace(table)
    p_e = float(table.sum(axis=1) @ table.sum(axis=0))
    return 1.0 if np.isclose(p_e, 1.0) else (p_o - p_e) / (1 - p_e)


labels = st.sampled_from(["1", "2", "3", "yes", None])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(labels, labels), min_size=1, max_size=40))
def test_cohen_kappa_matches_the_contingency_table_formula(pairs):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    assert cohen_kappa(a, b) == pytest.approx(kappa_reference(a, b), abs=1e-12)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa(b, a), abs=1e-12)  # symmetric


def test_cohen_kappa_known_values():
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    assert cohen_kappa(["a", "a"], ["a", "a"]) == 1.0  # one shared category: full agreement
    # p_o = 0.5, p_e = 0.5: no better than chance
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == pytest.approx(0.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


def test_stopping_rules():
    rounds = [{"stop_kappa": None, "dev_accuracy": 0.2}, {"stop_kappa": 0.995, "dev_accuracy": 0.4},
              {"stop_kappa": 0.992, "dev_accuracy": 0.5}]
    loose = StopSettings(budget=10, target_accuracy=0.5, kappa_threshold=0.99, window=2)
    assert stabilising([r["stop_kappa"] for r in rounds], loose)
    assert not stabilising([0.995, 0.98, 0.999], loose)
    assert not stabilising([0.999], loose)  # fewer rounds than the window
    assert len(stop_reasons(rounds, asked=10, settings=loose)) == 3
    strict = StopSettings(budget=11, target_accuracy=0.6, kappa_threshold=0.999, window=2)
    assert stop_reasons(rounds, asked=10, settings=strict) == []


# --------------------------------------------------------------------------- state rules


def test_state_keeps_labels_and_history():
    state = CampaignState()
    state.apply([AnswerRow("a", "1", "f:1", 3.0), AnswerRow("b", None, "f:2", 1.0)], source="f")
    report = state.apply([AnswerRow("a", "2", "g:1")], source="g")
    assert [c.kind for c in report.conflicts] == ["existing label"] and state.labels["a"]["answer"] == "1"
    again = state.apply([AnswerRow("a", "2", "g:1")], source="g")
    assert not again.changed  # the same conflict is not recorded twice
    assert len(state.data["conflicts"]) == 1
    state.apply([AnswerRow("a", "2", "h:1", 4.0)], source="h", replace=True)
    assert state.labels["a"]["answer"] == "2" and state.data["history"][0]["answer"] == "1"
    assert state.annotation_seconds() == 8.0  # the replaced answer's time still counts
    unchanged = state.apply([AnswerRow("a", " 2 ", "i:1")], source="i")
    assert unchanged.unchanged == ["a"] and not unchanged.changed


# --------------------------------------------------------------------------- Label Studio exports

POOL = {i: Example(i, f"question {i}", None) for i in ("x", "y", "z", "w")}


def annotation(ident, text, *, cancelled=False, lead=1.0, when="2026-01-01T00:00:00Z", control="answer"):
    result = [] if text is None else [{"from_name": control, "to_name": "question", "type": "textarea",
                                       "value": {"text": [text]}}]
    return {"id": ident, "result": result, "was_cancelled": cancelled, "lead_time": lead, "updated_at": when}


def task(example_id, annotations, campaign="c1", project=7):
    return {"id": hash(example_id) % 1000, "project": project, "annotations": annotations,
            "data": {"id": example_id, "question": "q", "activelora_campaign": campaign}}


def read(tasks, **kw):
    return rows_from_labelstudio(tasks, pool=POOL, task=get_task("plain"), campaign_id="c1", project_id=7,
                                 source="export", **kw)


def test_labelstudio_policy():
    sheet = read([
        task("x", [annotation(1, "old", when="2026-01-01T00:00:00Z", lead=2.0),
                   annotation(2, "new", when="2026-01-02T00:00:00Z", lead=3.0)]),
        task("y", [annotation(3, None, cancelled=True, lead=4.0)]),
        task("z", [annotation(4, None, cancelled=True, lead=1.0), annotation(5, "kept", lead=1.5)]),
        task("w", []),
    ])
    rows = {r.id: r for r in sheet.rows}
    assert rows["x"].answer == "new" and rows["x"].seconds == 5.0
    assert rows["y"].skip and rows["y"].seconds == 4.0
    assert rows["z"].answer == "kept" and rows["z"].seconds == 2.5
    assert "w" not in rows and sheet.pending == 1
    (conflict,) = sheet.annotator_conflicts
    assert (conflict.id, conflict.kept, conflict.offered, conflict.kind) == ("x", "new", "old", "annotators")


@pytest.mark.parametrize("tasks, expected", [
    ([task("x", [annotation(1, "a")], campaign="other")], "another project"),
    ([task("x", [annotation(1, "a")], project=8)], "another project"),
    ([task("nope", [annotation(1, "a")])], "unknown id 'nope'"),
    ([task("x", [annotation(1, None)])], "empty answer"),
    ([task("x", [annotation(1, "a", control="label")])], "not one this campaign can read"),
    ([{"id": 1, "annotations": []}], "not a Label Studio task"),
])
def test_labelstudio_export_refusals(tasks, expected):
    with pytest.raises(DataError, match=expected):
        read(tasks)


def test_labelling_configs_fit_their_tasks():
    for name in ("plain", "arith", "gsm8k", "boolq", "obqa"):
        check_label_config(label_config(name), name, "made here")
    with pytest.raises(ConfigError, match="TextArea"):
        check_label_config(label_config("boolq"), "plain", "project 1")
    with pytest.raises(ConfigError, match="lack C, D"):
        check_label_config(label_config("obqa").replace('<Choice value="C"/><Choice value="D"/>', ""), "obqa", "p")
    with pytest.raises(ConfigError, match="not valid XML"):
        check_label_config("<View>", "plain", "p")
    assert prediction_result("boolq", "The correct answer is true.", get_task("boolq"))[0]["value"] == {"choices": ["true"]}
    assert prediction_result("boolq", "it depends", get_task("boolq")) == []
