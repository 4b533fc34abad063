"""Deals API: the pipeline, list, create, read, update (stage, amount...), delete."""

from __future__ import annotations

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.access import visible_contacts
from crm.api import api
from crm.api.auth import api_view, json_body
from crm.api.contacts import changeable_contact
from crm.api.ids import body_id, query_id
from crm.api.serializers import deal_json
from crm.contact_search import FilterError
from crm.deals import (
    DealError,
    can_change,
    can_see,
    close_date,
    deal_owner,
    load_pipeline,
    move_stage,
    open_deal,
    parse_amount,
    parse_currency,
)
from crm.models import Contact, Deal, Role

WORKERS = frozenset({Role.REP, Role.ADMIN})
FIELDS = ("title", "amount", "currency", "stage", "lost_reason", "owner_id", "expected_close_on")


class DealNotFound(LookupError):
    pass


def _deal(session: Session, deal_id: int, *, change: bool) -> Deal:
    deal = session.get(Deal, deal_id)
    allowed = deal is not None and (can_change if change else can_see)(
        g.user, deal, session.get_one(Contact, deal.contact_id)
    )
    if not allowed:
        raise DealNotFound(f"deal {deal_id} not found")
    assert deal is not None
    return deal


@api.get("/pipeline")
@api_view()
def pipeline(*, session: Session):  # type: ignore[no-untyped-def]
    config = load_pipeline()
    return {
        "stages": [
            {
                "name": s,
                "outcome": "won" if s in config.won else "lost" if s in config.lost else None,
            }
            for s in config.stages
        ],
        "lost_reasons": list(config.lost_reasons),
        "default_currency": config.default_currency,
    }


@api.get("/deals")
@api_view()
def list_deals(*, session: Session):  # type: ignore[no-untyped-def]
    """Newest first; filters: stage, owner (id or "me"), contact_id."""
    query = select(Deal).order_by(Deal.id.desc()).limit(200)
    if g.user.role == Role.REP:
        theirs = Deal.owner_id == g.user.id
        unowned = Deal.owner_id.is_(None) & Deal.contact_id.in_(
            select(Contact.id).where(visible_contacts(g.user))
        )
        query = query.where(theirs | unowned)
    if stage := request.args.get("stage"):
        if stage not in load_pipeline().stages:
            raise FilterError(f"stage must be one of {', '.join(load_pipeline().stages)}")
        query = query.where(Deal.stage == stage)
    if owner := request.args.get("owner"):
        owner_id = g.user.id if owner == "me" else query_id(owner, "owner (an id or 'me')")
        query = query.where(Deal.owner_id == owner_id)
    if (contact_id := query_id(request.args.get("contact_id"), "contact_id")) is not None:
        query = query.where(Deal.contact_id == contact_id)
    return {"data": [deal_json(d) for d in session.scalars(query)]}


@api.post("/deals")
@api_view(WORKERS)
def create_deal(*, session: Session):  # type: ignore[no-untyped-def]
    body = json_body()
    contact = changeable_contact(session, body_id(body, "contact_id"), g.user)
    stage = body.get("stage")
    if stage is not None and not isinstance(stage, str):
        raise DealError("stage must be a string")
    title = body.get("title")
    if not isinstance(title, str):
        raise DealError("title (string) is required")
    if stage in load_pipeline().lost:
        raise DealError("open a deal in an open or won stage; lose it with an update")
    deal = open_deal(
        session,
        contact,
        title=title,
        amount=body.get("amount", 0),
        currency=body.get("currency"),
        stage=stage,
        # Absent: the contact's owner. null: nobody's (the unassigned queue).
        owner_id=deal_owner(session, g.user, body["owner_id"])
        if "owner_id" in body
        else contact.owner_id,
        expected_close_on=close_date(body.get("expected_close_on")),
        actor=f"user:{g.user.id}",
    )
    return deal_json(deal), 201


@api.get("/deals/<id:deal_id>")
@api_view()
def show_deal(deal_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return deal_json(_deal(session, deal_id, change=False))


@api.patch("/deals/<id:deal_id>")
@api_view(WORKERS)
def update_deal(deal_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    deal = _deal(session, deal_id, change=True)
    body = json_body()
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise DealError(f"cannot change {', '.join(unknown)}; editable: {', '.join(FIELDS)}")
    if "title" in body:
        title = body["title"]
        if not isinstance(title, str) or not title.strip() or len(title) > 200:
            raise DealError("title must be a non-empty string of at most 200 characters")
        deal.title = title.strip()
    if "amount" in body:
        deal.amount = parse_amount(body["amount"])
    if "currency" in body:
        deal.currency = parse_currency(body["currency"])
    if "owner_id" in body:
        deal.owner_id = deal_owner(session, g.user, body["owner_id"])
    if "expected_close_on" in body:
        deal.expected_close_on = close_date(body["expected_close_on"])
    if "stage" in body:
        if not isinstance(body["stage"], str):
            raise DealError("stage must be a string")
        move_stage(
            session,
            deal,
            str(body["stage"]),
            actor=f"user:{g.user.id}",
            lost_reason=body.get("lost_reason"),
        )
    elif "lost_reason" in body:
        raise DealError("lost_reason goes with stage")
    session.flush()
    return deal_json(deal)


@api.delete("/deals/<id:deal_id>")
@api_view(WORKERS)
def delete_deal(deal_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    session.delete(_deal(session, deal_id, change=True))
    return "", 204
