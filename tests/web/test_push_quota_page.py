"""The coordinator's outbox page shows the month's LINE pushes against the quota."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from models.outbox import Channel, OutboxMessage, OutboxStatus
from tests.web.helpers import CLOCK, signed_in
from tidtam.app.outbox import push_quota


def sent_line(engine, key: str, delivery: str | None = None) -> None:
    with Session(engine) as session:
        session.add(OutboxMessage(idempotency_key=key, channel=Channel.LINE,
                                  recipient="U" + "0" * 32, subject="s", body="b",
                                  status=OutboxStatus.SENT, next_try_at=CLOCK, created_at=CLOCK,
                                  sent_at=CLOCK - timedelta(minutes=5), delivery_key=delivery))
        session.commit()


def test_quota_block_counts_messages_not_rows(client, engine, monkeypatch):
    from tidtam.infra.settings import get_settings

    monkeypatch.setenv("TIDTAM_LINE_MONTHLY_QUOTA", "4")
    monkeypatch.setenv("TIDTAM_LINE_QUOTA_THRESHOLD", "0.75")
    get_settings.cache_clear()
    try:
        sent_line(engine, "a", delivery="daily|x")
        sent_line(engine, "b", delivery="daily|x")  # the same Flex push as a
        sent_line(engine, "c")
        with Session(engine) as session:
            quota = push_quota(session, CLOCK)
        assert (quota.count, quota.quota, quota.fallback_active) == (2, 4, False)
        signed_in(client, "coordinator")
        page = client.get("/outbox")
        assert page.status_code == 200
        assert 'data-count="2"' in page.text and "แล้ว 2 จาก 4 ข้อความ (50%)" in page.text
        assert "เกินเกณฑ์" not in page.text

        sent_line(engine, "d")
        page = client.get("/outbox")
        assert "แล้ว 3 จาก 4 ข้อความ (75%)" in page.text
        assert "เกินเกณฑ์ 75% แล้ว" in page.text and 'class="push-quota warning"' in page.text
    finally:
        get_settings.cache_clear()
