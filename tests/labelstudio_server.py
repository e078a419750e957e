"""A real Label Studio server for the tests, on 127.0.0.1, from its own virtual environment.

The Makefile installs ``label-studio`` in ``.venv-labelstudio`` (a service, not a library of
ours). What starting it here needs, learnt on this machine:

- ``--internal-host 127.0.0.1`` is the bind address (``--host`` is only a URL prefix);
- ``LATEST_VERSION_CHECK=false`` and empty ``SENTRY_DSN``/``FRONTEND_SENTRY_DSN``: offline, quiet;
- ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true`` with ``--username/--password/--user-token`` at
  the first start, or token auth answers 401;
- ``HOME`` and ``LABEL_STUDIO_BASE_DATA_DIR`` in temporary folders, or it writes under ~/.local;
- the first start migrates SQLite (about 45 s idle, minutes on busy cores), so the suite
  migrates once per session and each test starts on a copy of that data folder;
- stop through the process's own pid: SIGTERM, then SIGKILL after a timeout (a background
  process of a non-interactive shell ignores SIGINT).

Without the server's environment the tests skip, except when ``ACTIVELORA_REQUIRE_LABELSTUDIO=1``
(``make test`` sets it): then a missing server fails the suite instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_BIN = Path(os.environ.get("ACTIVELORA_LABELSTUDIO_BIN", ROOT / ".venv-labelstudio" / "bin" / "label-studio"))
REQUIRE_ENV = "ACTIVELORA_REQUIRE_LABELSTUDIO"
USERNAME, PASSWORD, TOKEN = "annotator@example.com", "not-a-secret-1", "activelora-test-token-0123456789"
FIRST_START_TIMEOUT = 600.0  # migrations on two busy cores
START_TIMEOUT = 180.0


def unavailable(reason: str) -> None:
    """Skip, or fail where the suite was told the server must be there."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: run `make test`, which installs it)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the server's own process group, then SIGKILL if it has not gone."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


def _environment(home: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
    env.update({
        "HOME": str(home), "LABEL_STUDIO_BASE_DATA_DIR": str(data), "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "PYTHONWARNINGS": "ignore",
    })
    return env


def start(home: Path, data: Path, log: Path, *, first: bool) -> Server:
    """Start a server on a free port and wait until its API answers our token."""
    import httpx

    if not SERVER_BIN.is_file():
        unavailable(f"Label Studio server not installed at {SERVER_BIN} (make labelstudio)")
    home.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [str(SERVER_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    if first:
        argv += ["--username", USERNAME, "--password", PASSWORD, "--user-token", TOKEN]
    handle = log.open("wb")
    process = subprocess.Popen(argv, env=_environment(home, data), stdout=handle, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True, cwd=home)
    server = Server(url=f"http://127.0.0.1:{port}", token=TOKEN, process=process, log=log)
    deadline = time.monotonic() + (FIRST_START_TIMEOUT if first else START_TIMEOUT)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"Label Studio exited with code {process.returncode} while starting:\n{tail}", pytrace=False)
        try:
            answer = httpx.get(f"{server.url}/api/current-user/whoami",
                               headers={"Authorization": f"Token {TOKEN}"}, timeout=5)
            if answer.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    server.stop()
    pytest.fail(f"Label Studio did not answer within {deadline:.0f} s; log: {log}", pytrace=False)


def migrated_template(folder: Path) -> Path:
    """Start once with the user and token (migrating the database), stop; the data folder."""
    data = folder / "data"
    server = start(folder / "home", data, folder / "first-start.log", first=True)
    server.stop()
    return data


def server_from_template(template: Path, folder: Path) -> Server:
    """A fresh server on a copy of the migrated data folder (a few seconds)."""
    data = folder / "data"
    shutil.copytree(template, data)
    return start(folder / "home", data, folder / "server.log", first=False)
