"""SQLModel tables and their queries; no business rules live here.
May import domain only."""

from models.audit import AuditEntry
from models.calendar_feed import CalendarFeed, FeedScope
from models.directive import Directive, DirectiveStep, ItemStatus, StepKind, TrackedItem
from models.line import LineContact, LineGroup, LineLinkCode, LineWebhookEvent
from models.org import District, Province
from models.outbox import Channel, OutboxMessage, OutboxStatus
from models.report import ProvincialReport, Report, ReportPhoto, ReportStatus
from models.sessions import LoginSession, ResetLink, SignInFailure
from models.user import User

__all__ = [
    "AuditEntry", "CalendarFeed", "Channel", "Directive", "DirectiveStep", "District", "FeedScope",
    "ItemStatus",
    "LineContact", "LineGroup", "LineLinkCode", "LineWebhookEvent", "LoginSession", "OutboxMessage",
    "OutboxStatus", "Province", "ProvincialReport", "Report", "ReportPhoto", "ReportStatus",
    "ResetLink", "SignInFailure", "StepKind", "TrackedItem", "User",
]
