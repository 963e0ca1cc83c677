"""The Prefect events transport: the exact request, how the pump treats a machine's channel, and
the whole way from a click in the web app to a real Prefect server's event feed.

The real server (one `prefect server start` for the module, ~15 s) is stopped and started again
on the same database in the middle of the story: an event made meanwhile waits in the outbox
and arrives once the server is back, once — and Prefect keeps one event per id when it is sent
twice.

The web app there runs on a clock fixed at the real time of the test, not at the demo's 2024:
Prefect's event feed and its vacuum (7 days' retention by ``occurred``) are about the present.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from models.directive import find_item, get_directive_by_slug
from models.outbox import Channel, OutboxMessage, OutboxStatus
from notifications.base import TransportError, delivery_key
from notifications.prefect_events import PrefectEventsTransport
from notifications.pump import MACHINE_BACKOFF_CAP, MAX_ATTEMPTS, PumpResult, deliver_due
from tests.helpers.poll import wait_until
from tests.helpers.prefect_server import PrefectServer
from tests.notifications.conftest import NOW, outbox_message
from tests.web.helpers import SLUG, csrf, signed_in
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.pump import transports_from_settings
from tidtam.infra.settings import Settings

API = "http://prefect.test/api"
EVENT = {"id": "6a3c7f7e-0000-5000-8000-000000000001", "occurred": "2024-08-07T02:00:00+00:00",
         "event": "tidtam.item.completed",
         "resource": {"prefect.resource.id": "tidtam.item.1",
                      "prefect.resource.name": "เมืองสระแก้ว · G1 ประชุม"},
         "related": [], "payload": {"actor": "staff-2701"}}


def event_row(key: str = "event:tidtam.item.completed:1:2", **fields) -> OutboxMessage:
    return outbox_message(key, channel=Channel.PREFECT_EVENT, recipient="prefect", rung=None,
                          subject="tidtam.item.completed",
                          body=json.dumps(EVENT, ensure_ascii=False), **fields)


def recording(status: int = 204, seen: list | None = None) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status)
    return httpx.Client(transport=httpx.MockTransport(answer))


# --- the transport ------------------------------------------------------------------------------

def test_the_event_is_posted_as_a_list_of_one_to_the_events_api():
    seen: list[httpx.Request] = []
    PrefectEventsTransport(recording(204, seen), API + "/").send(event_row())
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", f"{API}/events")
    assert json.loads(request.content) == [EVENT]


@pytest.mark.parametrize(("status", "permanent", "channel_down"), [
    (503, False, True), (429, False, True), (500, False, True), (422, True, False)])
def test_an_answer_that_is_not_204_is_retried_with_the_channel_or_final(status, permanent,
                                                                        channel_down):
    with pytest.raises(TransportError) as refused:
        PrefectEventsTransport(recording(status), API).send(event_row())
    assert (refused.value.permanent, refused.value.channel_down) == (permanent, channel_down)


def test_a_server_that_does_not_answer_holds_back_every_event():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)
    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(TransportError) as refused:
        PrefectEventsTransport(client, API).send(event_row())
    assert refused.value.channel_down and not refused.value.permanent


# --- the pump and a machine's channel -----------------------------------------------------------

SATURDAY_NIGHT = datetime(2024, 8, 10, 15, 0, tzinfo=UTC)  # 22:00 in Bangkok, no office open


def row_of(engine, key: str) -> OutboxMessage:
    with Session(engine) as session:
        return session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).one()


def test_events_go_out_at_any_hour_while_people_wait_for_the_office(engine, session_factory,
                                                                    add_messages):
    add_messages(event_row(next_try_at=SATURDAY_NIGHT),
                 outbox_message("mail", channel=Channel.EMAIL, recipient="a@example.go.th",
                                next_try_at=SATURDAY_NIGHT))
    seen: list[httpx.Request] = []
    mail = _Recorder()
    result = deliver_due(session_factory, {"prefect-event": PrefectEventsTransport(
        recording(204, seen), API), "email": mail}, SATURDAY_NIGHT)
    assert result == PumpResult(sent=1, released=1)
    assert row_of(engine, "event:tidtam.item.completed:1:2").status == OutboxStatus.SENT
    assert len(seen) == 1 and mail.sent == []
    waiting = row_of(engine, "mail")
    assert waiting.status == OutboxStatus.QUEUED
    # Tuesday 08:30: Monday 12 August 2567 is Mother's Day, no working day
    assert waiting.next_try_at == datetime(2024, 8, 13, 1, 30, tzinfo=UTC)


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[OutboxMessage] = []

    def send(self, message: OutboxMessage) -> None:
        self.sent.append(message)


def test_an_event_is_never_given_up_while_the_server_is_down_and_retried_within_a_minute(
        engine, session_factory, add_messages):
    key = "event:tidtam.item.completed:1:2"
    add_messages(event_row(attempts=MAX_ATTEMPTS + 5, next_try_at=SATURDAY_NIGHT))
    transports = {"prefect-event": PrefectEventsTransport(recording(503), API)}
    assert deliver_due(session_factory, transports, SATURDAY_NIGHT) == PumpResult(retried=1)
    row = row_of(engine, key)
    assert row.status == OutboxStatus.QUEUED and row.attempts == MAX_ATTEMPTS + 6
    assert SATURDAY_NIGHT < row.next_try_at <= SATURDAY_NIGHT + timedelta(seconds=MACHINE_BACKOFF_CAP)
    assert "prefect events 503" in row.last_error


def test_without_a_prefect_server_configured_events_stay_queued_untouched(engine, session_factory,
                                                                         add_messages):
    key = "event:tidtam.item.completed:1:2"
    add_messages(event_row(), outbox_message("line-row", recipient=""))
    settings = Settings(demo=True, _env_file=None, prefect_api_url=None)
    with httpx.Client() as client:
        transports = transports_from_settings(settings, client)
        assert "prefect-event" not in transports
        assert deliver_due(session_factory, transports, NOW) == PumpResult(no_channel=1)
    row = row_of(engine, key)
    assert (row.status, row.attempts, row.claims, row.last_error) == (
        OutboxStatus.QUEUED, 0, 0, None)
    assert row_of(engine, "line-row").status == OutboxStatus.NOT_SENT_NO_CHANNEL
    with httpx.Client() as client:  # a pump that has the server sends it
        served = transports_from_settings(Settings(demo=True, _env_file=None,
                                                   prefect_api_url=API), client)
        assert isinstance(served["prefect-event"], PrefectEventsTransport)
        assert served["prefect-event"].url == f"{API}/events"


# --- on a real Prefect server -------------------------------------------------------------------

@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> Iterator[PrefectServer]:
    server = PrefectServer(tmp_path_factory.mktemp("prefect"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def launched_db(tmp_path):
    """Sa Kaeo with its FY 2567 directive launched and the demo accounts, on SQLite, committed."""
    from tidtam.app.orgtree import load_provinces
    from tidtam.app.tracking import launch_directive
    from tidtam.demo.province import create_demo_accounts
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

    url = f"sqlite:///{tmp_path / 'tidtam.db'}"
    db.migrate(url)
    engine = db.engine_for(url)
    with Session(engine) as session:
        load_provinces(session, ["27"])
        launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=REAL_NOW)
        create_demo_accounts(session, REAL_NOW)
        session.commit()
    yield engine
    engine.dispose()
    db.engine_for.cache_clear()


REAL_NOW = datetime.now(UTC).replace(microsecond=0)


def feed(api: str, **filters) -> list[dict]:
    """The server's stored events matching ``filters`` (Prefect's own ``POST /events/filter``)."""
    since = (REAL_NOW - timedelta(days=1)).isoformat()
    until = (REAL_NOW + timedelta(days=1)).isoformat()
    response = httpx.post(f"{api}/events/filter", json={
        "filter": {"occurred": {"since": since, "until": until}, **filters}, "limit": 50})
    response.raise_for_status()
    return response.json()["events"]


def mark_done(client: TestClient, engine, district: str, step: str) -> int:
    with Session(engine) as session:
        item = find_item(session, get_directive_by_slug(session, SLUG).id, district, step)
    response = client.post(f"/items/{item.id}/done", data={
        "version": item.version, "csrftoken": csrf(client)}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return item.id


def event_key_of(engine, item_id: int) -> str:
    with Session(engine) as session:
        return session.exec(select(OutboxMessage.idempotency_key).where(
            OutboxMessage.channel == Channel.PREFECT_EVENT,
            OutboxMessage.subject == "tidtam.item.completed",
            OutboxMessage.idempotency_key.startswith(f"event:tidtam.item.completed:{item_id}:"))
        ).one()


@pytest.mark.prefect_server
def test_a_step_marked_in_the_web_app_reaches_the_prefect_event_feed_and_waits_out_an_outage(
        prefect_server, launched_db):
    from web.app import create_app

    engine, api = launched_db, prefect_server.api
    settings = Settings(demo=True, _env_file=None, prefect_api_url=api)
    app = create_app(settings, engine, clock=FixedClock(REAL_NOW))
    http = httpx.Client(timeout=5)
    transports = transports_from_settings(settings, http)

    def pump(at: datetime) -> PumpResult:
        return deliver_due(lambda: Session(engine), transports, at)

    with TestClient(app, base_url="http://testserver") as client:
        signed_in(client, "staff-2701")
        first = mark_done(client, engine, "2701", "G1")
        assert pump(REAL_NOW).sent == 2  # the launch, then the mark

        [event] = wait_until(lambda: feed(api, resource={"id": [f"tidtam.item.{first}"]}),
                             timeout=15, message="the item.completed event never reached the feed")
        assert event["event"] == "tidtam.item.completed"
        assert event["id"] == str(delivery_key(event_key_of(engine, first)))
        assert event["resource"]["tidtam.district"] == "2701"
        assert event["resource"]["tidtam.directive"] == SLUG
        assert event["payload"]["actor"] == "staff-2701"
        related = {r["prefect.resource.role"]: r for r in event["related"]}
        assert related["district"]["prefect.resource.id"] == "tidtam.district.2701"
        assert related["district"]["prefect.resource.name"] == "เมืองสระแก้ว"
        assert related["step"]["prefect.resource.id"] == f"tidtam.step.{SLUG}.G1"
        assert related["directive"]["prefect.resource.id"] == f"tidtam.directive.{SLUG}"
        assert related["directive"]["prefect.resource.name"].startswith("สก ๐๐๑๙/ว ๒๕๒ การขับเคลื่อน")
        assert related["province"]["prefect.resource.name"] == "สระแก้ว"

        prefect_server.stop()
        second = mark_done(client, engine, "2701", "G2")
        key = event_key_of(engine, second)
        assert pump(REAL_NOW) == PumpResult(retried=1)
        waiting = row_of(engine, key)
        assert waiting.status == OutboxStatus.QUEUED and waiting.attempts == 1
        assert "network error" in waiting.last_error
        assert pump(REAL_NOW) == PumpResult()  # not due yet: nothing hammers the dead server

        prefect_server.start()
        later = REAL_NOW + timedelta(seconds=MACHINE_BACKOFF_CAP)
        assert pump(later) == PumpResult(sent=1)
        assert row_of(engine, key).status == OutboxStatus.SENT
        arrived = wait_until(lambda: feed(api, resource={"id": [f"tidtam.item.{second}"]}),
                             timeout=15, message="the event made during the outage never arrived")
        assert [e["id"] for e in arrived] == [str(delivery_key(key))]

        # Sent again (a pump killed after the server's answer would do it): Prefect keeps one.
        with Session(engine) as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.idempotency_key == key)
                            .values(status=OutboxStatus.QUEUED))
            session.commit()
        assert pump(later) == PumpResult(sent=1)
        third = mark_done(client, engine, "2701", "G3")  # a marker behind the duplicate
        assert pump(later) == PumpResult(sent=1)
        wait_until(lambda: feed(api, resource={"id": [f"tidtam.item.{third}"]}), timeout=15,
                   message="the marker event never arrived")
        assert len(feed(api, resource={"id": [f"tidtam.item.{second}"]})) == 1
        assert len(feed(api, id={"id": [str(delivery_key(key))]})) == 1
    http.close()
