"""The activity report (แบบรายงาน) of one district for one directive, and its photos."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, UniqueConstraint, delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.types import UTCDateTime, enum_column
from models.versioned import versioned_update


class ReportStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    ACCEPTED = "accepted"


EDITABLE = (ReportStatus.DRAFT, ReportStatus.RETURNED)


class Report(SQLModel, table=True):
    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("directive_id", "district_code"),)

    id: int | None = Field(default=None, primary_key=True)
    directive_id: int = Field(foreign_key="directive.id")  # the unique key below indexes it
    district_code: str = Field(foreign_key="district.code", max_length=4)
    status: ReportStatus = Field(default=ReportStatus.DRAFT, sa_column=enum_column(ReportStatus))
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False),
                                    description="the draft as typed (normalised), never lost")
    version: int = Field(default=1, description="bumped on every change; stale writes refused")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    submitted_by_id: int | None = Field(default=None, foreign_key="user.id")
    reviewed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    reviewed_by_id: int | None = Field(default=None, foreign_key="user.id")
    review_comment: str | None = Field(default=None,
                                       description="the latest return or reopen comment")
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ReportPhoto(SQLModel, table=True):
    __tablename__ = "report_photo"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    session_key: str = Field(max_length=36, description="the activity session it shows")
    stored_name: str = Field(unique=True, max_length=80,
                             description="the original's file name, chosen by the system")
    display_name: str = Field(max_length=80)
    thumb_name: str = Field(max_length=80)
    original_filename: str = Field(max_length=255, description="sanitised; for display only")
    content_type: str = Field(max_length=64)
    size_bytes: int
    width: int
    height: int
    sha256: str = Field(max_length=64)
    uploaded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    uploaded_by_id: int | None = Field(default=None, foreign_key="user.id")


def get_report(session: Session, directive_id: int, district_code: str) -> Report | None:
    return session.exec(select(Report).where(
        Report.directive_id == directive_id, Report.district_code == district_code)).first()


def reports_of(session: Session, directive_id: int) -> list[Report]:
    return list(session.exec(select(Report).where(Report.directive_id == directive_id)
                             .order_by(Report.district_code)))


def photos_of(session: Session, report_id: int) -> list[ReportPhoto]:
    return list(session.exec(select(ReportPhoto).where(ReportPhoto.report_id == report_id)
                             .order_by(ReportPhoto.id)))


def photo_counts(session: Session, report_id: int) -> dict[str, int]:
    """Photos per activity session key, for the "a photo per kind" rule."""
    rows = session.exec(select(ReportPhoto.session_key, func.count())
                        .where(ReportPhoto.report_id == report_id)
                        .group_by(ReportPhoto.session_key))
    return {key: count for key, count in rows}


def delete_photo(session: Session, photo_id: int) -> bool:
    """Remove a photo's row; False when it was already gone (a concurrent removal won)."""
    result = session.execute(delete(ReportPhoto).where(col(ReportPhoto.id) == photo_id)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def insert_report(session: Session, report: Report) -> Report | None:
    """Insert the first report of a district; None when another writer's is already there.

    ``ON CONFLICT DO NOTHING`` on the unique key (SQLite and PostgreSQL) rather than catching
    an IntegrityError inside a savepoint: pysqlite commits an outermost SAVEPOINT on release,
    and a failed flush would leave the caller's session unusable.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = {name: getattr(report, name) for name in Report.model_fields if name != "id"}
    new_id = session.execute(insert(Report).values(**values).on_conflict_do_nothing(
        index_elements=["directive_id", "district_code"]).returning(Report.id)).scalar()
    return None if new_id is None else session.get(Report, new_id)


def update_report(session: Session, report_id: int, *, expected_version: int | None = None,
                  statuses: Iterable[ReportStatus] | None = None, **values: Any) -> Report | None:
    """Change a report and bump its version in one conditional UPDATE (this version, one of
    these statuses; ``models.versioned``); the session's copy of the report, updated, or None
    if it matched no row."""
    return versioned_update(session, Report, report_id, expected_version=expected_version,
                            statuses=statuses, **values)


class ProvincialReport(SQLModel, table=True):
    """A province's compiled report, submitted to the Department: a snapshot of its totals.

    One per province's copy of a directive. ``first_submitted_at`` decides "on time" against the
    directive's ``department_due``; a resubmission replaces the snapshot and keeps that date.
    """

    __tablename__ = "provincial_report"

    id: int | None = Field(default=None, primary_key=True)
    directive_id: int = Field(foreign_key="directive.id", unique=True)
    province_code: str = Field(foreign_key="province.code", max_length=2, index=True)
    summary: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False),
                                    description="the compilation as submitted (totals, districts)")
    districts_expected: int
    districts_accepted: int
    version: int = Field(default=1, description="bumped on every resubmission")
    first_submitted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    submitted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    submitted_by_id: int | None = Field(default=None, foreign_key="user.id")
    note: str | None = None


def insert_provincial_report(session: Session, report: ProvincialReport) -> ProvincialReport | None:
    """Insert a province's first report to the Department; None when a concurrent first
    submission's row is already there (``ON CONFLICT DO NOTHING`` on the directive)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = {name: getattr(report, name) for name in ProvincialReport.model_fields if name != "id"}
    new_id = session.execute(insert(ProvincialReport).values(**values).on_conflict_do_nothing(
        index_elements=["directive_id"]).returning(ProvincialReport.id)).scalar()
    return None if new_id is None else session.get(ProvincialReport, new_id)


def update_provincial_report(session: Session, report_id: int, *, expected_version: int,
                             **values: Any) -> ProvincialReport | None:
    """A resubmission in one conditional UPDATE (version bumped); None if another submission
    changed it first."""
    return versioned_update(session, ProvincialReport, report_id,
                            expected_version=expected_version, **values)


def get_provincial_report(session: Session, directive_id: int) -> ProvincialReport | None:
    return session.exec(select(ProvincialReport).where(
        ProvincialReport.directive_id == directive_id)).first()


def provincial_reports_of(session: Session, directive_ids: Iterable[int]) -> list[ProvincialReport]:
    return list(session.exec(select(ProvincialReport).where(
        col(ProvincialReport.directive_id).in_(list(directive_ids)))))


def report_statuses(session: Session, directive_id: int,
                    district_code: str | None = None) -> dict[str, ReportStatus]:
    """Each district's report status for the directive (the board's R1 cells), contents unread."""
    query = select(Report.district_code, Report.status).where(Report.directive_id == directive_id)
    if district_code is not None:
        query = query.where(Report.district_code == district_code)
    return {code: ReportStatus(status) for code, status in session.exec(query)}
