"""The board page (``/directives/{slug}``) reads its cells as plain rows and draws each kind of
cell once (issue 17, item 4: a province's board under 20 ms). It must say exactly what the
general board (``boards.directive_board``, which the API, the feeds and the district pages read)
says: the same rows, cells, states, report states, counts and markup, on SQLite and PostgreSQL,
with every kind of cell there is (done, open, overdue, waived, done from the report, each report
state)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from models.directive import get_directive_by_slug
from models.user import get_by_username
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, SLUG, csrf, item_of, signed_in
from tests.web.test_board_reports import _report
from tidtam.app import reporting
from tidtam.app.boards import directive_board, directive_board_page
from tidtam.app.charts import board_chart
from tidtam.app.tracking import waive
from tidtam.infra.photos import PhotoStore
from web.i18n import Translator

BOARD = f"/directives/{SLUG}"
TODAY = CLOCK.date() + timedelta(days=1)  # 19 July 2024 in Bangkok: some steps overdue

# The board's rows as board.html drew them, cell by cell, from the general board, before the
# page drew each kind once (web/board_page.py): the reference the page's markup is held to.
REFERENCE_ROWS = (Path(__file__).parent / "board_rows_reference.html.j2").read_text()


def _with_every_kind_of_cell(engine, tmp_path) -> None:
    """Reports in each state (2701 submitted and proving A3, 2702 accepted, 2703 a draft, 2704
    returned) and two steps waived, beside the demo's done, open and overdue steps."""
    store = PhotoStore(tmp_path / "photos")
    with Session(engine) as session:
        coordinator = get_by_username(session, "coordinator")
        versions = {}
        for code in ("2701", "2702", "2704"):
            directive, staff, version = _report(session, store, code)
            versions[code] = reporting.submit_report(
                session, staff, code, directive=directive, expected_version=version,
                now=CLOCK).version
        reporting.return_report(session, coordinator, "2704", directive=directive,
                                comment="ภาพไม่ชัด", expected_version=versions["2704"], now=CLOCK)
        reporting.accept_report(session, coordinator, "2702", directive=directive,
                                expected_version=versions["2702"], now=CLOCK + timedelta(hours=1))
        _report(session, store, "2703")
        session.commit()
    for district, step in (("2705", "A1"), ("2706", "G3")):
        item = item_of(engine, district, step)
        with Session(engine) as session:
            waive(session, get_by_username(session, "coordinator"), item.id, reason="ไม่มีศูนย์ฯ",
                  now=CLOCK, expected_version=item.version)
            session.commit()


def _tbody(html: str) -> str:
    return html.split('<table class="board">', 1)[1].split("<tbody>\n", 1)[1].split("  </tbody>", 1)[0]


def _figure(html: str) -> str:
    return html.split('<section class="board-chart"', 1)[1].split("</section>", 1)[0]


@pytest.fixture
def board_client(any_engine, tmp_path):
    _with_every_kind_of_cell(any_engine, tmp_path)
    with TestClient(make_app(any_engine, data_dir=tmp_path)) as client:
        yield any_engine, client


def test_the_page_reads_what_the_general_board_reads(board_client):
    engine, _ = board_client
    with Session(engine) as session:
        coordinator = get_by_username(session, "coordinator")
        general = directive_board(session, coordinator, SLUG, TODAY)
        page = directive_board_page(session, coordinator, SLUG, TODAY)
    assert (page.today, page.report_step) == (general.today, general.report_step)
    assert {**page.directive._mapping} == general.directive.model_dump()  # every column
    assert [(s.id, s.code, s.order, s.title_th, s.title_en, s.due_on) for s in page.steps] == \
        [(s.id, s.code, s.order, s.title_th, s.title_en, s.due_on) for s in general.steps]
    assert (page.overdue_count, page.waived_count) == (general.overdue_count, general.waived_count)
    assert [r.district.code for r in page.rows] == [r.district.code for r in general.rows]
    kinds = set()
    for mine, theirs in zip(page.rows, general.rows, strict=True):
        assert (mine.district.name_th, mine.district.name_en) == \
            (theirs.district.name_th, theirs.district.name_en)
        assert (mine.done_count, mine.waived_count, mine.overdue_count, len(mine.cells)) == \
            (theirs.done_count, theirs.waived_count, theirs.overdue_count, len(theirs.cells))
        for step, cell in mine.columns:
            other = theirs.cell(step)
            assert (cell is None) == (other is None)
            if cell is not None:
                assert (cell.item.id, cell.item.status, cell.item.due_on, cell.item.completed_at,
                        cell.item.waived_at, cell.step.id, cell.state, cell.report_state,
                        cell.from_report) == \
                    (other.item.id, other.item.status, other.item.due_on, other.item.completed_at,
                     other.item.waived_at, other.step.id, other.state, other.report_state,
                     other.from_report)
                kinds.add((cell.state, cell.report_state, cell.from_report))
    # every kind of cell the board knows is on this board
    assert {s for s, _, _ in kinds} == {"done", "open", "overdue", "waived"}
    assert {r for _, r, _ in kinds} == {None, "none", "draft", "submitted", "returned", "accepted"}
    assert (("done", None, True) in kinds) and (("done", None, False) in kinds)
    mine, theirs = board_chart(page, CLOCK.tzinfo), board_chart(general, CLOCK.tzinfo)
    assert (mine.series, mine.marks, mine.today) == (theirs.series, theirs.marks, theirs.today)


@pytest.mark.parametrize("lang", ["th", "en"])
def test_the_page_draws_the_cells_as_the_template_drew_each_one(board_client, lang):
    engine, client = board_client
    signed_in(client, "coordinator")
    if lang == "en":
        client.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(client)})
    html = client.get(BOARD).text
    again = client.get(BOARD).text  # the chart's figure kept from the first
    with Session(engine) as session:
        coordinator = get_by_username(session, "coordinator")
        general = directive_board(session, coordinator, SLUG, CLOCK.date())
        directive = get_directive_by_slug(session, SLUG)
    env = client.app.state.templates.env
    expected = env.from_string(REFERENCE_ROWS).render(
        board=general, t=Translator(lang), base=f"/directives/{directive.slug}")
    assert _tbody(html) == expected
    assert _tbody(again) == expected and _figure(again) == _figure(html)
