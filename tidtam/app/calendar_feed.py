"""Calendar feeds: the deadlines a person follows, as an iCalendar (ICS) address that Google
Calendar, Outlook and phones subscribe to.

A feed is a secret address (``/calendar/<secret>.ics``) stored only as the SHA-256 of its
secret: no sign-in is needed to read it (a calendar app cannot sign in), so whoever holds the
address reads it, and revoking it (or making a new one) ends it at once (404). Two kinds:

- **the person's own**: district people get their district's items; province people get their
  province's steps, one event per step with how many districts are done; the Department gets
  every province's steps, one event per letter's step and due day.
- **a district's** (to hand to a district's people, e.g. in its LINE group): that district's
  items. District people may make one for their district, province people for any of theirs.

Events are all-day on the due day (the letters set a day, not an hour) in a calendar declared
``Asia/Bangkok`` (X-WR-TIMEZONE and its VTIMEZONE); UIDs are stable (``item-<id>@<host>``,
``step-<id>@<host>``); SEQUENCE grows with every change of the items behind an event (their
versions) and LAST-MODIFIED is the latest completion, waiver or launch. Done and waived
items stay in the feed, marked (✓, ⊘) in the summary and ``STATUS:CANCELLED`` for waived ones,
so the calendar still shows what was due and that it is settled; items of closed directives
leave the feed. Access is checked again on every read: a person who may no longer see the
district, or a disabled account, gets 404.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from icalendar import Calendar, Event, Timezone
from sqlmodel import Session

from domain.access import DISTRICT_ROLES, NATIONAL_ROLES, PROVINCE_ROLES, can_see_district
from domain.errors import InvalidInput, NotFound
from models import audit
from models.calendar_feed import (
    CalendarFeed,
    FeedScope,
    district_deadlines,
    feed_by_key,
    live_feeds,
    province_step_items,
)
from models.directive import Directive, DirectiveStep, ItemStatus, TrackedItem
from models.org import District, districts_of, get_district
from models.user import User
from tidtam.app.labels import labels
from tidtam.app.tracking import visible_district

TZID = "Asia/Bangkok"
PRODID = "-//tidtam//ติดตาม calendar feed//TH"
Row = tuple[TrackedItem, DirectiveStep, Directive]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- making and revoking addresses --------------------------------------------------------------

def new_feed(session: Session, user: User, now: datetime, *, scope: str,
             district_code: str | None = None) -> str:
    """A new address for the person's own deadlines or one district's; an address of the same
    kind made before ends (so "make a new one" is this call). Audited; returns the secret."""
    chosen = _scope(scope)
    district = _feed_district(session, user, chosen, district_code)
    for old in live_feeds(session, user.id):
        if old.scope == chosen and old.district_code == district:
            _revoke(session, user, old, now, reason="replaced")
    secret = secrets.token_urlsafe(32)
    row = CalendarFeed(key_hash=_hash(secret), user_id=user.id, scope=chosen,
                       district_code=district, created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, at=now, actor=user.username, actor_id=user.id,
                 action="calendar_feed.create", entity="calendar_feed", entity_id=row.id,
                 after={"scope": chosen.value, "district_code": district})
    return secret


def revoke_feed(session: Session, user: User, feed_id: int, now: datetime) -> None:
    """The person ends one of their own addresses: it answers 404 from now on. Audited."""
    row = session.get(CalendarFeed, feed_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        raise NotFound(f"no calendar address {feed_id} of yours",
                       f"ไม่พบที่อยู่ปฏิทิน {feed_id} ของท่าน")
    _revoke(session, user, row, now, reason="revoked")


def _revoke(session: Session, user: User, row: CalendarFeed, now: datetime, reason: str) -> None:
    row.revoked_at = now
    session.add(row)
    audit.record(session, at=now, actor=user.username, actor_id=user.id,
                 action="calendar_feed.revoke", entity="calendar_feed", entity_id=row.id,
                 after={"reason": reason})


def _scope(scope: str) -> FeedScope:
    try:
        return FeedScope(scope)
    except ValueError:
        raise InvalidInput(f"no calendar kind {scope!r}; choose person or district",
                           f"ไม่มีปฏิทินชนิด {scope!r} (เลือก person หรือ district)") from None


def _feed_district(session: Session, user: User, scope: FeedScope,
                   district_code: str | None) -> str | None:
    """The district a district feed is about (checked against what the person may see)."""
    if scope == FeedScope.PERSON:
        return None
    if not district_code:
        raise InvalidInput("choose the district of the calendar", "กรุณาเลือกอำเภอของปฏิทิน")
    return visible_district(session, user, district_code).code


@dataclass(frozen=True)
class FeedLine:
    """One live address on the profile page (its secret is not known any more: only new ones
    are shown in full)."""

    feed: CalendarFeed
    district: District | None


@dataclass(frozen=True)
class CalendarView:
    feeds: list[FeedLine]
    districts: list[District]  # those the person may make a district feed for


def calendar_view(session: Session, user: User) -> CalendarView:
    """The profile's "Calendar" block: the person's live addresses and the districts offered."""
    feeds = [FeedLine(f, get_district(session, f.district_code) if f.district_code else None)
             for f in live_feeds(session, user.id)]
    return CalendarView(feeds, _offered_districts(session, user))


def _offered_districts(session: Session, user: User) -> list[District]:
    if user.role in DISTRICT_ROLES and user.district_code:
        district = get_district(session, user.district_code)
        return [district] if district else []
    if user.role in PROVINCE_ROLES and user.province_code:
        return districts_of(session, user.province_code)
    return []  # the Department: 878 districts; their people make their own


def feed_path(secret: str) -> str:
    return f"/calendar/{secret}.ics"


# --- reading a feed -----------------------------------------------------------------------------

def feed_ics(session: Session, secret: str, *, base_url: str, now: datetime,
             lang: str = "th") -> bytes:
    """The calendar the address names, as ICS bytes (UTF-8); NotFound for an unknown or
    revoked address, a disabled account, or a district the person may no longer see."""
    feed = feed_by_key(session, _hash(secret)) if secret else None
    user = session.get(User, feed.user_id) if feed else None
    if feed is None or user is None or not user.is_active:
        raise NotFound("no such calendar (the address was revoked or never existed)",
                       "ไม่พบปฏิทินนี้ (ที่อยู่ถูกยกเลิกแล้ว หรือไม่มีอยู่)")
    words = _words(lang)
    if feed.scope == FeedScope.DISTRICT or user.role in DISTRICT_ROLES:
        district = _readable_district(session, user, feed.district_code or user.district_code)
        name = words["district_name"].format(district=_local(district, "name", lang))
        events = [_item_event(row, district, base_url, words, lang)
                  for row in district_deadlines(session, district.code)]
    else:
        province = None if user.role in NATIONAL_ROLES else user.province_code
        name = words["person_name"].format(name=user.full_name)
        events = _step_events(province_step_items(session, province), base_url, words, lang,
                              national=province is None)
    return _calendar(name, events, now).to_ical()


def _readable_district(session: Session, user: User, code: str | None) -> District:
    district = get_district(session, code) if code else None
    if district is None or not can_see_district(user.role, user.province_code, user.district_code,
                                                district.code, district.province_code):
        raise NotFound("no such calendar", "ไม่พบปฏิทินนี้")
    return district


def _calendar(name: str, events: Iterable[Event], now: datetime) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", TZID)
    cal.add("refresh-interval", timedelta(hours=6), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT6H")
    cal.add_component(Timezone.from_tzid(TZID))
    for event in events:
        event.add("dtstamp", now)
        cal.add_component(event)
    return cal


def _event(uid: str, due: date, summary: str, description: str, url: str, sequence: int,
           modified: datetime | None) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstart", due)  # a date: an all-day event on the due day
    event.add("dtend", due + timedelta(days=1))
    event.add("summary", summary)
    event.add("description", description)
    event.add("url", url)
    event.add("sequence", sequence)
    event.add("transp", "TRANSPARENT")  # a deadline does not make anyone busy
    if modified is not None:
        event.add("last-modified", modified)
    return event


def _item_event(row: Row, district: District, base_url: str, words: dict, lang: str) -> Event:
    item, step, directive = row
    state = _state(item.status)
    summary = words["item_summary"].format(mark=words["mark"][state], code=step.code,
                                           step=_local(step, "title", lang),
                                           district=_local(district, "name", lang),
                                           ref=directive.reference_no)
    description = words["item_description"].format(
        directive=_local(directive, "title", lang), ref=directive.reference_no,
        state=words["state"][state], url=_url(base_url, f"/items/{item.id}"))
    event = _event(f"item-{item.id}@{_host(base_url)}", item.due_on, summary, description,
                   _url(base_url, f"/items/{item.id}"), item.version - 1,
                   _latest([item.completed_at, item.waived_at, directive.launched_at]))
    if item.status == ItemStatus.WAIVED:
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    return event


def _step_events(rows: list[Row], base_url: str, words: dict, lang: str, *,
                 national: bool) -> list[Event]:
    """One event per step (the Department: per letter's step and due day, over provinces)."""
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        _, step, directive = row
        key = ((directive.parent_id or directive.id, step.code, step.due_on) if national
               else (step.id,))
        groups.setdefault(key, []).append(row)
    return [_step_event(group, base_url, words, lang, national) for group in groups.values()]


def _step_event(group: list[Row], base_url: str, words: dict, lang: str, national: bool) -> Event:
    _, step, directive = group[0]
    settled = sum(item.status != ItemStatus.OPEN for item, _, _ in group)
    state = "done" if settled == len(group) else "open"
    path = f"/directives/{directive.slug}" if not national else "/national"
    summary = words["step_summary"].format(mark=words["mark"][state], code=step.code,
                                           step=_local(step, "title", lang),
                                           ref=directive.reference_no)
    description = words["step_description"].format(
        directive=_local(directive, "title", lang), ref=directive.reference_no,
        settled=settled, total=len(group), url=_url(base_url, path))
    uid = (f"step-{step.id}@{_host(base_url)}" if not national
           else f"national-{directive.parent_id or directive.id}-{step.code}-{step.due_on:%Y%m%d}"
                f"@{_host(base_url)}")
    event = _event(uid, step.due_on, summary, description, _url(base_url, path),
                   sum(item.version - 1 for item, _, _ in group),
                   _latest([d.launched_at for _, _, d in group]
                           + [i.completed_at for i, _, _ in group]
                           + [i.waived_at for i, _, _ in group]))
    event.add("status", "CONFIRMED")
    return event


def _state(status: ItemStatus) -> str:
    return {ItemStatus.OPEN: "open", ItemStatus.WAIVED: "waived"}.get(status, "done")


def _latest(moments: list[datetime | None]) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def _local(thing: object, field: str, lang: str) -> str:
    """The English name when asked for and known, else the Thai."""
    return (getattr(thing, f"{field}_en", None) if lang == "en" else None) \
        or getattr(thing, f"{field}_th")


def _words(lang: str) -> dict:
    return labels()["calendar"]["en" if lang == "en" else "th"]


def _url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _host(base_url: str) -> str:
    return urlsplit(base_url).hostname or "tidtam"
