"""Message templates: Thai text, B.E. dates, strict about missing variables."""

from __future__ import annotations

import jinja2
import pytest

from notifications.render import render_email_html, render_message

# template, whether it speaks of one district, text expected in the subject
TEMPLATES = [
    ("reminder", True, "แจ้งเตือน"),
    ("due_today", True, "เลยกำหนด 3 วันทำการ"),
    ("late", True, "เลยกำหนด 3 วันทำการ"),
    ("coordinator", False, "2 อำเภอ"),
    ("provincial_head", False, "เพื่อโปรดทราบ"),
]


@pytest.mark.parametrize(("name", "per_district", "in_subject"), TEMPLATES,
                         ids=[t[0] for t in TEMPLATES])
def test_renders_thai_with_buddhist_era_dates(message_context, name, per_district, in_subject):
    if not per_district:
        del message_context["district"]
        message_context["item_id"] = None
    subject, body = render_message(name, **message_context)
    assert "\n" not in subject
    assert in_subject in subject
    assert '"จัดประชุมกลไกขับเคลื่อน & จัดทำแผน"' in subject  # text templates are not escaped
    assert "9 สิงหาคม 2567" in body
    assert "สก 0019/ว 252" in body
    assert "หนังสือ สก 0019/ว 252" in subject  # every message names its letter
    assert body.startswith("เรียน ")
    assert not body.endswith("\n")


def test_reminder_links_the_item_and_counts_days(message_context):
    subject, body = render_message("reminder.txt.j2", **message_context)
    assert subject == ('แจ้งเตือน: "จัดประชุมกลไกขับเคลื่อน & จัดทำแผน" ครบกำหนด 9 ส.ค. 2567 '
                       "(อีก 3 วันทำการ) · หนังสือ สก 0019/ว 252")
    assert "อำเภอเมืองสระแก้ว" in body
    assert "https://tidtam.example.go.th/items/42" in body


def test_due_today_with_no_working_day_late_says_due_not_today(message_context):
    # A sweep on a holiday Monday after a Friday due date is 0 working days late: the message
    # must not claim the due date is today.
    subject, body = render_message("due_today", **(message_context | {"days": 0}))
    assert subject.startswith("ถึงกำหนดแล้ว")
    assert "เลยกำหนด" not in body and "วันนี้" not in subject + body


@pytest.mark.parametrize("name", ["coordinator", "provincial_head"])
def test_grouped_messages_list_every_late_district(message_context, name):
    del message_context["district"]
    _, body = render_message(name, **(message_context | {"item_id": None}))
    assert "1. อำเภอคลองหาด เลยกำหนด 2 วันทำการ" in body
    assert "2. อำเภอตาพระยา เลยกำหนด 5 วันทำการ" in body
    assert "https://tidtam.example.go.th/directives/fy2567-sakaeo-volunteer-centers\n" in body


@pytest.mark.parametrize("name", [t[0] for t in TEMPLATES])
@pytest.mark.parametrize("missing", ["directive", "due_on", "base_url"])
def test_a_missing_variable_raises(message_context, name, missing):
    del message_context[missing]
    with pytest.raises(jinja2.UndefinedError):
        render_message(name, **message_context)


def test_per_district_templates_need_the_district(message_context):
    del message_context["district"]
    with pytest.raises(jinja2.UndefinedError):
        render_message("reminder", **message_context)


def test_email_html_escapes_and_keeps_paragraphs():
    html = render_email_html('แจ้ง "ทดสอบ"', "บรรทัดหนึ่ง\nบรรทัด <b>สอง</b>\n\nดู https://x.example.go.th/items/1")
    assert "<title>แจ้ง &#34;ทดสอบ&#34;</title>" in html
    assert "<p>บรรทัดหนึ่ง<br>\nบรรทัด &lt;b&gt;สอง&lt;/b&gt;</p>" in html
    assert '<a href="https://x.example.go.th/items/1"' in html


@pytest.mark.parametrize(("warned", "lines", "closing"), [
    ((2, 1), ("คลองหาด เลยกำหนด 2 วันทำการ · แจ้งเตือนอำเภอแล้ว 2 ครั้ง",
              "ตาพระยา เลยกำหนด 5 วันทำการ · แจ้งเตือนอำเภอแล้ว 1 ครั้ง"),
     "ได้แจ้งเตือนอำเภอดังกล่าวแล้ว"),
    ((3, 0), ("คลองหาด เลยกำหนด 2 วันทำการ · แจ้งเตือนอำเภอแล้ว 3 ครั้ง",
              "ตาพระยา เลยกำหนด 5 วันทำการ · ยังไม่ได้แจ้งเตือนอำเภอ"),
     "ได้แจ้งเตือนแล้ว 1 จาก 2 อำเภอ"),
    ((0, 0), ("คลองหาด เลยกำหนด 2 วันทำการ · ยังไม่ได้แจ้งเตือนอำเภอ",
              "ตาพระยา เลยกำหนด 5 วันทำการ · ยังไม่ได้แจ้งเตือนอำเภอ"),
     "ระบบยังไม่ได้ส่งคำแจ้งเตือนถึงอำเภอดังกล่าว"),
])
def test_the_provincial_head_hears_that_districts_were_warned_only_when_they_were(
        message_context, warned, lines, closing):
    del message_context["district"]
    late = [d | {"warned": n} for d, n in zip(message_context["districts_late"], warned, strict=True)]
    _, body = render_message("provincial_head", **(message_context | {
        "item_id": None, "districts_late": late}))
    for line in lines:
        assert line in body
    assert closing in body
    if 0 in warned:
        assert "ได้แจ้งเตือนอำเภอดังกล่าวแล้ว" not in body
