"""The Content-Security-Policy breaks no page: Chromium loads the main pages of each role (login,
my work, the report form with its autosave, the profile, the board, the printed form, the national
board, the API docs) and reports no CSP violation in its console.

One browser; one context per person; a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import NOW
from tests.e2e.conftest import served, sign_in
from tests.web.helpers import CLOCK, SLUG
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser

REPORT = f"/directives/{SLUG}/districts/2706/report"
PAGES = {
    "staff-2706": ["/my", REPORT, "/profile"],
    "coordinator": ["/board", f"/directives/{SLUG}", f"/directives/{SLUG}/reports",
                    f"/directives/{SLUG}/reports/print", "/outbox", "/profile"],
    "department": ["/national"],
}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    engine = db.engine_for(f"sqlite:///{tmp_path_factory.mktemp('e2e-csp') / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    app = create_app(Settings(demo=True, _env_file=None), engine, clock=FixedClock(CLOCK))
    with served(app, "uvicorn-csp") as url:
        yield url


def violations_on(browser, base_url: str, username: str | None, paths: list[str]) -> list[str]:
    context = browser.new_context(locale="th-TH")
    page = context.new_page()
    seen: list[str] = []
    page.on("console", lambda message: seen.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)
    try:
        if username is None:
            page.goto(f"{base_url}/login")
        else:
            sign_in(page, base_url, username)
            page.wait_for_load_state("load")
        for path in paths:
            answer = page.goto(f"{base_url}{path}")
            assert answer is not None and answer.status == 200, (username, path)
            assert "content-security-policy" in answer.headers, path
            if path == REPORT:  # the autosave script runs: type, and wait for its save
                field = page.locator("input[name$='-center']").first
                field.fill("ศูนย์ฯ ทดสอบ CSP")
                page.wait_for_timeout(2500)
        if username == "coordinator":
            page.goto(f"{base_url}/docs")
            page.wait_for_selector(".swagger-ui .information-container", timeout=10_000)
    finally:
        context.close()
    return seen


def test_no_page_breaks_the_content_security_policy(browser, base_url):
    seen = violations_on(browser, base_url, None, [])
    for username, paths in PAGES.items():
        seen += violations_on(browser, base_url, username, paths)
    assert seen == []
