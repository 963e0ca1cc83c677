"""The board tells the truth about reports (issue 15, item 2): R1 shows none, draft, submitted,
returned and accepted apart (colour and symbol, with a legend), a step done from the report links
to its session, each district has a progress bar; the board API says the same."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from models.directive import get_directive_by_slug
from models.user import get_by_username
from tests.db.test_reporting import jpeg
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, SLUG, api_token, item_of, signed_in
from tidtam.app import reporting
from tidtam.infra.photos import PhotoStore

BOARD = f"/directives/{SLUG}"
STATES = {"2701": "submitted", "2702": "accepted", "2703": "draft", "2704": "returned"}
CATEGORIES = ["center-committee", "volunteer-leaders", "community", "partners", "cd-officials"]


class Cells(HTMLParser):
    """Every element with a data-step, by district (the row's data-district), and the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.district: str | None = None
        self.cells: dict[tuple[str | None, str], dict[str, str | None]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr" and "data-district" in attrs:
            self.district = attrs["data-district"]
        if "data-step" in attrs and tag in ("td", "li"):
            self.cells[(self.district, attrs["data-step"])] = {**attrs, "tag": tag}


def cells_of(html: str) -> Cells:
    parser = Cells()
    parser.feed(html)
    return parser


def _report(session, store, code, *, held_on="2024-07-15", people=(5, 5, 8, 6, 2)):
    """A district's valid draft: one session (26 people by default) with its photo."""
    directive = get_directive_by_slug(session, SLUG)
    staff = get_by_username(session, f"staff-{code}")
    raw = {"sessions": [{"key": f"k{code}", "held_on": held_on, "center": "ศูนย์ฯ", "place": "บ้าน",
                         "kind": "tree-planting",
                         "participants": dict(zip(CATEGORIES, people, strict=True))}],
           "outcomes": ["ปลูกต้นไม้"]}
    reporting.save_draft(session, staff, code, raw, directive=directive, expected_version=0,
                         now=CLOCK)
    reporting.add_photo(session, staff, code, f"k{code}", jpeg(), "a.jpg", directive=directive,
                        store=store, now=CLOCK)
    return directive, staff, reporting.report_view(session, staff, code,
                                                   directive=directive).version


@pytest.fixture
def client(engine, tmp_path):
    """The demo, then reports of one session of 26 people: 2701 submitted (proving A3), 2702
    accepted, 2703 a draft, 2704 submitted and returned; the others have no report."""
    store = PhotoStore(tmp_path / "photos")
    with Session(engine) as session:
        coordinator = get_by_username(session, "coordinator")
        submitted = {}
        for code in ("2701", "2702", "2704"):
            directive, staff, version = _report(session, store, code)
            submitted[code] = reporting.submit_report(
                session, staff, code, directive=directive, expected_version=version,
                now=CLOCK).version
        reporting.return_report(session, coordinator, "2704", directive=directive,
                                comment="ภาพไม่ชัด", expected_version=submitted["2704"], now=CLOCK)
        reporting.accept_report(session, coordinator, "2702", directive=directive,
                                expected_version=submitted["2702"], now=CLOCK + timedelta(hours=1))
        _report(session, store, "2703")
        session.commit()
    with TestClient(make_app(engine, data_dir=tmp_path)) as c:
        yield c


def test_r1_shows_each_report_state_apart_with_a_legend(client):
    html = signed_in(client, "coordinator").get(BOARD).text
    parsed = cells_of(html)
    r1 = {district: attrs for (district, step), attrs in parsed.cells.items() if step == "R1"}
    assert {d: a["data-report-state"] for d, a in r1.items()} == {
        **dict.fromkeys(["2705", "2706", "2707", "2708", "2709"], "none"), **STATES}
    assert all(a["data-state"] in ("done", "open", "overdue") for a in r1.values())
    assert r1["2701"]["data-state"] == "done" and r1["2703"]["data-state"] == "open"
    # distinct in colour (a class per state) and in symbol, each explained by the legend
    css = client.get("/static/tidtam.css").text
    backgrounds = {state: css.split(f'.cell[data-report-state="{state}"]', 1)[1].split(
        "background: ", 1)[1].split(";", 1)[0] for state in STATES.values()}
    assert len(set(backgrounds.values())) == 4, backgrounds
    marks = {state: html.split(f'data-report-state="{state}">', 1)[1].split("</a>", 1)[0]
             .rsplit(">", 1)[1].strip() for state in STATES.values()}
    assert sorted(marks.values()) == sorted({"✎", "➤", "↩", "✔"})
    legend = html.split('class="legend report-legend"', 1)[1].split("</ul>", 1)[0]
    for words in ("ร่าง ยังไม่ได้ส่ง", "ส่งแล้ว รอจังหวัดตรวจ", "จังหวัดส่งกลับให้แก้ไข",
                  "จังหวัดรับรายงานแล้ว"):
        assert words in legend
    for mark in marks.values():
        assert f">{mark}</span>" in legend
    # every step cell says its state; each district a progress bar of its settled steps
    steps = {step for _, step in parsed.cells}
    assert len(steps) == 12 and all(a.get("data-state") for a in parsed.cells.values())
    bars = [a for tag, a in parsed.tags if tag == "progress"]
    assert len(bars) == 9 and all(a["max"] == "12" for a in bars)
    assert "style=" not in html.split("<main", 1)[1]  # CSP: no inline style


def test_a_step_done_from_the_report_links_to_its_session(client, engine):
    signed_in(client, "coordinator")
    a3 = cells_of(client.get(BOARD).text).cells[("2701", "A3")]
    assert (a3["data-state"], a3["data-from-report"]) == ("done", "R1")
    assert cells_of(client.get(BOARD).text).cells[("2703", "A3")].get("data-from-report") is None

    item = item_of(engine, "2701", "A3")
    key = item.evidence["session_key"]
    link = f'{BOARD}/districts/2701/report#session-{key}'
    page = client.get(f"{BOARD}/districts/2701").text
    assert link in page and "เสร็จจากรายงาน" in page
    district = cells_of(page).cells[(None, "R1")]
    assert (district["data-report-state"], district["tag"]) == ("submitted", "li")
    assert link in client.get(f"/items/{item.id}").text
    assert f'id="session-{key}"' in client.get(f"{BOARD}/districts/2701/report").text


def test_the_board_api_has_each_districts_report_state(client):
    headers = api_token(client, "coordinator")
    body = client.get(f"/api/v1/directives/{SLUG}/board", headers=headers).json()
    assert body["report_step"] == "R1"
    assert body["report_states"] == {
        **dict.fromkeys(["2705", "2706", "2707", "2708", "2709"], "none"), **STATES}
    assert body["proven_by_report"] == {"2701": ["A3"], "2702": ["A3"], "2704": ["A3"]}
    assert {d["code"] for d in body["districts"]} >= set(STATES)  # the existing fields stay
