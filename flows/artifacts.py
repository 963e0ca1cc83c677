"""The board as Prefect artifacts: per directive (one province's letter), a table of the district ×
step board under `board-<slug>` and its share of items settled under `progress-<slug>`.

A key keeps its history in the Prefect UI, so `board-<slug>` read down the page is the board day
by day. Publishing one artifact is one API call (~25 ms on a Prefect server), and the whole
country has ~150 of them. What its key already shows is left alone (a table's history gets a
row when the board changed: an item done, an item turning late; a progress figure when the share
did), and the rest go out through Prefect's async client, several at once (bench/README.md, P1
whole flow, has the figures). Read back with ``latest_boards``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.runs import run_name
from domain.thaidate import thai_date
from tidtam.app.boards import Board, board_table, settled_share

PUBLISH_AT_ONCE = 16  # API calls in flight; the server's own database is the limit beyond this


def artifact_key(prefix: str, slug: str) -> str:
    """`board-fy2567-sakaeo-volunteer-centers`: lowercase letters, digits and dashes only, as
    Prefect requires of a key."""
    text = re.sub(r"[^a-z0-9]+", "-", f"{prefix}-{slug}".lower()).strip("-")
    return re.sub(r"-{2,}", "-", text)


@dataclass(frozen=True)
class BoardArtifacts:
    """What one directive's board becomes: a table and a progress figure, each under its key."""

    slug: str
    table_key: str
    table: list[dict[str, str]]
    description: str
    progress_key: str
    progress: float
    progress_description: str

    @property
    def table_data(self) -> str:
        return json.dumps(self.table)  # as prefect.artifacts.TableArtifact stores it


def board_artifacts(board: Board, instant: datetime, tz: ZoneInfo) -> BoardArtifacts:
    """The board's table (rows: districts; columns: steps; cells: state and due day in B.E.)."""
    d = board.directive
    as_of = run_name("escalation-sweep", instant, tz)
    legend = "\n".join(f"- **{s.code}** {s.title_th} (ภายใน {thai_date(s.due_on)})"
                       for s in board.steps)
    description = (f"**{d.reference_no}** {d.title_th}\n\n"
                   f"กระดานติดตาม อำเภอ × ขั้นตอน / district × step board, {as_of}; "
                   f"เลยกำหนด / late: {board.overdue_count}\n\n{legend}")
    share = round(settled_share(board), 1)
    return BoardArtifacts(
        slug=d.slug, table_key=artifact_key("board", d.slug), table=board_table(board),
        description=description, progress_key=artifact_key("progress", d.slug), progress=share,
        progress_description=f"**{d.reference_no}** {d.title_th}: เสร็จ / settled {share:g}% "
                             f"({as_of})")


@dataclass(frozen=True)
class Published:
    boards: int
    published: int  # artifacts written: the tables and progress figures that changed
    unchanged: int  # boards whose key already showed this table
    seconds: float
    deferred: list[tuple] = field(default_factory=list)  # changed, left for ``write_later``


def publish(boards: list[BoardArtifacts] | Callable[[], list[BoardArtifacts]], *,
            slugs: list[str] | None = None, only_changed: bool = True,
            at_once: int = PUBLISH_AT_ONCE, write_up_to: int | None = None) -> Published:
    """Publish each board's two artifacts, linked to the current flow and task run.

    ``boards`` may be a function that reads them, given the directives' ``slugs``: what their
    keys show is then read from the server while the boards are read from the database (the
    sweep's nothing-new morning waits for the longer of the two, not for both).
    ``write_up_to``: when more artifacts than this changed, none is written here: they are
    returned (``Published.deferred``) for ``write_later``."""
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.utilities.context import get_task_and_flow_run_ids

    task_run_id, flow_run_id = get_task_and_flow_run_ids()
    started = time.perf_counter()
    count, wanted, unchanged = run_coro_as_sync(
        _publish(boards, slugs, flow_run_id, task_run_id, only_changed, at_once, write_up_to))
    if write_up_to is not None and len(wanted) > write_up_to:
        return Published(count, 0, unchanged, time.perf_counter() - started, wanted)
    return Published(count, len(wanted), unchanged, time.perf_counter() - started)


def write_later(wanted: list[tuple], flow_run_id: UUID, at_once: int = PUBLISH_AT_ONCE) -> float:
    """Write artifacts ``publish`` left (``Published.deferred``), linked to the flow run; the
    seconds it took."""
    from prefect.client.orchestration import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def write() -> None:
        async with get_client() as client:
            await _create(client, wanted, flow_run_id, None, at_once)

    started = time.perf_counter()
    run_coro_as_sync(write())
    return time.perf_counter() - started


def _keys(slug: str) -> tuple[str, str]:
    return artifact_key("board", slug), artifact_key("progress", slug)


async def _publish(boards: list[BoardArtifacts] | Callable[[], list[BoardArtifacts]],
                   slugs: list[str] | None, flow_run_id: UUID | None, task_run_id: UUID | None,
                   only_changed: bool, at_once: int,
                   write_up_to: int | None) -> tuple[int, list[tuple], int]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        if callable(boards):
            keys = [k for slug in slugs or [] for k in _keys(slug)]
            read = _latest(client, keys) if only_changed else _nothing()
            boards, shown = await asyncio.gather(asyncio.to_thread(boards), read)
            missed = [k for b in boards for k in _keys(b.slug) if k not in keys]
            if missed and only_changed:  # a board of a directive not named: read its keys too
                shown.update(await _latest(client, missed))
        else:
            keys = [k for b in boards for k in (b.table_key, b.progress_key)]
            shown = await _latest(client, keys) if only_changed else {}
        wanted = [("table", b.table_key, b.description, b.table_data) for b in boards
                  if shown.get(b.table_key) != b.table_data]
        wanted += [("progress", b.progress_key, b.progress_description, b.progress) for b in boards
                   if shown.get(b.progress_key) != b.progress]

        changed = {key for _kind, key, *_ in wanted if _kind == "table"}
        if write_up_to is None or len(wanted) <= write_up_to:
            await _create(client, wanted, flow_run_id, task_run_id, at_once)
    return len(boards), wanted, sum(b.table_key not in changed for b in boards)


async def _create(client, wanted: list[tuple], flow_run_id: UUID | None, task_run_id: UUID | None,
                  at_once: int) -> None:
    from prefect.client.schemas.actions import ArtifactCreate

    gate = asyncio.Semaphore(at_once)

    async def create(kind: str, key: str, description: str, data: object) -> None:
        async with gate:
            await client.create_artifact(ArtifactCreate(
                type=kind, key=key, description=description, data=data,
                flow_run_id=flow_run_id, task_run_id=task_run_id))

    await asyncio.gather(*(create(*args) for args in wanted))


async def _nothing() -> dict[str, object]:
    return {}


async def _latest(client, keys: list[str]) -> dict[str, object]:
    """Key → the data its latest version shows, for these keys (a call per 200 keys, the API's
    most at once)."""
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    found: dict[str, object] = {}
    for first in range(0, len(keys), 200):
        chunk = keys[first:first + 200]
        latest = await client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=chunk)),
            limit=len(chunk))
        found.update({a.key: a.data for a in latest})
    return found


def latest_boards(keys: list[str]) -> dict[str, list[dict[str, str]]]:
    """Key → the table its latest version shows (what a coordinator sees in the UI)."""
    from prefect.client.orchestration import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def read() -> dict[str, object]:
        async with get_client() as client:
            return await _latest(client, keys)

    return {key: json.loads(data) for key, data in run_coro_as_sync(read()).items()}
