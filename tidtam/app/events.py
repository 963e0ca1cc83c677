"""Every step an event: what happened to an item, a report or a directive, as a Prefect event.

Each use case that changes one (``tracking``, ``reporting``, ``directives``) calls ``emit`` in
its own transaction: the event is an outbox row on the ``prefect-event`` channel, so it leaves
only once the change is committed, never if it is rolled back, and is retried until the Prefect
server takes it (``notifications.prefect_events``). Its id is the uuid5 of the row's
idempotency key, so a redelivery is the same event, which Prefect stores once.

The contract (read by the automations of ``tidtam.ops.automations``):
resource ``tidtam.item.<id>`` | ``tidtam.report.<id>`` | ``tidtam.directive.<slug>``, labelled
with its Thai name, the directive's slug, the province and (not for a directive) the district;
related resources the district, the step (items only), the directive and the province, each
with its Thai name; the payload says who did it (``actor``) and what they wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from domain.runs import SEPARATOR
from models.directive import Directive, DirectiveStep, ItemFacts, StepKind, TrackedItem
from models.org import District, Province, districts_of
from models.outbox import Channel
from models.report import Report, ReportStatus
from notifications.base import delivery_key
from tidtam.app.outbox import Message, OutboxBatch

# Event rows have one destination, the configured Prefect server: this stands for it.
RECIPIENT = "prefect"


class EventName(StrEnum):
    ITEM_COMPLETED = "tidtam.item.completed"
    ITEM_WAIVED = "tidtam.item.waived"
    ITEM_REOPENED = "tidtam.item.reopened"
    REPORT_SUBMITTED = "tidtam.report.submitted"
    REPORT_RETURNED = "tidtam.report.returned"
    REPORT_ACCEPTED = "tidtam.report.accepted"
    REPORT_REOPENED = "tidtam.report.reopened"
    DIRECTIVE_LAUNCHED = "tidtam.directive.launched"
    DIRECTIVE_CLOSED = "tidtam.directive.closed"
    DIRECTIVE_AMENDED = "tidtam.directive.amended"


@dataclass(frozen=True)
class Event:
    """One event, as Prefect's ``POST /events`` takes it (``body``), keyed for the outbox."""

    name: EventName
    key: str
    occurred: datetime
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(delivery_key(self.key))

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "occurred": self.occurred.isoformat(), "event": str(self.name),
                "resource": self.resource, "related": self.related, "payload": self.payload}


def _related(resource_id: str, role: str, name: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role,
            "prefect.resource.name": name}


@dataclass(frozen=True)
class _Place:
    """The directive, its province and (for an item or a report) the district, as labelled."""

    directive: Directive
    province: Province
    district: District | None = None

    def labels(self) -> dict[str, str]:
        labels = {"tidtam.directive": self.directive.slug,
                  "tidtam.province": self.province.code}
        if self.district is not None:
            labels["tidtam.district"] = self.district.code
        return labels

    def related(self, step: DirectiveStep | None = None) -> list[dict[str, str]]:
        related = []
        if self.district is not None:
            related.append(_related(f"tidtam.district.{self.district.code}", "district",
                                    self.district.name_th))
        if step is not None:
            related.append(_related(f"tidtam.step.{self.directive.slug}.{step.code}", "step",
                                    step.title_th))
        directive = self.directive
        related.append(_related(f"tidtam.directive.{directive.slug}", "directive",
                                f"{directive.reference_no} {directive.title_th}"))
        related.append(_related(f"tidtam.province.{self.province.code}", "province",
                                self.province.name_th))
        return related


def _place(session: Session, directive_id: int, district_code: str | None) -> _Place:
    directive = session.get(Directive, directive_id)
    district = session.get(District, district_code) if district_code else None
    return _Place(directive, session.get(Province, directive.province_code), district)


def _step_label(district: District, step: DirectiveStep) -> str:
    return f"{district.name_th}{SEPARATOR}{step.code} {step.title_th}"


def item_event(session: Session, name: EventName, item: TrackedItem, *, actor: str,
               now: datetime, **payload: Any) -> Event:
    """An item's event; keyed by its new version (one event per change of the item)."""
    place = _place(session, item.directive_id, item.district_code)
    step = session.get(DirectiveStep, item.step_id)
    return _item_event(name, item.id, item.version, place, step, actor=actor, now=now,
                       **payload)


def item_event_of(name: EventName, facts: ItemFacts, version: int, *, actor: str,
                  now: datetime, **payload: Any) -> Event:
    """The same event from the names ``models.directive.item_facts`` read with the item (no
    further query); ``version``: the item's new one."""
    directive = SimpleNamespace(slug=facts.directive_slug, reference_no=facts.directive_reference_no,
                                title_th=facts.directive_title_th)
    province = SimpleNamespace(code=facts.directive_province_code, name_th=facts.province_name_th)
    district = SimpleNamespace(code=facts.district_code, name_th=facts.district_name_th)
    step = SimpleNamespace(code=facts.step_code, title_th=facts.step_title_th)
    return _item_event(name, facts.id, version, _Place(directive, province, district), step,
                       actor=actor, now=now, **payload)


def _item_event(name: EventName, item_id: int, version: int, place: _Place, step, *, actor: str,
                now: datetime, **payload: Any) -> Event:
    resource = {"prefect.resource.id": f"tidtam.item.{item_id}",
                "prefect.resource.name": _step_label(place.district, step), **place.labels()}
    return Event(name, f"event:{name}:{item_id}:{version}", now, resource,
                 place.related(step), {"actor": actor, "version": version, **payload})


def report_event(session: Session, name: EventName, report: Report, *, actor: str,
                 now: datetime, **payload: Any) -> Event:
    """A report's event; keyed by its new version. An acceptance says whether it was the last
    one the directive waited for (``tidtam.all_accepted``), for the compile automation."""
    place = _place(session, report.directive_id, report.district_code)
    step = session.exec(select(DirectiveStep).where(
        DirectiveStep.directive_id == report.directive_id, DirectiveStep.kind == StepKind.REPORT)
        .order_by(DirectiveStep.order)).first()
    label = (_step_label(place.district, step) if step is not None
             else f"{place.district.name_th}{SEPARATOR}{place.directive.reference_no}")
    resource = {"prefect.resource.id": f"tidtam.report.{report.id}",
                "prefect.resource.name": label, **place.labels()}
    if name == EventName.REPORT_ACCEPTED:
        resource["tidtam.all_accepted"] = "true" if all_accepted(session, place.directive) else "false"
    return Event(name, f"event:{name}:{report.id}:{report.version}", now, resource,
                 place.related(), {"actor": actor, "version": report.version, **payload})


def directive_event(session: Session, name: EventName, directive: Directive, *, actor: str,
                    now: datetime, **payload: Any) -> Event:
    """A directive's launch, closing or amendment: one event for the whole directive, never one
    per item. An amendment is keyed by the revision it applied (a letter is amended again and
    again, launched and closed once)."""
    place = _place(session, directive.id, None)
    resource = {"prefect.resource.id": f"tidtam.directive.{directive.slug}",
                "prefect.resource.name": f"{directive.reference_no} {directive.title_th}",
                **place.labels()}
    key = f"event:{name}:{directive.slug}"
    if name == EventName.DIRECTIVE_AMENDED:
        key += f":{directive.revision}"
    return Event(name, key, now, resource, place.related(),
                 {"actor": actor, "revision": directive.revision, **payload})


def all_accepted(session: Session, directive: Directive) -> bool:
    """Every district the directive tracks has its report accepted (as the session sees it)."""
    session.flush()
    expected = session.exec(
        select(func.count(func.distinct(TrackedItem.district_code)))
        .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
        .where(TrackedItem.directive_id == directive.id,
               DirectiveStep.kind == StepKind.REPORT)).one()
    if not expected:
        expected = len(districts_of(session, directive.province_code))
    accepted = session.exec(select(func.count()).select_from(Report).where(
        Report.directive_id == directive.id, Report.status == ReportStatus.ACCEPTED)).one()
    return accepted >= expected > 0


def emit(session: Session, event: Event, *, report_id: int | None = None,
         directive_id: int | None = None) -> bool:
    """Put the event in the outbox, in the caller's transaction; False when its key is there.
    An outbox row like any other (``OutboxBatch``), keyed by the event, sent from when it
    occurred, with no rung. ``directive_id``: the event's directive, when the caller has it
    (else it is read by the slug the event names)."""
    resource = event.resource
    if directive_id is None:
        directive_id = session.exec(select(Directive.id).where(
            Directive.slug == resource["tidtam.directive"])).one()
    batch = OutboxBatch(session, event.occurred)
    batch.add(Channel.PREFECT_EVENT, Message.written(
                  str(event.name), json.dumps(event.body(), ensure_ascii=False)),
              address=RECIPIENT, recipient_ref=RECIPIENT, who=RECIPIENT, key=event.key,
              rung=None, occurrence=None, subject_ref=None, send_at=event.occurred,
              district_code=resource.get("tidtam.district"), directive_id=directive_id,
              report_id=report_id)
    return batch.write().enqueued == 1


def event_of(body: str) -> dict[str, Any]:
    """An event row's body as the event it holds."""
    return json.loads(body)
