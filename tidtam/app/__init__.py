"""Use cases, one module per capability (tracking, boards, reporting, national, escalation, digest,
alerts, LINE linking, accounts, org tree): they take a session and ``now`` and change or read
the database through models. May import infra, notifications, models and domain."""
