"""A province following two directives keeps each apart: launching the Department's national
directive on top of the Sa Kaeo demo leaves the provincial directive's board, district pages,
report pages, printouts and exports exactly as they were, the copy's are at its own addresses, and
both letters show on the directives page, the national board and in `tidtam directives`. A closed
directive's reports are read-only and still print and export; old links redirect.

Through the real app, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from domain.directive import load_directive, province_slug
from models.audit import AuditEntry
from models.directive import get_directive_by_slug
from models.user import get_by_username
from tests.conftest import NOW, unavailable
from tests.web.conftest import make_app
from tests.web.helpers import SLUG, api_token, csrf
from tests.web.test_report_pages import (
    CODE,
    KEYS,
    D,
    client_for,
    draft,
    jpeg,
    post_form,
    ready_to_submit,
    report,
    stored,
    upload,
)
from tidtam.app.directives import close_directive
from tidtam.app.national import launch_national
from tidtam.cli import app as tidtam_cli
from tidtam.infra import db
from tidtam.infra.paths import DIRECTIVES
from tidtam.infra.settings import get_settings

NATIONAL = DIRECTIVES / "fy2567-national-volunteer-centers.yaml"
COPY_SLUG = province_slug("fy2567-national-volunteer-centers", "27")
COPY = f"/directives/{COPY_SLUG}"  # Sa Kaeo's copy of the Department's directive
TABLES = ("totals", "districts", "sessions")


@pytest.fixture
def any_app(any_engine, tmp_path) -> FastAPI:
    return make_app(any_engine, data_dir=tmp_path)


def main_of(html: str) -> str:
    """A page's own content (the navigation around it is the site's, not the report's)."""
    return re.search(r"<main\b.*?</main>", html, re.S).group(0)


def ok(client: TestClient, path: str):
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return answer


def cells(xlsx: bytes) -> dict[str, list[tuple]]:
    """Every sheet's values, and the workbook's title (the letter it compiles)."""
    book = load_workbook(io.BytesIO(xlsx))
    return {"title": book.properties.title,
            **{sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}}


def outputs(coordinator: TestClient, staff: TestClient, api: TestClient,
            headers: dict[str, str], base: str = D, slug: str = SLUG) -> dict[str, object]:
    """Everything the province and the district see of a directive's reports."""
    seen: dict[str, object] = {"board": main_of(ok(coordinator, base).text),
                               "staff's district": main_of(ok(staff, f"{base}/districts/{CODE}").text)}
    for code in (CODE, "2701", "2709"):
        seen[f"district {code}"] = main_of(ok(coordinator, f"{base}/districts/{code}").text)
        seen[f"page {code}"] = main_of(ok(coordinator, f"{base}/districts/{code}/report").text)
        seen[f"print {code}"] = ok(coordinator, f"{base}/districts/{code}/report/print").text
    seen["staff page"] = main_of(ok(staff, f"{base}/districts/{CODE}/report").text)
    seen["reports"] = main_of(ok(coordinator, f"{base}/reports").text)
    seen["compiled print"] = ok(coordinator, f"{base}/reports/print").text
    seen["compiled print, Thai digits"] = ok(coordinator,
                                             f"{base}/reports/print?thai_digits=true").text
    xlsx = ok(coordinator, f"{base}/reports/compiled.xlsx")
    assert xlsx.headers["content-disposition"] == f'attachment; filename="report-{slug}.xlsx"'
    seen["xlsx"] = cells(xlsx.content)
    for table in TABLES:
        csv = ok(coordinator, f"{base}/reports/compiled-{table}.csv")
        assert csv.headers["content-disposition"] == \
            f'attachment; filename="report-{slug}-{table}.csv"'
        seen[f"csv {table}"] = csv.content
    answer = api.get(f"/api/v1/districts/{CODE}/report?directive={slug}", headers=headers)
    assert answer.status_code == 200, answer.text
    seen["api"] = answer.json()
    return seen


def progress(app: FastAPI, engine: Engine) -> tuple[TestClient, TestClient]:
    """2706 accepted, 2703 submitted, 2701 a draft: a provincial directive well under way."""
    staff, coordinator = client_for(app, f"staff-{CODE}"), client_for(app, "coordinator")
    version = ready_to_submit(staff)
    assert post_form(staff, f"{D}/districts/{CODE}/report/submit",
                     version=str(version)).status_code == 303
    assert post_form(coordinator, f"{D}/districts/{CODE}/report/accept",
                     version=str(stored(engine).version)).status_code == 303
    with client_for(app, "staff-2703") as ta_phraya:
        saved = draft(ta_phraya, report(second_heads=25), 0, code="2703").json()["version"]
        for key in KEYS:
            saved = upload(ta_phraya, key, (f"{key[:2]}.jpg", jpeg((90, 40, 40))),
                           code="2703").json()["version"]
        assert post_form(ta_phraya, f"{D}/districts/2703/report/submit",
                         version=str(saved)).status_code == 303
    with client_for(app, "staff-2701") as muang:
        assert draft(muang, report(), 0, code="2701").status_code == 200
    ok(staff, f"{D}/districts/{CODE}/report")  # shows (and so clears) the last flash messages
    ok(coordinator, f"{D}/reports")
    return staff, coordinator


def launch_the_departments_directive(engine: Engine) -> None:
    with Session(engine) as session:
        launched = launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()
        assert launched.provinces == 1 and launched.created_items > 0


def test_launching_the_national_directive_leaves_the_provincial_reports_as_they_were(
        any_app, any_engine):
    staff, coordinator = progress(any_app, any_engine)
    api = TestClient(any_app)
    headers = api_token(api, "coordinator")
    before = outputs(coordinator, staff, api, headers)
    assert "data-total=\"total\">89<" in before["reports"]  # the accepted 2706 counts
    assert before["api"]["status"] == "accepted"

    launch_the_departments_directive(any_engine)
    # the district starts the national copy's report: nothing of it shows on the provincial one
    copy_draft = draft(staff, report(second_heads=40), 0, code=CODE).json()  # still the provincial
    assert "detail" in copy_draft  # the provincial report is accepted: locked (409)
    answer = staff.post(f"{COPY}/districts/{CODE}/report/draft",
                        json={"version": 0, "report": report(second_heads=40)},
                        headers={"x-csrftoken": csrf(staff), "accept": "application/json"})
    assert answer.status_code == 200, answer.text

    after = outputs(coordinator, staff, api, headers)
    assert list(after) == list(before)
    for name in before:
        assert after[name] == before[name], f"{name} changed when the national copy was launched"

    # the copy's reports are at its own addresses, with only what was done on it
    copy = outputs(coordinator, staff, api, headers, base=COPY, slug=COPY_SLUG)
    assert re.search(rf'<tr data-district="{CODE}" data-status="draft">', copy["reports"])
    assert 'data-total="total">0<' in copy["reports"]
    assert copy["api"]["status"] == "draft" and copy["api"]["version"] == 1
    with Session(any_engine) as session:  # each printout names its own letter
        ours, theirs = (get_directive_by_slug(session, s).reference_no for s in (SLUG, COPY_SLUG))
    assert f"ที่ {theirs}" in copy["print 2706"] and f"ที่ {ours}" in before["print 2706"]
    assert copy["xlsx"]["title"].startswith(theirs) and before["xlsx"]["title"].startswith(ours)
    assert copy["print 2706"] != before["print 2706"]
    # with two active directives, the API asks which one
    unnamed = api.get(f"/api/v1/districts/{CODE}/report", headers=headers)
    assert unnamed.status_code == 409
    detail = unnamed.json()["detail"]
    assert SLUG in detail["en"] and COPY_SLUG in detail["en"] and COPY_SLUG in detail["th"]
    both_everywhere(any_app, any_engine, coordinator)
    for client in (staff, coordinator, api):
        client.close()


def both_everywhere(app: FastAPI, engine: Engine, coordinator: TestClient) -> None:
    """Both letters on the province's directives page, on the national board and in
    `tidtam directives`."""
    page = main_of(ok(coordinator, "/provinces/27/directives").text)
    with Session(engine) as session:
        ours, theirs = (get_directive_by_slug(session, s) for s in (SLUG, COPY_SLUG))
    for directive in (ours, theirs):
        assert f'href="/directives/{directive.slug}"' in page
        assert directive.reference_no in page
    with client_for(app, "department") as department:
        board = main_of(ok(department, "/national").text)
    assert ours.reference_no in board and f"/directives/{SLUG}" in board
    assert f"/directives/{COPY_SLUG}" in board
    listed = json.loads(cli("directives", "--province", "27", "--json", engine=engine))
    assert {(d["slug"], d["status"]) for d in listed} == {(SLUG, "active"), (COPY_SLUG, "active")}


def cli(*args: str, engine: Engine) -> str:
    """`tidtam …` in this process against the test's database."""
    url = engine.url.render_as_string(hide_password=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIDTAM_DATABASE_URL", url)
        patch.setenv("TIDTAM_DEMO", "1")
        patch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(tidtam_cli, list(args))
        finally:
            get_settings.cache_clear()
            db.engine_for(url).dispose()
            db.engine_for.cache_clear()
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.browser
def test_the_compiled_pdf_reads_the_same_after_the_national_launch(any_app, any_engine, tmp_path):
    if not Path("/usr/bin/chromium").exists():
        unavailable("chromium not installed")
    if shutil.which("pdftotext") is None:
        unavailable("pdftotext (poppler-utils) not installed")
    _, coordinator = progress(any_app, any_engine)

    def text(path: str) -> str:
        answer = ok(coordinator, path)
        assert answer.content.startswith(b"%PDF")
        (tmp_path / "r.pdf").write_bytes(answer.content)
        return subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout

    before = text(f"{D}/reports/compiled.pdf"), text(f"{D}/districts/{CODE}/report.pdf")
    assert "จังหวัดสระแก้ว" in before[0] and "89" in before[0]
    launch_the_departments_directive(any_engine)
    assert (text(f"{D}/reports/compiled.pdf"), text(f"{D}/districts/{CODE}/report.pdf")) == before


def test_a_closed_directives_reports_are_read_only_yet_print_and_export(any_app, any_engine):
    staff, coordinator = progress(any_app, any_engine)
    api = TestClient(any_app)
    exports = ("/reports/print", "/reports/compiled.xlsx", *(f"/reports/compiled-{t}.csv"
                                                             for t in TABLES),
               f"/districts/{CODE}/report/print", "/districts/2701/report/print")

    def read(path: str) -> object:
        data = ok(coordinator, f"{D}{path}").content
        return cells(data) if path.endswith(".xlsx") else data  # (a zip stamps its own time)

    before = {path: read(path) for path in exports}
    with Session(any_engine) as session:
        close_directive(session, get_by_username(session, "coordinator"), SLUG,
                        reason="ครบกำหนดแล้ว", now=NOW)
        session.commit()
        audited = session.exec(select(func.count()).select_from(AuditEntry)).one()

    assert {path: read(path) for path in exports} == before
    page = ok(staff, f"{D}/districts/{CODE}/report").text
    assert "ปิดแล้ว (ครบกำหนดแล้ว)" in page and "fieldset class=\"plain\" disabled" in page
    with client_for(any_app, "staff-2701") as muang:
        page = ok(muang, f"{D}/districts/2701/report").text
        assert '<fieldset class="plain" disabled>' in page and "report.js" not in page
        refused = draft(muang, report(second_heads=30), 1, code="2701")
        assert refused.status_code == 409
        assert "ปิดแล้ว" in refused.json()["detail"]["th"]
        assert "closed" in refused.json()["detail"]["en"]
        plain = post_form(muang, f"{D}/districts/2701/report", version="1", op="save")
        assert plain.status_code == 409 and "ปิดแล้ว" in plain.text and "closed" in plain.text
        assert post_form(muang, f"{D}/districts/2701/report/submit",
                         version="1").status_code == 409
        put = api.put(f"/api/v1/districts/2701/report?directive={SLUG}",
                      headers=api_token(api, "staff-2701"),
                      json={"version": 1, "report": report()})
        assert put.status_code == 409
    reviewing = ok(coordinator, f"{D}/districts/2703/report").text
    assert "/report/accept" not in reviewing and "/report/return" not in reviewing
    for action, fields in (("accept", {}), ("return", {"comment": "x"}), ("reopen", {"reason": "x"})):
        code = CODE if action == "reopen" else "2703"
        answer = post_form(coordinator, f"{D}/districts/{code}/report/{action}",
                           version=str(stored(any_engine, code).version), **fields)
        assert answer.status_code == 409, (action, answer.status_code)
    with Session(any_engine) as session:
        assert session.exec(select(func.count()).select_from(AuditEntry)).one() == audited
    # the Department's report is due after the districts' work: a closed directive still sends it
    sent = post_form(coordinator, f"{D}/reports/department", note="หลังปิด")
    assert sent.status_code == 303 and sent.headers["location"] == f"{D}/reports#department"
    for client in (staff, coordinator, api):
        client.close()


def test_old_links_go_to_the_directive_and_old_forms_change_nothing(any_app, any_engine):
    staff, coordinator = progress(any_app, any_engine)
    for old, new in (
            ("/reports", f"{D}/reports"),
            ("/reports/print?thai_digits=true", f"{D}/reports/print?thai_digits=true"),
            ("/reports/compiled.xlsx", f"{D}/reports/compiled.xlsx"),
            ("/reports/compiled-sessions.csv", f"{D}/reports/compiled-sessions.csv"),
            (f"/districts/{CODE}/report", f"{D}/districts/{CODE}/report"),
            (f"/districts/{CODE}/report.pdf", f"{D}/districts/{CODE}/report.pdf")):
        answer = coordinator.get(old, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, new), old
    moved = staff.get(f"/districts/{CODE}/report/print", follow_redirects=False)
    assert moved.headers["location"] == f"{D}/districts/{CODE}/report/print"
    with client_for(any_app, "staff-2701") as other:
        assert other.get(f"/districts/{CODE}/report", follow_redirects=False).status_code == 403

    version = stored(any_engine, "2701").version
    with client_for(any_app, "staff-2701") as muang:
        for path in ("/districts/2701/report", "/districts/2701/report/submit"):
            old_form = post_form(muang, path, version=str(version))
            assert old_form.status_code == 404
            assert "ที่อยู่ของแบบฟอร์มนี้เปลี่ยนไปแล้ว" in old_form.text and "has moved" in old_form.text
    assert stored(any_engine, "2701").version == version

    launch_the_departments_directive(any_engine)  # now Sa Kaeo follows two: the list to choose
    assert coordinator.get("/reports", follow_redirects=False).headers["location"] == \
        "/provinces/27/directives"
    assert staff.get(f"/districts/{CODE}/report", follow_redirects=False).headers["location"] == \
        "/my"
    with Session(any_engine) as session:
        assert get_directive_by_slug(session, COPY_SLUG).province_code == "27"
    staff.close()
    coordinator.close()
