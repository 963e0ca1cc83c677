"""The database cannot be reached: pages and the API answer 503 in Thai and English at once,
with Retry-After, and the error is answered inside the app (never re-raised: uvicorn would then
close the keep-alive connection). tests/e2e/test_database_restart.py stops a real PostgreSQL
under a real uvicorn.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tests.notifications.conftest import free_port
from tests.web.conftest import make_app
from tests.web.helpers import login

TH = "ขณะนี้ไม่สามารถติดต่อฐานข้อมูลได้ กรุณาลองใหม่อีกครั้งในอีกสักครู่"
EN = "The database cannot be reached right now; please try again in a moment."


@pytest.fixture(params=["postgresql", "sqlite"])
def gone(request, tmp_path) -> Iterator[Engine]:
    """An engine whose database is not there: PostgreSQL on a port nobody listens on, or a
    SQLite file in a folder that does not exist."""
    url = (f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/tidtam"
           if request.param == "postgresql" else f"sqlite:///{tmp_path}/missing/tidtam.db")
    engine = create_engine(url, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture
def client(gone) -> Iterator[TestClient]:
    # raise_server_exceptions (the default): an error re-raised by the app fails the test
    with TestClient(make_app(gone), base_url="http://testserver") as c:
        yield c


def test_the_api_answers_503_in_thai_and_english(client):
    bearer = {"Authorization": "Bearer any-token-the-database-would-be-asked-about"}
    for method, path, kwargs in (("GET", "/api/v1/me", {"headers": bearer}),
                                 ("POST", "/api/v1/items/1/done",
                                  {"headers": bearer, "json": {"version": 1}}),
                                 ("POST", "/api/v1/token",
                                  {"data": {"username": "a", "password": "b"}})):
        response = client.request(method, path, **kwargs)
        assert response.status_code == 503, (path, response.text)
        assert response.json() == {"detail": {"th": TH, "en": EN}}
        assert response.headers["retry-after"] == "5"


def test_a_page_answers_503_in_thai_and_english(client):
    response = login(client, "somchai")  # the sign-in form (no database) posted: it needs one
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert TH in response.text and EN in response.text
    assert response.headers["retry-after"] == "5"


def test_a_server_that_never_answers_is_given_up_on_not_waited_for_minutes():
    """A PostgreSQL host that takes the connection and then says nothing (a dead server behind a
    live port, a firewall eating packets): connecting gives up after the engine's connect
    timeout and counts as unreachable (503), instead of holding the request for minutes."""
    import socket
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from models.unreachable import database_unreachable
    from tidtam.infra import db

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
        url = f"postgresql+psycopg://tidtam@127.0.0.1:{silent.getsockname()[1]}/tidtam"
        engine = db.engine_for(url)
        started = time.monotonic()
        try:
            with pytest.raises(OperationalError) as refused, engine.connect() as connection:
                connection.execute(text("select 1"))
        finally:
            engine.dispose()
            db.engine_for.cache_clear()
    assert time.monotonic() - started < db.PG_CONNECT_TIMEOUT * 4  # not the TCP timeout's minutes
    assert database_unreachable(refused.value)
