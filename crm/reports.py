"""Reports marketers and managers read: revenue by channel or campaign, and how handoffs went.

Each report is one aggregate query over an index-friendly range (won deals by close date,
handoffs by creation date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm.deals import load_pipeline
from crm.models import Deal, Handoff, HandoffStatus, User

REVENUE_GROUPS = {
    ("channel", "first"): Deal.first_touch_channel,
    ("channel", "last"): Deal.last_touch_channel,
    ("campaign", "first"): Deal.first_touch_campaign_id,
    ("campaign", "last"): Deal.last_touch_campaign_id,
}


class ReportError(ValueError):
    """A bad report parameter (answered with 400)."""


@dataclass(frozen=True)
class RevenueRow:
    key: str | int | None  # the channel or campaign id; None: unknown
    currency: str
    deals: int
    revenue: Decimal

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "currency": self.currency,
            "deals": self.deals,
            "revenue": str(self.revenue),
        }


def revenue(
    session: Session, *, by: str, touch: str, start: datetime, end: datetime
) -> list[RevenueRow]:
    """Revenue won in [start, end) by first- or last-touch channel or campaign, per currency
    (amounts in different currencies are never added up), largest first."""
    key = REVENUE_GROUPS.get((by, touch))
    if key is None:
        raise ReportError("by must be channel or campaign, touch first or last")
    if start >= end:
        raise ReportError("from must be before to")
    won = sorted(load_pipeline().won)
    total = func.sum(Deal.amount)
    rows = session.execute(
        select(key, Deal.currency, func.count(), total)
        .where(Deal.stage.in_(won), Deal.closed_at >= start, Deal.closed_at < end)
        .group_by(key, Deal.currency)
        .order_by(total.desc())
    )
    return [
        RevenueRow(k, currency, count, Decimal(amount).quantize(Decimal("0.01")))
        for k, currency, count, amount in rows
    ]


def handoffs(session: Session, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per rep: handoffs received, touched before the deadline, escalated, rejected (by reason
    code), and speed-to-lead (mean and worst, seconds)."""
    if start >= end:
        raise ReportError("from must be before to")
    in_time = case((Handoff.first_touch_at <= Handoff.due_at, 1), else_=0)
    escalated = case((Handoff.status == HandoffStatus.ESCALATED.value, 1), else_=0)
    rejected = case((Handoff.status == HandoffStatus.REJECTED.value, 1), else_=0)
    rows = session.execute(
        select(
            Handoff.rep_id,
            User.name,
            func.count(),
            func.sum(in_time),
            func.sum(escalated),
            func.sum(rejected),
            func.avg(Handoff.speed_to_lead_s),
            func.max(Handoff.speed_to_lead_s),
        )
        .outerjoin(User, User.id == Handoff.rep_id)
        .where(Handoff.created_at >= start, Handoff.created_at < end)
        .group_by(Handoff.rep_id, User.name)
        .order_by(func.count().desc())
    ).all()
    reasons: dict[int | None, dict[str, int]] = {}
    for rep_id, reason, count in session.execute(
        select(Handoff.rep_id, Handoff.reject_reason, func.count())
        .where(
            Handoff.created_at >= start,
            Handoff.created_at < end,
            Handoff.reject_reason.is_not(None),
        )
        .group_by(Handoff.rep_id, Handoff.reject_reason)
    ):
        reasons.setdefault(rep_id, {})[reason] = count
    return [
        {
            "rep_id": rep_id,
            "rep_name": name,
            "handoffs": count,
            "touched_in_time": int(in_time_count or 0),
            "sla_met_rate": round((in_time_count or 0) / count, 3) if count else None,
            "escalated": int(escalated_count or 0),
            "rejected": int(rejected_count or 0),
            "rejected_by_reason": reasons.get(rep_id, {}),
            "speed_to_lead_avg_s": round(float(avg), 1) if avg is not None else None,
            "speed_to_lead_max_s": worst,
        }
        for rep_id, name, count, in_time_count, escalated_count, rejected_count, avg, worst in rows
    ]
