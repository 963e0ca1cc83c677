"""Accounts: argon2 password hashes, sign-in, and creating users."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from domain.access import Role
from models import audit
from models.user import User, get_by_username

_hasher = PasswordHasher()
# Verifying against this keeps unknown usernames as slow as wrong passwords.
_DUMMY_HASH = _hasher.hash("tidtam-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, else None."""
    user = get_by_username(session, username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if user and user.is_active else None


def ensure_user(session: Session, *, username: str, full_name: str, role: Role,
                province_code: str | None, district_code: str | None, now: datetime,
                password: str | None = None, password_hash: str | None = None,
                email: str | None = None, line_user_id: str | None = None) -> tuple[User, bool]:
    """Create the user unless the username exists; True when created.

    Give ``password``, or a ``password_hash`` made once for many demo accounts (argon2 is slow
    on purpose).
    """
    existing = get_by_username(session, username)
    if existing is not None:
        return existing, False
    _check_placement(role, province_code, district_code)
    user = User(username=username, full_name=full_name, role=role, province_code=province_code,
                district_code=district_code, email=email, line_user_id=line_user_id,
                password_hash=password_hash or hash_password(password), created_at=now)
    session.add(user)
    session.flush()
    audit.record(session, at=now, actor="system:init", action="user.create", entity="user",
                 entity_id=user.id, after={"username": username, "role": role.value,
                                           "district_code": district_code})
    return user, True


def _check_placement(role: Role, province_code: str | None, district_code: str | None) -> None:
    """The Department sits above every province; everyone else belongs to one."""
    from domain.errors import InvalidInput

    if role == Role.DEPARTMENT_VIEWER and (province_code or district_code):
        raise InvalidInput("a Department viewer belongs to no province or district",
                           "ผู้ใช้ระดับกรมไม่สังกัดจังหวัดหรืออำเภอใด")
    if role != Role.DEPARTMENT_VIEWER and not province_code:
        raise InvalidInput(f"a {role.value} needs a province", "ผู้ใช้ระดับจังหวัดและอำเภอต้องระบุจังหวัด")


MIN_PASSWORD = 12


def create_account(session: Session, *, username: str, full_name: str, role: Role,
                   province_code: str | None, district_code: str | None, password: str,
                   now: datetime, email: str | None = None,
                   actor: str = "system:user-add") -> User:
    """A real account (``tidtam user-add``): a new username, a long enough password, and a
    province and district that exist and fit the role. Audited."""
    from domain.errors import Conflict, InvalidInput, NotFound
    from models.org import get_district, get_province

    username = username.strip()
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidInput("username: letters, digits, '-', '_' or '.' only",
                           "ชื่อผู้ใช้: ใช้ตัวอักษร ตัวเลข - _ หรือ . เท่านั้น")
    if get_by_username(session, username) is not None:
        raise Conflict(f"user {username!r} exists already; nothing was changed",
                       f"มีผู้ใช้ {username!r} อยู่แล้ว ไม่มีการเปลี่ยนแปลง")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters",
                           f"รหัสผ่าน: อย่างน้อย {MIN_PASSWORD} ตัวอักษร")
    if province_code and get_province(session, province_code) is None:
        raise NotFound(f"no province {province_code} loaded (tidtam init --provinces …)",
                       f"ไม่พบจังหวัดรหัส {province_code}")
    needs_district = role in (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD)
    if needs_district != bool(district_code):
        raise InvalidInput("district roles need --district; other roles take none",
                           "บทบาทระดับอำเภอต้องระบุ --district บทบาทอื่นไม่ต้องระบุ")
    if district_code:
        district = get_district(session, district_code)
        if district is None or district.province_code != province_code:
            raise NotFound(f"no district {district_code} in province {province_code}",
                           f"ไม่พบอำเภอรหัส {district_code} ในจังหวัดรหัส {province_code}")
    user, _ = ensure_user(session, username=username, full_name=full_name, role=role,
                          province_code=province_code, district_code=district_code, now=now,
                          password=password, email=email)
    audit.record(session, at=now, actor=actor, action="user.add", entity="user",
                 entity_id=user.id, after={"username": username, "role": role.value,
                                           "province_code": province_code,
                                           "district_code": district_code})
    return user
