"""FY 2567 in Sa Kaeo, 1 Jul – 31 Aug 2567, day by day, through the real pump: what the LINE
stand-in and an SMTP sink received.

The replay of tests/flows/test_timeline.py (the digest at 08:00, the sweep at 08:30, the
districts' acts of ``EVENTS``, and 2709 finishing G8 on 21 Aug as in test_timeline_ladder.py),
but the outbox is sent by ``notifications.pump.deliver_due`` after each of them, to the LINE
stand-in and an aiosmtpd sink. On Friday 9 August (the due day of G8 and R1) the sweep and the
pump are down all day: the sweep first runs on Saturday and queues the due-day notices, which go
out on Tuesday 13 August (Monday the 12th is Mother's Day), and must then say what is true on
Tuesday: late 1 working day.

Checked from what was received: late districts re-told every N working days (the YAML's
``late: {every, up_to}``) until done, at most ``up_to`` times; at most one LINE message and one
e-mail per person (or LINE group) a day; no card or letter whose standing contradicts the
item's on the day it was received; nobody told about an item after finishing it; Friday's
digest not sent beside Tuesday's.
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
from sqlmodel import col, select

from domain.access import Role
from domain.calendar import WorkCalendar
from models.directive import TrackedItem
from models.line import LineGroup
from models.outbox import OutboxMessage
from models.user import User
from notifications.flex import standing_text
from notifications.line import AsyncLineTransport, line_clients
from notifications.mail import SmtpTransport
from notifications.pump import DeliveryPolicy, close_transports, deliver_due
from tests.flows.test_timeline import BASE, BKK, EVENTS, FIRST, GROUP_2709, act, at, setup_people
from tests.flows.test_timeline_ladder import ALL_EVENTS
from tests.notifications.conftest import SmtpSink, free_port
from tidtam.app.digest import send_digests
from tidtam.app.escalation import rules_for, sweep
from tidtam.demo.line_standin import RunningFakeLine, fake_line

TOKEN = "timeline-delivery-token"
LAST = date(2024, 8, 31)
PUMP_DOWN = date(2024, 8, 9)  # Friday: G8's and R1's due day
SATURDAY, TUESDAY = date(2024, 8, 10), date(2024, 8, 13)
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
                 policy: DeliveryPolicy, pump_down: frozenset[date] = frozenset(),
                 sweep_down: frozenset[date] = frozenset(),
                 events: dict[tuple[date, int], list[tuple[str, str, str]]] = EVENTS) -> None:
        self.session, self.directive, self.line, self.sink = session, directive, line, sink
        self.policy, self.pump_down, self.sweep_down = policy, pump_down, sweep_down
        self.events = events
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
                if day not in self.sweep_down:
                    sweep(self.session, at(day, 8, 30), tz=BKK, base_url=BASE)
                self.pump(at(day, 8, 30))
                for hour in (10, 14):
                    for district, step, how in self.events.get((day, hour), []):
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


def hearers(session) -> dict[str, list[tuple[str, str]]]:
    """District → (who, channel) of everyone its reminders go to: its staff and head on each
    channel they have, its bound LINE group."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for user in session.exec(select(User).where(col(User.role).in_(
            [Role.DISTRICT_STAFF, Role.DISTRICT_HEAD]))):
        found[user.district_code] += [(user.username, channel) for channel, address in
                                      (("email", user.email), ("line", user.line_user_id))
                                      if address]
    for group in session.exec(select(LineGroup)):
        found[group.district_code].append((f"group:{group.district_code}", "line"))
    return found


def late_mentions(replay: Replay, session, calendar: WorkCalendar,
                  items: dict[int, TrackedItem]) -> dict[tuple[str, str, int], list[date]]:
    """(who, channel, item id) → the days a LINE message or an e-mail about the item arrived
    while the item was past its due date, as the stand-in and the sink received them."""
    who = line_ids(session)
    by_email = {u.email: u.username for u in session.exec(select(User)) if u.email}
    told: dict[tuple[str, str, int], list[date]] = defaultdict(list)
    received = [(day, who[push["to"]], "line", [i for i, _ in cards_of(push)])
                for day, push in replay.pushes]
    received += [(day, by_email[mail["To"]], "email",
                  [i for i, _ in items_of_mail(mail.get_body(("plain",)).get_content())])
                 for day, mail in replay.mails if mail["To"] in by_email]
    for day, name, channel, item_ids in received:
        for item_id in dict.fromkeys(item_ids):
            if calendar.working_days_between(items[item_id].due_on, day) > 0:
                told[(name, channel, item_id)].append(day)
    return told


def open_at(item: TrackedItem, instant: datetime) -> bool:
    return item.completed_at is None or item.completed_at > instant


def test_one_message_a_person_a_day_and_true_on_the_day_sent(replayed, line, sink):
    session, launched = replayed
    replay = Replay(session, launched, line, sink, policy=DeliveryPolicy(base_url=BASE),
                    pump_down=frozenset({PUMP_DOWN}), sweep_down=frozenset({PUMP_DOWN}),
                    events=ALL_EVENTS)
    replay.run()
    calendar = WorkCalendar()
    items = {i.id: i for i in session.exec(select(TrackedItem))}
    who = line_ids(session)

    # Late districts are re-told every N working days, at most up_to times, until done: the
    # YAML's ladder, from what each of their people received on each channel. The due-day
    # notice of an item due on the day of the outage arrives late too (on Tuesday), once.
    late = rules_for(launched).ladder.late
    told = late_mentions(replay, session, calendar, items)
    people = hearers(session)
    chased = {}
    for item in items.values():
        retold = [day for k in range(1, late.up_to + 1)
                  if (day := calendar.add_working_days(item.due_on, k * late.every)) <= LAST
                  and open_at(item, at(day, 8, 30))]
        delayed = [TUESDAY] if item.due_on == PUMP_DOWN and open_at(item, at(TUESDAY, 8, 30)) \
            else []
        for name, channel in people[item.district_code]:
            got = told.get((name, channel, item.id), [])
            assert got == delayed + retold, (name, channel, item.district_code, item.step_id)
            gaps = [calendar.working_days_between(a, b) for a, b in zip(retold, retold[1:],
                                                                         strict=False)]
            assert set(gaps) <= {late.every} and len(retold) <= late.up_to
        if retold:
            chased[item.district_code, item.step_id] = len(retold)
    assert {d for d, _ in chased} == {"2703", "2709"}  # 2707 finished before its first late day
    assert sorted(chased.values()) == [3, 5, 5, 5]  # 2709's G8 stops when done; the rest capped
    assert not set(told) - {(n, c, i.id) for i in items.values()
                            for n, c in people[i.district_code]}

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

    # Friday's due-day rows, queued on Saturday by the sweep's first run after the outage,
    # arrive on Tuesday and say: 1 working day late.
    assert not [d for d, _ in replay.pushes + replay.mails if d in (PUMP_DOWN, date(2024, 8, 12))]
    queued = {r.created_at.astimezone(BKK).date() for r in session.exec(
        select(OutboxMessage).where(OutboxMessage.rung == "due-today",
                                    OutboxMessage.district_code == "2703"))
        if items[r.item_id].due_on == PUMP_DOWN}
    assert queued == {SATURDAY}
    staff_2703 = next(lid for lid, name in who.items() if name == "staff-2703")
    [tuesday] = [p for d, p in replay.pushes if d == TUESDAY and p["to"] == staff_2703]
    assert {s for _, s in cards_of(tuesday)} == {"เลยกำหนด 1 วันทำการ"}
    assert len(cards_of(tuesday)) == 2  # G8 and R1, in one message
    [letter] = [m for d, m in replay.mails if d == TUESDAY and m["To"] == "staff-2703@demo.tidtam.local"]
    assert "เลยกำหนด 1 วันทำการ" in letter.get_body(("plain",)).get_content()
    assert "ถึงกำหนดแล้ว" not in letter.get_body(("plain",)).get_content()
    # Friday's digest is not sent beside Tuesday's own.
    digests = [m for d, m in replay.mails if d == TUESDAY
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
