"""What the province carries out of tidtam (issue 15, item 7): cover sheets whose QR code decodes
to the district's sign-in and form, the board as XLSX and CSV holding the board's own cells,
and Thai headers in every export with English on request."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import zxingcpp
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image

from tests.web.helpers import SLUG, csrf, signed_in
from tidtam.app.labels import labels
from tidtam.documents.cover import qr_png, qr_svg

BOARD = f"/directives/{SLUG}"
FORM = f"/directives/{SLUG}/districts/2701/report"
BASE = "http://127.0.0.1:8000"  # TIDTAM_BASE_URL's default: the QR code's addresses are absolute


def decode(png: bytes) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))]


def test_each_district_s_qr_code_decodes_to_its_sign_in_then_its_form(client: TestClient):
    signed_in(client, "coordinator")
    steps = {code: list(cells) for code, cells in board_cells(client).items()}
    page = client.get(f"{BOARD}/covers")
    assert page.status_code == 200
    sheets = re.findall(r'<article class="cover-sheet" data-district="(\d{4})">(.*?)</article>',
                        page.text, re.S)
    assert [code for code, _ in sheets] == [f"27{n:02d}" for n in range(1, 10)]
    for code, html in sheets:
        url = re.search(r"<code class=\"cover-url\" data-url>([^<]+)</code>", html).group(1)
        url = url.replace("&amp;", "&")
        assert url == f"{BASE}/login?next=/directives/{SLUG}/districts/{code}/report"
        svg = re.search(r"<svg .*?</svg>", html, re.S).group(0)
        assert svg == qr_svg(url, re.search(r"<title>(.*?)</title>", svg).group(1)), \
            "the page shows the code of that address"
        assert "style=" not in svg, "no inline style (CSP)"
        assert decode(qr_png(url)) == [url]
        assert re.findall(r'<tr data-step="([^"]+)">', html) == steps[code], "its deadlines"

    # The address works: sign in there, land on the district's form.
    with TestClient(client.app) as phone:
        path = f"/login?next=/directives/{SLUG}/districts/2701/report"
        assert phone.get(path).status_code == 200
        answer = phone.post("/login", data={"username": "staff-2701", "password": "tidtam-demo-2567",
                                            "next": FORM, "csrftoken": csrf(phone)},
                            follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == FORM
        assert phone.get(FORM).status_code == 200
        # District people print their own district's sheet, not another's.
        assert phone.get(f"/directives/{SLUG}/districts/2701/cover").status_code == 200
        assert phone.get(f"/directives/{SLUG}/districts/2702/cover").status_code == 403


class BoardCells(HTMLParser):
    """The board page's cells: {district: {step: state}} from its data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, dict[str, str]] = {}
        self.row: str | None = None

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "tr" and "data-district" in found:
            self.row = found["data-district"]
            self.cells[self.row] = {}
        elif tag == "td" and self.row and "data-step" in found:
            self.cells[self.row][found["data-step"]] = found.get("data-state", "none")


def board_cells(client: TestClient) -> dict[str, dict[str, str]]:
    parser = BoardCells()
    parser.feed(client.get(BOARD).text)
    return parser.cells


def test_the_board_s_xlsx_and_csv_hold_the_board_s_cells_in_thai_words(client: TestClient):
    signed_in(client, "coordinator")
    page = board_cells(client)
    words = {k: v["th"] for k, v in labels()["board_cell"].items() if isinstance(v, dict)}
    assert {state for row in page.values() for state in row.values()} >= {"done", "open", "overdue"}

    xlsx = client.get(f"{BOARD}/board.xlsx")
    assert xlsx.headers["content-disposition"] == f'attachment; filename="board-{SLUG}.xlsx"'
    sheet = list(load_workbook(io.BytesIO(xlsx.content))["board"].iter_rows(values_only=True))
    text = client.get(f"{BOARD}/board.csv")
    assert text.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert [list(map(str, r)) for r in sheet] == table, "the XLSX and the CSV hold the same cells"

    header, rows = table[0], table[1:]
    assert header[:2] == ["รหัสอำเภอ", "อำเภอ"] and header[-2:] == ["เสร็จ", "ช้ากว่ากำหนด"]
    steps = [h.split(" ", 1)[0] for h in header[2:-2]]
    assert all("ครบกำหนด" in h for h in header[2:-2])
    assert [r[0] for r in rows] == list(page), "the board's rows, in its order"
    for row in rows:
        expected = [words[page[row[0]].get(step, "none")] for step in steps]
        assert row[2:-2] == expected, row[0]
        assert steps == list(page[row[0]]), "the board's columns"
        done = sum(s in ("done", "waived") for s in page[row[0]].values())
        assert row[-2] == f"{done}/{sum(s != 'none' for s in page[row[0]].values())}"
        assert row[-1] == str(sum(s == "overdue" for s in page[row[0]].values()))


def test_headers_are_thai_by_default_and_english_on_request_or_in_the_english_ui(client: TestClient):
    signed_in(client, "coordinator")
    exports = {
        f"{BOARD}/board.csv": ("รหัสอำเภอ", "District code"),
        f"{BOARD}/reports/compiled-districts.csv": ("รหัสอำเภอ", "District code"),
        f"{BOARD}/reports/compiled-sessions.csv": ("รหัสอำเภอ", "District code"),
        f"{BOARD}/reports/compiled-totals.csv": ("หมวด", "Section"),
    }

    def first_header(path: str) -> str:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        if ".xlsx" in path:
            return load_workbook(io.BytesIO(answer.content)).worksheets[0]["A1"].value
        return next(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))[0]

    xlsx = {f"{BOARD}/board.xlsx": ("รหัสอำเภอ", "District code"),
            f"{BOARD}/reports/compiled.xlsx": ("หมวด", "Section")}
    for path, (thai, english) in {**exports, **xlsx}.items():
        assert first_header(path) == thai, path
        assert first_header(path + "?lang=en") == english, path
    client.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(client)})
    for path, (thai, english) in {**exports, **xlsx}.items():
        assert first_header(path) == english, path
        assert first_header(path + "?lang=th") == thai, path
    # The reports page links each download both ways.
    page = client.get(f"{BOARD}/reports").text
    for path in (*exports, *xlsx):
        assert f'href="{path}?lang=en"' in page and f'href="{path}"' in page, path
    assert f'href="{BOARD}/covers"' in page


def test_the_national_board_s_exports_hold_the_page_s_rates(engine):
    """The Department's board as CSV: per province and step, done/expected as the page has them."""
    from sqlmodel import Session

    from domain.access import Role
    from domain.directive import load_directive
    from tests.conftest import NOW
    from tests.db.test_national import NATIONAL
    from tests.db.test_national import SLUG as NATIONAL_SLUG
    from tests.web.conftest import make_app
    from tests.web.helpers import PASSWORD
    from tidtam.app.accounts import ensure_user, hash_password
    from tidtam.app.national import launch_national
    from tidtam.app.orgtree import load_provinces

    with Session(engine) as session:
        load_provinces(session, ["50"])
        ensure_user(session, username="department", full_name="กรมฯ", role=Role.DEPARTMENT_VIEWER,
                    province_code=None, district_code=None, password_hash=hash_password(PASSWORD),
                    now=NOW)
        launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()
    with TestClient(make_app(engine)) as client:
        signed_in(client, "department")
        page = client.get(f"/national/{NATIONAL_SLUG}").text
        answer = client.get(f"/national/{NATIONAL_SLUG}/board.csv")
        assert answer.status_code == 200
        table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        english = client.get(f"/national/{NATIONAL_SLUG}/board.xlsx?lang=en")
        assert load_workbook(io.BytesIO(english.content))["national"]["A1"].value == "Province code"
        assert signed_in(TestClient(client.app), "coordinator").get(
            f"/national/{NATIONAL_SLUG}/board.csv").status_code == 403
    header, rows = table[0], table[1:]
    assert header[:2] == ["รหัสจังหวัด", "จังหวัด"] and rows[-1][1] == "ทั้งประเทศ"
    steps = [h.split(" ", 1)[0] for h in header[2:-2]]
    provinces = re.findall(r'<tr data-province="(\d+)">(.*?)</tr>', page, re.S)
    assert [r[0] for r in rows[:-1]] == [code for code, _ in provinces]
    for (code, html), row in zip(provinces, rows, strict=False):
        rates = re.findall(r'data-step="([^"]+)"><span class="rate" data-expected="(\d+)" '
                           r'data-actual="(\d+)"', html)
        cells = {step: f"{actual}/{expected}" for step, expected, actual in rates}
        assert cells, code
        for step, text in zip(steps, row[2:-2], strict=True):
            assert (f"เสร็จ {cells[step]} " in text) if step in cells else text == "–", (code, step)
