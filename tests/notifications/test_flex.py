"""The Flex Message of a person's day: exact JSON, LINE's limits, and LINE's own models."""

from __future__ import annotations

from datetime import date

import pytest
from linebot.v3.messaging import FlexMessage

from notifications.flex import Card, alt_text, bubble, flex_messages, standing_text


def card(item_id: int = 7, days: int = 1, *, report: bool = False) -> Card:
    return Card(item_id=item_id, reference_no="สก 0019/ว 252", letter_title="ศูนย์จิตอาสา",
                step_title="จัดประชุม", due_on=date(2024, 8, 9), days=days,
                url=f"https://tidtam.example/items/{item_id}", report_step=report,
                district_name="เมืองสระแก้ว")


def test_bubble_exact_json():
    assert bubble(card()) == {
        "type": "bubble", "size": "kilo",
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": [
            {"type": "text", "text": "หนังสือ สก 0019/ว 252", "size": "xs", "color": "#888888",
             "wrap": True},
            {"type": "text", "text": "ศูนย์จิตอาสา", "size": "sm", "wrap": True, "maxLines": 3},
            {"type": "text", "text": "จัดประชุม", "weight": "bold", "size": "md", "wrap": True,
             "margin": "md"},
            {"type": "text", "text": "อำเภอเมืองสระแก้ว", "size": "sm", "wrap": True},
            {"type": "text", "text": "กำหนด 9 สิงหาคม 2567", "size": "sm", "margin": "md",
             "wrap": True},
            {"type": "text", "text": "เลยกำหนด 1 วันทำการ", "weight": "bold", "size": "sm",
             "color": "#C62828", "wrap": True}]},
        "footer": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": [
            {"type": "button", "style": "primary", "height": "sm",
             "action": {"type": "postback", "label": "ทำแล้ว", "data": "action=done&item=7",
                        "displayText": "ทำแล้ว"}},
            {"type": "button", "style": "secondary", "height": "sm",
             "action": {"type": "uri", "label": "เปิดดู",
                        "uri": "https://tidtam.example/items/7"}}]}}


def test_report_step_gets_only_the_link():
    buttons = bubble(card(report=True))["footer"]["contents"]
    assert [b["action"]["type"] for b in buttons] == ["uri"]


def test_standing_words():
    assert [standing_text(d) for d in (-3, 0, 2)] == [
        "ครบกำหนดในอีก 3 วันทำการ", "ครบกำหนดวันนี้", "เลยกำหนด 2 วันทำการ"]


def test_carousel_most_late_first_and_alt_text():
    [message] = flex_messages([card(1, -1), card(2, 3), card(3, 0)])
    assert message["type"] == "flex"
    assert message["altText"] == (
        "งานที่ต้องติดตาม 3 รายการ · เลยกำหนด 1 · ครบกำหนดวันนี้ 1\n"
        "- จัดประชุม (เลยกำหนด 3 วันทำการ)\n- จัดประชุม (ครบกำหนดวันนี้)\n"
        "- จัดประชุม (ครบกำหนดในอีก 1 วันทำการ)")
    items = [b["footer"]["contents"][0]["action"]["data"] for b in message["contents"]["contents"]]
    assert items == ["action=done&item=2", "action=done&item=3", "action=done&item=1"]


def test_within_lines_limits():
    messages = flex_messages([card(i) for i in range(1, 70)])
    assert len(messages) == 5  # LINE takes at most 5 messages a push
    assert [len(m["contents"]["contents"]) for m in messages] == [12] * 5
    assert all(len(m["altText"]) <= 1500 for m in messages)
    assert len(alt_text([card(i) for i in range(1, 200)])) == 1500
    with pytest.raises(ValueError):
        flex_messages([])


@pytest.mark.parametrize("report", [False, True])
def test_official_sdk_models_read_it_back_unchanged(report):
    """line-bot-sdk v3's FlexMessage model parses our JSON and writes the same JSON back: no
    field LINE does not know, none misnamed."""
    [message] = flex_messages([card(1, 0, report=report), card(2, -3)])
    parsed = FlexMessage.from_dict(message)
    assert parsed.to_dict() == message
