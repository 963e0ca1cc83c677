"""One pass of the outbox pump in a process of its own, for the crash test.

    python tests/e2e/pump_process.py DB_URL LINE_API_BASE TOKEN NOW_ISO

The same code path as the web process's APScheduler job (``deliver_due`` with the LINE
transport); prints the pass's result.
"""

from __future__ import annotations

import sys
from datetime import datetime

import httpx
from sqlmodel import Session

from notifications.line import LineTransport
from notifications.pump import deliver_due
from tidtam.infra.db import engine_for


def main(url: str, line_api_base: str, token: str, now: str) -> None:
    engine = engine_for(url)
    with httpx.Client(timeout=10) as client:
        transports = {"line": LineTransport(client, token, line_api_base)}
        result = deliver_due(lambda: Session(engine), transports, datetime.fromisoformat(now))
    print(result, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
