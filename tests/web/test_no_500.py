"""No input makes a 500 (issue 14 item 5): ids past the database's integers, malformed bodies at
/login and at every form, a webhook body nested too deep, bodies over their cap with or without
Content-Length; and 422 answers in the app's one bilingual shape.

The client does not raise the app's errors: what is checked is what a user would get.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import make_app
from tests.web.helpers import SLUG, api_token, csrf, form_token, signed_in
from tests.web.test_line_webhook import SECRET, line_signature
from web.limits import DEFAULT_MAX_BODY
from web.reports import MAX_DRAFT_BYTES

TOO_BIG = 2**63  # one past PostgreSQL's bigint and SQLite's integer
BAD_BODY_TH = "อ่านข้อมูลที่ส่งมาไม่ได้"


@pytest.fixture
def client(engine) -> Iterator[TestClient]:
    app = make_app(engine, line_channel_secret=SECRET, line_channel_access_token="t" * 40)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bilingual(response) -> dict:
    detail = response.json()["detail"]
    assert set(detail) == {"th", "en"} and all(detail.values()), detail
    return detail


# --- ids ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("item_id", [TOO_BIG, 10**30, 0, -1])
def test_an_id_outside_the_databases_integers_is_a_422_on_the_api(client, item_id):
    headers = api_token(client, "coordinator")
    for answer in (client.get(f"/api/v1/items/{item_id}", headers=headers),
                   client.post(f"/api/v1/items/{item_id}/done", headers=headers,
                               json={"version": 1})):
        assert answer.status_code == 422, answer.text
        assert "item_id" in bilingual(answer)["en"]
    assert client.get(f"/api/v1/items/{TOO_BIG - 1}", headers=headers).status_code == 404


@pytest.mark.parametrize("path", [f"/items/{TOO_BIG}", f"/photos/{TOO_BIG}",
                                  f"/photos/{TOO_BIG}/thumb", f"/items/{10**40}"])
def test_an_id_outside_the_databases_integers_is_a_422_page(client, path):
    signed_in(client, "coordinator")
    answer = client.get(path)
    assert answer.status_code == 422
    assert "ข้อมูลที่ส่งมาไม่ครบหรือไม่ถูกต้อง" in answer.text


def test_a_posted_form_with_an_id_or_version_too_large_is_refused_not_a_500(client, engine):
    from tests.web.helpers import item_of

    signed_in(client, "staff-2706")
    token = csrf(client)
    item = item_of(engine, "2706", "G1")
    assert client.post(f"/photos/{TOO_BIG}/delete", data={"csrftoken": token}).status_code == 422
    done = client.post(f"/items/{item.id}/done", data={"csrftoken": token, "version": str(TOO_BIG)})
    assert done.status_code == 422
    report = f"/directives/{SLUG}/districts/2706/report/submit"
    for version in (str(TOO_BIG), "²"):  # "²" is a digit to str.isdigit, not to int()
        answer = client.post(report, data={"csrftoken": token, "version": version})
        assert answer.status_code == 422, (version, answer.status_code)
    headers = api_token(client, "staff-2706")
    api = client.post(f"/api/v1/items/{item.id}/done", headers=headers, json={"version": TOO_BIG})
    assert api.status_code == 422 and "version" in bilingual(api)["en"]


# --- malformed bodies -------------------------------------------------------------------------

MALFORMED = {
    "urlencoded, not UTF-8": ("application/x-www-form-urlencoded", b"username=\xff\xfe&csrftoken=x"),
    "multipart, no boundary": ("multipart/form-data", b"--x\r\n"),
    "multipart, garbage": ("multipart/form-data; boundary=abc", b"garbage\r\n--abc\r\n\x00"),
    "multipart, token not UTF-8": (
        "multipart/form-data; boundary=abc",
        b'--abc\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\n\xff\xfe\r\n--abc--\r\n'),
    "multipart, cut short": (
        "multipart/form-data; boundary=abc",
        b'--abc\r\nContent-Disposition: form-data; name="csrf'),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_body_at_login_is_a_400_in_thai_and_english(client, kind):
    form_token(client.get("/login").text)  # the browser has its CSRF cookie, as a real one would
    content_type, body = MALFORMED[kind]
    answer = client.post("/login", content=body, headers={"content-type": content_type})
    assert answer.status_code in (400, 403), (kind, answer.status_code)
    if answer.status_code == 400:
        assert BAD_BODY_TH in answer.text and "could not be read" in answer.text
    json_answer = client.post("/login", content=body, headers={
        "content-type": content_type, "accept": "application/json"})
    assert json_answer.status_code == answer.status_code


def test_each_malformed_kind_that_crashed_the_csrf_parser_is_a_400(client):
    """The ones that were 500s before this change (issue 14): each is now exactly 400."""
    form_token(client.get("/login").text)
    for kind in ("urlencoded, not UTF-8", "multipart, no boundary", "multipart, token not UTF-8"):
        content_type, body = MALFORMED[kind]
        answer = client.post("/login", content=body, headers={"content-type": content_type})
        assert answer.status_code == 400, (kind, answer.status_code)


@pytest.mark.parametrize("path", ["/items/1/done", "/logout", "/lang", "/profile/line-code",
                                  f"/directives/{SLUG}/close",
                                  f"/directives/{SLUG}/districts/2706/report"])
def test_a_malformed_body_at_any_form_is_a_400(client, path):
    signed_in(client, "coordinator")
    for kind in ("urlencoded, not UTF-8", "multipart, no boundary", "multipart, token not UTF-8"):
        content_type, body = MALFORMED[kind]
        answer = client.post(path, content=body, headers={"content-type": content_type})
        assert answer.status_code == 400, (path, kind, answer.status_code)


def test_a_cookie_that_is_not_utf8_is_a_400_not_a_500(client):
    """Raw ASGI: HTTP clients will not send such a header, an attacker's socket will."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/login", "raw_path": b"/login",
             "query_string": b"", "root_path": "", "http_version": "1.1", "scheme": "http",
             "server": ("testserver", 80), "client": ("192.0.2.1", 5000),
             "headers": [(b"host", b"testserver"), (b"cookie", b"csrftoken=\xff")]}
    asyncio.run(client.app(scope, receive, send))
    # The session-bound CSRF layer replaces a cookie token it cannot read (the sign-in page then
    # opens with a fresh one); any other layer that meets it answers 400. Never a 500.
    assert sent[0]["status"] in (200, 400)
    if sent[0]["status"] == 400:
        assert BAD_BODY_TH.encode() in b"".join(m.get("body", b"") for m in sent[1:])


def test_a_webhook_body_nested_too_deep_is_a_400(client):
    for depth in (100, 100_000):
        body = b'{"events": ' + b"[" * depth + b"]" * depth + b"}"
        answer = client.post("/line/webhook", content=body, headers={
            "content-type": "application/json", "x-line-signature": line_signature(body)})
        assert answer.status_code == 400, (depth, answer.status_code)
    shallow = b'{"destination": "U1", "events": []}'
    assert client.post("/line/webhook", content=shallow, headers={
        "x-line-signature": line_signature(shallow)}).status_code == 200


# --- body size ----------------------------------------------------------------------------------

def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body streamed without Content-Length (chunked), ``total`` bytes."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"a" * piece


def test_a_sign_in_body_over_the_cap_is_a_413_with_or_without_content_length(client):
    form_token(client.get("/login").text)
    declared = client.post("/login", content=b"a" * (DEFAULT_MAX_BODY + 1),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert declared.status_code == 413
    assert "ข้อมูลที่ส่งมามีขนาดใหญ่เกินกำหนด" in declared.text and "too large" in declared.text
    streamed = client.post("/login", content=chunks(DEFAULT_MAX_BODY * 3),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    api = client.post("/api/v1/token", content=chunks(DEFAULT_MAX_BODY + 10),
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert api.status_code == 413 and "too large" in bilingual(api)["en"]


def test_the_api_report_and_the_autosave_have_their_own_larger_cap(client):
    headers = api_token(client, "staff-2706")
    path = "/api/v1/districts/2706/report"
    body = b'{"version": 0, "report": {"sessions": [], "outcomes": ["' + b"a" * (2 * DEFAULT_MAX_BODY) \
        + b'"]}}'
    under = client.put(path, content=body, headers={**headers, "content-type": "application/json"})
    assert under.status_code != 413, under.text  # more than the default, within the draft's cap
    over = client.put(path, content=chunks(MAX_DRAFT_BYTES + DEFAULT_MAX_BODY + 1),
                      headers={**headers, "content-type": "application/json"})
    assert over.status_code == 413


# --- the 422 shape ------------------------------------------------------------------------------

def test_a_body_of_the_wrong_shape_gets_the_bilingual_422(client):
    headers = api_token(client, "coordinator")
    answer = client.post("/api/v1/items/1/waive", headers=headers, json={"version": "x"})
    assert answer.status_code == 422
    detail = bilingual(answer)
    assert "body.reason" in detail["en"] and "body.version" in detail["th"]
