"""The installable app's parts, in process: the service worker's route and headers, the manifest
and its icons, the page a navigation gets offline, and the two lines every page carries (issue 15
item 4; the browser test is tests/e2e/test_offline_form.py)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from PIL import Image

from tests.web.helpers import SLUG, signed_in
from web.i18n import catalog

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
WORDS = ("offline", "waiting", "held", "conflict_title", "copy", "copied", "signout_waiting")


def test_the_service_worker_is_served_for_the_whole_site_and_always_checked_for_updates(client):
    answer = client.get("/sw.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "no-cache" in answer.headers["cache-control"]
    assert answer.headers["service-worker-allowed"] == "/"
    assert "content-security-policy" in answer.headers
    assert answer.text == (STATIC / "sw.js").read_text(encoding="utf-8")


def test_the_manifest_names_the_app_in_thai_and_its_icons_are_there(client):
    answer = client.get("/static/manifest.webmanifest")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(answer.text)
    assert manifest["short_name"] == "ติดตาม" and manifest["lang"] == "th"
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200, icon["src"]
        path = STATIC / icon["src"].removeprefix("/static/")
        if icon["type"] == "image/png":
            with Image.open(path) as image:
                assert image.format == "PNG"
                assert f"{image.width}x{image.height}" == icon["sizes"]
                sizes.add(image.width)
        else:
            assert icon["type"] == "image/svg+xml" and "<svg" in path.read_text(encoding="utf-8")
    assert {192, 512} <= sizes  # what Chromium asks of an installable app
    assert any(icon.get("purpose") == "maskable" for icon in manifest["icons"])


def test_the_offline_page_names_no_one_and_speaks_both_languages(client):
    signed_in(client, "staff-2706")
    answer = client.get("/offline")
    assert answer.status_code == 200
    text = html.unescape(answer.text)
    assert catalog("th")["offline.page_text"] in text and catalog("en")["offline.page_text"] in text
    assert 'data-user=""' in answer.text
    assert "form class=\"logout\"" not in answer.text and "/logout" not in answer.text


def test_every_page_links_the_manifest_and_loads_the_offline_script_with_the_person_and_words(client):
    login_page = client.get("/login").text
    assert 'data-user=""' in login_page
    signed_in(client, "staff-2706")
    page = client.get(f"/directives/{SLUG}/districts/2706/report").text
    assert '<link rel="manifest" href="/static/manifest.webmanifest">' in page
    tag = re.search(r'<script src="/static/offline\.js" defer data-user="(\d+)" '
                    r"data-words='([^']*)'></script>", page)
    assert tag, "the offline script's tag"
    words = json.loads(html.unescape(tag.group(2)))
    assert words == {key: catalog("th")[f"offline.{key}"] for key in WORDS}
    assert "{count}" in words["waiting"] and "{count}" in words["signout_waiting"]


def test_the_offline_words_exist_in_thai_and_english():
    for lang in ("th", "en"):
        for key in (*WORDS, "page_title", "page_text", "page_my"):
            assert catalog(lang)[f"offline.{key}"].strip(), (lang, key)
