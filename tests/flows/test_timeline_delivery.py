"""FY 2567 in Sa Kaeo, 1 Jul – 31 Aug 2567, day by day, through the real pump: what the LINE
stand-in and an SMTP sink received.

The replay of tests/flows/test_timeline.py (the digest at 08:00, the sweep at 08:30, the
districts' acts of ``EVENTS``), but the outbox is sent by ``notifications.pump.deliver_due``
after each of them, to the LINE stand-in and an aiosmtpd sink. On Friday 9 August the pump is
down all day (the due day of G8 and R1): what was queued that day goes out on Tuesday 13 August
(Monday the 12th is Mother's Day), and must then say what is true on Tuesday.

Checked from what was received: at most one LINE message and one e-mail per person (or LINE
group) a day; no card or letter whose standing contradicts the item's on the day it was
received; nobody told about an item after finishing it; Friday's digest not sent beside
Tuesday's.
"""

from __future__ import annotations

import email
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import date, datetime, timedelta
from email import policy as email_policy

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from domain.calendar import WorkCalendar
from models.directive import TrackedItem
from models.user import User
from notifications.flex import standing_text
from notifications.line import AsyncLineTransport, line_clients
from notifications.mail import SmtpTransport
from notifications.pump import DeliveryPolicy, close_transports, deliver_due
from tests.flows.test_timeline import BASE, BKK, EVENTS, FIRST, GROUP_2709, act, at, setup_people
from tests.notifications.conftest import SmtpSink, free_port
from tidtam.app.digest import send_digests
from tidtam.app.escalation import sweep
from tidtam.demo.line_standin import RunningFakeLine, fake_line

TOKEN = "timeline-delivery-token"
LAST = date(2024, 8, 31)
PUMP_DOWN = date(2024, 8, 9)  # Friday: G8's and R1's due day
ITEM_URL = re.compile(re.escape(BASE) + r"/items/(\d+)")


@pytest.fixture
def line() -> Iterator[RunningFakeLine]:
    with fake_line(TOKEN) as running:
        yield running


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    handler = SmtpSink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            server_hostname="localhost")
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def replayed(fresh_engine):
    """Sa Kaeo, the FY 2567 directive launched, the demo accounts, on a database of its own
    (the pump commits): (session, directive)."""
    from sqlmodel import Session

    from tests.conftest import NOW
    from tidtam.app.orgtree import load_provinces
    from tidtam.app.tracking import launch_directive
    from tidtam.demo.province import create_demo_accounts
    from tidtam.infra.db import migrate
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

    migrate(fresh_engine.url.render_as_string(hide_password=False))
    with Session(fresh_engine, expire_on_commit=False) as session:
        load_provinces(session, ["27"])
        directive = launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=NOW).directive
        create_demo_accounts(session, NOW)
        setup_people(session)
        session.commit()
        yield session, directive


class Replay:
    """The timeline with the real pump; what arrived, by the (simulated) day it arrived."""

    def __init__(self, session, directive, line: RunningFakeLine, sink: SmtpSink, *,
                 policy: DeliveryPolicy, pump_down: frozenset[date] = frozenset()) -> None:
        self.session, self.directive, self.line, self.sink = session, directive, line, sink
        self.policy, self.pump_down = policy, pump_down
        self.transports = {
            "line": AsyncLineTransport(line_clients(4, 2), TOKEN, line.base_url, concurrency=4),
            "email": SmtpTransport("127.0.0.1", sink.port, tls="none")}
        self.pushes: list[tuple[date, dict]] = []
        self.mails: list[tuple[date, email.message.EmailMessage]] = []

    def pump(self, now: datetime) -> None:
        if now.date() in self.pump_down:
            return
        while deliver_due(lambda: nullcontext(self.session), self.transports, now, tz=BKK,
                          limit=500, policy=self.policy).total:
            pass
        day = now.astimezone(BKK).date()
        self.pushes += [(day, p) for p in self.line.state.snapshot()[len(self.pushes):]]
        self.mails += [(day, email.message_from_bytes(raw, policy=email_policy.default))
                       for raw in self.sink.messages[len(self.mails):]]

    def run(self) -> None:
        try:
            day = FIRST
            while day <= LAST:
                send_digests(self.session, at(day, 8), tz=BKK, base_url=BASE)
                sweep(self.session, at(day, 8, 30), tz=BKK, base_url=BASE)
                self.pump(at(day, 8, 30))
                for hour in (10, 14):
                    for district, step, how in EVENTS.get((day, hour), []):
                        act(self.session, self.directive, district, step, how, at(day, hour))
                    self.pump(at(day, hour))
                day += timedelta(days=1)
        finally:
            close_transports(self.transports)


def line_ids(session) -> dict[str, str]:
    ids = {u.line_user_id: u.username for u in session.exec(select(User)) if u.line_user_id}
    return ids | {GROUP_2709: "group:2709"}


def cards_of(push: dict) -> list[tuple[int, str]]:
    """(item id, standing text) of every card of a push."""
    found = []
    for message in push["messages"]:
        if message["type"] != "flex":
            continue
        for bubble in message["contents"]["contents"]:
            link = bubble["footer"]["contents"][-1]["action"]["uri"]
            standing = bubble["body"]["contents"][-1]["text"]
            found.append((int(ITEM_URL.fullmatch(link).group(1)), standing))
    return found


def letter_phrase(days: int) -> str:
    """How a one-item e-mail (the letter) says the standing."""
    if days < 0:
        return f"อีก {-days} วันทำการ"
    return "ขณะนี้ถึงกำหนดแล้ว" if days == 0 else f"ขณะนี้เลยกำหนดมาแล้ว {days} วันทำการ"


def items_of_mail(body: str) -> list[tuple[int, str]]:
    """(item id, the text around its link) of every item an e-mail is about."""
    return [(int(m.group(1)), body) for m in ITEM_URL.finditer(body)]


def test_one_message_a_person_a_day_and_true_on_the_day_sent(replayed, line, sink):
    session, launched = replayed
    replay = Replay(session, launched, line, sink, policy=DeliveryPolicy(base_url=BASE),
                    pump_down=frozenset({PUMP_DOWN}))
    replay.run()
    calendar = WorkCalendar()
    items = {i.id: i for i in session.exec(select(TrackedItem))}
    who = line_ids(session)

    # At most one LINE message and one e-mail per person (or group) a day.
    per_day = Counter((day, push["to"]) for day, push in replay.pushes)
    assert per_day and max(per_day.values()) == 1, per_day.most_common(3)
    per_day = Counter((day, mail["To"]) for day, mail in replay.mails)
    assert per_day and max(per_day.values()) == 1, per_day.most_common(3)

    # Every card says the item's standing on the day it arrived; nobody hears of an item
    # after finishing it.
    cards = 0
    for day, push in replay.pushes:
        for item_id, standing in cards_of(push):
            item = items[item_id]
            assert standing == standing_text(calendar.working_days_between(item.due_on, day)), \
                (day, who[push["to"]], item_id, standing)
            assert item.completed_at is None or item.completed_at.astimezone(BKK).date() >= day
            cards += 1
    assert cards > 0
    for day, mail in replay.mails:
        body = mail.get_body(("plain",)).get_content()
        found = items_of_mail(body)
        for item_id, _text in found:
            item = items[item_id]
            days = calendar.working_days_between(item.due_on, day)
            phrase = (letter_phrase(days) if len(found) == 1
                      else f"{standing_text(days)}\n   {BASE}/items/{item_id}")
            assert phrase in body, (day, mail["To"], item_id, phrase)
            assert item.completed_at is None or item.completed_at.astimezone(BKK).date() >= day
        if len(found) == 1 and calendar.working_days_between(items[found[0][0]].due_on, day) > 0:
            assert "ขณะนี้ถึงกำหนดแล้ว" not in body

    # Friday's due-day rows, queued while the pump was down, arrive on Tuesday: 1 day late.
    assert not [d for d, _ in replay.pushes + replay.mails if d in (PUMP_DOWN, date(2024, 8, 12))]
    staff_2703 = next(lid for lid, name in who.items() if name == "staff-2703")
    [tuesday] = [p for d, p in replay.pushes if d == date(2024, 8, 13) and p["to"] == staff_2703]
    assert {s for _, s in cards_of(tuesday)} == {"เลยกำหนด 1 วันทำการ"}
    assert len(cards_of(tuesday)) == 2  # G8 and R1, in one message
    # Friday's digest is not sent beside Tuesday's own.
    digests = [m for d, m in replay.mails if d == date(2024, 8, 13)
               and m["To"] == "coordinator@demo.tidtam.local"]
    assert [m["Subject"].split(":")[0] for m in digests] == ["สรุปงานประจำวัน 13 ส.ค. 2567"]


# LINE push messages of the replay without an outage, per month: one per row (each reminder
# its own push, as before issue 13) and one per person a day (grouped). README.md gives them.
PUSHES_PER_ROW = {7: 20, 8: 56}
PUSHES_GROUPED = {7: 20, 8: 44}


@pytest.mark.parametrize("group", [False, True], ids=["per-row", "grouped"])
def test_line_pushes_per_month_before_and_after_grouping(replayed, line, sink, group):
    session, launched = replayed
    replay = Replay(session, launched, line, sink,
                    policy=DeliveryPolicy(base_url=BASE, group=group))
    replay.run()
    months: dict[int, int] = defaultdict(int)
    for day, _push in replay.pushes:
        months[day.month] += 1
    assert dict(months) == (PUSHES_GROUPED if group else PUSHES_PER_ROW)
