"""Reports API: revenue by channel or campaign, handoff outcomes per rep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import request
from sqlalchemy.orm import Session

from crm import reports
from crm.api import api
from crm.api.auth import api_view
from crm.models import Role
from crm.models.base import utcnow

READERS = frozenset({Role.MARKETER, Role.ADMIN})
DEFAULT_DAYS = 90


def _range() -> tuple[datetime, datetime]:
    """``from`` and ``to`` (ISO dates or times; a date means its midnight UTC; ``to`` is
    exclusive). Default: the last 90 days."""

    def parse(name: str, default: datetime) -> datetime:
        raw = request.args.get(name)
        if not raw:
            return default
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise reports.ReportError(f"{name} must be an ISO 8601 date or time") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    end = parse("to", utcnow())
    return parse("from", end - timedelta(days=DEFAULT_DAYS)), end


@api.get("/reports/revenue")
@api_view(READERS)
def revenue_report(*, session: Session):  # type: ignore[no-untyped-def]
    """Won revenue in [from, to) by ``by`` = channel | campaign, ``touch`` = first | last."""
    start, end = _range()
    by = request.args.get("by", "channel")
    touch = request.args.get("touch", "first")
    rows = reports.revenue(session, by=by, touch=touch, start=start, end=end)
    return {
        "by": by,
        "touch": touch,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "data": [row.as_json() for row in rows],
    }


@api.get("/reports/handoffs")
@api_view(READERS)
def handoff_report(*, session: Session):  # type: ignore[no-untyped-def]
    """Per rep: handoffs, SLA met, escalations, rejections by reason, speed-to-lead."""
    start, end = _range()
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "data": reports.handoffs(session, start=start, end=end),
    }
