"""Transactional outbox: jobs written in the same transaction as the data they are about.

A webhook stores its interaction and an outbox row together, then tries to enqueue the RQ job.
If Redis is down the row stays pending and the sweeper enqueues it later, so nothing accepted
is ever lost. The job marks its row done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigID, JSONType, UTCDateTime, utcnow


class OutboxJob(Base):
    __tablename__ = "outbox_jobs"
    __table_args__ = (Index("ix_outbox_jobs_pending", "done_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The RQ job carrying this row (several enrichment rows share one batch job).
    rq_job_id: Mapped[str | None] = mapped_column(String(80))
