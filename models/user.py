"""People who use tidtam, and how to reach them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Column, Field, Session, SQLModel, select

from models.types import UTCDateTime, enum_column


class Role(StrEnum):
    COORDINATOR = "coordinator"
    DISTRICT_STAFF = "district_staff"
    DISTRICT_HEAD = "district_head"
    PROVINCIAL_HEAD = "provincial_head"


class UserBase(SQLModel):
    username: str = Field(unique=True, index=True, max_length=64)
    full_name: str
    role: Role = Field(sa_column=enum_column(Role, index=True))
    province_code: str = Field(foreign_key="province.code", max_length=2, index=True)
    district_code: str | None = Field(default=None, foreign_key="district.code", max_length=4,
                                      index=True)
    email: str | None = None
    line_user_id: str | None = Field(default=None, max_length=64)


class User(UserBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str
    is_active: bool = True
    line_route_error: str | None = Field(
        default=None, description="why LINE refused this user's id; pushes stop until relinked")
    created_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class UserPublic(UserBase):
    id: int


def get_by_username(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def active_users(session: Session) -> list[User]:
    return list(session.exec(select(User).where(User.is_active == True).order_by(User.id)))  # noqa: E712
