"""The header every page shares: the favicon, the phone menu's button, the name and role once."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.web.helpers import csrf, signed_in

PAGES = {"coordinator": "/provinces/27/directives", "staff-2703": "/my", "head-2702": "/my",
         "department": "/national"}


def header(html: str) -> str:
    return re.search(r'<header class="top">(.*?)</header>', html, re.S).group(1)


def test_favicon_ico_is_a_real_icon(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon")
    icon = Image.open(io.BytesIO(answer.content))
    assert icon.format == "ICO" and (32, 32) in icon.info["sizes"]


def test_every_icon_a_page_links_is_there(client):
    """No 404 for an icon, signed in or not: each <link rel="icon"> of the page answers 200."""
    pages = [client.get("/login").text, signed_in(client, "coordinator").get(PAGES["coordinator"]).text]
    for html in pages:
        links = re.findall(r'<link rel="icon" href="([^"]+)"', html)
        assert links == ["/static/favicon.svg", "/favicon.ico"]
        for href in links:
            answer = client.get(href)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/")
    assert client.get("/static/favicon.svg").headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(("username", "name", "role"), [
    ("coordinator", "ผู้ประสานงานจังหวัด (สาธิต)", "ผู้ประสานงานจังหวัด"),
    ("head-2702", "พัฒนาการอำเภอคลองหาด (สาธิต)", "พัฒนาการอำเภอ"),
    ("staff-2703", "เจ้าหน้าที่ อ.ตาพระยา (สาธิต)", "เจ้าหน้าที่อำเภอ"),
])
def test_the_header_names_the_person_and_their_role_once(client, username, name, role):
    signed_in(client, username)
    top = header(client.get(PAGES[username]).text)
    assert top.count(name) == 1
    assert top.count(role) == 1, f"{role!r} repeated in the header: {top}"


def test_in_english_the_role_is_still_said_once(client):
    signed_in(client, "coordinator")
    client.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(client)})
    top = header(client.get(PAGES["coordinator"]).text)
    assert top.count("ผู้ประสานงานจังหวัด (สาธิต)") == 1 and top.count("coordinator") == 1


def test_the_menu_button_is_one_label_for_the_menu_in_both_languages(client):
    top = header(signed_in(client, "staff-2703").get("/my").text)
    button = '<label for="menu-toggle" class="menu-button">เมนู<span lang="en"> / Menu</span></label>'
    assert button in top
    assert 'id="menu"' in top and top.index('class="menu-button"') < top.index('href="/my"')
