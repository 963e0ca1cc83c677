"""A report as evidence: which steps a district's report proves, and what that does to each step.

The directive says which steps its report proves (``form.proves`` in the YAML,
``domain.directive.ProofRule``): A3 of Sa Kaeo's letter, "at least one activity of at least 20
participants, 1–31 July 2567", is proved by any session of the report that meets it. Submitting
the report completes such a step "from the report", with the session as its evidence.

What a later submit does (``step_change``), so that work is never taken from a district by
accident and the board never keeps a claim the report no longer makes:

- a step done by hand (marked with a note) or waived stays as it is;
- an open step the report proves is completed from the report;
- a step done from the report stays done while the report still proves it (its evidence is the
  new report's session), and goes back to open at the submit whose report no longer proves it.

Returning or reopening a report changes nothing here: the sessions are still what the district
reported until it submits again (only the report step itself goes back to open).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from domain.directive import ProofRule

StepChange = Literal["complete", "refresh", "reopen", "keep"]


class HeldSession(Protocol):
    """What a report's session must say to prove a step (``domain.report.SessionEntry`` does)."""

    key: str
    held_on: date | None
    participants: Mapping[str, int | None]


@dataclass(frozen=True)
class Proof:
    """A step proved: by which session (its key and its number on the form), held when, by how
    many, and how many sessions of the report qualified in all."""

    step: str
    session_key: str
    session_number: int
    held_on: date
    participants: int
    qualifying_sessions: int

    def as_evidence(self, report_id: int) -> dict:
        """The item's ``evidence``: where the board links to (the report's session)."""
        return {"report_id": report_id, "step": self.step, "session_key": self.session_key,
                "session_number": self.session_number, "held_on": self.held_on.isoformat(),
                "participants": self.participants, "qualifying_sessions": self.qualifying_sessions}

    @classmethod
    def from_evidence(cls, evidence: Mapping[str, object], step: str) -> Proof:
        """An item's stored ``evidence`` read back (its date a date again), for the pages."""
        return cls(step, str(evidence["session_key"]), int(evidence["session_number"]),
                   date.fromisoformat(str(evidence["held_on"])), int(evidence["participants"]),
                   int(evidence.get("qualifying_sessions", 1)))


def head_count(session: HeldSession) -> int | None:
    """Everyone counted in the session; None when a count could not be read."""
    counts = list(session.participants.values())
    return None if any(c is None for c in counts) else sum(counts)


def qualifies(rule: ProofRule, session: HeldSession) -> bool:
    """Held within the rule's period, with at least its head count."""
    heads, period = head_count(session), rule.period
    if session.held_on is None or heads is None or period is None:
        return False
    return period.start <= session.held_on <= period.end and heads >= (rule.min_participants or 1)


def prove(rule: ProofRule, sessions: Sequence[HeldSession]) -> Proof | None:
    """The proof of the rule's step (its first qualifying session), or None if too few qualify."""
    qualifying = [(n, s) for n, s in enumerate(sessions, start=1) if qualifies(rule, s)]
    if len(qualifying) < rule.min_sessions:
        return None
    number, first = qualifying[0]
    return Proof(rule.step, first.key, number, first.held_on, head_count(first), len(qualifying))


def proofs(rules: Sequence[ProofRule], sessions: Sequence[HeldSession]) -> dict[str, Proof | None]:
    """Each rule's step and its proof (None: the report does not prove it)."""
    return {rule.step: prove(rule, sessions) for rule in rules}


def step_change(status: str, from_report: bool, proved: bool) -> StepChange:
    """What a submitted report does to a step it may prove (the rules in the module's text).

    ``status``: the item's (open, done, waived); ``from_report``: it was completed by a report.
    """
    if status == "open":
        return "complete" if proved else "keep"
    if status != "done" or not from_report:
        return "keep"  # waived, or done by hand: the district's own word stands
    return "refresh" if proved else "reopen"
