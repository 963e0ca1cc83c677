"""The Sa Kaeo demo of `tidtam init --demo` and `make run`: accounts (and the Department's), two
letters followed side by side (the FY 2567 directive with mid-July progress and two report drafts
with photos; a follow-up letter of late July with early-August progress). Everything goes through
the use cases, as a user's clicks would."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from domain.access import Role
from models.directive import Directive
from tidtam.app.accounts import ensure_user, hash_password
from tidtam.app.tracking import mark_done

if TYPE_CHECKING:
    from tidtam.infra.photos import PhotoStore

SA_KAEO = "27"
DEMO_PASSWORD = "tidtam-demo-2567"
DEPARTMENT = "department"  # the demo's Department viewer: the national board, every province
# Mid-July 2567: the moment the demo's progress is "as of".
DEMO_AS_OF = datetime(2024, 7, 16, 3, 0, tzinfo=UTC)  # 10:00 Asia/Bangkok
# The follow-up letter (directives/fy2567-sakaeo-outstanding-centers.yaml) is launched on its day,
# 26 Jul 2567, and its first steps are marked in the first days of August.
FOLLOW_UP_LAUNCH = datetime(2024, 7, 26, 3, 0, tzinfo=UTC)  # 10:00 Asia/Bangkok
FOLLOW_UP_AS_OF = datetime(2024, 8, 1, 3, 0, tzinfo=UTC)


def create_demo_accounts(session: Session, now: datetime, *, with_line: bool = False) -> list[str]:
    """coordinator, staff-27xx, head-27xx, province-head — all with the demo password.

    ``with_line`` (``tidtam init --demo``) also gives each a made-up LINE user id, so the demo's
    LINE messages arrive at the local LINE stand-in that `tidtam serve` starts.
    """
    from models.org import districts_of

    made = []
    demo_hash = hash_password(DEMO_PASSWORD)

    def add(username, full_name, role, district=None):
        email = f"{username}@demo.tidtam.local"
        line_user_id = demo_line_id(username) if with_line else None
        _, created = ensure_user(session, username=username, full_name=full_name, role=role,
                                 province_code=SA_KAEO, district_code=district,
                                 password_hash=demo_hash, now=now, email=email,
                                 line_user_id=line_user_id)
        if created:
            made.append(username)

    add("coordinator", "ผู้ประสานงานจังหวัด (สาธิต)", Role.COORDINATOR)
    add("province-head", "พัฒนาการจังหวัด (สาธิต)", Role.PROVINCIAL_HEAD)
    for district in districts_of(session, SA_KAEO):
        add(f"staff-{district.code}", f"เจ้าหน้าที่ อ.{district.name_th} (สาธิต)",
            Role.DISTRICT_STAFF, district.code)
        add(f"head-{district.code}", f"พัฒนาการอำเภอ{district.name_th} (สาธิต)",
            Role.DISTRICT_HEAD, district.code)
    return made


def create_department_account(session: Session, now: datetime) -> list[str]:
    """``department``: a Department viewer (no province), with the demo password and an e-mail."""
    _, created = ensure_user(session, username=DEPARTMENT, full_name="กรมการพัฒนาชุมชน (สาธิต)",
                             role=Role.DEPARTMENT_VIEWER, province_code=None, district_code=None,
                             password_hash=hash_password(DEMO_PASSWORD), now=now,
                             email=f"{DEPARTMENT}@demo.tidtam.local")
    return [DEPARTMENT] if created else []


def demo_line_id(username: str) -> str:
    """A LINE-shaped user id ("U" + 32 hex), the same for a username on every machine."""
    return "U" + hashlib.sha256(f"tidtam-demo:{username}".encode()).hexdigest()[:32]


# As of 16 July 2567: how far each district had got (step codes done). 2709 has done nothing.
DEMO_PROGRESS = {
    "2701": ["G1", "A1", "G2", "A2"],
    "2702": ["G1", "A1", "G2"],
    "2703": [],
    "2704": ["G1", "A1", "G2", "A2", "G4"],
    "2705": ["G1"],
    "2706": ["G1", "A1"],
    "2707": ["A1"],
    "2708": ["G1", "A1", "A2"],
    "2709": [],
}


def mark_demo_progress(session: Session, directive: Directive) -> int:
    """Mark the demo districts' progress, each by its own staff account, as of mid-July."""
    from models.directive import find_item
    from models.user import get_by_username

    count = 0
    for offset, (district_code, codes) in enumerate(DEMO_PROGRESS.items()):
        staff = get_by_username(session, f"staff-{district_code}")
        for n, code in enumerate(codes):
            item = find_item(session, directive.id, district_code, code)
            at = DEMO_AS_OF.replace(day=13 + (offset + n) % 4)
            mark_done(session, staff, item.id, now=at, note="ดำเนินการแล้ว (ข้อมูลสาธิต)")
            count += 1
    return count


# The follow-up letter as of 1-5 Aug 2567: a few districts have begun. staff-2703, who has done
# nothing of the first letter yet, has studied the criteria (S1) and owes the rest of both.
FOLLOW_UP_SLUG = "fy2567-sakaeo-outstanding-centers"
FOLLOW_UP_PROGRESS = {
    "2701": ["S1", "S2"],
    "2703": ["S1"],
    "2704": ["S1", "S2"],
    "2708": ["S1"],
}


def mark_follow_up_progress(session: Session, directive: Directive) -> int:
    """Mark the follow-up letter's early-August progress, each by the district's staff (another
    letter than the demo's follow-up gets none)."""
    from models.directive import find_item
    from models.user import get_by_username

    if directive.slug != FOLLOW_UP_SLUG:
        return 0
    count = 0
    for offset, (district_code, codes) in enumerate(FOLLOW_UP_PROGRESS.items()):
        staff = get_by_username(session, f"staff-{district_code}")
        for n, code in enumerate(codes):
            item = find_item(session, directive.id, district_code, code)
            at = FOLLOW_UP_AS_OF + timedelta(days=(offset + n) % 2, hours=n)
            mark_done(session, staff, item.id, now=at, note="ดำเนินการแล้ว (ข้อมูลสาธิต)")
            count += 1
    return count


# Two districts ahead of the rest have begun their report (activities held in early July).
DEMO_REPORTS = {
    "2701": [("2024-07-05", "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลท่าเกษม", "บ้านท่าเกษม ต.ท่าเกษม",
              "tree-planting", [6, 8, 12, 3, 2]),
             ("2024-07-12", "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลท่าเกษม", "บ้านหนองบัว ต.ท่าเกษม",
              "community-kitchen", [5, 7, 15, 4, 0])],
    "2704": [("2024-07-10", "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลวังน้ำเย็น", "บ้านวังน้ำเย็น ต.วังน้ำเย็น",
              "landscape", [4, 6, 9, 2, 1])],
}


def draft_demo_reports(session: Session, photos: PhotoStore, directive: Directive) -> int:
    """The directive's report drafts (as typed by each district's staff), a generated photo per
    session."""
    from domain.report import new_session_key
    from models.user import get_by_username
    from tidtam.app.reporting import add_photo, save_draft

    categories = ["center-committee", "volunteer-leaders", "community", "partners", "cd-officials"]
    for district_code, rows in DEMO_REPORTS.items():
        staff = get_by_username(session, f"staff-{district_code}")
        sessions = [{"key": new_session_key(), "held_on": held_on, "center": center, "place": place,
                     "kind": kind, "participants": dict(zip(categories, counts, strict=True))}
                    for held_on, center, place, kind, counts in rows]
        raw = {"sessions": sessions, "outcomes": ["ชุมชนมีส่วนร่วมทำความดีถวายในหลวง (ข้อมูลสาธิต)"]}
        save_draft(session, staff, district_code, raw, directive=directive, expected_version=0,
                   now=DEMO_AS_OF)
        for n, entry in enumerate(sessions):
            add_photo(session, staff, district_code, entry["key"], _demo_photo(n), f"IMG_{n + 1:04d}.jpg",
                      directive=directive, store=photos, now=DEMO_AS_OF)
    return len(DEMO_REPORTS)


def _demo_photo(n: int) -> bytes:
    """A plain landscape (sky, field, sun) standing in for a phone photo."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1200, 900), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 560, 1200, 900), fill=(70 + 30 * n, 150, 60))
    draw.ellipse((900 - 200 * n, 120, 1040 - 200 * n, 260), fill=(250, 210, 80))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()
