"""The report's whole lifecycle through the JSON API with bearer tokens only (issue 15, done-when
1): district staff draft, add photos and submit; the coordinator returns, accepts, reopens; the
province compiles and downloads XLSX, CSV and PDF — and the API refuses what the pages refuse,
in Thai and English. On SQLite and PostgreSQL (the PDF, one Chromium call, on SQLite only).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.audit import entries_for
from models.directive import ItemStatus
from models.outbox import OutboxMessage
from models.report import ReportStatus
from tests.conftest import unavailable
from tests.web.conftest import make_app
from tests.web.helpers import SLUG, api_token, item_of
from tests.web.test_report_pages import KEYS, jpeg, report, stored
from tidtam.documents.exports import header_word

CODE = "2706"  # อรัญประเทศ: no report in the demo
R = f"/api/v1/districts/{CODE}/report"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def any_app(any_engine, tmp_path) -> FastAPI:
    return make_app(any_engine, data_dir=tmp_path)


def add_photo(client: TestClient, headers: dict, key: str, data: bytes, name: str = "a.jpg",
              code: str = CODE):
    return client.post(f"/api/v1/districts/{code}/report/photos", headers=headers,
                       data={"session_key": key}, files={"file": (name, data, "image/jpeg")})


def submitted(client: TestClient, staff: dict) -> int:
    """A complete draft with a photo per session, submitted; returns the report's version."""
    version = client.put(R, headers=staff, json={"version": 0, "report": report(22)}).json()["version"]
    for key in KEYS:
        added = add_photo(client, staff, key, jpeg(), f"{key[:2]}.jpg")
        assert added.status_code == 201, added.text
        version = added.json()["report_version"]
    answer = client.post(f"{R}/submit", headers=staff, json={"version": version})
    assert answer.status_code == 200, answer.text
    return answer.json()["version"]


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response, status: int, th: str = "") -> dict:
    """A refusal in the one bilingual shape, its Thai text containing ``th``."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert set(detail) == {"th", "en"} and th in detail["th"], detail
    return detail


def pdf_text(data: bytes, tmp_path) -> str:
    if shutil.which("pdftotext") is None:
        unavailable("pdftotext (poppler-utils) not installed")
    (tmp_path / "r.pdf").write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout


def test_the_whole_lifecycle_runs_on_bearer_tokens_alone(any_app, any_engine: Engine, tmp_path):
    with TestClient(any_app) as client:
        staff, coordinator = api_token(client, f"staff-{CODE}"), api_token(client, "coordinator")

        # draft → photos → submit (R1 done on the board)
        version = submitted(client, staff)
        state = ok(client.get(R, headers=coordinator))
        assert state["status"] == "submitted" and state["version"] == version == 5
        assert item_of(any_engine, CODE, "R1").status == ItemStatus.DONE
        photos = ok(client.get(f"{R}/photos", headers=coordinator))
        assert sorted(p["session_key"] for p in photos) == sorted(KEYS)
        assert photos[0]["content_type"] == "image/jpeg" and photos[0]["width"] == 640
        thumb = client.get(f"/api/v1/photos/{photos[0]['id']}?size=thumb", headers=coordinator)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

        # return with a comment → R1 open, the district may edit again
        back = ok(client.post(f"{R}/return", headers=coordinator,
                              json={"version": version, "comment": "ครั้งที่ 2 ตรวจจำนวนอีกครั้ง"}))
        assert back["status"] == "returned" and back["review_comment"] == "ครั้งที่ 2 ตรวจจำนวนอีกครั้ง"
        assert back["can_review"] is False and len(back["photos"]) == 3
        assert item_of(any_engine, CODE, "R1").status == ItemStatus.OPEN
        assert ok(client.get(R, headers=staff))["status"] == "returned"

        # resubmit → accept → reopen (with a reason) → resubmit → accept
        version = ok(client.post(f"{R}/submit", headers=staff, json={"version": back["version"]}))["version"]
        accepted = ok(client.post(f"{R}/accept", headers=coordinator, json={"version": version}))
        assert accepted["status"] == "accepted" and accepted["accepted_at"] is not None
        reopened = ok(client.post(f"{R}/reopen", headers=coordinator,
                                  json={"version": accepted["version"], "reason": "อำเภอขอแก้ไข"}))
        assert reopened["status"] == "returned" and reopened["review_comment"] == "อำเภอขอแก้ไข"
        assert item_of(any_engine, CODE, "R1").status == ItemStatus.OPEN
        version = ok(client.post(f"{R}/submit", headers=staff,
                                 json={"version": reopened["version"]}))["version"]
        final = ok(client.post(f"{R}/accept", headers=coordinator, json={"version": version}))
        assert final["status"] == "accepted" and final["can_edit"] is False
        assert item_of(any_engine, CODE, "R1").status == ItemStatus.DONE

        # every step audited as the pages audit it, and the district told of each review
        report_row = stored(any_engine)
        with Session(any_engine) as session:
            log = entries_for(session, "report", report_row.id)
            told = set(session.exec(select(OutboxMessage.rung).where(
                OutboxMessage.report_id == report_row.id)))
        assert [e.action for e in log] == [
            "report.save", *["report.photo.add"] * 3, "report.submit", "report.return",
            "report.submit", "report.accept", "report.reopen", "report.submit", "report.accept"]
        assert {e.actor for e in log if e.action in ("report.return", "report.accept",
                                                     "report.reopen")} == {"coordinator"}
        assert {"report-returned", "report-accepted", "report-reopened",
                "report-resubmitted"} <= told

        # compile: the accepted report counts (32 + 22 + 35 people, two centers)
        compiled = ok(client.get("/api/v1/reports/compiled", headers=coordinator))
        assert compiled["directive_slug"] == SLUG and compiled["accepted"] == [CODE]
        assert compiled["totals"]["total_participants"] == 89 and compiled["totals"]["centers"] == 2
        assert len(compiled["districts"]) == 9 and CODE not in compiled["missing"]

        # downloads: the province's and the district's, XLSX and CSV that open
        xlsx = client.get("/api/v1/reports/compiled.xlsx", headers=coordinator)
        assert xlsx.status_code == 200 and xlsx.headers["content-type"] == XLSX
        assert xlsx.headers["content-disposition"] == f'attachment; filename="report-{SLUG}.xlsx"'
        book = load_workbook(io.BytesIO(xlsx.content))
        assert book.sheetnames == ["totals", "districts", "sessions"]
        places = [row[6] for row in book["sessions"].iter_rows(min_row=2, values_only=True)]
        assert places == ["บ้านโคกสูง", "บ้านหนองม่วง", "บ้านหนองแวง"]
        table = client.get("/api/v1/reports/compiled.csv?table=districts", headers=coordinator)
        assert table.headers["content-type"] == "text/csv; charset=utf-8"
        rows = {r["district_code"]: r for r in keyed(table.content)}
        assert rows[CODE]["status_th"] == "จังหวัดรับรายงานแล้ว" and rows[CODE]["total_participants"] == "89"
        assert rows["2701"]["total_participants"] == ""  # not accepted: blank, not 0

        own = client.get(f"{R}.xlsx", headers=staff)
        assert own.status_code == 200 and own.headers["content-type"] == XLSX
        sheet = load_workbook(io.BytesIO(own.content))["districts"]
        assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == [CODE]
        sessions = list(csv.reader(io.StringIO(client.get(
            f"{R}.csv?table=sessions", headers=staff).content.decode("utf-8-sig"))))
        assert sessions[0][:3] == [header_word(k, "th", None)
                                   for k in ("district_code", "district_name_th", "no")]
        assert [s[6] for s in sessions[1:]] == ["บ้านโคกสูง", "บ้านหนองม่วง", "บ้านหนองแวง"]

        # the province's PDF: one Chromium print (on SQLite; the PostgreSQL run reads the same)
        if any_engine.dialect.name == "sqlite":
            pdf = client.get("/api/v1/reports/compiled.pdf", headers=coordinator)
            assert pdf.status_code == 200, pdf.text
            assert pdf.headers["content-type"] == "application/pdf"
            assert pdf.content.startswith(b"%PDF")
            text = pdf_text(pdf.content, tmp_path)
            assert "อรัญประเทศ" in text and "สระแก้ว" in text

        assert not client.cookies  # nothing above rode on a cookie


HEADER_KEYS = ("district_code", "district_name_th", "status_th", "total_participants", "section", "code",
        "value", "no")


def keyed(content: bytes) -> list[dict[str, str]]:
    """A downloaded CSV's rows by column key: the headers are Thai words (English on request)."""
    back = {header_word(key, "th", None): key for key in HEADER_KEYS}
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    header = [back.get(word, word) for word in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def test_the_api_refuses_what_the_pages_refuse(any_app, any_engine: Engine):
    with TestClient(any_app) as client:
        staff, coordinator = api_token(client, f"staff-{CODE}"), api_token(client, "coordinator")
        other = api_token(client, "staff-2701")
        version = client.put(R, headers=staff, json={"version": 0, "report": report(22)}).json()["version"]
        totals = {(r["section"], r["code"]): r["value"] for r in keyed(
            client.get(f"{R}.csv?table=totals", headers=staff).content)}
        assert totals[("participants", "total")] == "89"  # a draft's figures, as typed
        assert ("districts", "accepted") not in totals  # one report says nothing of the others

        # photos: checked by content, by size, by session; only the district's own staff
        refused(add_photo(client, staff, KEYS[0], b"#!/bin/sh\nrm -rf /\n", "script.jpg"), 422,
                "script.jpg: ไฟล์นี้ไม่ใช่รูปภาพ JPEG, PNG หรือ HEIC")
        refused(add_photo(client, staff, KEYS[0], b"\xff\xd8\xff" + b"\0" * 10_000_000, "big.jpg"),
                413, "big.jpg: ไฟล์ใหญ่เกิน 10 MB")  # the page's words
        refused(add_photo(client, staff, "f" * 32, jpeg()), 422, "บันทึกข้อมูลการจัดกิจกรรมครั้งนี้ก่อน")
        refused(add_photo(client, other, KEYS[0], jpeg()), 403)
        refused(add_photo(client, coordinator, KEYS[0], jpeg()), 403)
        refused(add_photo(client, coordinator, KEYS[0], b"\xff" * 10_000_001), 403)  # who, then size
        assert stored(any_engine).version == version  # nothing refused was kept
        photo = client.post(f"{R}/photos", headers=staff, data={"session_key": KEYS[0]},
                            files={"file": ("a.jpg", jpeg(), "image/jpeg")}).json()["photo"]
        refused(client.get(f"{R}/photos", headers=other), 403)
        refused(client.get(f"/api/v1/photos/{photo['id']}", headers=other), 403)
        refused(client.delete(f"/api/v1/photos/{photo['id']}", headers=other), 403)
        refused(client.delete(f"/api/v1/photos/{photo['id']}", headers=coordinator), 403)

        # review: the coordinator's alone, and only in the right state
        refused(client.post(f"{R}/accept", headers=coordinator, json={"version": 2}), 409,
                "รับหรือส่งกลับได้เฉพาะรายงานที่ส่งมาแล้วและรอตรวจ")  # a draft
        for key in KEYS[1:]:
            add_photo(client, staff, key, jpeg())
        version = ok(client.post(f"{R}/submit", headers=staff,
                                 json={"version": stored(any_engine).version}))["version"]
        refused(client.post(f"{R}/accept", headers=staff, json={"version": version}), 403,
                "เฉพาะผู้ประสานงานของจังหวัด")
        refused(client.post(f"{R}/accept", headers=other, json={"version": version}), 403)
        refused(client.post(f"{R}/return", headers=coordinator,
                            json={"version": version, "comment": "   "}), 422, "ความเห็น")
        refused(client.post(f"{R}/return", headers=coordinator, json={"version": version}), 422)
        refused(client.post(f"{R}/reopen", headers=coordinator,
                            json={"version": version, "reason": "x"}), 409,
                "เปิดให้แก้ไขได้เฉพาะรายงานที่จังหวัดรับแล้ว")
        refused(client.post(f"{R}/accept", headers=coordinator, json={"version": version - 1}),
                409, "มีผู้อื่นบันทึกรายงานนี้ไปแล้ว")
        refused(client.delete(f"/api/v1/photos/{photo['id']}", headers=staff), 409,
                "ส่งรายงานแล้ว")  # submitted: locked for the district
        refused(add_photo(client, staff, KEYS[0], jpeg()), 409)
        r1 = item_of(any_engine, CODE, "R1")  # the report step is never waived (as on the page)
        refused(client.post(f"/api/v1/items/{r1.id}/waive", headers=coordinator,
                            json={"version": r1.version, "reason": "ไม่ต้องรายงาน"}), 409)
        assert stored(any_engine).status == ReportStatus.SUBMITTED
        assert stored(any_engine).version == version

        # the compilation and its files are the province's
        for path in ("/api/v1/reports/compiled", "/api/v1/reports/compiled.xlsx",
                     "/api/v1/reports/compiled.csv", "/api/v1/reports/compiled.pdf"):
            refused(client.get(path, headers=staff), 403)
        for path in (f"{R}.xlsx", f"{R}.csv", f"{R}.pdf"):
            refused(client.get(path, headers=other), 403)
        refused(client.get("/api/v1/reports/compiled.csv?table=secrets", headers=coordinator), 422)
        assert client.post(f"{R}/accept", json={"version": version}).status_code == 401


def test_a_districts_pdf_prints_its_own_form(engine, tmp_path, monkeypatch):
    """The route hands the district's printable form to the printer (Chromium itself is
    exercised once, above, and by test_report_pages)."""
    printed: list[str] = []
    monkeypatch.setattr("web.api_reports.html_to_pdf",
                        lambda html: printed.append(html) or b"%PDF-1.7 stand-in")
    with TestClient(make_app(engine, data_dir=tmp_path)) as client:
        staff = api_token(client, f"staff-{CODE}")
        client.put(R, headers=staff, json={"version": 0, "report": report()})
        pdf = client.get(f"{R}.pdf?thai_digits=true", headers=staff)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="report-{SLUG}-{CODE}.pdf"'
    assert "อรัญประเทศ" in printed[0] and "บ้านหนองแวง" in printed[0] and "๒๕๖๗" in printed[0]
