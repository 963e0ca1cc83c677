"""One pass of the outbox pump in a process of its own, for the crash test.

    python tests/e2e/pump_process.py DB_URL LINE_API_BASE TOKEN NOW_ISO

The same code path as the web process's APScheduler job (``deliver_due`` with the transports
``transports_from_settings`` builds: LINE is ``AsyncLineTransport``, sending on the pump's own
loop); prints the pass's result.
"""

from __future__ import annotations

import sys
from datetime import datetime

import httpx
from sqlmodel import Session

from notifications.pump import close_transports, deliver_due
from tidtam.infra.db import engine_for
from tidtam.infra.pump import transports_from_settings
from tidtam.infra.settings import Settings


def main(url: str, line_api_base: str, token: str, now: str) -> None:
    engine = engine_for(url)
    settings = Settings(_env_file=None, line_channel_access_token=token,
                        line_api_base=line_api_base)
    with httpx.Client(timeout=10) as client:
        transports = transports_from_settings(settings, client)
        try:
            result = deliver_due(lambda: Session(engine), transports,
                                 datetime.fromisoformat(now))
        finally:
            close_transports(transports)
    print(result, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
