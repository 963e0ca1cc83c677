"""Helpers for the web tests: sign in through the real forms, read the database directly."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.directive import TrackedItem, find_item, get_directive_by_slug
from models.user import User, get_by_username
from tidtam.demo.province import DEMO_PASSWORD

# 10:00 in Bangkok on Thursday 18 July 2567: G1 and A1 (due the 17th) are overdue where open.
CLOCK = datetime(2024, 7, 18, 3, 0, tzinfo=UTC)
PASSWORD = DEMO_PASSWORD
SLUG = "fy2567-sakaeo-volunteer-centers"  # the demo's provincial directive

def form_token(html: str) -> str:
    """The CSRF token a page's forms carry."""
    return re.search(r'name="csrftoken" value="([^"]+)"', html).group(1)


def login(client: TestClient, username: str, password: str = PASSWORD):
    """Sign in through the real form (GET for the token, then POST); returns the POST answer."""
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrftoken": token}, follow_redirects=False)


def signed_in(client: TestClient, username: str) -> TestClient:
    response = login(client, username)
    assert response.status_code == 303, response.text
    return client


def csrf(client: TestClient) -> str:
    """The token for the next POST (the form field must equal the signed cookie)."""
    return client.cookies["csrftoken"]


def api_token(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Bearer headers from the OAuth2 password flow."""
    response = client.post("/api/v1/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def item_of(engine: Engine, district: str, step: str) -> TrackedItem:
    """A fresh read of one tracked item, straight from the database."""
    with Session(engine) as session:
        directive = get_directive_by_slug(session, SLUG)
        return find_item(session, directive.id, district, step)


def user_named(engine: Engine, username: str) -> User:
    with Session(engine) as session:
        return get_by_username(session, username)
