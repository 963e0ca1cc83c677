"""Security headers on every answer (issue 14 item 6): a CSP with no inline script, HSTS only
when the base URL is https, Permissions-Policy, nosniff, no framing, same-origin referrers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.conftest import make_app
from tests.web.helpers import SLUG, signed_in


def directives(csp: str) -> dict[str, str]:
    return {part.split()[0]: part for part in (p.strip() for p in csp.split(";")) if part}


def test_pages_and_the_api_carry_the_headers_and_no_inline_script(client):
    signed_in(client, "coordinator")
    for path in ("/login", "/board", f"/directives/{SLUG}/reports/print", "/api/v1/me",
                 "/static/tidtam.css", "/items/99999999"):
        answer = client.get(path)
        csp = directives(answer.headers["content-security-policy"])
        assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
        assert "'unsafe-inline'" not in csp["style-src"]
        assert csp["frame-ancestors"] == "frame-ancestors 'none'"
        assert csp["object-src"] == "object-src 'none'"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert "camera=()" in answer.headers["permissions-policy"]
        assert "strict-transport-security" not in answer.headers  # http://testserver
        assert "server" not in answer.headers


def test_only_the_api_docs_allow_swaggers_inline_start(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "'unsafe-inline'" in directives(docs.headers["content-security-policy"])["script-src"]


def test_hsts_only_when_the_base_url_is_https(engine):
    with TestClient(make_app(engine, base_url="https://tidtam.example.go.th"),
                    base_url="https://testserver") as c:
        answer = c.get("/login")
    assert answer.headers["strict-transport-security"].startswith("max-age=31536000")


def test_uvicorn_is_started_without_its_server_banner():
    import inspect

    from tidtam.cli import run
    from tidtam.ops import supervisor

    for module in (run, supervisor):
        source = inspect.getsource(module)
        assert "uvicorn.run(" in source
        assert source.count("uvicorn.run(") == source.count("server_header=False"), module
