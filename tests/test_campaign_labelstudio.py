"""The Label Studio path against a real server: push -> annotate -> pull -> next round.

The test plays the annotator through the REST API, posting what the labelling UI posts when
a person submits or skips a task (``POST /api/tasks/{id}/annotations/`` with ``result``,
``was_cancelled`` and ``lead_time``). The server is started by :mod:`labelstudio_server`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from activelora.campaign import Campaign
from activelora.cli import main
from labelstudio_server import migrated_template, server_from_template, unavailable

from test_campaign import TINY, write_jsonl


@pytest.fixture(scope="session")
def labelstudio_template(tmp_path_factory):
    try:
        import httpx  # noqa: F401
        import label_studio_sdk  # noqa: F401
    except ImportError:
        unavailable("the Label Studio client is not installed: pip install 'activelora[labelstudio]'")
    return migrated_template(tmp_path_factory.mktemp("labelstudio-template"))


@pytest.fixture
def server(labelstudio_template, tmp_path, monkeypatch):
    running = server_from_template(labelstudio_template, tmp_path / "labelstudio")
    monkeypatch.setenv("LABEL_STUDIO_URL", running.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", running.token)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVELORA_CACHE", str(tmp_path / "cache"))


class Annotator:
    """A person in front of the labelling UI, as seen by the server's REST API."""

    def __init__(self, server):
        import httpx

        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Token {server.token}"}, timeout=60)

    def project(self, project_id: int) -> dict:
        answer = self.http.get(f"/api/projects/{project_id}/")
        answer.raise_for_status()
        return answer.json()

    def tasks(self, project_id: int) -> dict[str, dict]:
        """{example id: task} with the task's predictions."""
        answer = self.http.get("/api/tasks/", params={"project": project_id, "page_size": 1000, "fields": "all"})
        answer.raise_for_status()
        body = answer.json()
        tasks = body["tasks"] if isinstance(body, dict) else body
        out = {}
        for task in tasks:
            detail = self.http.get(f"/api/tasks/{task['id']}/")
            detail.raise_for_status()
            out[task["data"]["id"]] = detail.json()
        return out

    def submit(self, task_id: int, answer: str | None, *, lead_time: float, cancelled: bool = False,
               kind: str = "textarea") -> None:
        value = {"text": [answer]} if kind == "textarea" else {"choices": [answer]}
        result = [] if answer is None else [{"from_name": "answer", "to_name": "question", "type": kind, "value": value}]
        posted = self.http.post(f"/api/tasks/{task_id}/annotations/",
                                json={"result": result, "was_cancelled": cancelled, "lead_time": lead_time})
        assert posted.status_code == 201, posted.text


def make_campaign(tmp_path: Path, model: Path, *extra: str, name: str = "camp", task: str = "plain") -> Path:
    pool = write_jsonl(tmp_path / f"{name}-prompts.jsonl",
                       [{"id": f"{name}-{i}", "question": f"Is {i} an even number?"} for i in range(10)])
    folder = tmp_path / name
    assert main(["campaign", "init", str(folder), "--pool", str(pool), "--model", str(model), "--task", task,
                 "--batch-size", "4", "--stop-set", "3", *TINY, *extra]) == 0
    return folder


def labelstudio_next(folder: Path) -> int:
    return main(["campaign", "next", str(folder), "--labelstudio", "--quiet"])


def project_of(folder: Path) -> int:
    return Campaign.open(folder).state.data["labelstudio"]["project"]


def test_push_annotate_pull_next_round(tmp_path, server, tiny_model_dir, capsys):
    # STAR from its first query (no cold start), so that the second batch carries its scores.
    folder = make_campaign(tmp_path, tiny_model_dir, "--strategy", "star", "--set", "strategy.cold_start_rounds=0")
    assert labelstudio_next(folder) == 0
    assert "pushed to Label Studio project" in capsys.readouterr().out
    person = Annotator(server)
    project_id = project_of(folder)
    project = person.project(project_id)
    assert '<TextArea name="answer"' in project["label_config"]
    tasks = person.tasks(project_id)
    batch = [json.loads(line)["id"] for line in (folder / "batches" / "batch-0.jsonl").read_text().splitlines()]
    assert sorted(tasks) == sorted(batch)
    suggestions = {json.loads(line)["id"]: json.loads(line)["suggestion"]
                   for line in (folder / "batches" / "batch-0.jsonl").read_text().splitlines()}
    for example_id, task in tasks.items():
        if suggestions[example_id]:
            (prediction,) = task["predictions"]
            assert prediction["model_version"] == "round-0"
            assert prediction["result"][0]["value"]["text"] == [suggestions[example_id]]

    answered, skipped, disputed, untouched = batch
    person.submit(tasks[answered]["id"], "yes", lead_time=10.0)
    person.submit(tasks[skipped]["id"], None, lead_time=4.0, cancelled=True)
    person.submit(tasks[disputed]["id"], "no", lead_time=5.0)
    person.submit(tasks[disputed]["id"], "yes, it is", lead_time=6.0)  # a second annotator, later
    capsys.readouterr()
    assert main(["campaign", "import", str(folder), "--labelstudio"]) == 0
    out = capsys.readouterr().out
    assert "the latest submitted one is kept" in out
    assert f"conflict {disputed}: annotators disagree: kept 'yes, it is', not 'no'" in out
    state = Campaign.open(folder).state
    assert {i: r["answer"] for i, r in state.labels.items()} == {answered: "yes", disputed: "yes, it is"}
    assert list(state.skipped) == [skipped] and state.pending_ids() == [untouched]
    assert state.labels[answered]["seconds"] == 10.0 and state.labels[disputed]["seconds"] == 11.0
    assert state.annotation_seconds() == 25.0

    before = (folder / "state.json").read_bytes()
    assert main(["campaign", "import", str(folder), "--labelstudio"]) == 0  # pulling again changes nothing
    assert (folder / "state.json").read_bytes() == before

    assert labelstudio_next(folder) == 0
    state = Campaign.open(folder).state
    second = state.rounds[1]
    assert second["trained_on"] == 2 and second["annotation_seconds"] == 25.0
    assert len(second["ids"]) == 4 and not set(second["ids"]) & set(batch)
    tasks = person.tasks(project_id)
    assert len(tasks) == 8
    for example_id in second["ids"]:
        for prediction in tasks[example_id]["predictions"]:
            assert prediction["model_version"] == "round-1"
            assert prediction["score"] == pytest.approx(second["scores"][second["ids"].index(example_id)], rel=1e-6)

    capsys.readouterr()
    assert main(["campaign", "status", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "annotation time: 0.4 min" in out and "1 skipped" in out


def test_choice_tasks_get_choices(tmp_path, server, tiny_model_dir):
    folder = make_campaign(tmp_path, tiny_model_dir, "--strategy", "random", task="boolq")
    assert labelstudio_next(folder) == 0
    person = Annotator(server)
    project_id = project_of(folder)
    config = person.project(project_id)["label_config"]
    assert '<Choices name="answer"' in config and 'value="true"' in config and 'value="false"' in config
    tasks = person.tasks(project_id)
    first = sorted(tasks)[0]
    person.submit(tasks[first]["id"], "true", lead_time=2.0, kind="choices")
    assert main(["campaign", "import", str(folder), "--labelstudio"]) == 0
    assert Campaign.open(folder).state.labels[first]["answer"] == "true"


def test_refused_without_change(tmp_path, server, tiny_model_dir, capsys, monkeypatch):
    folder = make_campaign(tmp_path, tiny_model_dir, "--strategy", "random")
    other = make_campaign(tmp_path, tiny_model_dir, "--strategy", "random", name="other")
    assert labelstudio_next(folder) == 0 and labelstudio_next(other) == 0
    person = Annotator(server)
    for project_folder in (folder, other):
        for task in person.tasks(project_of(project_folder)).values():
            person.submit(task["id"], "an answer", lead_time=1.0)

    # The other project's export, downloaded as a file, is refused; this campaign's own works.
    def download(project_folder: Path, name: str) -> Path:
        body = person.http.get(f"/api/projects/{project_of(project_folder)}/export", params={"exportType": "JSON"})
        body.raise_for_status()
        path = tmp_path / name
        path.write_bytes(body.content)
        return path

    foreign, own = download(other, "other-export.json"), download(folder, "own-export.json")
    before = (folder / "state.json").read_bytes()
    capsys.readouterr()
    assert main(["campaign", "import", str(folder), str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other-export.json" in err and "another project" in err
    assert (folder / "state.json").read_bytes() == before

    def refused(argv: list[str], expected: str) -> None:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
        assert (folder / "state.json").read_bytes() == before
        assert sorted(p.name for p in (folder / "batches").iterdir()) == ["batch-0.csv", "batch-0.jsonl"]

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "wrong-key")
    refused(["campaign", "import", str(folder), "--labelstudio"], "refused the API key (HTTP 401)")
    refused(["campaign", "next", str(folder), "--labelstudio", "--quiet"], "refused the API key (HTTP 401)")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)

    # A labelling config the task cannot read: someone changed the project to choices.
    changed = person.http.patch(f"/api/projects/{project_of(folder)}/", json={"label_config": (
        '<View><Text name="question" value="$question"/><Choices name="answer" toName="question">'
        '<Choice value="an answer"/></Choices></View>')})
    assert changed.status_code == 200, changed.text
    refused(["campaign", "import", str(folder), "--labelstudio"], "cannot read its answers")

    server.stop()
    refused(["campaign", "import", str(folder), "--labelstudio"], "cannot reach Label Studio")
    refused(["campaign", "next", str(folder), "--labelstudio", "--quiet"], "cannot reach Label Studio")

    # Offline, the own project's export file still imports.
    assert main(["campaign", "import", str(folder), str(own)]) == 0
    assert len(Campaign.open(folder).state.labels) == 4
