"""The reporting-rate chart and the progress bars through the real app (SQLite and PostgreSQL):
the SVG parses as XML, its line is the items' settled share day by day, and each role sees only
what it may: the coordinator their province, district people their district, the Department
every province."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from domain.access import Role
from domain.charts import LARGE, SMALL, Frame, Scale
from domain.directive import load_directive
from models.directive import Directive, DirectiveStep, ItemStatus, TrackedItem, get_directive_by_slug
from tests.conftest import NOW
from tests.db.test_national import NATIONAL
from tests.db.test_national import SLUG as NATIONAL_SLUG
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, PASSWORD, SLUG, api_token, csrf, item_of, signed_in
from tidtam.app.accounts import ensure_user, hash_password
from tidtam.app.national import launch_national
from tidtam.app.orgtree import load_provinces

SVG = "{http://www.w3.org/2000/svg}"
BANGKOK = ZoneInfo("Asia/Bangkok")
TODAY = CLOCK.astimezone(BANGKOK).date()  # 18 Jul 2567


def svg_of(html: str, css_class: str = "rate-chart-svg") -> ET.Element:
    """The page's chart, parsed as XML (a malformed picture fails here)."""
    found = re.search(rf'<svg [^>]*class="{css_class}".*?</svg>', html, re.S)
    assert found, "no chart on the page"
    return ET.fromstring(found.group(0))


def drawn_counts(svg: ET.Element, frame: Frame) -> dict[date, int]:
    """The settled line read back: day → items, from the path's points and the axes' scale."""
    start, end = (date.fromisoformat(svg.get(k)) for k in ("data-start", "data-end"))
    expected = int(svg.get("data-expected"))
    scale = Scale(start, end, frame)
    path = next(p for p in svg.iter(f"{SVG}path") if p.get("class") == "series-done")
    points = [(float(x), float(y)) for x, y in re.findall(r"[ML]([\d.]+),([\d.]+)", path.get("d"))]
    days = [start + timedelta(days=n) for n in range(len(points))]
    assert [x for x, _ in points] == [scale.x(day) for day in days]
    return {day: round(scale.share_at(y) * expected) for day, (_, y) in zip(days, points, strict=True)}


def settled_by_day(engine, directive_ids: list[int], start: date, codes: list[str] | None = None,
                   district: str | None = None) -> tuple[int, dict[date, int]]:
    """Counted straight from the tracked items: how many, and how many settled by each day's end
    (in Bangkok) from ``start`` to today."""
    with Session(engine) as session:
        query = (select(TrackedItem, DirectiveStep.code)
                 .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
                 .where(col(TrackedItem.directive_id).in_(directive_ids)))
        rows = [(item, code) for item, code in session.exec(query)
                if (codes is None or code in codes)
                and (district is None or item.district_code == district)]
    days = [start + timedelta(days=n) for n in range((TODAY - start).days + 1)]
    settled = [max(start, (i.waived_at or i.completed_at).astimezone(BANGKOK).date())
               for i, _ in rows if i.status != ItemStatus.OPEN]
    return len(rows), {day: sum(s <= day for s in settled) for day in days}


def directive_id(engine, slug: str) -> int:
    with Session(engine) as session:
        return get_directive_by_slug(session, slug).id


def test_the_coordinators_board_draws_the_settled_share_of_every_item_by_day(any_client, any_engine):
    client = signed_in(any_client, "coordinator")
    item = item_of(any_engine, "2703", "G1")  # marked done today, through the form
    client.post(f"/items/{item.id}/done", data={"version": item.version, "note": "",
                                                "csrftoken": csrf(client)})
    html = client.get(f"/directives/{SLUG}").text
    svg = svg_of(html)
    assert svg.find(f"{SVG}title").text.startswith("อัตราการรายงานรายวัน")
    assert svg.get("aria-labelledby") == "board-rate-chart-title board-rate-chart-desc"
    start = date.fromisoformat(svg.get("data-start"))
    expected, by_day = settled_by_day(any_engine, [directive_id(any_engine, SLUG)], start)
    assert int(svg.get("data-expected")) == expected == 108
    drawn = drawn_counts(svg, SMALL)
    assert drawn == by_day and drawn[TODAY] == drawn[TODAY - timedelta(days=1)] + 1
    # the data table says the same, and every due day is marked
    table = dict(re.findall(r'<tr data-day="([\d-]+)".*?data-percent="(\d*)"', html, re.S))
    assert {date.fromisoformat(k): int(v) for k, v in table.items() if v} == {
        day: n * 100 // expected for day, n in by_day.items()}
    due_days = {line.get("data-due") for line in svg.iter(f"{SVG}line") if line.get("data-due")}
    assert due_days == {"2024-07-17", "2024-07-19", "2024-07-31", "2024-08-02", "2024-08-07",
                        "2024-08-09"}
    assert f'href="/directives/{SLUG}/chart"' in html


def test_district_people_see_their_own_districts_chart_and_no_other(any_client, any_engine):
    client = signed_in(any_client, "staff-2701")
    assert client.get(f"/directives/{SLUG}").status_code == 403  # the province's board: no
    page = client.get(f"/directives/{SLUG}/chart")
    assert page.status_code == 200
    svg = svg_of(page.text)
    expected, by_day = settled_by_day(any_engine, [directive_id(any_engine, SLUG)],
                                      date.fromisoformat(svg.get("data-start")), district="2701")
    assert int(svg.get("data-expected")) == expected == 12
    assert drawn_counts(svg, LARGE) == by_day
    assert "เมืองสระแก้ว" in svg.find(f"{SVG}title").text
    assert client.get(f"/directives/{SLUG}/chart?district=2702").status_code == 403
    assert client.get(f"/directives/{SLUG}/chart.svg?district=2702").status_code == 403
    assert client.get(f"/directives/{NATIONAL_SLUG}/chart").status_code == 404  # none launched


@pytest.fixture
def national_app(any_engine, tmp_path):
    """The demo plus Chiang Mai, a Department viewer, and the Department's directive launched."""
    app = make_app(any_engine, data_dir=tmp_path)
    with Session(any_engine) as session:
        load_provinces(session, ["50"])
        ensure_user(session, username="department", full_name="กรมฯ", role=Role.DEPARTMENT_VIEWER,
                    province_code=None, district_code=None, password_hash=hash_password(PASSWORD),
                    now=NOW)
        launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()
    return app


def test_the_department_sees_every_provinces_items_on_the_national_chart(national_app, any_engine):
    with Session(any_engine) as session:
        national = get_directive_by_slug(session, NATIONAL_SLUG)
        copies = list(session.exec(select(Directive).where(Directive.parent_id == national.id)))
        codes = [s.code for s in session.exec(
            select(DirectiveStep).where(DirectiveStep.directive_id == national.id))]
    assert {c.province_code for c in copies} == {"27", "50"}
    with TestClient(national_app) as client:
        signed_in(client, "department")
        html = client.get("/national").text
        svg = svg_of(html)
        expected, by_day = settled_by_day(any_engine, [c.id for c in copies],
                                          date.fromisoformat(svg.get("data-start")), codes)
        assert int(svg.get("data-expected")) == expected > 12 * 9  # more than Sa Kaeo's
        assert drawn_counts(svg, SMALL) == by_day
        bar = svg_of(html, "progress-bar")
        assert bar.get("data-expected") == str(expected)
        assert client.get(f"/directives/{NATIONAL_SLUG}/chart").status_code == 200
        assert client.get(f"/directives/{SLUG}/chart").status_code == 200  # any province's
        file = client.get(f"/directives/{NATIONAL_SLUG}/chart.svg")
        assert file.headers["content-type"].startswith("image/svg+xml")
        assert ET.fromstring(file.content).get("data-expected") == str(expected)
    with TestClient(national_app) as client:
        signed_in(client, "coordinator")
        assert client.get(f"/directives/{NATIONAL_SLUG}/chart").status_code == 403
        assert client.get(f"/directives/{NATIONAL_SLUG}-p50/chart").status_code == 403  # Chiang Mai's


def test_the_chart_page_labels_in_thai_with_buddhist_years_or_in_english(client):
    signed_in(client, "coordinator")
    thai = svg_of(client.get(f"/directives/{SLUG}/chart").text)
    texts = " ".join(t.text or "" for t in thai.iter(f"{SVG}text"))
    assert "วันที่ (พ.ศ. 2567)" in texts and "23 ก.ค." in texts and "ร้อยละที่เสร็จ" in texts
    assert thai.find(f"{SVG}desc").text.count("2567") >= 2
    client.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(client)})
    page = client.get(f"/directives/{SLUG}/chart").text
    english = svg_of(page)
    texts = " ".join(t.text or "" for t in english.iter(f"{SVG}text"))
    assert "Date (2024)" in texts and "Percent done" in texts and "Jul" in texts
    assert "<details" in page and "The data, day by day" in page
    assert ' style="' not in page  # CSP: no inline styles


def test_the_directives_list_shows_a_progress_bar_per_directive(client, engine):
    signed_in(client, "coordinator")
    html = client.get("/provinces/27/directives").text
    bar = svg_of(html, "progress-bar")
    with Session(engine) as session:
        items = list(session.exec(select(TrackedItem).where(
            TrackedItem.directive_id == directive_id(engine, SLUG))))
    settled = sum(i.status != ItemStatus.OPEN for i in items)
    late = sum(i.status == ItemStatus.OPEN and i.due_on < TODAY for i in items)
    assert (bar.get("data-settled"), bar.get("data-overdue"), bar.get("data-expected")) == (
        str(settled), str(late), str(len(items)))
    done = next(r for r in bar.iter(f"{SVG}rect") if r.get("class") == "bar-done")
    assert float(done.get("width")) == round(100 * settled / len(items), 2)
    assert "aria-label" in bar.attrib and f"{round(settled * 100 / len(items))}%" in bar.get("aria-label")


def test_the_api_gives_the_same_series_as_json_with_the_same_refusals(client, engine):
    headers = api_token(client, "staff-2701")
    mine = client.get(f"/api/v1/directives/{SLUG}/rate", headers=headers)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    start = date.fromisoformat(body["points"][0]["day"])
    expected, by_day = settled_by_day(engine, [directive_id(engine, SLUG)], start, district="2701")
    assert (body["scope"], body["district"], body["expected"]) == ("district", "2701", expected)
    assert {date.fromisoformat(p["day"]): p["done"] for p in body["points"]
            if p["done"] is not None} == by_day
    assert body["due_days"][0] == {"day": "2024-07-17", "steps": ["G1", "A1"]}
    other = client.get(f"/api/v1/directives/{SLUG}/rate?district=2702", headers=headers)
    assert other.status_code == 403 and set(other.json()["detail"]) == {"th", "en"}
    whole = client.get(f"/api/v1/directives/{SLUG}/rate", headers=api_token(client, "coordinator"))
    assert (whole.json()["scope"], whole.json()["expected"]) == ("province", 108)
    assert client.get(f"/api/v1/directives/{SLUG}/rate").status_code == 401
