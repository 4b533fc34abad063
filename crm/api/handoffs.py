"""Handoffs API: a rep's hot leads, accept, reject with a reason code."""

from __future__ import annotations

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view, json_body
from crm.api.serializers import handoff_json
from crm.contact_search import FilterError
from crm.handoffs import accept, reject
from crm.models import Handoff, HandoffStatus, Role

WORKERS = frozenset({Role.REP, Role.ADMIN})


@api.get("/handoffs")
@api_view(WORKERS)
def list_handoffs(*, session: Session):  # type: ignore[no-untyped-def]
    """Newest first; a rep sees their own, an admin everyone's. ``?status=open`` filters."""
    query = select(Handoff).order_by(Handoff.id.desc()).limit(200)
    status = request.args.get("status")
    if status:
        if status not in {s.value for s in HandoffStatus}:
            raise FilterError(f"status must be one of {', '.join(s.value for s in HandoffStatus)}")
        query = query.where(Handoff.status == status)
    if g.user.role != Role.ADMIN:
        query = query.where(Handoff.rep_id == g.user.id)
    return {"data": [handoff_json(h) for h in session.scalars(query)]}


@api.post("/handoffs/<id:handoff_id>/accept")
@api_view(WORKERS)
def accept_handoff(handoff_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return handoff_json(accept(session, handoff_id, g.user))


@api.post("/handoffs/<id:handoff_id>/reject")
@api_view(WORKERS)
def reject_handoff(handoff_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    reason = json_body().get("reason")  # checked after ownership: another's handoff is a 404
    successor = reject(session, handoff_id, g.user, reason if isinstance(reason, str) else "")
    rejected = session.get_one(Handoff, handoff_id)
    return {**handoff_json(rejected), "successor": handoff_json(successor) if successor else None}
