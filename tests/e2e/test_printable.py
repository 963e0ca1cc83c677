"""The printable official form (enclosure 3) in headless Chromium, and its PDF's Thai text layer.

Pages are rendered in-process (as the web routes do), opened in Chromium through Playwright,
then printed by tidtam.documents.pdf and read back with pdftotext: the district's name and the exact
string สำนักงานพัฒนาชุมชน must survive (WeasyPrint's PDFs turn สำนักงาน into สำนักงำน).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from domain.errors import Forbidden
from models.report import ReportPhoto
from models.user import get_by_username
from tests.conftest import NOW, unavailable
from tests.e2e.conftest import CHROMIUM
from tests.flows.test_compile import add_reports
from tidtam.documents.pdf import PdfUnavailable, html_to_pdf
from tidtam.documents.printing import printable_district, printable_province
from tidtam.infra.photos import PhotoStore

pytestmark = pytest.mark.browser
COLOURS = {"a1": (40, 140, 60), "a2": (200, 120, 30)}


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def printed(session, launched, tmp_path):
    """The sample reports, two photos on 2701's sessions; returns (session, store, users,
    the directive)."""
    rows = add_reports(session, launched.id)
    store = PhotoStore(tmp_path / "photos")
    for key, colour in COLOURS.items():
        stored = store.save(jpeg(colour), f"{key}.jpg")
        session.add(ReportPhoto(
            report_id=rows["2701"].id, session_key=key, stored_name=stored.stored_name,
            display_name=stored.display_name, thumb_name=stored.thumb_name,
            original_filename=f"{key}.jpg", content_type=stored.content_type,
            size_bytes=stored.size_bytes, width=stored.width, height=stored.height,
            sha256=stored.sha256, uploaded_at=NOW))
    session.flush()
    users = {name: get_by_username(session, name)
             for name in ("staff-2701", "staff-2702", "coordinator", "province-head")}
    return session, store, users, launched


def open_page(page, html: str):
    page.set_content(html, wait_until="load")
    return page


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        unavailable("pdftotext (poppler-utils) not installed")
    path = tmp_path / "form.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_district_form_in_chromium_shows_items_1_to_5_photos_and_sessions(printed, desktop_page):
    session, store, users, directive = printed
    html = printable_district(session, users["staff-2701"], "2701", directive=directive, store=store)
    page = open_page(desktop_page, html)
    text = page.inner_text("body")
    assert "อำเภอเมืองสระแก้ว จังหวัดสระแก้ว" in text
    assert "แบบรายงานการดำเนินงานกิจกรรม" in text
    assert page.inner_text("#item-1").strip().endswith("จำนวน 1 แห่ง")
    item2 = page.inner_text("#item-2")
    for title, count in (("คณะกรรมการบริหารศูนย์ผู้นำจิตอาสาพัฒนาชุมชน", "9"), ("ภาคีการพัฒนา ๗ ภาคส่วน", "5"),
                         ("รวมทั้งสิ้น", "53")):
        assert title in item2 and count in item2
    item3 = page.inner_text("#item-3")
    assert "๑. กิจกรรมพัฒนาฐานการเรียนรู้ จำนวน 1 แห่ง" in item3
    assert "๒. กิจกรรมปลูกต้นไม้ จำนวน 1 แห่ง" in item3
    assert page.locator("#item-4 .photo-group").count() == 2  # one per kind of item 3
    loaded = page.eval_on_selector_all("#item-4 img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert loaded == [640, 640]
    assert "๑. ชุมชนมีต้นไม้เพิ่มขึ้น 200 ต้น" in page.inner_text("#item-5")
    sessions = page.inner_text("#sessions")
    assert "5 กรกฎาคม 2567" in sessions and "บ้านโนนสูง ต.ศาลาลำดวน" in sessions
    assert "สำนักงานพัฒนาชุมชนจังหวัดสระแก้ว" in text
    assert "ฉบับร่าง" not in text and "จังหวัดรับรายงานแล้ว" in text


def test_thai_digits_write_every_count_and_date_in_thai(printed, desktop_page):
    session, store, users, directive = printed
    html = printable_district(session, users["coordinator"], "2701", directive=directive, store=store,
                              thai_digits=True)
    page = open_page(desktop_page, html)
    assert "จำนวน ๑ แห่ง" in page.inner_text("#item-1")
    assert "๕๓" in page.inner_text("#item-2") and "53" not in page.inner_text("#item-2")
    assert "๕ กรกฎาคม ๒๕๖๗" in page.inner_text("#sessions")


def test_on_screen_the_annex_is_a_landscape_sheet_of_its_own(printed, desktop_page):
    """The preview shows the form on a portrait A4 sheet and the annexed table on a landscape one
    (as it prints: @page annex), not squeezed into the portrait sheet's width."""
    session, store, users, directive = printed
    page = open_page(desktop_page.set_viewport_size({"width": 1400, "height": 900}) or desktop_page,
                     printable_district(session, users["coordinator"], "2701", directive=directive,
                                        store=store))
    mm = 96 / 25.4
    form, annex = page.locator(".sheet").all()
    assert abs(form.bounding_box()["width"] - 210 * mm) < 2
    box = annex.bounding_box()
    assert annex.get_attribute("id") == "sessions"
    assert abs(box["width"] - 297 * mm) < 2 and box["height"] >= 210 * mm - 2
    table = page.locator("#sessions table.grid").bounding_box()
    assert table["width"] > (297 - 45) * mm - 2  # the whole landscape width inside its margins


def test_a_report_not_yet_accepted_prints_as_a_draft_and_staff_print_only_their_district(printed):
    session, store, users, directive = printed
    html = printable_district(session, users["coordinator"], "2703", directive=directive, store=store)
    assert "ฉบับร่าง" in html and "ส่งแล้ว รอจังหวัดตรวจ" in html and "อำเภอตาพระยา" in html
    empty = printable_district(session, users["coordinator"], "2709", directive=directive, store=store)
    assert "ยังไม่ได้บันทึกรายงาน" in empty and "- ยังไม่มีข้อมูล -" in empty
    with pytest.raises(Forbidden):
        printable_district(session, users["staff-2702"], "2701", directive=directive, store=store)
    with pytest.raises(Forbidden):
        printable_province(session, users["staff-2701"], directive=directive, store=store)


def test_province_form_in_chromium_adds_up_accepted_reports_and_lists_the_missing(printed, desktop_page):
    session, store, users, directive = printed
    html = printable_province(session, users["province-head"], directive=directive, store=store)
    page = open_page(desktop_page, html)
    text = page.inner_text("body")
    assert "สรุปผลภาพรวม จังหวัดสระแก้ว" in text
    assert "จำนวน 4 แห่ง" in page.inner_text("#item-1")
    item2 = page.inner_text("#item-2")
    assert "รวมทั้งสิ้น" in item2 and "167" in item2 and "33" in item2 and "54" in item2
    assert "๒. กิจกรรมปลูกต้นไม้ จำนวน 3 แห่ง" in page.inner_text("#item-3")
    assert page.locator("#item-4 img").count() == 2
    outcomes = page.inner_text("#item-5")
    assert "อำเภอคลองหาด" in outcomes and "วัดในชุมชนสะอาดพร้อมรับวันสำคัญ" in outcomes
    assert "ยังไม่ได้ตรวจ" not in text, "a submitted report's outcomes are not compiled"
    missing = page.inner_text("body").split("อำเภอที่ยังไม่มีรายงานที่จังหวัดรับแล้ว")[1]
    assert "อำเภอตาพระยา — ส่งแล้ว รอจังหวัดตรวจ" in missing
    assert "อำเภอวังสมบูรณ์ — ยังไม่ได้บันทึกรายงาน" in missing
    assert "อำเภอเมืองสระแก้ว" not in missing


def test_pdf_text_layer_keeps_the_district_name_and_the_office_exactly(printed, tmp_path):
    session, store, users, directive = printed
    if not CHROMIUM.exists():
        unavailable("chromium not installed")
    pdf = html_to_pdf(printable_district(session, users["staff-2701"], "2701", directive=directive,
                                         store=store))
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    assert "อำเภอเมืองสระแก้ว" in text
    assert "สำนักงานพัฒนาชุมชน" in text and "สำนักงำน" not in text
    assert "รวมทั้งสิ้น" in text and "53 คน" in text
    # "เป็น" whole: the system's Laksaman gave "เป็ น" (a mark over ป, tidtam/documents/fonts/README.md)
    assert "เป็นต้น" in text and "เป็นข้อ" in text
    assert not any(split in text for split in ("เป็ น", "เป ็น", "เ ป็น", "เป ็ น"))
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "99", str(tmp_path / "form.pdf")],
                          capture_output=True, text=True).stdout
    assert "(A4)" in info
    sizes = re.findall(r"Page +\d+ size: +([\d.]+) x ([\d.]+) pts", info)
    assert float(sizes[0][0]) < float(sizes[0][1]), "the form prints portrait"
    assert float(sizes[-1][0]) > float(sizes[-1][1]), "the annexed table prints landscape"
    fonts = subprocess.run(["pdffonts", str(tmp_path / "form.pdf")], capture_output=True, text=True).stdout
    assert "tidtamLaksaman" in fonts


def test_province_pdf_holds_the_totals(printed, tmp_path):
    session, store, users, directive = printed
    if not CHROMIUM.exists():
        unavailable("chromium not installed")
    html = printable_province(session, users["coordinator"], directive=directive, store=store)
    text = pdf_text(html_to_pdf(html), tmp_path)
    assert "จังหวัดสระแก้ว" in text and "สำนักงานพัฒนาชุมชน" in text
    assert "167 คน" in text and "อำเภอวังสมบูรณ์" in text


def test_no_chromium_is_a_clear_thai_and_english_error():
    with pytest.raises(PdfUnavailable) as caught:
        html_to_pdf("<p>x</p>", chromium="no-such-chromium-binary")
    assert "Chromium" in caught.value.message_en and "PDF" in caught.value.message_th
    assert "ผู้ดูแลระบบ" in caught.value.message_th
