"""`tidtam demo-data`: a national dataset for tests and benchmarks, written through the use cases.

The Department's FY 2567 directive is launched in every province asked for (with the provinces'
``extends:`` additions), each province and district gets its people, and then each district
lives through July and August 2567 as planned by a seeded random number generator: steps marked
done early, on the day, late or never; a report drafted, photographed, submitted, returned,
corrected and accepted; the province's report sent to the Department; the escalation sweep and
the outbox pump run every few working days. Every change goes through the same use case (and
audit entry) as in real use, at its simulated instant, never after ``as_of``.

The plan is pure (``plan_district``, ``plan_provincial_report``): a district's story depends only
on the seed and the district, so a later ``as_of`` continues the same story, and a province's
data does not change with the other provinces loaded. Writing happens in windows between sweeps,
one transaction per province and window.

This module is imported by the CLI at start-up: the database side imports its modules inside
the functions (sqlmodel, Pillow and the templates cost seconds to import).
"""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from domain.calendar import WorkCalendar
from domain.directive import DirectiveSpec
from domain.errors import Conflict, InvalidInput
from tidtam.infra.paths import ADDITIONS, DIRECTIVES, ROOT

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from models.directive import Directive
    from models.user import User
    from tidtam.infra.photos import PhotoStore, StoredPhoto

NATIONAL_DIRECTIVE = DIRECTIVES / "fy2567-national-volunteer-centers.yaml"
BANGKOK = ZoneInfo("Asia/Bangkok")
DEFAULT_AS_OF = "2024-08-13T10:00:00+07:00"
DEFAULT_SEED = 2567
DEPARTMENT_USER = "department"

SWEEP_EVERY = 3            # working days between two escalation sweeps (09:00 local)
SWEEP_HOUR = time(9, 0)
# The outbox pump runs after each sweep and sends everything due, but in the last LAGGING windows
# it falls behind and sends only PUMP_SHARE: the outbox ends with rows still queued. (Queued rows
# while districts mark steps done make each mark_done ~10 ms slower on SQLite: see the report.)
LAGGING = 1
PUMP_SHARE = 0.5
PHOTO_SIZE = (160, 120)
PHOTO_VARIANTS = 6


class Pace(StrEnum):
    """How a district keeps to the directive's dates."""

    EARLY = "early"
    ON_TIME = "on-time"
    LATE = "late"
    NEVER = "never"


PACES = {Pace.EARLY: 35, Pace.ON_TIME: 30, Pace.LATE: 25, Pace.NEVER: 10}


class Timing(StrEnum):
    """When one step is done against its due day."""

    EARLY = "early"
    ON_THE_DAY = "on-the-day"
    LATE = "late"
    NOT_DONE = "not-done"


# Per pace, the weights of each Timing for one step (a late district is mostly, not always, late).
STEP_TIMING = {
    Pace.EARLY: {Timing.EARLY: 75, Timing.ON_THE_DAY: 20, Timing.LATE: 5, Timing.NOT_DONE: 0},
    Pace.ON_TIME: {Timing.EARLY: 15, Timing.ON_THE_DAY: 70, Timing.LATE: 13, Timing.NOT_DONE: 2},
    Pace.LATE: {Timing.EARLY: 5, Timing.ON_THE_DAY: 20, Timing.LATE: 65, Timing.NOT_DONE: 10},
}
STARTS_REPORT = {Pace.EARLY: 1.0, Pace.ON_TIME: 1.0, Pace.LATE: 0.85}
REVIEW_BACKLOG = 0.12      # submitted reports the coordinator has not opened yet
RETURNED = 0.25            # first reviews that send the report back
CORRECTED = 0.75           # returned reports the district corrects and sends again
PROVINCIAL = {Timing.ON_THE_DAY: 55, Timing.LATE: 25, Timing.NOT_DONE: 20}

# The demo's words, as a district or a coordinator would type them (data, not UI labels).
CENTER = "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบล{tambon}"
PLACE = "หมู่ที่ {village} ต.{tambon}"
OTHER_KINDS = ["ทำความสะอาดวัดและศาสนสถาน", "ซ่อมแซมถนนในหมู่บ้าน"]
OUTCOMES = ["ชุมชนมีส่วนร่วมทำความดีถวายในหลวง", "ศูนย์ฯ มีแผนการดำเนินงานต่อเนื่อง",
            "เกิดเครือข่ายจิตอาสาในตำบล", "ภาคีการพัฒนาร่วมสนับสนุนงบประมาณและวัสดุ"]
NOTES = ["ดำเนินการแล้ว", "ประชุมเรียบร้อย", "แจ้งผู้เกี่ยวข้องแล้ว"]
ASK_OFFICIALS = "ขอให้ระบุจำนวนเจ้าหน้าที่พัฒนาชุมชนที่ร่วมกิจกรรม"
ASK_OUTCOMES = "ขอให้ระบุผลที่ได้รับเพิ่มเติม"
DEMO_SUFFIX = " (ข้อมูลสาธิต)"
# Head counts per participant category (the directive's codes); others get DEFAULT_COUNT.
COUNTS = {"center-committee": (2, 9), "volunteer-leaders": (3, 12), "community": (5, 30),
          "partners": (0, 6), "cd-officials": (0, 3)}
DEFAULT_COUNT = (0, 10)
OFFICIALS = "cd-officials"


# --- the plan: pure, seeded ----------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """One change a person makes at a simulated instant.

    ``action``: done (a step), draft, photo, submit, return, accept, provincial (the province's
    report to the Department, ``district`` None). ``seq`` orders events at the same instant.
    """

    at: datetime
    seq: int
    action: str
    district: str | None
    step: str | None = None
    content: dict | None = None
    session_key: str | None = None
    picture: int = 0
    text: str | None = None


@dataclass(frozen=True)
class DistrictPlan:
    district: str
    pace: Pace
    events: tuple[Event, ...]


@dataclass(frozen=True)
class OfficeDays:
    """Working days and office hours of the directive, from its launch on."""

    calendar: WorkCalendar
    opens: time
    closes: time
    tz: ZoneInfo
    launched: datetime

    @classmethod
    def of(cls, spec: DirectiveSpec, tz: ZoneInfo, launched: datetime) -> OfficeDays:
        hours = spec.office_hours.to_office_hours()
        return cls(spec.work_calendar(), hours.start, hours.end, tz, launched)

    def office_time(self, rng: random.Random, day: date) -> datetime:
        """A random minute of office hours on ``day`` (local), as UTC, never before the launch."""
        opens = datetime.combine(day, self.opens, tzinfo=self.tz)
        minutes = int((datetime.combine(day, self.closes, tzinfo=self.tz) - opens).total_seconds() // 60)
        at = (opens + timedelta(minutes=rng.randrange(minutes))).astimezone(UTC)
        return max(at, self.launched + timedelta(minutes=15))

    def shift(self, day: date, working_days: int) -> date:
        return self.calendar.add_working_days(day, working_days)

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()


def district_rng(seed: int, district_code: str) -> random.Random:
    """The district's own generator: its story does not depend on which others are loaded."""
    return random.Random(f"tidtam-demo:{seed}:{district_code}")


def plan_district(seed: int, district_code: str, spec: DirectiveSpec, clock: OfficeDays,
                  tambons: Sequence[str]) -> DistrictPlan:
    """What the district's staff (and its province's coordinator) do, and when."""
    rng = district_rng(seed, district_code)
    pace = _weighted(rng, PACES)
    if pace == Pace.NEVER:
        return DistrictPlan(district_code, pace, ())
    events: list[Event] = []
    report_step = spec.form.report_step if spec.form else None
    for step in spec.steps:
        timing = _weighted(rng, STEP_TIMING[pace])
        if step.kind == "report" or step.code == report_step:
            continue  # the report form's submission completes it
        at = _when(rng, clock, step.due_on, timing)
        if at is not None:
            note = rng.choice(NOTES) + DEMO_SUFFIX if rng.random() < 0.3 else None
            events.append(Event(at, len(events), "done", district_code, step=step.code, text=note))
    if spec.form is not None and rng.random() < STARTS_REPORT[pace]:
        due = next(s.due_on for s in spec.steps if s.code == report_step)
        events += _report_events(rng, district_code, spec, clock, pace, due, tambons, len(events))
    return DistrictPlan(district_code, pace, tuple(events))


def _weighted(rng: random.Random, weights: dict) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _when(rng: random.Random, clock: OfficeDays, due: date, timing: Timing) -> datetime | None:
    if timing == Timing.NOT_DONE:
        return None
    day = {Timing.EARLY: lambda: clock.shift(due, -rng.randint(1, 3)),
           Timing.ON_THE_DAY: lambda: due,
           Timing.LATE: lambda: clock.shift(due, rng.randint(1, 6))}[timing]()
    return clock.office_time(rng, day)


def _report_events(rng: random.Random, district: str, spec: DirectiveSpec, clock: OfficeDays, pace: Pace,
                   due: date, tambons: Sequence[str], seq: int) -> list[Event]:
    """Draft with a photo per session, then submit, review, maybe return and correct."""
    content = report_content(rng, spec, tambons)
    last_held = max(date.fromisoformat(s["held_on"]) for s in content["sessions"])
    drafted = clock.office_time(rng, clock.shift(max(last_held, clock.local_day(clock.launched)),
                                                   rng.randint(0, 3)))
    events = [Event(drafted, seq, "draft", district, content=content)]
    for n, entry in enumerate(content["sessions"], start=1):
        events.append(Event(drafted + timedelta(minutes=3 * n), seq + n, "photo", district,
                            session_key=entry["key"], picture=rng.randrange(PHOTO_VARIANTS),
                            text=f"IMG_{rng.randint(1000, 9999)}.jpg"))
    submitted = _when(rng, clock, due, _weighted(rng, STEP_TIMING[pace]))
    if submitted is None:
        return events  # kept as a draft
    at = max(submitted, events[-1].at + timedelta(hours=1))
    events.append(Event(at, len(events) + seq, "submit", district))
    for round_ in (1, 2):
        if rng.random() < REVIEW_BACKLOG:
            return events
        at = max(clock.office_time(rng, clock.shift(clock.local_day(at), rng.randint(0, 3))),
                 at + timedelta(minutes=30))
        if round_ == 2 or rng.random() >= RETURNED:
            events.append(Event(at, len(events) + seq, "accept", district))
            return events
        content, comment = corrected(rng, content)
        events.append(Event(at, len(events) + seq, "return", district, text=comment + DEMO_SUFFIX))
        if rng.random() >= CORRECTED:
            return events
        at = max(clock.office_time(rng, clock.shift(clock.local_day(at), rng.randint(1, 2))),
                 at + timedelta(hours=1))
        events.append(Event(at, len(events) + seq, "draft", district, content=content))
        at += timedelta(minutes=20)
        events.append(Event(at, len(events) + seq, "submit", district))
    return events


def report_content(rng: random.Random, spec: DirectiveSpec, tambons: Sequence[str]) -> dict:
    """The form as a district types it: 1–3 sessions in the activity period, ≥ the minimum each."""
    period = spec.conditions.period
    start, end = (period.start, period.end) if period else (spec.activity_start, spec.activity_end)
    kinds = [k.code for k in spec.form.activity_kinds]
    sessions = []
    for _ in range(rng.choices([1, 2, 3], weights=[50, 35, 15])[0]):
        tambon = rng.choice(tambons)
        kind = "other" if spec.form.allow_other_kind and rng.random() < 0.05 else rng.choice(kinds)
        sessions.append({
            "key": f"{rng.getrandbits(128):032x}",
            "held_on": (start + timedelta(days=rng.randrange((end - start).days + 1))).isoformat(),
            "center": CENTER.format(tambon=tambon),
            "place": PLACE.format(village=rng.randint(1, 15), tambon=tambon),
            "kind": kind, "kind_other": rng.choice(OTHER_KINDS) if kind == "other" else "",
            "participants": _participants(rng, spec)})
    outcomes = rng.sample(OUTCOMES, rng.randint(1, 2))
    return {"sessions": sorted(sessions, key=lambda s: s["held_on"]),
            "outcomes": [o + DEMO_SUFFIX for o in outcomes]}


def _participants(rng: random.Random, spec: DirectiveSpec) -> dict[str, int]:
    counts = {c.code: rng.randint(*COUNTS.get(c.code, DEFAULT_COUNT))
              for c in spec.participant_categories}
    short = spec.conditions.min_participants_per_session - sum(counts.values())
    if short > 0:
        biggest = max(counts, key=counts.get)
        counts[biggest] += short + rng.randint(0, 10)
    return counts


def corrected(rng: random.Random, content: dict) -> tuple[dict, str]:
    """What the coordinator asks for when returning the form, and the form once corrected."""
    sessions = [dict(s, participants=dict(s["participants"])) for s in content["sessions"]]
    if any(s["participants"].get(OFFICIALS) == 0 for s in sessions):
        for entry in sessions:
            if entry["participants"].get(OFFICIALS) == 0:
                entry["participants"][OFFICIALS] = rng.randint(1, 2)
        return {**content, "sessions": sessions}, ASK_OFFICIALS
    extra = [o + DEMO_SUFFIX for o in OUTCOMES if o + DEMO_SUFFIX not in content["outcomes"]]
    return {**content, "outcomes": content["outcomes"] + extra[:1]}, ASK_OUTCOMES


def plan_provincial_report(seed: int, province_code: str, department_due: date | None,
                           clock: OfficeDays, plans: Iterable[DistrictPlan]) -> Event | None:
    """The coordinator sends the compiled reports to the Department: by the due day, after, or
    not at all; never before a district's report was accepted (there would be nothing to send)."""
    accepted = [e.at for p in plans for e in p.events if e.action == "accept"]
    rng = random.Random(f"tidtam-demo:{seed}:province:{province_code}")
    timing = _weighted(rng, PROVINCIAL)
    if not accepted or department_due is None or timing == Timing.NOT_DONE:
        return None
    day = department_due if timing == Timing.ON_THE_DAY else clock.shift(department_due,
                                                                           rng.randint(1, 5))
    if timing == Timing.ON_THE_DAY:
        day = clock.shift(day, -rng.randint(0, 3))
    at = max(clock.office_time(rng, day), min(accepted) + timedelta(hours=2))
    return Event(at, 0, "provincial", None)


def sweep_instants(launched: datetime, as_of: datetime, clock: OfficeDays) -> list[datetime]:
    """``as_of``, and 09:00 every SWEEP_EVERY working days before it, after the launch.

    Counted back from ``as_of`` so its sweep is a new re-notification day (SWEEP_EVERY is more
    than the ladder's 2 working days) and leaves fresh rows in the outbox.
    """
    instants, day = [as_of], clock.local_day(as_of)
    while True:
        day = clock.shift(day, -SWEEP_EVERY)
        at = datetime.combine(day, SWEEP_HOUR, tzinfo=clock.tz).astimezone(UTC)
        if at <= launched:
            return instants[::-1]
        instants.append(at)


def launch_instant(spec: DirectiveSpec, as_of: datetime, tz: ZoneInfo) -> datetime:
    """The directive reaches the provinces on its issue day, 09:00 (or at ``as_of``, if earlier)."""
    return min(datetime.combine(spec.issued_on, SWEEP_HOUR, tzinfo=tz).astimezone(UTC), as_of)


def pictures(count: int = PHOTO_VARIANTS) -> list[bytes]:
    """Small JPEGs (sky, field, sun) standing in for phone photos; the same bytes on every run."""
    from PIL import Image, ImageDraw

    width, height = PHOTO_SIZE
    made = []
    for n in range(count):
        image = Image.new("RGB", PHOTO_SIZE, (120 + 20 * n % 100, 180, 235))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, height * 3 // 5, width, height), fill=(60 + 25 * n % 150, 150, 60))
        sun = 20 + n * (width - 50) // max(count - 1, 1)
        draw.ellipse((sun, 12, sun + 24, 36), fill=(250, 210, 80))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
        made.append(out.getvalue())
    return made


# --- writing it ----------------------------------------------------------------------------------

Progress = Callable[[str, bool], None]  # (text, True when the line is a finished stage)


@dataclass
class DemoDataResult:
    """What was made, counted from the database afterwards (the paces come from the plan)."""

    provinces: int = 0
    districts: int = 0
    users: int = 0
    items: int = 0
    done_on_time: int = 0
    done_late: int = 0
    paces: dict[str, int] = field(default_factory=dict)
    reports: dict[str, int] = field(default_factory=dict)
    provincial_on_time: int = 0
    provincial_late: int = 0
    outbox: dict[str, int] = field(default_factory=dict)
    photos: int = 0
    photo_files: bool = True
    sweeps: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The summary as the CLI prints it."""
        def mix(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"

        files = "" if self.photo_files else " (rows only: --no-photos wrote no files)"
        return [
            f"provinces {self.provinces}, districts {self.districts:,}, users {self.users:,}",
            f"tracked items {self.items:,}: done on time {self.done_on_time:,}, "
            f"late {self.done_late:,}, open {self.items - self.done_on_time - self.done_late:,}",
            f"districts by planned pace: {mix(self.paces)}",
            f"district reports: {mix(self.reports)}; photos {self.photos:,}{files}",
            f"provincial reports to the Department: on time {self.provincial_on_time}, "
            f"late {self.provincial_late}, "
            f"not sent {self.provinces - self.provincial_on_time - self.provincial_late}",
            f"outbox after {self.sweeps} sweeps: {mix(self.outbox)}",
            f"took {self.seconds:.1f} s",
        ]


def generate(engine: Engine, *, provinces: list[str], seed: int, as_of: datetime,
             photos: PhotoStore | None, tz: ZoneInfo = BANGKOK,
             base_url: str = "http://127.0.0.1:8000", exist_ok: bool = False,
             progress: Progress | None = None,
             directive_path: Path = NATIONAL_DIRECTIVE) -> DemoDataResult | None:
    """Migrate, load, launch and live the plan up to ``as_of``; the summary, read back.

    Refuses (Conflict) a database that holds the national directive already, or returns None
    with ``exist_ok``. ``photos`` None: the photo rows are made as an upload makes them, but no
    file is written (benchmarks; the pages show those photos as missing). Not atomic: each
    province is committed per window, so a failed run leaves part of a dataset behind.
    """
    from domain.directive import load_directive
    from tidtam.infra import db

    if as_of.tzinfo is None:
        raise InvalidInput("as_of needs a timezone", "ต้องระบุเขตเวลาของ as_of")
    started, say = perf_counter(), progress or (lambda text, done: None)
    db.migrate(engine.url.render_as_string(hide_password=False))
    spec = load_directive(directive_path)
    with db.session_scope(engine) as session:
        if _already_there(session, spec.slug):
            if exist_ok:
                return None
            raise Conflict(f"this database holds the national directive {spec.slug} already; "
                           "nothing was changed (use an empty database)",
                           f"ฐานข้อมูลนี้มีหนังสือสั่งการ {spec.slug} ของกรมฯ แล้ว ไม่มีการเปลี่ยนแปลงใด ๆ "
                           "(ใช้ฐานข้อมูลว่าง)")
    launched = launch_instant(spec, as_of, tz)
    writer = _Writer(engine, seed, as_of, tz, base_url, photos)
    writer.set_up(spec, provinces, launched, say)
    writer.live(say)
    result = writer.summary()
    result.seconds = perf_counter() - started
    return result


def _already_there(session: Session, slug: str) -> bool:
    from models.directive import get_directive_by_slug

    return get_directive_by_slug(session, slug) is not None


class _RowsOnly:
    """A photo store that writes nothing: the rows an upload makes, for ``--no-photos``."""

    def save(self, data: bytes, filename: str, limits: Any = None) -> StoredPhoto:
        from tidtam.infra.photos import StoredPhoto

        uid = uuid.uuid4().hex
        return StoredPhoto(f"{uid}.original.jpg", f"{uid}.display.jpg", f"{uid}.thumb.jpg",
                           "image/jpeg", len(data), *PHOTO_SIZE, hashlib.sha256(data).hexdigest())

    def delete(self, photo: Any) -> None:
        """Nothing was written."""


@dataclass
class _Province:
    code: str
    name: str
    copy_id: int
    plans: list[DistrictPlan]
    events: list[Event]


class _Writer:
    """Carries out the plans: set-up, then windows of events between sweeps."""

    def __init__(self, engine: Engine, seed: int, as_of: datetime, tz: ZoneInfo, base_url: str,
                 photos: PhotoStore | None) -> None:
        self.engine, self.seed, self.as_of, self.tz, self.base_url = engine, seed, as_of, tz, base_url
        self.store = photos if photos is not None else _RowsOnly()
        self.photo_files = photos is not None
        self.pictures = pictures()
        self.provinces: list[_Province] = []
        self.users = 0
        self.sweeps: list[datetime] = []

    def set_up(self, spec: DirectiveSpec, codes: list[str], launched: datetime, say: Progress) -> None:
        """Org tree, the national launch with additions, the Department's viewer; then, per
        province, its people and its plan."""
        from tidtam.app.national import apply_addition, launch_national
        from tidtam.app.orgtree import load_org_tree
        from tidtam.infra import db

        with db.session_scope(self.engine) as session:
            load_org_tree(session, codes)
            national = launch_national(session, spec, now=launched).directive
            for addition, source in _additions(spec.slug, codes):
                apply_addition(session, addition, now=launched, source=source)
            self.users += self._department(session, launched)
            say(f"launched {spec.slug} in {len(codes)} provinces", True)
            copies = _copies(session, national.id, codes)
        clock = OfficeDays.of(spec, self.tz, launched)
        self.sweeps = sweep_instants(launched, self.as_of, clock)
        password_hash = _demo_hash()
        for n, (code, (copy_id, name)) in enumerate(copies.items(), start=1):
            with db.session_scope(self.engine) as session:
                province = self._province(session, code, name, copy_id, launched)
                self.users += self._people(session, code, name, password_hash, launched)
            self.provinces.append(province)
            say(f"[{n}/{len(copies)}] {code} {name}: {len(province.plans)} districts planned", False)
        say(f"{len(copies)} provinces: people and plans ready ({self.users:,} users)", True)

    def _province(self, session: Session, code: str, name: str, copy_id: int,
                  launched: datetime) -> _Province:
        import geothai

        from models.directive import Directive
        from models.org import districts_of
        from tidtam.app.reporting import spec_of

        spec = spec_of(session.get(Directive, copy_id))
        clock = OfficeDays.of(spec, self.tz, launched)
        plans = [plan_district(self.seed, d.code, spec, clock,
                               [t.name_th for t in geothai.subdistricts(d.code)] or [d.name_th])
                 for d in districts_of(session, code)]
        provincial = plan_provincial_report(self.seed, code, spec.department_due, clock, plans)
        events = [e for p in plans for e in p.events] + ([provincial] if provincial else [])
        events = sorted((e for e in events if e.at <= self.as_of),
                        key=lambda e: (e.at, e.district or "", e.seq))
        return _Province(code, name, copy_id, plans, events)

    def _department(self, session: Session, now: datetime) -> int:
        from domain.access import Role

        _, created = _ensure(session, DEPARTMENT_USER, "กรมการพัฒนาชุมชน (สาธิต)",
                             Role.DEPARTMENT_VIEWER, None, None, _demo_hash(), now)
        return int(created)

    def _people(self, session: Session, code: str, name: str, password_hash: str,
                now: datetime) -> int:
        """coordinator-PP, province-head-PP, staff-DDDD and head-DDDD: demo password, e-mail, LINE."""
        from domain.access import Role
        from models.org import districts_of

        made = [_ensure(session, f"coordinator-{code}", f"ผู้ประสานงานจังหวัด{name} (สาธิต)",
                        Role.COORDINATOR, code, None, password_hash, now),
                _ensure(session, f"province-head-{code}", f"พัฒนาการจังหวัด{name} (สาธิต)",
                        Role.PROVINCIAL_HEAD, code, None, password_hash, now)]
        for district in districts_of(session, code):
            made.append(_ensure(session, f"staff-{district.code}",
                                f"เจ้าหน้าที่ อ.{district.name_th} (สาธิต)", Role.DISTRICT_STAFF, code,
                                district.code, password_hash, now))
            made.append(_ensure(session, f"head-{district.code}", f"พัฒนาการอำเภอ{district.name_th} (สาธิต)",
                                Role.DISTRICT_HEAD, code, district.code, password_hash, now))
        return sum(created for _, created in made)

    # -- living through the weeks --

    def live(self, say: Progress) -> None:
        """Each window: every province's events up to the sweep, then the sweep and the pump."""
        for n, instant in enumerate(self.sweeps, start=1):
            label = f"[{n}/{len(self.sweeps)}] to {_local(instant, self.tz)}"
            started, changes = perf_counter(), 0
            for index, province in enumerate(self.provinces, start=1):
                changes += self._run_window(province, instant)
                say(f"{label}: {index}/{len(self.provinces)} provinces ({province.code} "
                    f"{province.name})", False)
            written = perf_counter()
            share = PUMP_SHARE if n > len(self.sweeps) - LAGGING else 1.0
            queued, sent = self._sweep_and_pump(instant, share)
            say(f"{label}: {changes:,} changes ({written - started:.1f} s); sweep queued {queued:,}, "
                f"pump sent {sent:,} ({perf_counter() - written:.1f} s)", True)

    def _run_window(self, province: _Province, until: datetime) -> int:
        from tidtam.infra import db

        due = [e for e in province.events if e.at <= until]
        if not due:
            return 0
        province.events = province.events[len(due):]
        with db.session_scope(self.engine) as session:
            context = _Context.read(session, province)
            for event in due:
                HANDLERS[event.action](self, session, context, event)
        return len(due)

    def _sweep_and_pump(self, instant: datetime, share: float) -> tuple[int, int]:
        from tidtam.app.escalation import sweep
        from tidtam.infra import db

        with db.session_scope(self.engine) as session:
            queued = sweep(session, instant, tz=self.tz, base_url=self.base_url).enqueued
        with db.session_scope(self.engine) as session:
            sent = _send_due(session, instant, share)
        return queued, sent

    # -- the summary, read back from the database --

    def summary(self) -> DemoDataResult:
        from tidtam.infra import db

        with db.session_scope(self.engine) as session:
            return _summary(session, self)


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _demo_hash() -> str:
    """The demo password's argon2 hash, made once per process (argon2 is slow on purpose)."""
    global _HASH
    if _HASH is None:
        from tidtam.app.accounts import hash_password
        from tidtam.demo.province import DEMO_PASSWORD

        _HASH = hash_password(DEMO_PASSWORD)
    return _HASH


_HASH: str | None = None


def _ensure(session: Session, username: str, full_name: str, role: Any, province: str | None,
            district: str | None, password_hash: str, now: datetime) -> tuple[User, bool]:
    from tidtam.app.accounts import ensure_user
    from tidtam.demo.province import demo_line_id

    return ensure_user(session, username=username, full_name=full_name, role=role,
                       province_code=province, district_code=district, password_hash=password_hash,
                       now=now, email=f"{username}@demo.tidtam.local",
                       line_user_id=demo_line_id(username))


def _additions(slug: str, codes: Sequence[str]) -> list[tuple[Any, str]]:
    """The provinces' ``extends:`` files for this directive, for the provinces loaded."""
    from domain.national import is_addition, load_addition

    found = []
    for path in sorted(ADDITIONS.glob("*.yaml")):
        if not is_addition(path.read_text(encoding="utf-8")):
            continue
        addition = load_addition(path)
        if addition.extends == slug and addition.province_code in codes:
            found.append((addition, str(path.relative_to(ROOT))))
    return found


def _copies(session: Session, national_id: int, codes: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The provinces' copies asked for, in the order given: code → (directive id, Thai name)."""
    from models.directive import province_copies
    from models.org import Province

    names = {code: session.get(Province, code).name_th for code in codes}
    by_code = {d.province_code: d.id for d in province_copies(session, national_id)}
    return {code: (by_code[code], names[code]) for code in codes if code in by_code}


@dataclass
class _Context:
    """What one province's window needs, read once per transaction."""

    directive_id: int
    items: dict[tuple[str, str], int]
    people: dict[str, User]
    coordinator: User
    loaded: list[Any]  # items, steps, districts: held, so the use cases find them in the session

    @classmethod
    def read(cls, session: Session, province: _Province) -> _Context:
        from sqlmodel import select

        from models.directive import Directive, TrackedItem, steps_of
        from models.org import districts_of
        from models.user import User

        steps = steps_of(session, province.copy_id)
        code_of = {s.id: s.code for s in steps}
        tracked = list(session.exec(select(TrackedItem)
                                    .where(TrackedItem.directive_id == province.copy_id)))
        items = {(item.district_code, code_of[item.step_id]): item.id for item in tracked}
        people = {u.username: u for u in session.exec(
            select(User).where(User.province_code == province.code))}
        loaded = [*tracked, *steps, *districts_of(session, province.code),
                  session.get(Directive, province.copy_id)]
        return cls(province.copy_id, items, people, people[f"coordinator-{province.code}"], loaded)

    def staff(self, district: str) -> User:
        return self.people[f"staff-{district}"]

    def directive(self, session: Session) -> Directive:
        """The province's copy, which the report events act on."""
        from models.directive import Directive

        return session.get(Directive, self.directive_id)

    def version(self, session: Session, district: str) -> int:
        from models.report import get_report

        report = get_report(session, self.directive_id, district)
        return report.version if report else 0


def _done(writer: _Writer, session: Session, context: _Context, event: Event) -> None:
    from models.directive import ItemStatus, TrackedItem
    from tidtam.app.tracking import mark_done

    item_id = context.items[(event.district, event.step)]
    if session.get(TrackedItem, item_id).status != ItemStatus.OPEN:
        return  # already done from the district's report (form.proves), before this tick
    mark_done(session, context.staff(event.district), item_id, now=event.at, note=event.text)


def _draft(writer: _Writer, session: Session, context: _Context, event: Event) -> None:
    from tidtam.app.reporting import save_draft

    save_draft(session, context.staff(event.district), event.district, event.content,
               directive=context.directive(session),
               expected_version=context.version(session, event.district), now=event.at)


def _photo(writer: _Writer, session: Session, context: _Context, event: Event) -> None:
    from tidtam.app.reporting import add_photo

    add_photo(session, context.staff(event.district), event.district, event.session_key,
              writer.pictures[event.picture], event.text, directive=context.directive(session),
              store=writer.store, now=event.at)


def _submit(writer: _Writer, session: Session, context: _Context, event: Event) -> None:
    from tidtam.app.reporting import submit_report

    submit_report(session, context.staff(event.district), event.district,
                  directive=context.directive(session),
                  expected_version=context.version(session, event.district), now=event.at)


def _return(writer: _Writer, session: Session, context: _Context, event: Event) -> None:
    from tidtam.app.reporting import return_report

    return_report(session, context.coordinator, event.district,
                  directive=context.directive(session), comment=event.text,
                  expected_version=context.version(session, event.district), now=event.at)


def _accept(writer: _Writer, session: Session, context: _Context, event: Event) -> None:
    from tidtam.app.reporting import accept_report

    accept_report(session, context.coordinator, event.district,
                  directive=context.directive(session),
                  expected_version=context.version(session, event.district), now=event.at)


def _provincial(writer: _Writer, session: Session, context: _Context, event: Event) -> None:
    from tidtam.app.national import submit_provincial_report

    submit_provincial_report(session, context.coordinator, directive=context.directive(session),
                             now=event.at)


HANDLERS = {"done": _done, "draft": _draft, "photo": _photo, "submit": _submit, "return": _return,
            "accept": _accept, "provincial": _provincial}


def _send_due(session: Session, instant: datetime, share: float) -> int:
    """The pump's work at ``instant``, oldest first: ``share`` of the due rows marked sent.

    One conditional UPDATE per 500 rows instead of ``claim_due`` + ``mark_sent`` per row
    (about 5 ms a row: some 200 s for a national run's 40,000 messages). Messages to people
    only: the demo's Prefect events stay queued, for the pump of `tidtam serve` to send to its
    Prefect server (they were never sent anywhere).
    """
    from sqlalchemy import update
    from sqlmodel import col, select

    from models.outbox import OutboxMessage, OutboxStatus, to_people

    due = (select(OutboxMessage.id)
           .where(OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.next_try_at <= instant,
                  to_people())
           .order_by(OutboxMessage.created_at, OutboxMessage.id))
    ids = list(session.exec(due))
    ids = ids[:round(len(ids) * share)]
    for start in range(0, len(ids), 500):
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids[start:start + 500]),
                   OutboxMessage.status == OutboxStatus.QUEUED)
            .values(status=OutboxStatus.SENT, sent_at=instant, attempts=OutboxMessage.attempts + 1,
                    claims=OutboxMessage.claims + 1, last_error=None)
            .execution_options(synchronize_session=False))
    return len(ids)


def _summary(session: Session, writer: _Writer) -> DemoDataResult:
    """Counted from the rows written, not from the plan (the plan only knows the paces)."""
    from sqlmodel import col, func, select

    from models.directive import Directive, ItemStatus, TrackedItem
    from models.outbox import OutboxMessage, to_people
    from models.report import ProvincialReport, Report, ReportPhoto

    copies = [p.copy_id for p in writer.provinces]
    result = DemoDataResult(provinces=len(writer.provinces), users=writer.users,
                            photo_files=writer.photo_files, sweeps=len(writer.sweeps))
    result.districts = sum(len(p.plans) for p in writer.provinces)
    result.paces = {str(pace): n for pace, n in sorted(Counter(
        plan.pace for p in writer.provinces for plan in p.plans).items(),
        key=lambda kv: list(Pace).index(kv[0]))}
    for status, due_on, done_at in session.exec(
            select(TrackedItem.status, TrackedItem.due_on, TrackedItem.completed_at)
            .where(col(TrackedItem.directive_id).in_(copies))):
        result.items += 1
        if status != ItemStatus.OPEN:
            on_time = done_at is None or done_at.astimezone(writer.tz).date() <= due_on
            result.done_on_time += on_time
            result.done_late += not on_time
    statuses = Counter(str(s) for s in session.exec(
        select(Report.status).where(col(Report.directive_id).in_(copies))))
    result.reports = {s: statuses.get(s, 0) for s in ("accepted", "submitted", "returned", "draft")}
    result.reports["none"] = result.districts - sum(statuses.values())
    due = {d.id: d.department_due for d in session.exec(
        select(Directive).where(col(Directive.id).in_(copies)))}
    for directive_id, first in session.exec(
            select(ProvincialReport.directive_id, ProvincialReport.first_submitted_at)
            .where(col(ProvincialReport.directive_id).in_(copies))):
        on_time = due[directive_id] is None or first.astimezone(writer.tz).date() <= due[directive_id]
        result.provincial_on_time += on_time
        result.provincial_late += not on_time
    result.photos = session.exec(select(func.count()).select_from(ReportPhoto).join(
        Report, Report.id == ReportPhoto.report_id).where(col(Report.directive_id).in_(copies))).one()
    result.outbox = {str(status): n for status, n in session.exec(
        select(OutboxMessage.status, func.count()).where(to_people())
        .group_by(OutboxMessage.status)
        .order_by(OutboxMessage.status))}
    return result


__all__ = ["DEFAULT_AS_OF", "DEFAULT_SEED", "DemoDataResult", "Event", "Pace", "Progress",
           "generate", "plan_district", "plan_provincial_report"]
