"""launch-directive: a directive YAML → its steps and one tracked item per district × step.

Re-running creates nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow

from domain.directive import load_directive
from tidtam.db import get_engine, session_scope
from tidtam.tracking import launch_directive as launch


@flow(name="launch-directive", log_prints=True)
def launch_directive(path: str, now: str | None = None) -> dict:
    """Load and validate the YAML, then create what is missing."""
    spec = load_directive(Path(path))
    instant = datetime.fromisoformat(now) if now else datetime.now(UTC)
    with session_scope(get_engine()) as session:
        result = launch(session, spec, now=instant)
        summary = {"directive": spec.slug, "directive_id": result.directive.id,
                   "created_directive": result.created_directive,
                   "created_items": result.created_items}
    print(f"launch-directive {spec.slug}: {summary['created_items']} new tracked items")
    return summary


if __name__ == "__main__":
    import sys

    launch_directive(sys.argv[1])
