"""The sweep enqueues exactly the rows it always did: every column of every row, in order.

A small province (Sa Kaeo's nine districts, the FY 2567 letter) made to exercise every branch the
sweep has: people with and without a LINE id or an e-mail, a LINE route marked broken, someone
no longer active, two staff in one district, a district's LINE group (and one the bot left),
items done along the way, rows sent between sweeps (the provincial head's message counts the
warnings that went out), a Saturday, a repeat at the same instant. After each sweep the whole
outbox is read in id order and reduced to a digest (ids named by what they are, so SQLite and
PostgreSQL agree); ``sweep_golden.json`` holds the digests the row-by-row sweep produced before
it was made set-wise (issue 17, P1). ``TIDTAM_WRITE_SWEEP_GOLDEN=1`` writes the file anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select

from models.directive import DirectiveStep, ItemStatus, TrackedItem, find_item
from models.line import LineGroup
from models.outbox import OutboxMessage, OutboxStatus
from models.user import User, get_by_username
from tests.conftest import NOW
from tidtam.app.escalation import sweep

BKK = ZoneInfo("Asia/Bangkok")
GOLDEN = Path(__file__).with_name("sweep_golden.json")
DAYS = [  # (local day and hour, a second sweep at the same instant)
    ((2024, 7, 16, 8, 30), False), ((2024, 8, 6, 8, 30), False), ((2024, 8, 9, 8, 30), True),
    ((2024, 8, 14, 8, 30), False), ((2024, 8, 16, 8, 30), False), ((2024, 8, 17, 10, 0), False),
    ((2024, 8, 19, 8, 30), True), ((2024, 8, 21, 8, 30), False), ((2024, 8, 23, 8, 30), False),
    ((2024, 8, 27, 8, 30), False), ((2024, 9, 3, 8, 30), False)]
CLOSE_ON = {  # local day → (step code, districts) marked done after that day's sweep
    (2024, 8, 9): ("R1", ["2701", "2702"]), (2024, 8, 16): ("R1", ["2703"]),
    (2024, 8, 21): ("R1", ["2704", "2705", "2706", "2707", "2708", "2709"])}
COLUMNS = ("idempotency_key", "channel", "recipient", "user_id", "district_code", "item_id",
           "step_id", "rung", "directive_id", "report_id", "status", "attempts", "claims",
           "next_try_at", "lease_until", "last_error", "created_at", "sent_at", "delivery_key")


def _shape_the_province(session, directive) -> None:
    """People, routes and groups that take the sweep down each of its branches."""
    people = {u.username: u for u in session.exec(select(User))}
    for n, user in enumerate(sorted(people.values(), key=lambda u: u.username)):
        if n % 3 != 2:  # two in three have a LINE id
            user.line_user_id = f"U{n:032x}"
    people["staff-2702"].line_route_error = "LINE 400: the user blocked the account"
    people["head-2703"].email = None
    people["staff-2704"].is_active = False
    second = User(username="staff2-2705", full_name="staff two", role=people["staff-2705"].role,
                  province_code="27", district_code="2705", email="staff2-2705@demo.tidtam.local",
                  line_user_id="U" + "e" * 32, password_hash="x", created_at=NOW)
    session.add_all([*people.values(), second])
    session.add(LineGroup(group_id="C" + "a" * 32, district_code="2701", joined_at=NOW, bound_at=NOW))
    session.add(LineGroup(group_id="C" + "b" * 32, district_code="2706", joined_at=NOW, bound_at=NOW,
                          left_at=NOW))
    session.flush()


def _names(session, directive) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    users = {str(u.id): u.username for u in session.exec(select(User))}
    steps = {s.id: s.code for s in session.exec(select(DirectiveStep).where(
        DirectiveStep.directive_id == directive.id))}
    items = {str(i.id): f"{i.district_code}/{steps[i.step_id]}" for i in session.exec(
        select(TrackedItem).where(TrackedItem.directive_id == directive.id))}
    return users, {str(k): v for k, v in steps.items()}, items


def _digest(session, directive) -> dict:
    """The outbox's rows to people in id order, ids replaced by names, texts hashed."""
    users, steps, items = _names(session, directive)

    def named(text: str) -> str:
        text = re.sub(r"user:(\d+)", lambda m: f"user:{users[m.group(1)]}", text)
        text = re.sub(r"item:(\d+)", lambda m: f"item:{items[m.group(1)]}", text)
        text = re.sub(r"/items/(\d+)", lambda m: f"/items/{items[m.group(1)]}", text)
        return re.sub(r"step:(\d+)", lambda m: f"step:{steps[m.group(1)]}", text)

    session.expire_all()
    rows = []
    for message in session.exec(select(OutboxMessage).where(OutboxMessage.channel != "prefect-event")
                                .order_by(OutboxMessage.id)):
        values = {name: getattr(message, name) for name in COLUMNS}
        values["user_id"] = users.get(str(values["user_id"]))
        values["item_id"] = items.get(str(values["item_id"]))
        values["step_id"] = steps.get(str(values["step_id"]))
        values["idempotency_key"] = named(values["idempotency_key"])
        values["text"] = hashlib.sha256(named(message.subject + "\x00" + message.body)
                                        .encode()).hexdigest()
        rows.append(json.dumps(values, default=str, sort_keys=True, ensure_ascii=False))
    by_rung: dict[str, int] = {}
    for line in rows:
        rung = json.loads(line)["rung"]
        by_rung[rung] = by_rung.get(rung, 0) + 1
    return {"rows": len(rows), "by_rung": dict(sorted(by_rung.items())),
            "digest": hashlib.sha256("\n".join(rows).encode()).hexdigest()}


def _send_some(session) -> None:
    """Rows of odd-numbered districts go out (sent), so some districts count as warned."""
    for message in session.exec(select(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.QUEUED)):
        if message.district_code and int(message.district_code[-1]) % 2 == 1:
            message.status, message.sent_at, message.attempts = OutboxStatus.SENT, NOW, 1
            session.add(message)
    session.flush()


def _close(session, directive, step_code: str, districts: list[str]) -> None:
    for code in districts:
        item = find_item(session, directive.id, code, step_code)
        item.status = ItemStatus.DONE
        session.add(item)
    session.flush()


def _result(result) -> dict:
    return {"enqueued": result.enqueued, "already_queued": result.already_queued,
            "no_channel": result.no_channel, "items_considered": result.items_considered,
            "cancelled": result.cancelled, "by_rung": dict(sorted(result.by_rung.items())),
            "closed": result.closed, "directives": result.directives}


def test_the_sweep_enqueues_what_it_always_did(session, launched):
    _shape_the_province(session, launched)
    seen = []
    for (y, m, d, hour, minute), again in DAYS:
        now = datetime(y, m, d, hour, minute, tzinfo=BKK)
        step = {"day": now.isoformat(),
                "result": _result(sweep(session, now, tz=BKK, base_url="http://tidtam.test"))}
        if again:
            step["again"] = _result(sweep(session, now, tz=BKK, base_url="http://tidtam.test"))
        step["outbox"] = _digest(session, launched)
        seen.append(step)
        _send_some(session)
        if (y, m, d) in CLOSE_ON:
            _close(session, launched, *CLOSE_ON[(y, m, d)])
    if os.environ.get("TIDTAM_WRITE_SWEEP_GOLDEN"):
        GOLDEN.write_text(json.dumps(seen, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for got, want in zip(seen, expected, strict=True):
        assert got == want, got["day"]
    assert get_by_username(session, "staff2-2705") is not None
