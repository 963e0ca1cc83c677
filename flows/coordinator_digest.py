"""coordinator-digest: each coordinator's one message a working day, on LINE and by email.

Scheduled in prefect.yaml (08:00 Mon–Fri, Asia/Bangkok): the rows wait for 08:30, when the
office opens. On a holiday it enqueues nothing. `tidtam.app.digest` holds the logic.
Each coordinator's digest is also a markdown artifact, `digest-<province>-<user>`
(flows/report_artifacts.py). The run is named `coordinator-digest · 6 ส.ค. 2567 08:00`
(with the province when one is named).
"""

from __future__ import annotations

from prefect import flow, task
from pydantic import BaseModel

from flows._common import Instant, ProvinceCode, call, named, resolve_now, run_logger, run_parameters
from flows._runs import TASK_RETRIES
from flows.report_artifacts import DigestArtifact, digest_artifacts, publish_digests
from tidtam.app.digest import DigestResult, send_digests
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings

FLOW = "coordinator-digest"


class DigestReport(BaseModel):
    """What a digest run did (the keys `tidtam digest` has always shown)."""

    provinces: int = 0
    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    skipped: list[str] = []
    closed: list[str] = []  # slugs closed automatically by this run
    artifacts: list[str] = []  # keys of the markdown artifacts published (none untracked)


def _run_name() -> str:
    parameters = run_parameters()
    return named(FLOW, parameters.get("now"), _province_name(parameters.get("province_code")))


def _province_name(code: str | None) -> str | None:
    if not code:
        return None
    from models.org import Province

    try:
        with session_scope(get_engine()) as session:
            province = session.get(Province, code)
            return province.name_th if province else code
    except Exception:  # noqa: BLE001 - a name must not fail the run: the code is enough
        return code


@task(name="send-digests", **TASK_RETRIES)
def send(instant, province_code: str | None) -> tuple[DigestResult, list[DigestArtifact]]:
    """Enqueue the digests, and lay each coordinator's out as markdown while the rows are read."""
    settings = get_settings()
    with session_scope(get_engine()) as session:
        result = send_digests(session, instant, tz=settings.tz, base_url=settings.base_url,
                              province_code=province_code)
        artifacts = [artifact for digest, users in result.told
                     for artifact in digest_artifacts(digest, users, base_url=settings.base_url,
                                                      tz=settings.tz)]
    result.told = []
    return result, artifacts


@flow(name=FLOW, flow_run_name=_run_name)
def coordinator_digest(now: Instant | None = None,
                       province_code: ProvinceCode | None = None) -> DigestReport:
    """Enqueue today's digest as of ``now`` (an aware instant; default: the clock's), for every
    province or only ``province_code``."""
    instant = resolve_now(now)
    logger = run_logger(FLOW)
    result, artifacts = call(send, instant, province_code)
    report = DigestReport(provinces=result.provinces, enqueued=result.enqueued,
                          already_queued=result.already_queued, no_channel=result.no_channel,
                          skipped=result.skipped, closed=result.closed,
                          artifacts=publish_digests(artifacts))
    logger.info("coordinator-digest at %s: %d province(s), %d enqueued, %d already queued, "
                "%d without a channel; %d digest artifact(s)", instant.isoformat(),
                report.provinces, report.enqueued, report.already_queued, report.no_channel,
                len(report.artifacts))
    for slug in report.closed:
        logger.info("coordinator-digest: closed %s automatically (close_after_working_days)", slug)
    for reason in report.skipped:
        logger.warning("coordinator-digest: nobody to send to in province %s", reason)
    return report


if __name__ == "__main__":
    coordinator_digest()
