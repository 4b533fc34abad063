"""Timeline entries for sequences: every enrolment, step and exit, written in bulk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from crm.models import Direction, Interaction


def entry(
    contact_id: int, body: str, now: datetime, *, sequence_id: int, what: str, **meta: Any
) -> dict[str, Any]:
    """One system entry (``meta.event`` is ``sequence``; ``meta.what`` enrolled, step or
    exited)."""
    return {
        "contact_id": contact_id,
        "channel": "system",
        "direction": Direction.INTERNAL.value,
        "body": body[:2000],
        "meta": {"event": "sequence", "what": what, "sequence_id": sequence_id, **meta},
        "created_at": now,
    }


def write(session: Session, entries: list[dict[str, Any]]) -> None:
    """Insert the entries in one executemany."""
    if entries:
        session.execute(insert(Interaction), entries)
