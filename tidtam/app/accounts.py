"""Accounts: argon2 password hashes, sign-in behind the guessing limits, sessions and tokens
that end, changing and resetting passwords, and the accounts a coordinator or the Department
manages. Every change a person makes is audited in the same transaction."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from domain.access import Role, can_manage_account, manageable_roles
from domain.errors import Forbidden, InvalidInput, NotFound, TidtamError
from domain.passwords import check_password
from models import audit
from models.directive import ItemFacts
from models.marking import session_user_and_item
from models.sessions import (
    LoginSession,
    ResetLink,
    SessionKind,
    SignInFailure,
    end_sessions,
    failures_since,
    forget_failures,
    reset_by_key,
    session_and_user,
    session_by_key,
)
from models.user import User, UserPublic, get_by_username

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


def create_account(session: Session, *, username: str, full_name: str, role: Role,
                   province_code: str | None, district_code: str | None, password: str,
                   now: datetime, email: str | None = None,
                   actor: str = "system:user-add") -> User:
    """A real account (``tidtam user-add``): a new username, a long enough password, and a
    province and district that exist and fit the role. Audited."""
    from domain.errors import Conflict
    from models.org import get_district, get_province

    username = username.strip()
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidInput("username: letters, digits, '-', '_' or '.' only",
                           "ชื่อผู้ใช้: ใช้ตัวอักษร ตัวเลข - _ หรือ . เท่านั้น")
    if get_by_username(session, username) is not None:
        raise Conflict(f"user {username!r} exists already; nothing was changed",
                       f"มีผู้ใช้ {username!r} อยู่แล้ว ไม่มีการเปลี่ยนแปลง")
    check_password(password, user_inputs=(username, full_name, email or ""))
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


# --- Sign-in behind the guessing limits --------------------------------------------------------

PROGRESSIVE_FROM = 3  # failures before each further attempt must wait (1 s, 2 s, 4 s … )
PROGRESSIVE_CAP = timedelta(seconds=60)


@dataclass(frozen=True)
class Limits:
    """The settings' guessing limits and lifetimes, in one object the routes pass down."""

    window: timedelta
    per_account: int
    per_address: int
    idle: timedelta
    max_age: timedelta

    @classmethod
    def of(cls, settings) -> Limits:
        return cls(window=timedelta(minutes=settings.login_window_minutes),
                   per_account=settings.login_max_failures,
                   per_address=settings.login_max_failures_per_address,
                   idle=timedelta(minutes=settings.session_idle_minutes),
                   max_age=timedelta(hours=settings.session_max_hours))


class TooManyAttempts(TidtamError):
    """Sign-in refused before any password is checked: answer 429 with ``Retry-After``."""

    def __init__(self, retry_after: int):
        super().__init__(f"Too many sign-in attempts. Try again in {retry_after} seconds.",
                         f"ลงชื่อเข้าใช้ผิดหลายครั้งเกินไป โปรดลองใหม่ในอีก {retry_after} วินาที")
        self.retry_after = retry_after


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def wait_before_attempt(session: Session, username: str, address: str, now: datetime,
                        limits: Limits) -> int:
    """Seconds to wait before this account may be tried again from this address (0: go on)."""
    since = now - limits.window
    count, first, last = failures_since(session, since, username=username)
    if count >= limits.per_account:
        return _seconds(first + limits.window - now)
    if count >= PROGRESSIVE_FROM:
        delay = min(timedelta(seconds=2 ** (count - PROGRESSIVE_FROM)), PROGRESSIVE_CAP)
        if now < last + delay:
            return _seconds(last + delay - now)
    count, first, _ = failures_since(session, since, address=address)
    if count >= limits.per_address:
        return _seconds(first + limits.window - now)
    return 0


def _limit_key(username: str) -> str:
    return username.strip().lower()[:64]


def sign_in(session: Session, username: str, password: str, *, address: str, now: datetime,
            limits: Limits, kind: SessionKind, client: str | None = None
            ) -> tuple[User, str] | None:
    """(user, session secret) for a right password, None for a wrong one (counted).

    The limits are checked first: a refused attempt raises TooManyAttempts and costs no argon2
    work. The secret goes in the cookie or is the bearer token; only its hash is stored.
    """
    key, address = _limit_key(username), address[:64]
    wait = wait_before_attempt(session, key, address, now, limits)
    if wait:
        raise TooManyAttempts(wait)
    user = authenticate(session, username.strip(), password)
    if user is None:
        session.add(SignInFailure(username=key, address=address, at=now))
        return None
    forget_failures(session, key, before=now - limits.window)
    return user, start_session(session, user, kind, now, client)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_session(session: Session, user: User, kind: SessionKind, now: datetime,
                  client: str | None = None) -> str:
    """A new session (or token) row for the user; the secret that names it."""
    secret = secrets.token_urlsafe(32)
    session.add(LoginSession(key_hash=_hash(secret), user_id=user.id, kind=kind, created_at=now,
                             last_seen_at=now, client=(client or "")[:200] or None))
    session.flush()
    return secret


def live_session(session: Session, secret: object, kind: SessionKind, now: datetime,
                 limits: Limits) -> LoginSession | None:
    """The session this secret names, if it has not ended, is younger than the maximum age and
    its user is active. (A browser session's idle time is checked by the caller, which keeps
    the last request's time in the signed cookie: no write on every page view.)"""
    if not isinstance(secret, str) or not secret:
        return None
    row = session_by_key(session, _hash(secret), kind)
    if row is None or not _live(row.ended_at, row.created_at, now, limits):
        return None
    user = session.get(User, row.user_id)
    return row if user is not None and user.is_active else None


def live_user(session: Session, secret: object, kind: SessionKind, now: datetime,
              limits: Limits) -> tuple[int, UserPublic] | None:
    """``live_session``'s answer in one prepared query and no ORM object (a request's check
    on the hot path): the session's id and its user, or None."""
    if not isinstance(secret, str) or not secret:
        return None
    row = session_and_user(session, _hash(secret), kind)
    if row is None or not _live(row.ended_at, row.created_at, now, limits) or not row.is_active:
        return None
    return row.session_id, UserPublic.model_validate(
        {name: row._mapping[name] for name in UserPublic.model_fields})


def live_user_and_item(session: Session, secret: object, kind: SessionKind, now: datetime,
                       limits: Limits, item_id: int
                       ) -> tuple[tuple[int, UserPublic] | None, ItemFacts | None]:
    """``live_user``'s answer and the item's facts (``models.directive.item_facts``) in one
    prepared query (marking a step done, bench P2): the same rules as ``live_session``; when
    no one is signed in, (None, None), and the item is not looked at."""
    if not isinstance(secret, str) or not secret:
        return None, None
    found = session_user_and_item(session, _hash(secret), kind, item_id)
    if found is None:
        return None, None
    row = found.session
    if not _live(row.ended_at, row.created_at, now, limits) or not row.is_active:
        return None, None
    return (row.session_id, UserPublic.model_validate(
        {name: row._mapping[name] for name in UserPublic.model_fields})), found.facts


def _live(ended_at: datetime | None, created_at: datetime, now: datetime, limits: Limits) -> bool:
    """Not ended and younger than the maximum age (the user's being active is checked apart)."""
    return ended_at is None and now < created_at + limits.max_age


def end_session(session: Session, secret: object, kind: SessionKind, now: datetime,
                reason: str) -> LoginSession | None:
    """Sign-out: the session (or token) named by ``secret`` ends; the user's others go on."""
    if not isinstance(secret, str) or not secret:
        return None
    row = session_by_key(session, _hash(secret), kind)
    if row is None or row.ended_at is not None:
        return None
    row.ended_at, row.end_reason = now, reason
    session.add(row)
    return row


def revoke_token(session: Session, user: User, token_id: int, now: datetime) -> None:
    """The user ends one of their own API tokens (from the profile page). Audited."""
    row = session.get(LoginSession, token_id)
    if row is None or row.user_id != user.id or row.kind != SessionKind.API:
        raise NotFound(f"no token {token_id} of yours", f"ไม่พบโทเคน {token_id} ของท่าน")
    if row.ended_at is None:
        row.ended_at, row.end_reason = now, "revoked"
        session.add(row)
        audit.record(session, at=now, actor=user.username, actor_id=user.id,
                     action="token.revoke", entity="login_session", entity_id=row.id,
                     after={"user_id": user.id})


# --- Passwords ---------------------------------------------------------------------------------

def _words_of(user: User) -> tuple[str, ...]:
    return (user.username, user.full_name, user.email or "")


def change_password(session: Session, user: User, current: str, new: str, now: datetime,
                    keep_session: int | None) -> int:
    """Change one's own password (the current one asked first); every other session and token
    of the user ends. How many ended."""
    if authenticate(session, user.username, current) is None:
        raise InvalidInput("the current password is not right", "รหัสผ่านปัจจุบันไม่ถูกต้อง")
    check_password(new, user_inputs=_words_of(user))
    user.password_hash = hash_password(new)
    session.add(user)
    ended = end_sessions(session, user.id, now, "password changed", keep=keep_session)
    audit.record(session, at=now, actor=user.username, actor_id=user.id,
                 action="user.password_change", entity="user", entity_id=user.id,
                 after={"sessions_ended": ended})
    return ended


def reset_link_valid(session: Session, secret: str, now: datetime) -> ResetLink | None:
    """The reset link this secret names, if unused, unexpired and its user active."""
    row = reset_by_key(session, _hash(secret)) if secret else None
    if row is None or row.used_at is not None or now >= row.expires_at:
        return None
    user = session.get(User, row.user_id)
    return row if user is not None and user.is_active else None


def use_reset_link(session: Session, secret: str, new: str, now: datetime) -> User:
    """Set a new password through a one-time link; the link is spent, every session ends."""
    row = reset_link_valid(session, secret, now)
    if row is None:
        raise NotFound("this reset link is not valid: used, expired or unknown; ask for a new one",
                       "ลิงก์ตั้งรหัสผ่านนี้ใช้ไม่ได้ (ใช้แล้ว หมดอายุ หรือไม่ถูกต้อง) โปรดขอลิงก์ใหม่")
    user = session.get(User, row.user_id)
    check_password(new, user_inputs=_words_of(user))
    user.password_hash = hash_password(new)
    row.used_at = now
    session.add_all([user, row])
    ended = end_sessions(session, user.id, now, "password reset")
    audit.record(session, at=now, actor=user.username, actor_id=user.id,
                 action="user.password_reset", entity="user", entity_id=user.id,
                 after={"reset_link": row.id, "sessions_ended": ended})
    return user


# --- Accounts a coordinator or the Department manages -------------------------------------------

def managed_user(session: Session, actor: User, user_id: int) -> User:
    """A user the actor may manage, else NotFound (another province's) or Forbidden."""
    target = session.get(User, user_id)
    if target is None or (actor.province_code and target.province_code != actor.province_code):
        raise NotFound(f"no account {user_id} you manage", f"ไม่พบบัญชี {user_id} ที่ท่านดูแล")
    if target.id == actor.id or not can_manage_account(actor.role, actor.province_code,
                                                       target.role, target.province_code):
        raise Forbidden("you may not manage this account", "ท่านไม่มีสิทธิ์จัดการบัญชีนี้")
    return target


def managed_users(session: Session, actor: User) -> list[User]:
    """The accounts on the actor's accounts page, by district then username."""
    from sqlmodel import col, select

    roles = [r.value for r in manageable_roles(actor.role)]
    if not roles:
        raise Forbidden("you may not manage accounts", "ท่านไม่มีสิทธิ์จัดการบัญชีผู้ใช้")
    query = select(User).where(col(User.role).in_(roles), User.id != actor.id)
    if actor.province_code:
        query = query.where(User.province_code == actor.province_code)
    return list(session.exec(query.order_by(col(User.district_code).nulls_first(),
                                            User.username)))


def issue_reset_link(session: Session, actor: User, target: User, now: datetime,
                     lifetime: timedelta) -> str:
    """A one-time link's secret for ``target`` (shown once to the actor); earlier links die."""
    from sqlalchemy import update
    from sqlmodel import col

    session.execute(update(ResetLink).where(col(ResetLink.user_id) == target.id,
                                            col(ResetLink.used_at).is_(None))
                    .values(used_at=now))
    secret = secrets.token_urlsafe(32)
    row = ResetLink(key_hash=_hash(secret), user_id=target.id, created_by=actor.username,
                    created_at=now, expires_at=now + lifetime)
    session.add(row)
    session.flush()
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id,
                 action="user.reset_link", entity="user", entity_id=target.id,
                 after={"reset_link": row.id, "expires_at": row.expires_at.isoformat()})
    return secret


def set_active(session: Session, actor: User, user_id: int, active: bool, now: datetime) -> User:
    """Disable (every session and token ends at once) or re-enable an account. Audited."""
    target = managed_user(session, actor, user_id)
    if target.is_active == active:
        return target
    target.is_active = active
    session.add(target)
    ended = 0 if active else end_sessions(session, target.id, now, "disabled")
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id,
                 action="user.enable" if active else "user.disable", entity="user",
                 entity_id=target.id, before={"is_active": not active},
                 after={"is_active": active, "sessions_ended": ended})
    return target


def add_managed_account(session: Session, actor: User, *, username: str, full_name: str,
                        role: str, district_code: str | None, email: str | None,
                        now: datetime, lifetime: timedelta) -> tuple[User, str]:
    """A new account in the actor's care, with no usable password yet: (user, reset secret),
    the link through which its owner sets one."""
    try:
        chosen = Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}", f"ไม่รู้จักบทบาท {role!r}") from None
    if chosen not in manageable_roles(actor.role):
        raise Forbidden("you may not create an account of this role",
                        "ท่านไม่มีสิทธิ์สร้างบัญชีบทบาทนี้")
    if not full_name.strip():
        raise InvalidInput("full name: required", "ชื่อ-นามสกุล: ต้องระบุ")
    unusable = secrets.token_urlsafe(48)  # no one knows it: the owner sets theirs by the link
    user = create_account(session, username=username, full_name=full_name.strip(), role=chosen,
                          province_code=actor.province_code, district_code=district_code or None,
                          password=unusable, now=now, email=email or None, actor=actor.username)
    return user, issue_reset_link(session, actor, user, now, lifetime)
