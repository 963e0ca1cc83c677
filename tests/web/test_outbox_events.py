"""The Prefect events on the outbox page and in the API: not people's messages, shown on request
(``?events=1``), and only those of the coordinator's own province."""

from __future__ import annotations

from sqlmodel import Session, select

from models.outbox import Channel, OutboxMessage
from tests.web.helpers import CLOCK, api_token, csrf, item_of, signed_in
from tests.web.test_outbox_page import keys as listed
from tidtam.app.directives import close_by_operator
from tidtam.app.tracking import launch_directive
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

OTHER = "fy2567-chanthaburi-copy"


def other_province_launched_and_closed(engine) -> None:
    """Chanthaburi (22) follows a letter too: launched, then closed: two events of its own."""
    from tidtam.app.orgtree import load_provinces

    spec = load_directive(DEFAULT_DIRECTIVE).model_copy(update={"slug": OTHER,
                                                                "province_code": "22"})
    with Session(engine) as session:
        load_provinces(session, ["22"])
        launch_directive(session, spec, now=CLOCK)
        close_by_operator(session, OTHER, reason="ทดสอบ", now=CLOCK)
        session.commit()


def keys(engine, **where) -> set[str]:
    with Session(engine) as session:
        query = select(OutboxMessage.idempotency_key).where(
            OutboxMessage.channel == Channel.PREFECT_EVENT)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return set(session.exec(query))


def test_the_page_shows_events_only_when_asked_and_only_the_provinces_own(client, engine):
    other_province_launched_and_closed(engine)
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G1")
    client.post(f"/items/{item.id}/done", data={"version": item.version,
                                                "csrftoken": csrf(client)})
    done_key = f"event:tidtam.item.completed:{item.id}:{item.version + 1}"
    theirs = {f"event:tidtam.directive.launched:{OTHER}", f"event:tidtam.directive.closed:{OTHER}"}
    assert {done_key} | theirs <= keys(engine)

    signed_in(client, "coordinator")
    people = client.get("/outbox")
    assert people.status_code == 200
    assert done_key not in listed(people.text, engine)
    assert 'name="events" value="1">' in people.text
    page = client.get("/outbox?events=1")
    assert page.status_code == 200 and 'value="1" checked' in page.text
    shown = listed(page.text, engine)
    assert done_key in shown
    assert "เหตุการณ์ Prefect" in page.text  # the channel, in Thai
    assert "event:tidtam.directive.launched:fy2567-sakaeo-volunteer-centers" in shown
    assert not theirs & shown


def test_the_api_gives_events_on_request_and_never_another_provinces(client, engine):
    other_province_launched_and_closed(engine)
    headers = api_token(client, "coordinator")
    plain = client.get("/api/v1/outbox", headers=headers).json()
    assert all(m["channel"] != "prefect-event" for m in plain)
    with_events = client.get("/api/v1/outbox?events=true", headers=headers).json()
    ours = {m["key"] for m in with_events if m["channel"] == "prefect-event"}
    assert "event:tidtam.directive.launched:fy2567-sakaeo-volunteer-centers" in ours
    assert not {k for k in ours if OTHER in k}
    assert len(with_events) > len(plain)
    filtered = client.get("/api/v1/outbox?events=true&directive=fy2567-sakaeo-volunteer-centers",
                          headers=headers).json()
    assert {m["key"] for m in filtered if m["channel"] == "prefect-event"} == ours - {
        k for k in ours if "outstanding" in k}
