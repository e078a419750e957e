"""A campaign's Label Studio project, through the official client (``label-studio-sdk``).

The server and key come from the client's own environment variables, ``LABEL_STUDIO_URL``
and ``LABEL_STUDIO_API_KEY``. The project is created on first use, titled with the campaign's
id so that it is found again (also after a crash before its id was saved). Its labelling
config suits the task: a text area for free answers, choices for ``boolq`` and ``obqa``.
Each task carries the example in ``data`` (``id``, ``question``, the campaign's id and the
round) and the model's answer as a prediction (pre-annotation) with ``score`` = the
uncertainty and ``model_version`` = the round.

Every failure of the server, the network or the key becomes one :class:`LabelStudioError` line.
"""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
from typing import Any, Iterator
from xml.sax.saxutils import quoteattr

from ..errors import ActiveLoraError, ConfigError
from .importers import ANSWER_CONTROL, CAMPAIGN_FIELD, ROUND_FIELD, read_export_json

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
INSTALL_HINT = "pip install 'activelora[labelstudio]'"
QUESTION_CONTROL = "question"

# Tasks whose answers are one of a few values get choices; the rest a text area.
CHOICES = {"boolq": ("true", "false"), "obqa": ("A", "B", "C", "D")}


class LabelStudioError(ActiveLoraError, ConnectionError):
    """The Label Studio server is unreachable, refused the key, or answered with an error."""


def label_config(task_name: str) -> str:
    """The labelling config for a task (Label Studio's XML)."""
    choices = CHOICES.get(task_name)
    if choices:
        options = "".join(f"<Choice value={quoteattr(c)}/>" for c in choices)
        control = (f'<Choices name="{ANSWER_CONTROL}" toName="{QUESTION_CONTROL}" choice="single" '
                   f'showInline="true" required="true">{options}</Choices>')
    else:
        control = (f'<TextArea name="{ANSWER_CONTROL}" toName="{QUESTION_CONTROL}" editable="true" '
                   'maxSubmissions="1" rows="4" required="true"/>')
    return ("<View>"
            '<Header value="Question"/>'
            f'<Text name="{QUESTION_CONTROL}" value="$question"/>'
            '<Header value="Answer (the model\'s suggestion is filled in: correct it, or skip)"/>'
            f"{control}</View>")


def check_label_config(xml: str, task_name: str, where: str) -> None:
    """Refuse a labelling config whose answers this task cannot read: it must have a control
    named ``answer`` on the ``question`` text, a text area, or for choice tasks choices
    holding every valid answer."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ConfigError(f"{where}: the labelling config is not valid XML ({exc})") from None
    control = next((el for el in root.iter() if el.get("name") == ANSWER_CONTROL), None)
    expected = "Choices" if task_name in CHOICES else "TextArea"
    if control is None or control.tag != expected:
        found = f"a <{control.tag}>" if control is not None else "none"
        raise ConfigError(f"{where}: the labelling config needs a <{expected} name=\"{ANSWER_CONTROL}\"> for "
                          f"the {task_name} task (found {found}); this campaign cannot read its answers")
    if expected == "Choices":
        values = {c.get("value") for c in control.iter("Choice")}
        missing = [c for c in CHOICES[task_name] if c not in values]
        if missing:
            raise ConfigError(f"{where}: the labelling config's choices lack {', '.join(missing)} "
                              f"for the {task_name} task")


def prediction_result(task_name: str, suggestion: str, task) -> list[dict[str, Any]]:
    """The pre-annotation's ``result``: the suggestion as text, or as a choice the task reads."""
    if task_name in CHOICES:
        choice = task.extract(suggestion)
        if choice not in CHOICES[task_name]:
            return []
        return [{"from_name": ANSWER_CONTROL, "to_name": QUESTION_CONTROL, "type": "choices",
                 "value": {"choices": [choice]}}]
    if not suggestion:
        return []
    return [{"from_name": ANSWER_CONTROL, "to_name": QUESTION_CONTROL, "type": "textarea",
             "value": {"text": [suggestion]}}]


class LabelStudioProject:
    """The link between one campaign and its project on a Label Studio server."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0):
        try:
            from label_studio_sdk import LabelStudio
        except ImportError:
            raise ConfigError(f"Label Studio support needs the optional client: {INSTALL_HINT}") from None
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout, max_retries=0)

    @classmethod
    def from_env(cls) -> "LabelStudioProject":
        url, key = os.environ.get(URL_ENV, "").strip(), os.environ.get(KEY_ENV, "").strip()
        missing = [name for name, value in ((URL_ENV, url), (KEY_ENV, key)) if not value]
        if missing:
            raise ConfigError(f"--labelstudio: set {' and '.join(missing)} (the server's address and your "
                              "API key, from Label Studio's Account & Settings page)")
        return cls(url, key)

    @contextlib.contextmanager
    def _talking(self, what: str) -> Iterator[None]:
        """Turn the client's and the network's exceptions into one line naming the server."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except httpx.TimeoutException:
            raise LabelStudioError(f"Label Studio at {self.url} did not answer within {self.timeout:.0f} s "
                                   f"while {what}") from None
        except httpx.HTTPError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LabelStudioError(f"cannot reach Label Studio at {self.url} ({reason}) while {what}; "
                                   f"is the server running, and is {URL_ENV} right?") from None
        except ApiError as exc:
            status = exc.status_code
            if status in (401, 403):
                raise LabelStudioError(f"Label Studio at {self.url} refused the API key (HTTP {status}) "
                                       f"while {what}; check {KEY_ENV}") from None
            body = exc.body if isinstance(exc.body, str) else str(exc.body)
            first = body.strip().splitlines()[0][:200] if body and body.strip() else ""
            raise LabelStudioError(f"Label Studio at {self.url} answered HTTP {status} while {what}"
                                   f"{': ' + first if first else ''}") from None

    # ------------------------------------------------------------------ project

    def check(self) -> None:
        """Reach the server with the key, before any slow work."""
        with self._talking("checking the server and key"):
            self._client.users.whoami()

    @staticmethod
    def title(campaign) -> str:
        return f"activelora {campaign.folder.name} [{campaign.settings.id}]"

    def project(self, campaign, state) -> int:
        """The campaign's project id: saved in the state, found by title, or created now. Its
        labelling config is checked; ``state`` records the project."""
        task_name = campaign.settings.task
        saved = state.data.get("labelstudio")
        with self._talking("finding the campaign's project"):
            if saved and saved.get("url") == self.url:
                project_id = int(saved["project"])
            else:
                marker = f"[{campaign.settings.id}]"
                found = [p for p in self._client.projects.list() if marker in (p.title or "")]
                if found:
                    project_id = found[0].id
                else:
                    created = self._client.projects.create(
                        title=self.title(campaign), label_config=label_config(task_name),
                        description=f"Active-learning campaign {campaign.folder} ({task_name} task)")
                    project_id = created.id
            project = self._client.projects.get(project_id)
        check_label_config(project.label_config or "", task_name, f"Label Studio project {project_id}")
        state.data["labelstudio"] = {"url": self.url, "project": project_id}
        return project_id

    def saved_project(self, campaign, state) -> int:
        """The project this campaign pushed to; an error if it never pushed."""
        saved = state.data.get("labelstudio")
        if not saved:
            raise ConfigError(f"{campaign.folder}: no Label Studio project yet; push a batch first with "
                              f"activelora campaign next {campaign.folder} --labelstudio")
        if saved.get("url") != self.url:
            raise ConfigError(f"{campaign.folder}: its Label Studio project is on {saved.get('url')}, "
                              f"but {URL_ENV} is {self.url}")
        with self._talking(f"reading project {saved['project']}"):
            project = self._client.projects.get(int(saved["project"]))
        check_label_config(project.label_config or "", campaign.settings.task,
                           f"Label Studio project {saved['project']}")
        return int(saved["project"])

    # ------------------------------------------------------------------ tasks

    def push_batch(self, state, campaign, r: int, batch: list[dict[str, Any]]) -> dict[str, int]:
        """Create one task per batch row; returns {example id: task id}. Tasks of round ``r``
        left by an interrupted earlier push are deleted first, so a retry never duplicates."""
        from ..data.tasks import get_task

        task_name = campaign.settings.task
        task = get_task(task_name)
        project_id = self.project(campaign, state)
        with self._talking(f"pushing batch {r} to project {project_id}"):
            for old in self._client.tasks.list(project=project_id, fields="all"):
                data = old.data or {}
                if data.get(CAMPAIGN_FIELD) == campaign.settings.id and data.get(ROUND_FIELD) == r:
                    self._client.tasks.delete(id=str(old.id))
            payload = []
            for row in batch:
                item = {"data": {"id": row["id"], "question": row["question"], CAMPAIGN_FIELD: campaign.settings.id,
                                 ROUND_FIELD: r}}
                result = prediction_result(task_name, row["suggestion"], task)
                if result:
                    item["predictions"] = [{"model_version": f"round-{r}", "result": result,
                                            **({"score": float(row["score"])} if row["score"] is not None else {})}]
                payload.append(item)
            response = self._client.projects.import_tasks(id=project_id, request=payload, return_task_ids=True)
        task_ids = list(response.task_ids or [])
        if len(task_ids) != len(batch):
            raise LabelStudioError(f"Label Studio at {self.url} created {len(task_ids)} tasks for a batch of "
                                   f"{len(batch)} in project {project_id}")
        return {row["id"]: int(t) for row, t in zip(batch, task_ids)}

    def export(self, project_id: int) -> list[dict[str, Any]]:
        """Every task of the project with its annotations (Label Studio's JSON export)."""
        with self._talking(f"exporting project {project_id}"):
            body = b"".join(self._client.projects.exports.download_sync(
                project_id, export_type="JSON", download_all_tasks=True))
        return read_export_json(body, f"Label Studio project {project_id} export")
