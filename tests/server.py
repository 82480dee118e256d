"""Test helpers (not a test module): a real ``hotoku serve`` process, and a notification receiver.

The in-process TestClient cannot catch what only a real deployment shows: the CLI's
environment handling, uvicorn, a second process reading the same database after a
crash, or clients that open their own sockets. ``LiveServer`` runs the server exactly
as an operator would, on a free loopback port, and can stop it politely (SIGTERM) or
not (SIGKILL) and start it again on the same database and port.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0
# ``hotoku.cli`` has no ``if __name__ == "__main__"`` guard, so ``python -m hotoku.cli`` would
# import it and exit silently; call its entry point instead (the same function the
# ``hotoku`` console script calls), with this interpreter so the venv is used.
SERVE_CMD = [sys.executable, "-c", "from hotoku.cli import main; main()", "serve"]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """One ``hotoku serve`` subprocess; ``url`` stays the same across restarts."""

    def __init__(self, database_url: str, data_dir: Path, token: str, *, port: int | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.data_dir = Path(data_dir)
        self.token = token
        self.port = port or free_port()
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _env(self) -> dict[str, str]:
        # Drop any HOTOKU_* the developer has exported so the run depends only on what we pass.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTOKU_")}
        env.update({
            "HOTOKU_DATABASE_URL": self.database_url,
            "HOTOKU_DATA_DIR": str(self.data_dir),
            "HOTOKU_HOST": "127.0.0.1",
            "HOTOKU_PORT": str(self.port),
            "HOTOKU_ADMIN_TOKEN": self.token,
            "HOTOKU_WORKERS": "1",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        if self.running:
            raise RuntimeError("server already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            # cwd is the data dir so that a stray ./.env in the checkout is not read by Settings.
            self.proc = subprocess.Popen(SERVE_CMD, cwd=self.data_dir, env=self._env(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()  # the child holds its own descriptor
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hotoku serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.1)
        self.stop(kill=True)
        raise RuntimeError(f"hotoku serve not healthy after {START_DEADLINE_S}s:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (a graceful shutdown) or SIGKILL (a crash); SIGKILL anyway if SIGTERM hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=STOP_DEADLINE_S)
        elif kill:
            self._signal(signal.SIGKILL)  # the supervisor is gone; its workers may not be
        self.proc = None

    def _signal(self, sig: signal.Signals) -> None:
        # The server leads its own process group (start_new_session), so signal the group:
        # with HOTOKU_WORKERS > 1 a SIGKILL to the uvicorn supervisor alone would leave its
        # worker processes running, holding the port and the database.
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.stop(kill=True)

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class NotificationReceiver:
    """A tiny HTTP endpoint a broker can notify; collects (headers, JSON body) pairs."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[dict[str, str], Any]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                received.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:  # keep test output clean
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/notify"

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> Any:
        """The first notification body for which ``predicate(body)`` holds, or AssertionError."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                _headers, body = self.received.get(timeout=left)
            except queue.Empty:
                break
            if predicate(body):
                return body
        raise AssertionError(f"no matching notification within {timeout}s")

    def __enter__(self) -> NotificationReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
