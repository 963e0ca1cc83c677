"""A PostgreSQL server of the test's own, on a port of its own, that the test stops and starts.

``initdb`` into a new folder under the system's temporary directory, then ``pg_ctl``. The
binaries are PostgreSQL's own (``initdb`` on PATH, else the newest /usr/lib/postgresql/*/bin).
PostgreSQL refuses to run as root: as root (these machines and CI run the tests as root) every
PostgreSQL command runs as the ``postgres`` system user through ``runuser``, and the folder is
given to that user. Without the binaries (or, as root, without that user) the test is skipped
locally and fails with CI=true (``tests.conftest.unavailable``).

Durability as in production except ``fsync=off`` (faster on a shared disk): the tests stop and
restart the server (fast or immediate shutdown), never the machine, so every acknowledged
commit is in the WAL that the restarted server reads, fsync or not.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import unavailable


def postgres_bin() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, else the newest Debian-style installation."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)])
    return versions[-1].parent if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One server: ``start``, ``stop``, ``restart``; ``url(name)`` for a database on it."""

    def __init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            unavailable("PostgreSQL's initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin)")
        self.bin = bindir
        self.as_user: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="tidtam-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root)
                unavailable("running as root, and there is no 'postgres' user to run PostgreSQL")
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            self.as_user = [runuser, "-u", "postgres", "--"]
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = off\n")

    def _run(self, program: str, *args: str) -> str:
        result = subprocess.run([*self.as_user, str(self.bin / program), *args], cwd=self.root,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}\n{self.server_log()}")
        return result.stdout

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t",
                  "60", "restart")

    def running(self) -> bool:
        result = subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data),
                                 "status"], cwd=self.root, capture_output=True, timeout=60)
        return result.returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
