"""Upgrades with data, on SQLite and PostgreSQL (issue 16, item 5).

A database is built at every migration with the rows that release would hold, written with plain
SQL for that revision's schema (the models are at head: they cannot write old data), and upgraded
to head; every row must keep its meaning. The newest migration goes down and up again with data.
A migration interrupted half-way (by an error, or by a process killed in the middle) leaves the
database as it was, and the next run upgrades it; so does the next run on a database that an
earlier release left half-way.

A new migration is covered as it is added (the revisions are read from migrations/). It may need:
rows for its new tables or columns in ``dataset`` (gated with ``since``), and the documented
value of each column it adds for rows that existed before, in ``NEW_COLUMNS``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

from tests.conftest import make_database
from tidtam.infra import db
from tidtam.infra.paths import ROOT

REVISIONS = [script.revision for script in reversed(list(
    ScriptDirectory.from_config(db.alembic_config("sqlite://")).walk_revisions()))]
HEAD = REVISIONS[-1]
BACKENDS = ["sqlite", "postgresql"]


def since(at: str, revision: str) -> bool:
    """The database at ``at`` has what ``revision`` brought."""
    return REVISIONS.index(at) >= REVISIONS.index(revision)


# --- the rows a release at each migration holds ---------------------------------------------------

T0 = datetime(2024, 7, 12, 3, 0, tzinfo=UTC)  # 10:00 in Bangkok, the day the letters went out


def at(days: float, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$3kX1hV7r2i8V0Bx4o2yC6o1m4Xg2cA5r9T0qkK1yZ9E"
LINE_STAFF = "U4af4980629a0c21f3d8e0c0b1a2b3c4d"
WAIVE_REASON = "อำเภอบางคล้าไม่มีศูนย์ผู้นำจิตอาสาที่ต้องปรับปรุง"


def dataset(rev: str) -> dict[str, list[dict[str, Any]]]:
    """Tens of rows in every table the schema at ``rev`` has, in every status it allows.

    Values are Python's (dates, aware datetimes, dicts for JSON); ``insert`` writes them as the
    application did on each backend. Tables in an order that satisfies their foreign keys.
    """
    users = [
        _user(1, "coord-24", "นางสาวพรทิพย์ ใจดี", "coordinator", "24", None,
              email="coord24@cdd.go.th", line_user_id="U0c1d2e3f405162738495a6b7c8d9e0f1"),
        _user(2, "head-24", "นายสมชาย รักชาติ", "provincial_head", "24", None),
        _user(3, "staff-2401", "นายวีระ ขยัน", "district_staff", "24", "2401",
              line_user_id=LINE_STAFF),
        _user(4, "dhead-2401", "นางมาลี ศรีสุข", "district_head", "24", "2401",
              email="dhead2401@cdd.go.th"),
        _user(5, "staff-2402", "นายประเสริฐ มั่นคง", "district_staff", "24", "2402",
              is_active=False),
        _user(6, "coord-25", "นางสาวกมลา แก้วใส", "coordinator", "25", None,
              line_user_id="U99aa88bb77cc66dd55ee44ff33001122",
              line_route_error="LINE 400: The user hasn't added the LINE Official Account"),
        _user(7, "staff-2501", "นายอนันต์ ทองดี", "district_staff", "25", "2501",
              created_at=None),
    ]
    if since(rev, "0004"):
        users.append(_user(8, "department", "กรมการพัฒนาชุมชน", "department_viewer", None, None,
                           email="viewer@cdd.go.th"))
    directives = [
        _directive(1, "fy2567-volunteer-centers-24", "24", "ฉช 0019/ว 1234", at(-4).date(),
                   launched_at=T0, activity_start=date(2024, 7, 15), activity_end=date(2024, 8, 2),
                   department_due=date(2024, 8, 23)),
        _directive(2, "fy2567-flood-survey-25", "25", "ปจ 0019/ว 567", at(-1).date(),
                   launched_at=at(1, 2),
                   ladder=_renamed_ladder({"ladder": LADDER})["ladder"] if since(rev, "0012") else LADDER),
    ]
    steps = [
        _step(1, 1, 1, "G1", "guideline", date(2024, 7, 19)),
        _step(2, 1, 2, "A1", "activity", date(2024, 8, 2)),
        _step(3, 1, 3, "R1", "report", date(2024, 8, 9)),
        _step(4, 2, 1, "G1", "guideline", date(2024, 7, 22)),
        _step(5, 2, 2, "R1", "report", date(2024, 8, 16)),
    ]
    if since(rev, "0005"):
        directives += [
            _directive(3, "fy2567-national-volunteer-centers", None, "มท 0403.3/ว 2567",
                       at(-10).date(), launched_at=at(-10), department_due=date(2024, 8, 30)),
            _directive(4, "fy2567-national-volunteer-centers-25", "25", "มท 0403.3/ว 2567",
                       at(-10).date(), launched_at=at(0, 1), parent_id=3,
                       department_due=date(2024, 8, 30)),
        ]
        steps += [_step(6, 3, 1, "G1", "guideline", date(2024, 7, 26)),
                  _step(7, 4, 1, "G1", "guideline", date(2024, 7, 26)),
                  _step(8, 4, 2, "R1", "report", date(2024, 8, 16))]
    waived_here = since(rev, "0007")
    items = [
        _item(1, 1, 1, "2401", "done", date(2024, 7, 19), version=2, completed_by_id=3,
              completed_at=at(4, 1), note="ประชุมชี้แจงแล้ว 15 ก.ค. 67"),
        _item(2, 1, 2, "2402", "waived", date(2024, 8, 2), version=2,
              **({"waived_by_id": 1, "waived_at": at(5), "waiver_reason": WAIVE_REASON}
                 if waived_here else {})),
        _item(3, 1, 3, "2401", "done", date(2024, 8, 9), version=2, completed_by_id=3,
              completed_at=at(24, 5)),
        _item(4, 1, 1, "2402", "open", date(2024, 7, 19)),
        _item(5, 1, 2, "2401", "open", date(2024, 8, 2), version=3),
        _item(6, 1, 3, "2402", "open", date(2024, 8, 9)),
        _item(7, 2, 4, "2501", "done", date(2024, 7, 22), version=2, completed_by_id=7,
              completed_at=at(8, 2), note=None),
        _item(8, 2, 5, "2501", "open", date(2024, 8, 16)),
        # Waived before 0007 gave a waiver its columns (the value has been valid since 0001):
        # nobody is on record, at any revision.
        _item(9, 2, 4, "2502", "waived", date(2024, 7, 22), version=2),
        _item(10, 2, 5, "2502", "open", date(2024, 8, 16)),
    ]
    if since(rev, "0005"):
        items += [_item(11, 4, 7, "2501", "done", date(2024, 7, 26), version=2, completed_by_id=7,
                        completed_at=at(10)),
                  _item(12, 4, 8, "2501", "open", date(2024, 8, 16))]
    audit = [
        _audit(1, T0, None, "system:init", "directive.launch", "directive", 1,
               after={"slug": "fy2567-volunteer-centers-24", "items": 6}),
        _audit(2, at(0, 1), 1, "coord-24", "user.create", "user", 3,
               after={"username": "staff-2401", "role": "district_staff"}),
        _audit(3, at(4, 1), 3, "staff-2401", "item.done", "tracked_item", 1,
               before={"status": "open", "note": None, "version": 1},
               after={"status": "done", "note": "ประชุมชี้แจงแล้ว 15 ก.ค. 67", "version": 2}),
        _audit(4, at(8, 2), 7, "staff-2501", "item.done", "tracked_item", 7,
               before={"status": "open", "version": 1}, after={"status": "done", "version": 2}),
        _audit(5, at(20), 6, "coord-25", "user.deactivate", "user", 5,
               before={"is_active": True}, after={"is_active": False}),
    ]
    # The waiver's own entry (tidtam.app.tracking.waive): at 0007 and later, and one migration
    # below it, where a database that went down from 0007 has it.
    if since(rev, "0007") or REVISIONS.index(rev) == REVISIONS.index("0007") - 1:
        audit.append(_audit(6, at(5), 1, "coord-24", "item.waive", "tracked_item", 2,
                            before={"status": "open", "version": 1, "waived_by_id": None,
                                    "waived_at": None},
                            after={"status": "waived", "version": 2, "waived_by_id": 1,
                                   "waived_at": at(5).isoformat(), "reason": WAIVE_REASON,
                                   "cancelled_messages": 1}))
    if since(rev, "0004"):
        audit.append(_audit(7, at(1), None, "system:cli", "user.create", "user", 8,
                            after={"username": "department", "role": "department_viewer"}))
    due_day = "due-today" if since(rev, "0012") else "overdue"  # the due-day notice's rung
    outbox = [
        _outbox(1, "reminder:5:due-3:3", "line", LINE_STAFF, "queued", user_id=3, item_id=5,
                step_id=2, rung="due-3", district_code="2401"),
        _outbox(2, "reminder:5:due-3:4", "email", "dhead2401@cdd.go.th", "sending", user_id=4,
                item_id=5, step_id=2, rung="due-3", district_code="2401", attempts=1,
                lease_until=at(20, 1)),
        _outbox(3, "reminder:1:due-3:3", "line", LINE_STAFF, "sent", user_id=3, item_id=1,
                step_id=1, rung="due-3", district_code="2401", attempts=1, sent_at=at(4)),
        _outbox(4, "webhook:directive:1:launch", "webhook", "https://hook.sakaeo.example/tidtam",
                "failed", attempts=5, last_error="HTTP 502 Bad Gateway (5 attempts)"),
        _outbox(5, "reminder:2:due-3:5", "line", "", "cancelled", user_id=5, item_id=2,
                step_id=2, rung="due-3", district_code="2402",
                last_error="the item was waived"),
        _outbox(6, f"{due_day}|2024-08-09|item:4|user:5|email", "email", "", "not-sent-no-channel",
                user_id=5, item_id=4, step_id=1, rung=due_day, district_code="2402",
                last_error="staff-2402 has no email address"),
        _outbox(7, "digest:2024-07-22:1", "email", "coord24@cdd.go.th", "queued", user_id=1),
    ]
    data: dict[str, list[dict[str, Any]]] = {
        "province": [{"code": "24", "name_th": "ฉะเชิงเทรา", "name_en": "Chachoengsao"},
                     {"code": "25", "name_th": "ปราจีนบุรี", "name_en": "Prachin Buri"}],
        "district": [
            {"code": "2401", "province_code": "24", "name_th": "เมืองฉะเชิงเทรา",
             "name_en": "Mueang Chachoengsao"},
            {"code": "2402", "province_code": "24", "name_th": "บางคล้า", "name_en": "Bang Khla"},
            {"code": "2501", "province_code": "25", "name_th": "เมืองปราจีนบุรี",
             "name_en": "Mueang Prachin Buri"},
            {"code": "2502", "province_code": "25", "name_th": "กบินทร์บุรี",
             "name_en": "Kabin Buri"}],
        "user": users,
        "directive": directives,
        "directive_step": steps,
        "tracked_item": items,
        "audit_log": audit,
        "outbox": outbox,
    }
    if since(rev, "0002"):
        data["report"] = [
            _report(1, 1, "2401", "accepted", version=4, submitted=(at(22), 3),
                    reviewed=(at(24, 5), 1), accepted_at=at(24, 5)),
            _report(2, 1, "2402", "draft", version=2),
            _report(3, 2, "2501", "submitted", version=3, submitted=(at(25), 7)),
            _report(4, 2, "2502", "returned", version=5, submitted=(at(23), 7),
                    reviewed=(at(24), 6), comment="แนบรูปกิจกรรมวันที่ 2 เพิ่ม"),
        ]
        data["report_photo"] = [_photo(1, 1, 1), _photo(2, 1, 2), _photo(3, 4, 3)]
    if since(rev, "0003"):
        data["line_contact"] = [
            {"id": 1, "line_user_id": LINE_STAFF, "followed_at": at(2), "unfollowed_at": None},
            {"id": 2, "line_user_id": "U1234567890abcdef1234567890abcdef", "followed_at": at(2),
             "unfollowed_at": at(9, 3)}]
        data["line_webhook_event"] = [
            {"id": 1, "webhook_event_id": "01J2Z8Q7W4R5T6Y7U8I9O0P1A2", "event_type": "follow",
             "received_at": at(2)},
            {"id": 2, "webhook_event_id": "01J2Z9B3C4D5E6F7G8H9J0K1L2", "event_type": "message",
             "received_at": at(2, 1)}]
        data["line_group"] = [
            {"id": 1, "group_id": "C4af4980629a0c21f3d8e0c0b1a2b3c4d", "district_code": "2401",
             "joined_at": at(3), "left_at": None, "bound_by_id": 1, "bound_at": at(3, 1)},
            {"id": 2, "group_id": "Cffeeddccbbaa99887766554433221100", "district_code": None,
             "joined_at": at(3), "left_at": at(6), "bound_by_id": None, "bound_at": None}]
        data["line_link_code"] = [
            {"id": 1, "code": "K7P2M9QX", "purpose": "user", "user_id": 3, "district_code": None,
             "created_by_id": 1, "created_at": at(2), "expires_at": at(3), "used_at": at(2, 1),
             "used_by": LINE_STAFF},
            {"id": 2, "code": "G4T8W2ZR", "purpose": "group", "user_id": None,
             "district_code": "2402", "created_by_id": 1, "created_at": at(3),
             "expires_at": at(4), "used_at": None, "used_by": None}]
        data["outbox"].append(_outbox(8, "reminder:4:overdue:group-2401", "line",
                                      "C4af4980629a0c21f3d8e0c0b1a2b3c4d", "sent",
                                      district_code="2401", item_id=4, step_id=1, rung=due_day,
                                      attempts=2, sent_at=at(7)))
    if since(rev, "0005"):
        data["provincial_report"] = [{
            "id": 1, "directive_id": 4, "province_code": "25",
            "summary": {"districts": {"2501": {"participants": 42}}, "total_participants": 42},
            "districts_expected": 2, "districts_accepted": 1, "version": 2,
            "first_submitted_at": at(27), "submitted_at": at(29), "submitted_by_id": 6,
            "note": "อำเภอกบินทร์บุรียังไม่ส่ง"}]
    if since(rev, "0008"):
        # Claims are counted apart from tries: the row being sent has claimed once and not yet
        # written the try's result (what 0008 makes of the same row written before it).
        for row in data["outbox"]:
            sending = row["status"] == "sending"
            row["claims"] = row["attempts"]
            row["attempts"] -= 1 if sending and row["attempts"] > 0 else 0
    if since(rev, "0011"):  # sessions and tokens that end, failed sign-ins, reset links
        data["login_session"] = [
            {"id": 1, "key_hash": "a" * 64, "user_id": 1, "kind": "web", "created_at": at(2),
             "last_seen_at": at(2), "ended_at": None, "end_reason": None, "client": "Firefox"},
            {"id": 2, "key_hash": "b" * 64, "user_id": 3, "kind": "api", "created_at": at(2),
             "last_seen_at": at(2), "ended_at": at(2, 3), "end_reason": "password changed",
             "client": None}]
        data["sign_in_failure"] = [
            {"id": 1, "username": "coord-24", "address": "203.0.113.7", "at": at(2)},
            {"id": 2, "username": "nobody", "address": "2001:db8::1", "at": at(2, 1)}]
        data["password_reset"] = [
            {"id": 1, "key_hash": "c" * 64, "user_id": 3, "created_by": "coord-24",
             "created_at": at(3), "expires_at": at(3, 1), "used_at": None},
            {"id": 2, "key_hash": "d" * 64, "user_id": 8, "created_by": "department",
             "created_at": at(4), "expires_at": at(4, 1), "used_at": at(4, 0.5)}]
    if since(rev, "0015"):  # claims on a recipient's one message of a day: sent, and held
        data["outbox_delivery"] = [
            {"id": 1, "delivery_key": f"daily|2024-07-16|line|{LINE_STAFF}", "holder": None,
             "lease_until": None, "sent_at": at(4)},
            {"id": 2, "delivery_key": "daily|2024-07-17|email|dhead2401@cdd.go.th",
             "holder": "e" * 32, "lease_until": at(5, 0.1), "sent_at": None}]
    if since(rev, "0016"):  # calendar feeds: a person's, and a district's revoked
        data["calendar_feed"] = [
            {"id": 1, "key_hash": "e" * 64, "user_id": 3, "scope": "person", "district_code": None,
             "created_at": at(5), "revoked_at": None},
            {"id": 2, "key_hash": "f" * 64, "user_id": 1, "scope": "district",
             "district_code": "2501", "created_at": at(5), "revoked_at": at(6)}]
    return data


def _user(id, username, full_name, role, province, district, *, email=None, line_user_id=None,
          is_active=True, line_route_error=None, created_at=T0) -> dict:
    return {"id": id, "username": username, "full_name": full_name, "role": role,
            "province_code": province, "district_code": district, "email": email,
            "line_user_id": line_user_id, "password_hash": HASH, "is_active": is_active,
            "line_route_error": line_route_error, "created_at": created_at}


# A ladder as the YAML wrote it before 0012: the due-day notice coded ``overdue``, no ``late``.
LADDER = {"renotify_every": 2, "rungs": [
    {"code": "reminder-1", "offset": -1, "audience": ["district_staff"], "channels": ["email"]},
    {"code": "overdue", "offset": 0, "audience": ["district_staff", "district_head"],
     "channels": ["line", "email"]},
    {"code": "provincial-head", "offset": 5, "audience": ["provincial_head"], "channels": ["email"],
     "grouped": True}]}


def _directive(id, slug, province, reference_no, issued_on, *, launched_at, parent_id=None,
               activity_start=None, activity_end=None, department_due=None, ladder=None) -> dict:
    row = {"id": id, "slug": slug, "province_code": province, "reference_no": reference_no,
           "title_th": f"การดำเนินงาน {slug}", "title_en": f"Carrying out {slug}",
           "issuer_th": "สำนักงานพัฒนาชุมชนจังหวัด", "issuer_en": "Provincial Community Development Office",
           "issued_on": issued_on, "fiscal_year": 2567, "activity_start": activity_start,
           "activity_end": activity_end, "province_due": date(2024, 8, 9),
           "department_due": department_due, "launched_at": launched_at,
           "definition": {"slug": slug, "steps": [{"code": "G1", "kind": "guideline"}],
                          "ladder": ladder or [{"rung": "due-3", "days": -3}],
                          "form": {"fields": [{"name": "participants", "label_th": "ผู้เข้าร่วม"}]}}}
    if parent_id is not None:
        row["parent_id"] = parent_id
    return row


def _step(id, directive_id, order, code, kind, due_on) -> dict:
    return {"id": id, "directive_id": directive_id, "order": order, "code": code, "kind": kind,
            "title_th": f"ขั้นตอน {code}", "title_en": f"Step {code}", "due_on": due_on}


def _item(id, directive_id, step_id, district, status, due_on, *, version=1, completed_by_id=None,
          completed_at=None, note=None, **waiver) -> dict:
    return {"id": id, "directive_id": directive_id, "step_id": step_id, "district_code": district,
            "status": status, "due_on": due_on, "completed_by_id": completed_by_id,
            "completed_at": completed_at, "note": note, "version": version, **waiver}


def _audit(id, when, actor_id, actor, action, entity, entity_id, *, before=None, after=None):
    return {"id": id, "at": when, "actor_id": actor_id, "actor": actor, "action": action,
            "entity": entity, "entity_id": str(entity_id), "before": before, "after": after}


def _outbox(id, key, channel, recipient, status, *, user_id=None, district_code=None,
            item_id=None, step_id=None, rung=None, attempts=0, lease_until=None, last_error=None,
            sent_at=None) -> dict:
    return {"id": id, "idempotency_key": key, "channel": channel, "recipient": recipient,
            "user_id": user_id, "district_code": district_code, "item_id": item_id,
            "step_id": step_id, "rung": rung, "subject": "แจ้งเตือน: ใกล้ครบกำหนด",
            "body": "กรุณาดำเนินการให้แล้วเสร็จภายในกำหนด", "status": status, "attempts": attempts,
            "next_try_at": at(17, 2), "lease_until": lease_until, "last_error": last_error,
            "created_at": at(17), "sent_at": sent_at}


def _report(id, directive_id, district, status, *, version, submitted=None, reviewed=None,
            comment=None, accepted_at=None) -> dict:
    return {"id": id, "directive_id": directive_id, "district_code": district, "status": status,
            "content": {"participants": 30 + id, "tambons": ["บางพระ", "หน้าเมือง"],
                        "summary": "จัดกิจกรรมครบตามแผน"},
            "version": version, "created_at": at(15), "updated_at": at(21, id),
            "updated_by_id": 3 if directive_id == 1 else 7,
            "submitted_at": submitted and submitted[0], "submitted_by_id": submitted and submitted[1],
            "reviewed_at": reviewed and reviewed[0], "reviewed_by_id": reviewed and reviewed[1],
            "review_comment": comment, "accepted_at": accepted_at}


def _photo(id, report_id, n) -> dict:
    return {"id": id, "report_id": report_id, "session_key": f"5b7e1c2a-9d3f-4e8b-a1c0-00000000000{n}",
            "stored_name": f"{id:04d}-3f9a2b7c.jpg", "display_name": f"{id:04d}-3f9a2b7c-display.jpg",
            "thumb_name": f"{id:04d}-3f9a2b7c-thumb.jpg",
            "original_filename": f"กิจกรรม_{n}.jpg", "content_type": "image/jpeg",
            "size_bytes": 183_204 + id, "width": 1600, "height": 1200,
            "sha256": f"{id:02d}" + "ab" * 31, "uploaded_at": at(21, id), "uploaded_by_id": 3}


# --- writing and reading rows with plain SQL ---------------------------------------------------------

def stored(value: Any, dialect: str) -> Any:
    """A value as the application stored it on this backend (models.types, SQLAlchemy's types)."""
    if isinstance(value, datetime):
        if dialect == "sqlite":  # UTCDateTime: naive UTC, in SQLAlchemy's SQLite DATETIME format
            return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value
    if isinstance(value, date):
        return value.isoformat() if dialect == "sqlite" else value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def insert(connection: Connection, data: dict[str, list[dict[str, Any]]]) -> None:
    dialect = connection.dialect.name
    for table, rows in data.items():
        for row in rows:
            columns = ", ".join(f'"{name}"' for name in row)
            values = ", ".join(
                f"CAST(:{name} AS JSON)" if dialect == "postgresql" and isinstance(value, dict | list)
                else f":{name}" for name, value in row.items())
            connection.execute(text(f'INSERT INTO "{table}" ({columns}) VALUES ({values})'),
                               {name: stored(value, dialect) for name, value in row.items()})
        if dialect == "postgresql" and "id" in rows[0]:  # as if the rows had been inserted one by one
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                    f'(SELECT max(id) FROM "{table}"))'))


def snapshot(connection: Connection) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every table, as stored, by primary key."""
    inspector = inspect(connection)
    tables = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        (key,) = inspector.get_pk_constraint(table)["constrained_columns"]
        rows = connection.execute(text(f'SELECT * FROM "{table}"')).mappings()
        tables[table] = {row[key]: dict(row) for row in rows}
    return tables


def leftovers(connection: Connection) -> list[str]:
    return [t for t in inspect(connection).get_table_names() if t.startswith("_alembic_tmp_")]


def broken_references(connection: Connection) -> list:
    if connection.dialect.name != "sqlite":
        return []  # PostgreSQL checks every foreign key on every write, migrations included
    return connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()


def schema_drift(connection: Connection) -> list:
    return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                            SQLModel.metadata)


def version(connection: Connection) -> str:
    return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _latest_waiver(column: str) -> Callable[[dict, dict], Any]:
    """From the item's latest item.waive audit entry, if any (migration 0007)."""
    def value(row: dict, data: dict) -> Any:
        entries = [e for e in data["audit_log"] if e["action"] == "item.waive"
                   and e["entity_id"] == str(row["id"]) and row["status"] == "waived"]
        if not entries:
            return None
        entry = max(entries, key=lambda e: e["id"])
        return {"waived_by_id": entry["actor_id"], "waived_at": entry["at"],
                "waiver_reason": entry["after"]["reason"]}[column]
    return value


# The migrations whose batch operations rebuild a table on SQLite (copy, DROP, rename); 0008
# only adds a column, which SQLite does in place; 0010 adds foreign keys to outbox (a rebuild).
REBUILDING = ("0004", "0005", "0007", "0010")

# What a column a migration adds holds for the rows that existed before it (the migration's
# documented default). A new column missing here fails the upgrade test: document it.
NEW_COLUMNS: dict[tuple[str, str], Callable[[dict, dict], Any]] = {
    ("directive", "parent_id"): lambda row, data: None,  # 0005: every earlier one is a province's
    ("tracked_item", "waived_by_id"): _latest_waiver("waived_by_id"),  # 0007
    ("tracked_item", "waived_at"): _latest_waiver("waived_at"),
    ("tracked_item", "waiver_reason"): _latest_waiver("waiver_reason"),
    # 0008: every claim so far spent an attempt, so the claims made are the attempts counted.
    ("outbox", "claims"): lambda row, data: row["attempts"],
    # 0009: every directive was launched when stored, but a province's with no item never was.
    ("directive", "status"): lambda row, data: (
        "loaded" if row["province_code"] is not None
        and not any(item["directive_id"] == row["id"] for item in data["tracked_item"])
        else "active"),
    ("directive", "closed_at"): lambda row, data: None,
    ("directive", "closed_by"): lambda row, data: None,
    ("directive", "close_reason"): lambda row, data: None,
    ("directive", "revision"): lambda row, data: _definition(row).get("revision") or 1,
    # 0010: every earlier row is about an item, a step or nothing; no event, no review nudge.
    ("outbox", "directive_id"): lambda row, data: None,
    ("outbox", "report_id"): lambda row, data: None,
    # 0013: every earlier row was sent on its own, in no grouped delivery.
    ("outbox", "delivery_key"): lambda row, data: None,
    # 0014: every step done so far was done by hand or by the report step, none from a report.
    ("tracked_item", "evidence"): lambda row, data: None,
}


def _definition(row: dict) -> dict:
    definition = row["definition"]
    return json.loads(definition) if isinstance(definition, str) else (definition or {})

# What a migration rewrites in a column older rows already had: (the migration, the documented
# value). 0008: a row still ``sending`` gets back the attempt its claim took (counted again when
# its result is written).
CHANGED_COLUMNS: dict[tuple[str, str], tuple[str, Callable[[dict, dict], Any]]] = {
    ("outbox", "attempts"): ("0008", lambda row, data: row["attempts"] - 1
                             if row["status"] == "sending" and row["attempts"] > 0
                             else row["attempts"]),
    # 0012: the due-day notice's rung is named by meaning, in the column and in the key.
    ("outbox", "rung"): ("0012", lambda row, data: "due-today" if row["rung"] == "overdue"
                         else row["rung"]),
    ("outbox", "idempotency_key"): ("0012", lambda row, data: _renamed_key(row["idempotency_key"])),
    ("directive", "definition"): ("0012", lambda row, data: _renamed_ladder(row["definition"])),
}


def _renamed_key(key: str) -> str:
    return "due-today" + key.removeprefix("overdue") if key.startswith("overdue|") else key


def _renamed_ladder(definition: Any) -> Any:
    """0012: a stored ladder's ``overdue`` rung is ``due-today``; the default ``late`` is written
    out where there was none. Other shapes (this dataset's lists) are kept."""
    if isinstance(definition, str):  # as SQLite stores it: JSON text, written by json.dumps
        return json.dumps(_renamed_ladder(json.loads(definition)))
    ladder = definition.get("ladder") if isinstance(definition, dict) else None
    if not isinstance(ladder, dict) or not isinstance(ladder.get("rungs"), list):
        return definition
    rungs = [r | {"code": "due-today"} if r.get("code") == "overdue" else r for r in ladder["rungs"]]
    late = ladder.get("late", {"every": 2, "up_to": 5, "audience": ["district_staff", "district_head"],
                               "channels": ["line", "email"]})
    return definition | {"ladder": ladder | {"rungs": rungs, "late": late}}


def expected_value(table: str, column: str, row: dict, data: dict, start: str) -> Any:
    """What ``column`` of an older row holds at head: as written, unless a migration after
    ``start`` documents a rewrite of it."""
    changed = CHANGED_COLUMNS.get((table, column))
    if changed is not None and start < changed[0]:
        return changed[1](row, data)
    return row[column]


def models_by_table() -> dict[str, type]:
    return {mapper.class_.__tablename__: mapper.class_
            for mapper in SQLModel._sa_registry.mappers if hasattr(mapper.class_, "__tablename__")}


@pytest.fixture
def new_database(request, tmp_path_factory) -> Iterator[tuple[str, Engine]]:
    """An empty database of the kind the test's ``backend`` parameter names."""
    url, drop = make_database(request.node.callspec.params["backend"], tmp_path_factory)
    engine = db.engine_for(url)
    yield url, engine
    engine.dispose()
    db.engine_for.cache_clear()
    drop()


class _ForeignKeysSeen:
    """PRAGMA foreign_keys on the migration's own connection, whenever it drops a table."""

    def __init__(self) -> None:
        self.at_drops: list[int] = []

    def __call__(self, _connection, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("DROP TABLE"):
            self.at_drops.append(cursor.connection.execute("PRAGMA foreign_keys").fetchone()[0])


# --- the tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("start", REVISIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_at_every_migration_upgrades_to_head_with_every_row_kept(new_database, backend,
                                                                            start):
    url, engine = new_database
    command.upgrade(db.alembic_config(url), start)
    data = dataset(start)
    with engine.begin() as connection:
        insert(connection, data)
    with engine.connect() as connection:
        assert broken_references(connection) == []  # the dataset itself is whole
        before = snapshot(connection)
    assert sorted(before) == sorted(data) and all(len(before[t]) == len(data[t]) for t in data)

    seen = _ForeignKeysSeen()
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        command.upgrade(db.alembic_config(url), "head")
    finally:
        event.remove(Engine, "before_cursor_execute", seen)

    with engine.connect() as connection:
        assert version(connection) == HEAD
        after = snapshot(connection)
        assert leftovers(connection) == [] and broken_references(connection) == []
        assert schema_drift(connection) == []
        if backend == "sqlite":
            # Batch mode rebuilt tables other rows point at (0004 user, 0005 directive, 0007
            # tracked_item) with enforcement off on the migration's connection; the app's are on.
            rebuilds = any(start < revision for revision in REBUILDING)
            assert (bool(seen.at_drops) and set(seen.at_drops) == {0}) == rebuilds
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

    added_since: dict[str, list[str]] = {}
    for table, rows in before.items():
        assert after[table].keys() == rows.keys(), f"{table}: rows lost or added"
        added = sorted(set(next(iter(after[table].values()))) - set(next(iter(rows.values()))))
        added_since[table] = added
        for column in added:
            assert (table, column) in NEW_COLUMNS, (
                f"{table}.{column} is new since {start}: add its documented value for older rows "
                "to NEW_COLUMNS")
        written = {row.get("id", row.get("code")): row for row in data[table]}
        for key, row in rows.items():
            kept = {column: after[table][key][column] for column in row}
            meant = {column: expected_value(table, column, row, data, start) for column in row}
            assert kept == meant, f"{table} {key} changed"
            for column in added:
                expected = NEW_COLUMNS[table, column](written[key], data)
                assert after[table][key][column] == stored(expected, backend), (table, key, column)
    for table in set(after) - set(before):
        assert after[table] == {}, f"{table}, new since {start}, should start empty"

    # The application at head reads every row with the meaning it was written with.
    classes = models_by_table()
    with Session(engine) as session:
        for table, rows in data.items():
            for row in rows:
                model = session.get(classes[table], row.get("id", row.get("code")))
                for column in row:
                    assert getattr(model, column) == expected_value(table, column, row, data,
                                                                    start), (table, row, column)
                for (new_table, column), documented in NEW_COLUMNS.items():
                    if new_table == table and column in added_since[table]:
                        assert getattr(model, column) == documented(row, data), (table, column)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_newest_migration_goes_down_and_up_again_with_data(new_database, backend):
    """head → head-1 → head on a database with data (plain rows in every table, and rows the
    application writes: a launched directive, its accounts, a waiver, outbox rows pointing at
    items, which a rebuild of tracked_item on SQLite must not break). No row changes, but for
    the Prefect events (0010's channel), which the code before 0010 cannot read: a downgrade
    below 0010 deletes them, and nothing else. 0012 leaves every row as it was (the launched
    directive's ladder is the default, written out in its YAML).
    0011's sign-in records (sessions, failed sign-ins, reset links), 0015's delivery claims and
    0016's calendar addresses are dropped with their tables when the newest step down crosses
    them."""
    from models.directive import find_item
    from models.outbox import Channel, OutboxMessage, enqueue
    from models.user import get_by_username
    from tests.conftest import NOW
    from tidtam.app.orgtree import load_provinces
    from tidtam.app.tracking import launch_directive, waive
    from tidtam.demo.province import create_demo_accounts
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

    url, engine = new_database
    db.migrate(url)
    with engine.begin() as connection:
        insert(connection, dataset(HEAD))
    with Session(engine) as session:
        load_provinces(session, ["27"])
        directive = launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=NOW).directive
        create_demo_accounts(session, NOW)
        coordinator = get_by_username(session, "coordinator")
        g3, g4 = (find_item(session, directive.id, "2703", step) for step in ("G3", "G4"))
        enqueue(session, OutboxMessage(idempotency_key="about-g4", channel=Channel.LINE,
                                       recipient="U0123456789abcdef0123456789abcdef",
                                       item_id=g4.id, step_id=g4.step_id, subject="s", body="b",
                                       next_try_at=NOW, created_at=NOW))
        waive(session, coordinator, g3.id, reason=WAIVE_REASON, now=NOW)
        session.commit()
    with engine.connect() as connection:
        before = snapshot(connection)
    assert any(row["waiver_reason"] for row in before["tracked_item"].values())
    events = {key for key, row in before["outbox"].items() if row["channel"] == "prefect-event"}
    assert len(events) == 2  # the launch and the waiver
    if REVISIONS[-2] < "0010":  # going below 0010 deletes them; a later newest one keeps them
        for key in events:
            del before["outbox"][key]
    # 0011's downgrade drops the sign-in records (everyone signs in again): nothing else changes
    for table in ("login_session", "sign_in_failure", "password_reset"):
        assert before[table]
        if REVISIONS[-2] < "0011":
            before[table] = {}
    # 0015's downgrade drops the delivery claims (rows sent today are still known by their rows)
    assert before["outbox_delivery"]
    if REVISIONS[-2] < "0015":
        before["outbox_delivery"] = {}
    # 0016's downgrade drops the calendar addresses (people make new ones): nothing else changes
    assert before["calendar_feed"]
    if REVISIONS[-2] < "0016":
        before["calendar_feed"] = {}

    command.downgrade(db.alembic_config(url), REVISIONS[-2])
    with engine.connect() as connection:
        assert version(connection) == REVISIONS[-2]
        assert leftovers(connection) == [] and broken_references(connection) == []
    command.upgrade(db.alembic_config(url), "head")

    with engine.connect() as connection:
        assert version(connection) == HEAD
        assert snapshot(connection) == before
        assert leftovers(connection) == [] and broken_references(connection) == []
        assert schema_drift(connection) == []
        if backend == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


class Interrupted(Exception):
    pass


# Where a migration is stopped: in the middle of 0005 (on SQLite after its batch copy of directive
# replaced the table and before the copy takes its name; on PostgreSQL before the new foreign
# key), and at its very last statement, the revision's bump.
STOPS = {
    ("sqlite", "mid-migration"): "ALTER TABLE _alembic_tmp_directive RENAME TO directive",
    ("postgresql", "mid-migration"): "ALTER TABLE directive ADD CONSTRAINT fk_directive_parent_id",
    ("sqlite", "revision bump"): "UPDATE alembic_version SET version_num='0005'",
    ("postgresql", "revision bump"): "UPDATE alembic_version SET version_num='0005'",
}


@pytest.mark.parametrize("stop", ["mid-migration", "revision bump"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_migration_interrupted_half_way_leaves_nothing_and_runs_again(new_database, backend, stop):
    url, engine = new_database
    command.upgrade(db.alembic_config(url), "0004")
    with engine.begin() as connection:
        insert(connection, dataset("0004"))
    with engine.connect() as connection:
        before, tables = snapshot(connection), sorted(inspect(connection).get_table_names())
    statement = STOPS[backend, stop]
    reached = []

    def interrupt(_connection, _cursor, sql, *_args) -> None:
        if sql.lstrip().startswith(statement):
            reached.append(sql)
            raise Interrupted(sql)

    event.listen(Engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(Interrupted):
            command.upgrade(db.alembic_config(url), "head")
    finally:
        event.remove(Engine, "before_cursor_execute", interrupt)
    assert reached

    with engine.connect() as connection:
        assert version(connection) == "0004"
        assert sorted(inspect(connection).get_table_names()) == tables  # no provincial_report
        assert snapshot(connection) == before
        if backend == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    command.upgrade(db.alembic_config(url), "head")
    with engine.connect() as connection:
        assert version(connection) == HEAD and leftovers(connection) == []
        assert schema_drift(connection) == [] and broken_references(connection) == []
        assert {t: snapshot(connection)[t].keys() for t in before} == {
            t: rows.keys() for t, rows in before.items()}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_process_killed_in_the_middle_of_a_migration_leaves_nothing(new_database, backend):
    """kill -9 (no rollback, no clean-up) right after SQLite's batch mode dropped the old table:
    the next open finds the database as it was, and the upgrade runs."""
    url, engine = new_database
    command.upgrade(db.alembic_config(url), "0004")
    with engine.begin() as connection:
        insert(connection, dataset("0004"))
    with engine.connect() as connection:
        before = snapshot(connection)
    engine.dispose()
    script = textwrap.dedent(f"""
        import os, signal
        from alembic import command
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from tidtam.infra import db

        def die(_connection, _cursor, sql, *_args):
            if sql.lstrip().startswith({STOPS["sqlite", "mid-migration"]!r}):
                os.kill(os.getpid(), signal.SIGKILL)

        event.listen(Engine, "before_cursor_execute", die)
        command.upgrade(db.alembic_config({url!r}), "head")
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with engine.connect() as connection:
        assert version(connection) == "0004" and leftovers(connection) == []
        assert "provincial_report" not in inspect(connection).get_table_names()
        assert snapshot(connection) == before
    command.upgrade(db.alembic_config(url), "head")
    with engine.connect() as connection:
        assert version(connection) == HEAD and schema_drift(connection) == []


# What a release before the transactional migrations left on SQLite when 0005 failed on a database
# with data (FOREIGN KEY constraint failed [SQL: DROP TABLE directive]): its DDL up to the failure
# had been committed statement by statement. Copied from such a database (sqlite_master).
LEFT_BY_0005 = [
    """CREATE TABLE provincial_report (
        id INTEGER NOT NULL, directive_id INTEGER NOT NULL, province_code VARCHAR(2) NOT NULL,
        summary JSON NOT NULL, districts_expected INTEGER NOT NULL,
        districts_accepted INTEGER NOT NULL, version INTEGER NOT NULL,
        first_submitted_at DATETIME NOT NULL, submitted_at DATETIME NOT NULL,
        submitted_by_id INTEGER, note VARCHAR, PRIMARY KEY (id),
        FOREIGN KEY(directive_id) REFERENCES directive (id),
        FOREIGN KEY(province_code) REFERENCES province (code),
        FOREIGN KEY(submitted_by_id) REFERENCES user (id), UNIQUE (directive_id))""",
    "CREATE INDEX ix_provincial_report_province_code ON provincial_report (province_code)",
    """CREATE TABLE _alembic_tmp_directive (
        id INTEGER NOT NULL, slug VARCHAR(120) NOT NULL, province_code VARCHAR(2),
        reference_no VARCHAR NOT NULL, title_th VARCHAR NOT NULL, title_en VARCHAR NOT NULL,
        issuer_th VARCHAR NOT NULL, issuer_en VARCHAR NOT NULL, issued_on DATE NOT NULL,
        fiscal_year INTEGER NOT NULL, activity_start DATE, activity_end DATE,
        province_due DATE NOT NULL, department_due DATE, definition JSON NOT NULL,
        launched_at DATETIME, parent_id INTEGER, PRIMARY KEY (id),
        CONSTRAINT fk_directive_parent_id_directive FOREIGN KEY(parent_id) REFERENCES directive (id),
        FOREIGN KEY(province_code) REFERENCES province (code))""",
]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_database_an_earlier_release_left_half_way_upgrades(new_database, backend):
    url, engine = new_database
    command.upgrade(db.alembic_config(url), "0004")
    with engine.begin() as connection:
        insert(connection, dataset("0004"))
        before = snapshot(connection)
        for statement in LEFT_BY_0005:
            connection.exec_driver_sql(statement)
    command.upgrade(db.alembic_config(url), "head")
    with engine.connect() as connection:
        assert version(connection) == HEAD and leftovers(connection) == []
        assert schema_drift(connection) == [] and broken_references(connection) == []
        after = snapshot(connection)
    assert {t: after[t].keys() for t in before} == {t: rows.keys() for t, rows in before.items()}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_leftovers_that_hold_rows_are_refused_not_dropped(new_database, backend):
    url, engine = new_database
    command.upgrade(db.alembic_config(url), "0004")
    with engine.begin() as connection:
        insert(connection, dataset("0004"))
        for statement in LEFT_BY_0005:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql(
            "INSERT INTO provincial_report VALUES (1, 1, '24', '{}', 2, 1, 1, "
            "'2024-08-09 03:00:00.000000', '2024-08-09 03:00:00.000000', 1, NULL)")
    with pytest.raises(RuntimeError, match="holds rows in provincial_report"):
        command.upgrade(db.alembic_config(url), "head")
    with engine.connect() as connection:
        assert version(connection) == "0004"
        assert connection.exec_driver_sql("SELECT count(*) FROM provincial_report").scalar() == 1
        assert leftovers(connection) == ["_alembic_tmp_directive"]  # the refusal changed nothing
