"""The compilation's XLSX and CSV hold exactly the figures the districts reported (no DB).

The sample reports below are shared with tests/flows/test_compile.py and
tests/e2e/test_printable.py; every expected figure is added up by hand in EXPECTED.
"""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from domain.directive import load_directive
from domain.report import check_report, compile_province
from tidtam.documents.exports import BOM, TABLES, compilation_csv, compilation_tables, compilation_xlsx
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

CODES = ("center-committee", "volunteer-leaders", "community", "partners", "cd-officials")


def session(key, held_on, center, place, kind, counts, kind_other=""):
    return {"key": key, "held_on": held_on, "center": center, "place": place, "kind": kind,
            "kind_other": kind_other, "participants": dict(zip(CODES, counts, strict=True))}


# district code → (status, the stored content)
REPORTS = {
    "2701": ("accepted", {"sessions": [
        session("a1", "2024-07-05", "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนบ้านหนองบอน", "บ้านหนองบอน ต.สระแก้ว",
                "tree-planting", (5, 10, 8, 3, 2)),                                        # 28
        session("a2", "2024-07-20", "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนบ้านหนองบอน ", "บ้านโนนสูง ต.ศาลาลำดวน",
                "learning-base", (4, 6, 12, 2, 1)),                                        # 25
    ], "outcomes": ["ชุมชนมีต้นไม้เพิ่มขึ้น 200 ต้น", "ผู้นำจิตอาสามีความสามัคคีมากขึ้น"]}),
    "2702": ("accepted", {"sessions": [
        session("b1", "2024-07-10", "ศูนย์ฯ บ้านคลองหาด", "บ้านคลองหาด", "tree-planting", (6, 7, 9, 4, 3)),  # 29
        session("b2", "2024-07-11", "ศูนย์ฯ บ้านไทรทอง", "บ้านไทรทอง", "tree-planting", (5, 5, 5, 5, 0)),   # 20
        session("b3", "2024-07-12", "ศูนย์ฯ บ้านไทรทอง", "บ้านไทรทอง", "other", (3, 4, 10, 2, 1),
                kind_other="ทำความสะอาดวัด"),                                                 # 20
    ], "outcomes": ["วัดในชุมชนสะอาดพร้อมรับวันสำคัญ"]}),
    "2706": ("accepted", {"sessions": [
        session("c1", "2024-07-28", "ศูนย์ฯ อรัญประเทศ", "บ้านเมืองไผ่", "community-kitchen",
                (10, 10, 10, 10, 5)),                                                       # 45
    ], "outcomes": ["ครัวชุมชนมีผักกินตลอดปี"]}),
    # submitted, not accepted: must not count
    "2703": ("submitted", {"sessions": [
        session("d1", "2024-07-15", "ศูนย์ฯ ตาพระยา", "บ้านตาพระยา", "landscape", (100, 100, 100, 100, 100)),
    ], "outcomes": ["ยังไม่ได้ตรวจ"]}),
}

EXPECTED = {
    "centers": 1 + 2 + 1,
    "sessions": 2 + 3 + 1,
    "participants": {"center-committee": 5 + 4 + 6 + 5 + 3 + 10,      # 33
                     "volunteer-leaders": 10 + 6 + 7 + 5 + 4 + 10,    # 42
                     "community": 8 + 12 + 9 + 5 + 10 + 10,           # 54
                     "partners": 3 + 2 + 4 + 5 + 2 + 10,              # 26
                     "cd-officials": 2 + 1 + 3 + 0 + 1 + 5},          # 12
    "total": 167,
    # kind → (places, sessions)
    "kinds": {"learning-base": (1, 1), "landscape": (0, 0), "tree-planting": (1 + 2, 1 + 2),
              "community-kitchen": (1, 1), "other:ทำความสะอาดวัด": (1, 1)},
    "accepted": ["2701", "2702", "2706"],
    "missing": ["2703", "2704", "2705", "2707", "2708", "2709"],
}
SA_KAEO = [("2701", "เมืองสระแก้ว", "Mueang Sa Kaeo"), ("2702", "คลองหาด", "Khlong Hat"),
           ("2703", "ตาพระยา", "Ta Phraya"), ("2704", "วังน้ำเย็น", "Wang Nam Yen"),
           ("2705", "วัฒนานคร", "Watthana Nakhon"), ("2706", "อรัญประเทศ", "Aranyaprathet"),
           ("2707", "เขาฉกรรจ์", "Khao Chakan"), ("2708", "โคกสูง", "Khok Sung"),
           ("2709", "วังสมบูรณ์", "Wang Sombun")]


@pytest.fixture(scope="module")
def spec():
    return load_directive(DEFAULT_DIRECTIVE)


@pytest.fixture(scope="module")
def compilation(spec):
    reports = {code: (status, check_report(raw, spec).content) for code, (status, raw) in REPORTS.items()}
    return compile_province(spec, SA_KAEO, reports)


def test_the_sample_reports_are_valid_so_the_figures_mean_something(spec):
    for code, (_, raw) in REPORTS.items():
        checked = check_report(raw, spec, {s["key"]: 1 for s in raw["sessions"]})
        assert checked.ok, (code, [f.en() for f in checked.errors])


def test_xlsx_totals_sheet_holds_the_hand_added_figures(spec, compilation):
    book = load_workbook(io.BytesIO(compilation_xlsx(compilation, spec)))
    assert book.sheetnames == ["totals", "districts", "sessions"]
    rows = list(book["totals"].iter_rows(values_only=True))
    assert rows[0] == ("หมวด", "รหัส", "ชื่อ (ภาษาไทย)", "ชื่อ (ภาษาอังกฤษ)", "จำนวน", "จำนวนครั้ง")
    value = {(r[0], r[1]): r[4] for r in rows[1:]}
    assert value[("centers", "centers")] == EXPECTED["centers"] == 4
    assert value[("sessions", "sessions")] == EXPECTED["sessions"] == 6
    for code, count in EXPECTED["participants"].items():
        assert value[("participants", code)] == count
    assert value[("participants", "total")] == EXPECTED["total"] == 33 + 42 + 54 + 26 + 12
    kinds = {r[1]: (r[4], r[5]) for r in rows[1:] if r[0] == "kinds"}
    assert kinds == EXPECTED["kinds"]
    assert value[("districts", "accepted")] == 3 and value[("districts", "missing")] == 6
    titles = {r[1]: r[2] for r in rows[1:]}
    assert titles["cd-officials"] == "เจ้าหน้าที่พัฒนาชุมชนที่เกี่ยวข้อง ระดับจังหวัด/อำเภอ"
    assert titles["tree-planting"] == "ปลูกต้นไม้"


def test_xlsx_districts_sheet_has_one_row_per_district_and_blank_figures_when_not_accepted(spec, compilation):
    book = load_workbook(io.BytesIO(compilation_xlsx(compilation, spec)))
    rows = list(book["districts"].iter_rows(values_only=True))
    header = compilation_tables(compilation, spec)["districts"].header  # the keys of the Thai words
    body = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert rows[0][:3] == ("รหัสอำเภอ", "ชื่ออำเภอ", "ชื่ออำเภอ (ภาษาอังกฤษ)")
    assert list(body) == [code for code, _, _ in SA_KAEO]
    assert "places:other" in header and "total_participants" in header
    row = body["2701"]
    assert (row["centers"], row["sessions"], row["total_participants"]) == (1, 2, 53)
    assert body["2702"]["places:tree-planting"] == 2 and body["2702"]["places:other"] == 1
    assert body["2702"]["cd-officials"] == 3 + 0 + 1
    assert body["2706"]["community"] == 10 and body["2706"]["outcomes"] == 1
    assert body["2703"]["status"] == "submitted" and body["2703"]["status_th"] == "ส่งแล้ว รอจังหวัดตรวจ"
    assert body["2703"]["centers"] is None and body["2703"]["total_participants"] is None
    assert body["2709"]["status"] == "none"
    accepted = [body[c] for c in EXPECTED["accepted"]]
    for code, count in EXPECTED["participants"].items():
        assert sum(r[code] for r in accepted) == count


def test_xlsx_sessions_sheet_lists_the_sessions_of_accepted_reports_only(spec, compilation):
    book = load_workbook(io.BytesIO(compilation_xlsx(compilation, spec)))
    rows = list(book["sessions"].iter_rows(values_only=True))
    keys = compilation_tables(compilation, spec)["sessions"].header
    records = [dict(zip(keys, r, strict=True)) for r in rows[1:]]
    assert [r["district_code"] for r in records] == ["2701", "2701", "2702", "2702", "2702", "2706"]
    first = records[0]
    assert (first["held_on"], first["held_on_th"]) == ("2024-07-05", "5 ก.ค. 2567")
    assert (first["kind"], first["kind_title_th"]) == ("tree-planting", "ปลูกต้นไม้")
    assert first["total_participants"] == 28
    assert records[4]["kind"] == "other:ทำความสะอาดวัด" and records[4]["kind_title_th"] == "ทำความสะอาดวัด"
    assert sum(r["total_participants"] for r in records) == EXPECTED["total"]
    for code, count in EXPECTED["participants"].items():
        assert sum(r[code] for r in records) == count


@pytest.mark.parametrize("table", TABLES)
def test_csv_parses_and_equals_the_xlsx_sheet(spec, compilation, table):
    text = compilation_csv(compilation, spec, table)
    assert text.startswith(BOM), "Excel needs the BOM to read Thai as UTF-8"
    parsed = list(csv.reader(io.StringIO(text.removeprefix(BOM))))
    book = load_workbook(io.BytesIO(compilation_xlsx(compilation, spec)))
    sheet = [["" if v is None else str(v) for v in row]
             for row in book[table].iter_rows(values_only=True)]
    assert parsed == sheet


def test_csv_written_as_utf8_reads_back_with_utf8_sig(spec, compilation, tmp_path):
    path = tmp_path / "totals.csv"
    path.write_text(compilation_csv(compilation, spec, "totals", "en"), encoding="utf-8")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = {(r["Section"], r["Code"]): r for r in csv.DictReader(handle)}  # English headers
    assert rows[("participants", "total")]["Value"] == "167"
    assert rows[("participants", "community")]["Title (Thai)"] == "ผู้นำชุมชน ประชาชน นักเรียน/นักศึกษา และผู้สนใจ"


def test_an_unknown_table_is_refused_in_thai_and_english(spec, compilation):
    with pytest.raises(ValueError) as caught:
        compilation_csv(compilation, spec, "photos")
    assert "ไม่มีตาราง" in caught.value.message_th and "no table" in caught.value.message_en


def test_no_accepted_report_gives_zero_totals_and_every_district_missing(spec):
    empty = compile_province(spec, SA_KAEO, {})
    tables = compilation_tables(empty, spec)
    value = {(r[0], r[1]): r[4] for r in tables["totals"].rows}
    assert value[("participants", "total")] == 0 and value[("districts", "missing")] == 9
    assert tables["sessions"].rows == []
