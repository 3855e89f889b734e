"""A project's .env and pyproject.toml on a real server: the app named in [tool.devserver] served by a bare
``devserver``, the file's variables before the app's import, an exported one winning, a live edit restarting."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from pathlib import Path

from conftest import LiveServer
from realapp import DEADLINE, get, user_env

MYSHOP = """
import os

GREETING = os.environ["GREETING"]  # read at import, as settings modules do


def create_app():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{GREETING} {os.environ['EXPORTED']}".encode()]
    return app
"""


class KeepAliveClient:
    """One client on one keep-alive connection (reopened when the server closes it), until stopped."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.outcomes: Counter[str] = Counter()
        self.bodies: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=DEADLINE)
        while not self._stop.is_set():
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                self.bodies.append(response.read().decode())
                self.outcomes[str(response.status)] += 1
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()  # an idle connection closed by a worker that ended: a browser retries it too
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=DEADLINE)
            except (OSError, http.client.HTTPException) as exc:
                self.outcomes[f"failed: {type(exc).__name__}"] += 1
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)


def test_dotenv_precedence_and_a_live_edit(tmp_path: Path) -> None:
    (tmp_path / "myshop.py").write_text(MYSHOP)
    (tmp_path / "pyproject.toml").write_text('[tool.devserver]\napp = "myshop:create_app()"\n')
    (tmp_path / ".env").write_text("GREETING=hello\nEXPORTED=from-file\n")
    env = user_env()
    env["EXPORTED"] = "from-shell"
    server = LiveServer(["--workers", "2"], tmp_path, env).start(timeout=DEADLINE)
    try:
        status, _, body = get(server, "/")
        assert (status, body) == (200, "hello from-shell"), server.lines
        assert not any("hello" in line or "from-file" in line for line in server.lines)  # values never logged
        client = KeepAliveClient(server)
        mark = len(server.lines)
        (tmp_path / ".env").write_text("GREETING=bonjour\nEXPORTED=from-file\n")
        server.wait_for(r"\.env changed: restarting workers", timeout=DEADLINE, start=mark)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not (client.bodies and client.bodies[-1].startswith("bonjour")):
            time.sleep(0.05)
        client.stop()
        assert client.bodies and client.bodies[-1] == "bonjour from-shell", server.lines[-20:]
        assert set(client.outcomes) == {"200"}, client.outcomes
        # Once switched, every worker has the new value (no worker kept the old environment).
        assert {get(server, "/")[2] for _ in range(8)} == {"bonjour from-shell"}
    finally:
        server.stop()
