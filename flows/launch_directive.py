"""launch-directive: a directive YAML → its steps and one tracked item per district × step.

Three kinds of file: a province's own directive; the Department's (``scope: national``), which
every province with districts loaded receives a copy of; and a province's addition to the
Department's (``extends:``): its own steps and earlier dates. Re-running creates nothing new;
running a higher ``revision:`` of a launched file applies the amended letter and says what it did.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow

from domain.directive import parse_directive, read_text
from domain.national import is_addition, parse_addition
from tidtam.app.national import apply_addition, launch_national
from tidtam.app.tracking import launch_directive as launch
from tidtam.infra.clock import instant_of
from tidtam.infra.db import get_engine, session_scope


@flow(name="launch-directive", log_prints=True)
def launch_directive(path: str, now: str | None = None) -> dict:
    """Load and validate the YAML, then create what is missing, as of ``now`` (ISO-8601 with
    offset; default: the current instant)."""
    text, source = read_text(Path(path)), path
    instant = instant_of(now)
    if is_addition(text):
        return _addition(text, source, instant)
    spec = parse_directive(text, source)
    with session_scope(get_engine()) as session:
        if spec.is_national:
            national = launch_national(session, spec, now=instant)
            summary = {"directive": spec.slug, "directive_id": national.directive.id,
                       "created_directive": national.created_directive,
                       "provinces": national.provinces, "created_items": national.created_items}
            amendment = national.amendment
        else:
            result = launch(session, spec, now=instant)
            summary = {"directive": spec.slug, "directive_id": result.directive.id,
                       "created_directive": result.created_directive,
                       "created_items": result.created_items}
            amendment = result.amendment
        summary["revision"] = spec.revision
        summary["amendment"] = amendment.describe() if amendment else None
    where = f" in {summary['provinces']} provinces" if "provinces" in summary else ""
    print(f"launch-directive {spec.slug}: {summary['created_items']} new tracked items{where}")
    if amendment:
        print(f"launch-directive {spec.slug}: amended letter applied: {amendment.summary_en()}")
    return summary


def _addition(text: str, source: str, instant: datetime) -> dict:
    addition = parse_addition(text, source)
    with session_scope(get_engine()) as session:
        result = apply_addition(session, addition, now=instant, source=source)
        summary = {"directive": result.directive.slug, "directive_id": result.directive.id,
                   "extends": addition.extends, "added_steps": result.added_steps,
                   "moved_steps": {code: [str(old), str(new)]
                                   for code, (old, new) in result.moved_steps.items()},
                   "created_items": result.created_items}
    print(f"launch-directive {summary['directive']} (addition to {addition.extends}): "
          f"steps added {result.added_steps or '-'}, dates moved {list(result.moved_steps) or '-'}, "
          f"{result.created_items} new tracked items")
    return summary


if __name__ == "__main__":
    import sys

    launch_directive(sys.argv[1])
