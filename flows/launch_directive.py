"""launch-directive: a directive YAML → its steps and one tracked item per district × step.

Three kinds of file: a province's own directive; the Department's (``scope: national``), which
every province with districts loaded receives a copy of; and a province's addition to the
Department's (``extends:``): its own steps and earlier dates. Re-running creates nothing new;
running a higher ``revision:`` of a launched file applies the amended letter and says what it did.
A tracked run is named `launch-directive · สก ๐๐๑๙/ว ๒๕๒ · 12 ก.ค. 2567 10:00`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, task
from pydantic import BaseModel

from domain.directive import parse_directive, read_text
from domain.national import is_addition, parse_addition
from flows._common import Instant, call, named, resolve_now, run_logger, run_parameters
from flows._runs import TASK_RETRIES
from tidtam.app.national import apply_addition, launch_national
from tidtam.app.tracking import launch_directive as launch
from tidtam.infra.db import get_engine, session_scope

FLOW = "launch-directive"


class LaunchReport(BaseModel):
    """What a launch did. A directive (its own or the Department's) fills ``created_directive``,
    ``revision`` and ``amendment`` (``provinces`` for the Department's); an addition fills
    ``extends``, ``added_steps`` and ``moved_steps``."""

    directive: str
    directive_id: int
    created_items: int
    created_directive: bool | None = None
    provinces: int | None = None
    revision: int | None = None
    amendment: dict | None = None  # the amendment applied (its audit record), if any
    amendment_summary: str | None = None  # the same in one line, for a command's output
    extends: str | None = None
    added_steps: list[str] | None = None
    moved_steps: dict[str, list[str]] | None = None


def _run_name() -> str:
    parameters = run_parameters()
    return named(FLOW, parameters.get("now"), _letter(parameters.get("path")))


def _letter(path: str | None) -> str | None:
    """The letter's reference number, else the file's name (a bad file fails in the run)."""
    if not path:
        return None
    try:
        text = read_text(Path(path))
        if is_addition(text):
            return f"{parse_addition(text, path).extends} + {Path(path).name}"
        return parse_directive(text, path).reference_no
    except Exception:  # noqa: BLE001 - a name must not fail the run
        return Path(path).name


@task(name="launch", **TASK_RETRIES)
def launch_spec(text: str, source: str, instant: datetime) -> LaunchReport:
    """Store the directive and create what is missing (national: a copy per province)."""
    spec = parse_directive(text, source)
    with session_scope(get_engine()) as session:
        if spec.is_national:
            result = launch_national(session, spec, now=instant)
            provinces = result.provinces
        else:
            result = launch(session, spec, now=instant)
            provinces = None
        amendment = result.amendment
        return LaunchReport(directive=spec.slug, directive_id=result.directive.id,
                            created_directive=result.created_directive, provinces=provinces,
                            created_items=result.created_items, revision=spec.revision,
                            amendment=amendment.describe() if amendment else None,
                            amendment_summary=amendment.summary_en() if amendment else None)


@task(name="apply-addition", **TASK_RETRIES)
def launch_addition(text: str, source: str, instant: datetime) -> LaunchReport:
    """Merge a province's addition into its copy of the Department's directive."""
    addition = parse_addition(text, source)
    with session_scope(get_engine()) as session:
        result = apply_addition(session, addition, now=instant, source=source)
        return LaunchReport(directive=result.directive.slug, directive_id=result.directive.id,
                            extends=addition.extends, added_steps=result.added_steps,
                            moved_steps={code: [str(old), str(new)]
                                         for code, (old, new) in result.moved_steps.items()},
                            created_items=result.created_items)


@flow(name=FLOW, flow_run_name=_run_name)
def launch_directive(path: str, now: Instant | None = None) -> LaunchReport:
    """Load and validate the YAML, then create what is missing, as of ``now`` (an aware instant;
    default: the clock's)."""
    text, source = read_text(Path(path)), path
    instant = resolve_now(now)
    logger = run_logger(FLOW)
    if is_addition(text):
        report = call(launch_addition, text, source, instant)
        logger.info("launch-directive %s (addition to %s): steps added %s, dates moved %s, "
                    "%d new tracked items", report.directive, report.extends,
                    report.added_steps or "-", list(report.moved_steps or {}) or "-",
                    report.created_items)
        return report
    report = call(launch_spec, text, source, instant)
    where = f" in {report.provinces} provinces" if report.provinces is not None else ""
    logger.info("launch-directive %s: %d new tracked items%s", report.directive,
                report.created_items, where)
    if report.amendment_summary:
        logger.info("launch-directive %s: amended letter applied: %s", report.directive,
                    report.amendment_summary)
    return report


if __name__ == "__main__":
    import sys

    launch_directive(sys.argv[1])
