"""Finding or starting the Prefect server that runs tidtam's flows."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

LOCAL_API = "http://127.0.0.1:{port}/api"


def healthy(api_url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def reachable_api_url(port: int = 4200) -> str | None:
    """PREFECT_API_URL if it answers, else a local server on `port` if one answers, else None."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        return configured if healthy(configured) else None
    local = LOCAL_API.format(port=port)
    return local if healthy(local) else None


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    """Environment for `prefect server start`: SQLite under the data dir, no telemetry."""
    home = (data_dir / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": LOCAL_API.format(port=port),
    })
    # tidtam's events carry the instant of the change they report (the one clock): the demo's are
    # dated August 2024, and Prefect's default 7-day retention would delete them within the hour.
    # Ten years keeps a campaign's history; a national deployment sets its own.
    env.setdefault("PREFECT_SERVER_EVENTS_RETENTION_PERIOD", "P3650D")
    env.setdefault("PREFECT_SERVER_DATABASE_CONNECTION_URL",
                   f"sqlite+aiosqlite:///{home / 'prefect.db'}")
    return env


def wait_healthy(api_url: str, timeout: float = 90.0, is_alive=lambda: True) -> bool:
    """Poll until the server answers, the deadline passes, or the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive():
        if healthy(api_url):
            return True
        time.sleep(0.5)
    return False
