"""A real `prefect server start` a test can stop and start again on the same database.

Like ``tests/flows/test_automations.py``'s module fixture (a fresh server on a free port, its
SQLite under a temporary folder), with ``stop`` and ``start`` so a test can take the server away
and bring it back with everything it stored.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tidtam.ops.prefect_server import server_env, wait_healthy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """One Prefect server: its folder (and database) and port stay the same across restarts."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir, self.port = data_dir, port or free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 90) -> None:
        prefect = str(Path(sys.executable).with_name("prefect"))
        self._log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=server_env(self.data_dir, self.port), stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_healthy(self.api, timeout=timeout, is_alive=lambda: self.proc.poll() is None):
            log = (self.data_dir / "server.log").read_text(errors="replace")[-3000:]
            self.stop()
            pytest.fail(f"the Prefect server did not start:\n{log}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
