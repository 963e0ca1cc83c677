"""The notification outbox: every message is a row first, and its delivery result after."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, bindparam, func, literal_column, or_, text, true, tuple_, update
from sqlalchemy import column as sa_column
from sqlalchemy import select as sa_select
from sqlalchemy import table as sa_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.directive import DirectiveStep, ItemStatus, TrackedItem
from models.types import UTCDateTime, enum_column

log = logging.getLogger(__name__)


class Channel(StrEnum):
    LINE = "line"
    EMAIL = "email"
    WEBHOOK = "webhook"
    # A Prefect event (tidtam.app.events), for the Prefect server and its automations, not a
    # message to anyone: sent at any hour, retried until the server takes it, kept queued (and
    # visible) while no server is configured.
    PREFECT_EVENT = "prefect-event"


# Channels whose rows are for machines, not people: not in people's outbox, never counted as
# messages, never held to office hours or an attempt budget (notifications/pump.py).
MACHINE_CHANNELS = (Channel.PREFECT_EVENT,)


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_SENT_NO_CHANNEL = "not-sent-no-channel"


PENDING = (OutboxStatus.QUEUED, OutboxStatus.SENDING)


def to_people():
    """The rows that are messages to people (every channel but the machines'): what the outbox
    page, `tidtam outbox`, the API and every count of messages read."""
    return col(OutboxMessage.channel).not_in(MACHINE_CHANNELS)


def machine_rows():
    """The rows for machines (Prefect events), the other side of ``to_people``."""
    return col(OutboxMessage.channel).in_(MACHINE_CHANNELS)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_try_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=255)
    channel: Channel = Field(sa_column=enum_column(Channel))
    recipient: str = Field(description="email address, LINE user/group id, or webhook URL; "
                                       "empty when the person has no usable channel")
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    district_code: str | None = Field(default=None, max_length=4)
    item_id: int | None = Field(default=None, foreign_key="tracked_item.id", index=True)
    step_id: int | None = Field(default=None, foreign_key="directive_step.id")
    rung: str | None = Field(default=None, max_length=32)
    # The directive a row is about when it names no item or step (an event, a review nudge):
    # whose province sees it, whose calendar it keeps.
    directive_id: int | None = Field(default=None, foreign_key="directive.id", index=True)
    # The report a row is about (the review nudge, cancelled once the report is reviewed).
    report_id: int | None = Field(default=None, foreign_key="report.id", index=True)
    subject: str
    body: str
    status: OutboxStatus = Field(default=OutboxStatus.QUEUED,
                                 sa_column=enum_column(OutboxStatus))
    # Tries whose outcome was recorded (delivered, refused, or failed and retried later): the
    # budget ``MAX_ATTEMPTS`` spends. A claim that ended without a result (the pump was killed,
    # or lost its lease) is no try.
    attempts: int = 0
    # How often the row was claimed; the claim's fencing token: every result is written only
    # while the row is still ``sending`` under the same value (``_finish_claim``). It only grows,
    # so no later claim ever has the token of an earlier one.
    claims: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_try_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The one message (a LINE push, an e-mail) a row went out in: the reminders of one
    # recipient and channel on one local day share it (notifications/pump.py groups them), so a
    # retry resends the same group once and LINE pushes are counted as messages, not rows.
    # Empty for a row sent on its own (it is its own message).
    delivery_key: str | None = Field(default=None, max_length=255, index=True)


class OutboxDelivery(SQLModel, table=True):
    """The claim on one grouped message (a recipient's reminders of a day on one channel).

    Its ``delivery_key`` is unique: the database, not the pumps' timing, makes sure
    only one pass at a time holds a delivery (``claim_delivery``) and that, once it was sent
    (``sent_at``), no other pass sends that recipient a second message that day.
    """

    __tablename__ = "outbox_delivery"

    id: int | None = Field(default=None, primary_key=True)
    delivery_key: str = Field(unique=True, max_length=255)
    # The pass that holds it (a random token per pass), until ``lease_until``; None: free.
    holder: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


def addressing(channel: Channel | str, address: str | None, who: str) -> dict[str, object]:
    """Where a row goes, or why it cannot: a person with no address on a channel still gets a
    row, kept as 'not sent: no channel' and visible in the outbox, never silently none."""
    channel = Channel(channel)
    if address:
        return {"channel": channel, "recipient": address, "status": OutboxStatus.QUEUED,
                "last_error": None}
    return {"channel": channel, "recipient": "", "status": OutboxStatus.NOT_SENT_NO_CHANNEL,
            "last_error": f"{who} has no {channel.value} address"}


def enqueue(session: Session, message: OutboxMessage) -> bool:
    """Insert the message unless its idempotency key exists; True when it was new.

    The row is written with a plain INSERT (see ``enqueue_many``): ``message`` itself is not
    added to the session; read the row back by its key when it is needed.
    """
    return bool(enqueue_many(session, [outbox_values(message)]))


# Rows per statement: well inside SQLite's (32,766) and PostgreSQL's (65,535) bound-parameter limits.
_CHUNK = 500
_TABLE = OutboxMessage.__table__
_INSERTED_COLUMNS = tuple(c.key for c in _TABLE.columns if c.key != "id")
_DEFAULTS = {name: OutboxMessage.model_fields[name].get_default(call_default_factory=True)
             for name in _INSERTED_COLUMNS if not OutboxMessage.model_fields[name].is_required()}


def outbox_values(message: OutboxMessage) -> dict[str, Any]:
    """The column values of a (not yet inserted) message, for ``enqueue_many``."""
    return {name: getattr(message, name) for name in _INSERTED_COLUMNS}


def existing_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` the outbox already holds (one indexed query per 500 keys)."""
    wanted = list(dict.fromkeys(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        found.update(session.exec(select(OutboxMessage.idempotency_key).where(
            col(OutboxMessage.idempotency_key).in_(wanted[start:start + _CHUNK]))))
    return found


def enqueue_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert each row whose idempotency key is new; returns the keys this call inserted.

    ``rows`` are column values (``outbox_values``; left-out optional columns take the model's
    defaults). INSERT … ON CONFLICT (idempotency_key) DO NOTHING, in batches, no savepoint: a key
    already there, written by another sweep a moment ago, or repeated within ``rows`` (the first
    one wins) is skipped, and RETURNING says which rows went in.
    """
    if not rows:
        return set()
    session.flush()  # pending ORM changes first, as a query would autoflush them
    insert = _insert_for(session.get_bind().dialect.name)
    statement = (insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.idempotency_key])
                 .returning(_TABLE.c.idempotency_key))
    values = [{**_DEFAULTS, **row} for row in rows]
    inserted: set[str] = set()
    for start in range(0, len(values), _CHUNK):
        inserted.update(session.execute(statement, values[start:start + _CHUNK]).scalars())
    return inserted


def keys_present(session: Session, keys: Sequence[str], prefixes: Iterable[str]) -> set[str]:
    """The outbox's keys among ``keys`` — and on SQLite every other key starting with one of
    ``prefixes``: ask it whether a key is in, do not count it. Every one of ``keys`` must start
    with one of ``prefixes`` (a sweep's rung and occurrence: ``late|2024-08-13|``).

    On SQLite, whose keys compare byte by byte, each prefix is one range of the unique key
    index, read as a single string (``group_concat``: one value instead of a row per key, the
    28,704 keys of a national repeat sweep in a few milliseconds) and split here. A key with a
    newline in it would come apart and look absent: its row is then tried again and skipped by
    the insert's ON CONFLICT, never written twice. Elsewhere (PostgreSQL's collation need not
    order punctuation byte-wise) the keys themselves, bound as one array (``= ANY(:keys)``).
    """
    if not keys:
        return set()
    connection = session.connection()  # Core: no ORM loading for 30,000 strings
    if connection.dialect.name != "sqlite":
        wanted = list(dict.fromkeys(keys))
        return set(connection.execute(_KEYS_ANY, {"keys": wanted}).scalars().all())
    present: set[str] = set()
    for prefix in sorted(set(prefixes)):
        if not prefix:
            raise ValueError("an empty prefix would read the whole outbox")
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        joined = connection.execute(_KEYS_JOINED, {"low": prefix, "high": upper}).scalar()
        if joined:
            present.update(joined.split("\n"))
    return present


_KEYS_ANY = text("SELECT idempotency_key FROM outbox WHERE idempotency_key = ANY(:keys)")
_KEYS_JOINED = text("SELECT group_concat(idempotency_key, char(10)) FROM outbox "
                    "WHERE idempotency_key >= :low AND idempotency_key < :high")


def insert_new_rows(session: Session, columns: Sequence[str], rows: Sequence[tuple],
                    ) -> set[str]:
    """``enqueue_many`` for many rows at once, for a sweep: INSERT … ON CONFLICT
    (idempotency_key) DO NOTHING; returns the keys inserted. ``rows`` are plain tuples of
    ``columns`` (which must include ``idempotency_key``); the outbox's other columns take the
    model's defaults. Each column's value is converted for the database once per distinct value
    (the few instants and statuses a sweep writes) instead of once per row, then sent as it is.

    On SQLite the sqlite3 driver's ``executemany`` without RETURNING (``_sqlite_insert_all``),
    falling back to RETURNING when some row was not new; elsewhere one multi-row INSERT …
    RETURNING."""
    if not rows:
        return set()
    session.flush()
    dialect = session.get_bind().dialect
    statement, converters = _lean_insert(dialect)
    unknown = set(columns).difference(_INSERTED_COLUMNS)
    if unknown or "idempotency_key" not in columns:
        raise ValueError(f"not the outbox's columns, or no key: {sorted(unknown)}")
    rest = [name for name in _INSERTED_COLUMNS if name not in columns]
    names = (*columns, *rest)
    defaults = tuple(_convert(converters, name, _DEFAULTS[name]) for name in rest)
    convert = [(i, converters[name], {None: None}) for i, name in enumerate(columns)
               if name in converters]
    converted = []
    for row in rows:
        if convert:
            row = list(row)
            for i, process, seen in convert:
                value = row[i]
                try:
                    row[i] = seen[value]
                except KeyError:
                    row[i] = seen[value] = process(value)
        converted.append((*row, *defaults))
    key_at = names.index("idempotency_key")
    if dialect.name == "sqlite":
        inserted = _sqlite_insert_all(session, names, converted, key_at)
        if inserted is not None:
            return inserted
    return set(session.execute(statement, [dict(zip(names, row, strict=True))
                                           for row in converted]).scalars())


def _convert(converters: dict[str, Callable[[Any], Any]], name: str, value: Any) -> Any:
    process = converters.get(name)
    return value if process is None or value is None else process(value)


_SAVEPOINT = "tidtam_insert_new_rows"


def _sqlite_insert_all(session: Session, names: Sequence[str], rows: list[tuple],
                       key_at: int) -> set[str] | None:
    """On SQLite, the rows (converted) by the sqlite3 driver's ``executemany`` of INSERT … ON
    CONFLICT (idempotency_key) DO NOTHING, without RETURNING: SQLAlchemy's RETURNING insert
    costs about as much Python again as sqlite3 itself (bench/README.md, P1). The driver's
    ``rowcount`` counts the rows that went in: when it is every row, their keys are the answer.
    When it is fewer (a key written by another sweep since the caller looked, or repeated in
    ``rows``), which rows were skipped cannot be told from a count: the insert is undone to a
    savepoint and None says "insert them the exact way" (the caller's RETURNING insert)."""
    raw = session.connection().connection.driver_connection
    if not raw.in_transaction:
        # as pysqlite would before the INSERT; the savepoint must not be the outermost (its
        # RELEASE would commit the session's work)
        raw.execute("BEGIN")
    insert = (f"INSERT INTO {_TABLE.name} ({', '.join(names)}) "
              f"VALUES ({', '.join('?' * len(names))}) ON CONFLICT (idempotency_key) DO NOTHING")
    raw.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        written = raw.executemany(insert, rows).rowcount
        if written != len(rows):
            raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
            log.info("outbox insert: %d of %d rows new; inserting again with RETURNING",
                     written, len(rows))
            return None
    finally:
        raw.execute(f"RELEASE {_SAVEPOINT}")
    return {row[key_at] for row in rows}


_LEAN: dict[str, tuple[Any, dict[str, Callable[[Any], Any]]]] = {}


def _lean_insert(dialect) -> tuple[Any, dict[str, Callable[[Any], Any]]]:
    """The insert against the outbox's columns without types (values go as they are), and,
    per column whose type converts values, that conversion (the model's own)."""
    name = dialect.name
    if name not in _LEAN:
        lean = sa_table(_TABLE.name, *(sa_column(c) for c in _INSERTED_COLUMNS))
        statement = (_insert_for(name)(lean)
                     .on_conflict_do_nothing(index_elements=[lean.c.idempotency_key])
                     .returning(lean.c.idempotency_key))
        converters = {}
        for column in _INSERTED_COLUMNS:
            process = _TABLE.c[column].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                converters[column] = process
        _LEAN[name] = statement, converters
    return _LEAN[name]


def _insert_for(dialect: str):
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"enqueue needs INSERT … ON CONFLICT, not available on {dialect}")


def claim_due(session: Session, now: datetime, *, limit: int = 50,
              lease: timedelta = timedelta(minutes=2),
              skip_channels: Iterable[Channel] = ()) -> list[OutboxMessage]:
    """Claim due rows by conditional update, so two pumps never send the same row.

    Oldest first (by creation): after an outage every waiting row is due at once, and they
    go out in the order they were written. A row left in ``sending`` by a crashed pump
    becomes claimable again once its lease ends.

    A claim counts in ``claims`` (the fencing token of its result), not in ``attempts``: the
    try is counted when its result is written, so a claim that died with its pump spends
    none of the row's attempt budget.

    ``skip_channels``: rows this pump leaves alone, queued as they are (events while no Prefect
    server is configured: they wait, visible, for a pump that has one).
    """
    due = or_(
        (OutboxMessage.status == OutboxStatus.QUEUED) & (OutboxMessage.next_try_at <= now),
        (OutboxMessage.status == OutboxStatus.SENDING) & (OutboxMessage.lease_until < now))
    skip = [Channel(c) for c in skip_channels]
    if skip:
        due = due & col(OutboxMessage.channel).not_in(skip)
    # On PostgreSQL, SKIP LOCKED lets concurrent pumps take different rows instead of racing
    # for the same first batch; SQLite has one writer at a time and ignores the clause.
    candidates = session.exec(
        select(OutboxMessage.id, OutboxMessage.status).where(due)
        .order_by(OutboxMessage.created_at, OutboxMessage.id).limit(limit)
        .with_for_update(skip_locked=True)).all()
    stranded = {row_id for row_id, status in candidates if status == OutboxStatus.SENDING}
    candidates = [row_id for row_id, _status in candidates]
    # One conditional UPDATE for the whole batch: a row another pump took meanwhile no longer
    # matches ``due`` and is simply not returned.
    claimed = list(session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(candidates), due)
        .values(status=OutboxStatus.SENDING, lease_until=now + lease,
                claims=OutboxMessage.claims + 1)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)).scalars()) if candidates else []
    session.commit()
    if not claimed:
        return []
    reclaimed = stranded.intersection(claimed)
    if reclaimed:
        log.warning("outbox: %d row(s) reclaimed after their lease ran out with no result written "
                    "(a pump stopped or lost them); that claim counts no attempt", len(reclaimed))
    return list(session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(claimed))
                             .order_by(OutboxMessage.created_at, OutboxMessage.id)))


def cancel_pending_for_item(session: Session, item_id: int, step_id: int | None = None) -> int:
    """Cancel queued messages about an item that is now done; returns how many.

    Grouped messages about its step (one listing every late district) go too once the step
    has no open item left. ``step_id``: the item's step, when the caller has it at hand.

    Two prepared Core statements on the hot path (marking a step done, bench P2): the UPDATE of
    the item's queued rows and the indexed look-up of one open item of its step; the grouped
    messages' UPDATE only when the step has none left. The flush only writes what the caller
    left pending in the session (usually nothing), so the look-up sees the item's new status.
    """
    session.flush()
    cancelled = session.execute(_CANCEL_ITEM, {"done_item_id": item_id}).rowcount
    if step_id is None:
        step_id = session.execute(select(TrackedItem.step_id)
                                  .where(TrackedItem.id == item_id)).scalar()
    if step_id is None or session.execute(_STEP_STILL_OPEN, {"step_id": step_id}).first():
        return cancelled
    return cancelled + cancel_grouped_for_closed_steps(session, step_id)


_CANCEL_ITEM = (update(OutboxMessage.__table__)
                .where(OutboxMessage.__table__.c.item_id == bindparam("done_item_id"),
                       OutboxMessage.__table__.c.status == OutboxStatus.QUEUED)
                .values(status=OutboxStatus.CANCELLED, last_error="item completed before sending"))
_STEP_STILL_OPEN = (sa_select(TrackedItem.__table__.c.id)
                    .where(TrackedItem.__table__.c.step_id == bindparam("step_id"),
                           TrackedItem.__table__.c.status == ItemStatus.OPEN).limit(1))


def cancel_pending_for_directive(session: Session, directive_id: int,
                                 reason: str = "directive closed before sending") -> int:
    """Cancel every queued message about a directive's items, steps or reports (it was closed).

    Its events stay: they say what happened, and go out all the same.
    """
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.QUEUED, to_people(),
               or_(col(OutboxMessage.item_id).in_(
                       select(TrackedItem.id).where(TrackedItem.directive_id == directive_id)),
                   col(OutboxMessage.step_id).in_(
                       select(DirectiveStep.id).where(DirectiveStep.directive_id == directive_id)),
                   OutboxMessage.directive_id == directive_id))
        .values(status=OutboxStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False))
    return result.rowcount


def cancel_grouped_for_closed_steps(session: Session, step_id: int | None = None) -> int:
    """Queued grouped messages (one per step, listing late districts) once the step has no open
    item left: every district they list is then done. One still open keeps the message.

    ``step_id`` limits it to one step (for a use case that has just closed an item of it).
    """
    # NOT IN an uncorrelated subquery (tracked_item.step_id is never NULL, so it means NOT EXISTS):
    # the open steps are read once, where SQLite ran a correlated NOT EXISTS through the status
    # index, i.e. over every open item for each grouped row (0.3 s at national scale).
    open_steps = select(TrackedItem.step_id).where(TrackedItem.status == ItemStatus.OPEN)
    query = (update(OutboxMessage)
             .where(OutboxMessage.status == OutboxStatus.QUEUED, col(OutboxMessage.item_id).is_(None),
                    col(OutboxMessage.step_id).is_not(None), col(OutboxMessage.step_id).not_in(open_steps)))
    if step_id is not None:
        # One step (a district just finished it): while any of its items is open, which is
        # nearly always, one indexed look-up answers and nothing is updated.
        still_open = session.execute(select(TrackedItem.id).where(
            TrackedItem.step_id == step_id, TrackedItem.status == ItemStatus.OPEN).limit(1)).first()
        if still_open is not None:
            return 0
        query = query.where(OutboxMessage.step_id == step_id)
    result = session.execute(
        query.values(status=OutboxStatus.CANCELLED,
                     last_error="every district listed completed the step before sending")
        .execution_options(synchronize_session=False))
    return result.rowcount


def cancel_for_settled_items(session: Session) -> int:
    """What the sweep cancels first, in two statements for every directive: the queued rows
    about an item that is no longer open (done, accepted or waived), and the queued grouped
    rows (item-less, about a step) of a step with no open item left (as
    ``cancel_grouped_for_closed_steps`` does for every step).

    Both are led by the outbox's item_id index (from the closed items; the item-less rows),
    not by its status index: on SQLite, whose planner preferred ``status = 'queued'``, that
    walked every queued row (28,000 after a national first sweep: 25 ms each) where these
    look at the few rows that can match (well under a millisecond). ``status || ''`` only
    keeps the planner off that index. A grouped row's step is probed with ``NOT EXISTS`` (the
    step × district unique index, stopping at the first open item) rather than ``NOT IN`` every
    open item's step, which read all 10,536 open items on each sweep (about 4 ms).
    """
    queued = _TABLE.c.status.concat(literal_column("''")) == OutboxStatus.QUEUED.value
    closed_items = session.execute(
        update(_TABLE)
        .where(queued, _TABLE.c.item_id.in_(
            select(TrackedItem.id).where(TrackedItem.status != ItemStatus.OPEN)))
        .values(status=OutboxStatus.CANCELLED, last_error="item completed before sending"))
    step_open = (sa_select(literal_column("1")).select_from(TrackedItem.__table__)
                 .where(TrackedItem.__table__.c.step_id == _TABLE.c.step_id,
                        TrackedItem.__table__.c.status == ItemStatus.OPEN)
                 .correlate(_TABLE))
    closed_steps = session.execute(
        update(_TABLE)
        .where(queued, _TABLE.c.item_id.is_(None), _TABLE.c.step_id.is_not(None),
               ~step_open.exists())
        .values(status=OutboxStatus.CANCELLED,
                last_error="every district listed completed the step before sending"))
    return closed_items.rowcount + closed_steps.rowcount


def cancel_pending_for_report(session: Session, report_id: int, rung: str, reason: str) -> int:
    """Cancel the queued messages of a rung about a report (the review nudge, once reviewed)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.report_id == report_id, OutboxMessage.rung == rung,
               OutboxMessage.status == OutboxStatus.QUEUED)
        .values(status=OutboxStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False))
    return result.rowcount


def all_messages(session: Session, *, limit: int | None = None, events: bool = False,
                 wanted: MessageFilter | None = None) -> list[OutboxMessage]:
    """Every message to people, newest first; ``events``: the Prefect events too; ``wanted``:
    only those that match (``tidtam outbox``'s filters, the outbox page's)."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc())
    if not events:
        query = query.where(to_people())
    if wanted is not None:
        query = query.where(_filtered(true(), wanted))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


# --- Delivery results, written by the pump (notifications/pump.py) -------------------------
# Each update is fenced on (status = sending, claims = the claim's token): a pump whose lease
# ran out and whose row another pump has since reclaimed cannot overwrite that result, nor can a
# pump that writes a result again after a commit whose answer it lost. A result after a try
# counts the try (attempts + 1); a claim handed back untried counts nothing.

def _finish_claim(session: Session, message_id: int, claim: int, /, **values) -> bool:
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.SENDING,
               OutboxMessage.claims == claim)
        .values(lease_until=None, **values))
    return result.rowcount == 1


_TRIED = {"attempts": OutboxMessage.attempts + 1}


def mark_sent(session: Session, message_id: int, claim: int, now: datetime) -> bool:
    """Record a delivery; False when this claim no longer owns the row."""
    return _finish_claim(session, message_id, claim, status=OutboxStatus.SENT, sent_at=now,
                         last_error=None, **_TRIED)


def mark_sent_many(session: Session, claims: Sequence[tuple[int, int]], now: datetime) -> set[int]:
    """Record many deliveries in one UPDATE; ``claims`` are (row id, claim token).

    The same condition as ``mark_sent`` per row (still ``sending``, still this claim); returns
    the ids this call owned and marked, so the caller can report the others as lost claims.
    """
    if not claims:
        return set()
    return set(session.execute(
        update(OutboxMessage)
        .where(tuple_(OutboxMessage.id, OutboxMessage.claims).in_(list(claims)),
               OutboxMessage.status == OutboxStatus.SENDING)
        .values(status=OutboxStatus.SENT, sent_at=now, last_error=None, lease_until=None,
                **_TRIED)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)).scalars())


def mark_retry(session: Session, message_id: int, claim: int, next_try_at: datetime,
               error: str) -> bool:
    """Put the row back in the queue for a later try after a transient failure."""
    return _finish_claim(session, message_id, claim, status=OutboxStatus.QUEUED,
                         next_try_at=next_try_at, last_error=error, **_TRIED)


def mark_failed(session: Session, message_id: int, claim: int, error: str) -> bool:
    """Give up on the row after a try: a permanent error, or too many transient ones."""
    return _finish_claim(session, message_id, claim, status=OutboxStatus.FAILED,
                         last_error=error, **_TRIED)


def mark_no_channel(session: Session, message_id: int, claim: int, reason: str) -> bool:
    """Park the row, visible as "not sent: no channel", instead of dropping it silently."""
    return _finish_claim(session, message_id, claim, status=OutboxStatus.NOT_SENT_NO_CHANNEL,
                         last_error=reason)


def release_claim(session: Session, message_id: int, claim: int) -> bool:
    """Hand back a claimed row that was not tried, without counting an attempt."""
    return _finish_claim(session, message_id, claim, status=OutboxStatus.QUEUED)


def defer_claim(session: Session, message_id: int, claim: int, next_try_at: datetime) -> bool:
    """Hand back a claimed row to wait for ``next_try_at`` (office hours), not counting a try."""
    return _finish_claim(session, message_id, claim, status=OutboxStatus.QUEUED,
                         next_try_at=next_try_at)


def cancel_claimed(session: Session, message_id: int, claim: int, reason: str) -> bool:
    """Cancel a claimed row at send time (its item is done, or a newer message supersedes it)."""
    return _finish_claim(session, message_id, claim, status=OutboxStatus.CANCELLED,
                         last_error=reason)


def record_rendered(session: Session, message_id: int, claim: int, subject: str, body: str,
                    delivery_key: str | None = None) -> bool:
    """Store the text a claimed row is sent with (decided at send time) and its delivery;
    the row stays claimed (``sending``) until its result is written."""
    values: dict[str, object] = {"subject": subject, "body": body}
    if delivery_key is not None:
        values["delivery_key"] = delivery_key
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.SENDING,
               OutboxMessage.claims == claim)
        .values(**values))
    return result.rowcount == 1


def delivery_went_out(session: Session, delivery_key: str, exclude: Iterable[int] = ()) -> bool:
    """Whether a row of this delivery, other than ``exclude``, was sent already."""
    query = select(OutboxMessage.id).where(OutboxMessage.delivery_key == delivery_key,
                                           OutboxMessage.status == OutboxStatus.SENT)
    ids = list(exclude)
    if ids:
        query = query.where(col(OutboxMessage.id).not_in(ids))
    return session.exec(query.limit(1)).first() is not None


class DeliveryClaim(StrEnum):
    """What ``claim_delivery`` found."""

    CLAIMED = "claimed"  # this pass holds it now: send it
    HELD = "held"  # another pass holds it (sending it now): wait for its lease
    SENT = "sent"  # it went out already: the recipient's message of the day is spent


def claim_delivery(session: Session, delivery_key: str, holder: str, now: datetime,
                   lease: timedelta) -> tuple[DeliveryClaim, datetime | None]:
    """Take the claim on a delivery for ``lease``, by the key's uniqueness and a conditional
    update: of two passes that try at once, one gets it. Returns the claim and, when another
    pass holds it, when its lease ends.

    INSERT … ON CONFLICT DO NOTHING creates it; an existing one is taken over only while it is
    unsent and free (or its holder's lease ran out, or it is this holder's).
    """
    insert = _insert_for(session.get_bind().dialect.name)
    created = session.execute(
        insert(OutboxDelivery.__table__)
        .values(delivery_key=delivery_key, holder=holder, lease_until=now + lease)
        .on_conflict_do_nothing(index_elements=["delivery_key"])
        .returning(OutboxDelivery.__table__.c.delivery_key)).first()
    if created is not None:
        return DeliveryClaim.CLAIMED, None
    taken = session.execute(
        update(OutboxDelivery)
        .where(OutboxDelivery.delivery_key == delivery_key, col(OutboxDelivery.sent_at).is_(None),
               or_(col(OutboxDelivery.holder).is_(None), OutboxDelivery.holder == holder,
                   col(OutboxDelivery.lease_until) < now))
        .values(holder=holder, lease_until=now + lease)
        .execution_options(synchronize_session=False))
    if taken.rowcount == 1:
        return DeliveryClaim.CLAIMED, None
    sent_at, lease_until = session.execute(
        select(OutboxDelivery.sent_at, OutboxDelivery.lease_until)
        .where(OutboxDelivery.delivery_key == delivery_key)).one()
    return (DeliveryClaim.SENT, None) if sent_at is not None else (DeliveryClaim.HELD, lease_until)


def finish_deliveries(session: Session, holder: str, sent: Iterable[str],
                      released: Iterable[str], now: datetime) -> None:
    """Write what became of the deliveries this holder claimed: ``sent`` ones are spent for
    good, ``released`` ones (not sent: a retry, a failure, a row handed back) are free again."""
    for keys, values in ((set(sent), {"sent_at": now}), (set(released) - set(sent), {})):
        if keys:
            session.execute(
                update(OutboxDelivery)
                .where(col(OutboxDelivery.delivery_key).in_(sorted(keys)),
                       OutboxDelivery.holder == holder, col(OutboxDelivery.sent_at).is_(None))
                .values(holder=None, lease_until=None, **values)
                .execution_options(synchronize_session=False))


def line_pushes_between(session: Session, start: datetime, end: datetime) -> int:
    """LINE push messages sent in [start, end): a grouped delivery counts once, however many
    rows it carried; a row sent on its own counts once."""
    message = func.coalesce(OutboxMessage.delivery_key, OutboxMessage.idempotency_key)
    return session.exec(
        select(func.count(func.distinct(message)))
        .where(OutboxMessage.channel == Channel.LINE, OutboxMessage.status == OutboxStatus.SENT,
               OutboxMessage.sent_at >= start, OutboxMessage.sent_at < end)).one()


# --- Holding a channel's queue back while its service is down --------------------------------

def queued_on_channel(session: Session, channel: Channel,
                      before: datetime) -> list[tuple[int, int | None]]:
    """(row id, directive id or None) of queued rows of the channel due before ``before``."""
    from models.directive import DirectiveStep, TrackedItem

    directive_id = func.coalesce(OutboxMessage.directive_id, TrackedItem.directive_id,
                                 DirectiveStep.directive_id)
    query = (select(OutboxMessage.id, directive_id)
             .outerjoin(TrackedItem, col(TrackedItem.id) == OutboxMessage.item_id)
             .outerjoin(DirectiveStep, col(DirectiveStep.id) == OutboxMessage.step_id)
             .where(OutboxMessage.channel == channel, OutboxMessage.status == OutboxStatus.QUEUED,
                    OutboxMessage.next_try_at < before))
    return [(row_id, d_id) for row_id, d_id in session.exec(query)]


def postpone(session: Session, message_ids: list[int], next_try_at: datetime, note: str) -> int:
    """Move still-queued rows to ``next_try_at`` (never earlier than they were); returns how many."""
    moved = 0
    for start in range(0, len(message_ids), 500):
        result = session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(message_ids[start:start + 500]),
                   OutboxMessage.status == OutboxStatus.QUEUED,
                   OutboxMessage.next_try_at < next_try_at)
            .values(next_try_at=next_try_at, last_error=note))
        moved += result.rowcount
    return moved


def directive_of(session: Session, message: OutboxMessage) -> int | None:
    """The directive a message is about (its own, or through its item or its step), if any."""
    from models.directive import DirectiveStep, TrackedItem

    if message.directive_id is not None:
        return message.directive_id
    if message.item_id is not None:
        return session.exec(select(TrackedItem.directive_id)
                            .where(TrackedItem.id == message.item_id)).first()
    if message.step_id is not None:
        return session.exec(select(DirectiveStep.directive_id)
                            .where(DirectiveStep.id == message.step_id)).first()
    return None


# --- Read by the web app's outbox page (web/pages.py, web/api.py) ---------------------------

def messages_for_province(session: Session, province_code: str, *,
                          limit: int | None = None, directive_id: int | None = None,
                          events: bool = False) -> list[OutboxMessage]:
    """A province's messages, newest first: about its districts, to its people, or unaddressed.

    ``directive_id``: only the messages about that directive (its items, steps or itself).
    ``events``: the Prefect events about the province's directives too (never another's).
    """
    from models.directive import Directive
    from models.org import District
    from models.user import User

    districts = select(District.code).where(District.province_code == province_code)
    people = select(User.id).where(User.province_code == province_code)
    messages = to_people() & or_(col(OutboxMessage.district_code).in_(districts),
                                 col(OutboxMessage.user_id).in_(people),
                                 col(OutboxMessage.district_code).is_(None)
                                 & col(OutboxMessage.user_id).is_(None))
    if events:
        ours = select(Directive.id).where(Directive.province_code == province_code)
        messages = messages | (machine_rows() & col(OutboxMessage.directive_id).in_(ours))
    query = select(OutboxMessage).where(messages).order_by(col(OutboxMessage.id).desc())
    if directive_id is not None:
        query = query.where(or_(
            col(OutboxMessage.item_id).in_(
                select(TrackedItem.id).where(TrackedItem.directive_id == directive_id)),
            col(OutboxMessage.step_id).in_(
                select(DirectiveStep.id).where(DirectiveStep.directive_id == directive_id)),
            OutboxMessage.directive_id == directive_id))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


# --- The outbox page for people: a page of a province's messages, filtered ------------------

@dataclass(frozen=True)
class MessageFilter:
    """What the outbox page (and the API) narrows the province's messages to; None: any.

    ``created_from`` / ``created_before``: UTC instants (the page turns local days into them).
    """

    status: OutboxStatus | None = None
    channel: Channel | None = None
    district_code: str | None = None
    directive_id: int | None = None
    rung: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None


def _province_rows(province_code: str, events: bool):
    """The rows a province sees: about its districts, to its people, or unaddressed (and, with
    ``events``, the Prefect events of its directives)."""
    from models.directive import Directive
    from models.org import District
    from models.user import User

    districts = select(District.code).where(District.province_code == province_code)
    people = select(User.id).where(User.province_code == province_code)
    rows = to_people() & or_(col(OutboxMessage.district_code).in_(districts),
                             col(OutboxMessage.user_id).in_(people),
                             col(OutboxMessage.district_code).is_(None)
                             & col(OutboxMessage.user_id).is_(None))
    if events:
        ours = select(Directive.id).where(Directive.province_code == province_code)
        rows = rows | (machine_rows() & col(OutboxMessage.directive_id).in_(ours))
    return rows


def _about_directive(directive_id: int):
    """The rows about a directive: its items, its steps, or itself."""
    return or_(col(OutboxMessage.item_id).in_(
                   select(TrackedItem.id).where(TrackedItem.directive_id == directive_id)),
               col(OutboxMessage.step_id).in_(
                   select(DirectiveStep.id).where(DirectiveStep.directive_id == directive_id)),
               OutboxMessage.directive_id == directive_id)


def _filtered(where, wanted: MessageFilter):
    """``where`` narrowed by every filter that is set."""
    for column, value in ((OutboxMessage.status, wanted.status),
                          (OutboxMessage.channel, wanted.channel),
                          (OutboxMessage.district_code, wanted.district_code),
                          (OutboxMessage.rung, wanted.rung)):
        if value is not None:
            where = where & (column == value)
    if wanted.directive_id is not None:
        where = where & _about_directive(wanted.directive_id)
    if wanted.created_from is not None:
        where = where & (OutboxMessage.created_at >= wanted.created_from)
    if wanted.created_before is not None:
        where = where & (OutboxMessage.created_at < wanted.created_before)
    return where


def province_messages(session: Session, province_code: str, wanted: MessageFilter, *,
                      offset: int = 0, limit: int | None = None,
                      events: bool = False) -> tuple[list[OutboxMessage], int]:
    """A page of the province's messages that match, newest first, and how many match in all."""
    where = _filtered(_province_rows(province_code, events), wanted)
    total = session.exec(select(func.count()).select_from(OutboxMessage).where(where)).one()
    query = (select(OutboxMessage).where(where)
             .order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
             .offset(offset))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query)), total


def province_rungs(session: Session, province_code: str, events: bool = False) -> list[str]:
    """The rungs the province's messages name (what the page's rung filter offers)."""
    return sorted(r for r in session.exec(
        select(OutboxMessage.rung).distinct().where(
            _province_rows(province_code, events), col(OutboxMessage.rung).is_not(None))))


def directive_ids_of(session: Session, message_ids: Sequence[int]) -> dict[int, int]:
    """Message id → the directive it is about (its own, or its item's or its step's)."""
    if not message_ids:
        return {}
    directive_id = func.coalesce(OutboxMessage.directive_id, TrackedItem.directive_id,
                                 DirectiveStep.directive_id)
    query = (select(OutboxMessage.id, directive_id)
             .outerjoin(TrackedItem, col(TrackedItem.id) == OutboxMessage.item_id)
             .outerjoin(DirectiveStep, col(DirectiveStep.id) == OutboxMessage.step_id)
             .where(col(OutboxMessage.id).in_(list(message_ids))))
    return {row_id: d_id for row_id, d_id in session.exec(query) if d_id is not None}


def recipients_of(session: Session, user_ids: Iterable[int | None]):
    """User id → the person a page of messages is addressed to (one query)."""
    from models.user import User

    wanted = sorted({i for i in user_ids if i is not None})
    if not wanted:
        return {}
    return {u.id: u for u in session.exec(select(User).where(col(User.id).in_(wanted)))}
