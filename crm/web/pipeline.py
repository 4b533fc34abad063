"""The pipeline board: deals by stage, with counts and totals per currency, and moving a deal
(buttons on each card, or drag and drop enhanced by ``static/js/pipeline.js``).

The board stays bounded: each open stage shows its most recent deals, won and lost only what
closed lately; counts and totals are computed in SQL over every deal of a column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import and_, case, func, null, or_, select, true
from sqlalchemy.orm import Session

from crm.access import sees_contact, visible_contacts
from crm.deals import DealError, can_change, load_pipeline, move_stage
from crm.ids import MAX_ID
from crm.models import Contact, Deal, Role, User
from crm.models.base import utcnow
from crm.web import web
from crm.web.auth import ALL_ROLES, WORKERS, page

PER_STAGE = 50  # cards shown per column: a board of 250 stays quick to render and to scan
CLOSED_DAYS = 30  # won and lost columns: deals closed this recently
# What a card shows: plain rows, not ORM objects (a board holds hundreds of cards).
CARD = (
    Deal.id,
    Deal.contact_id,
    Deal.title,
    Deal.stage,
    Deal.amount,
    Deal.currency,
    Deal.expected_close_on,
    Deal.closed_at,
    Deal.lost_reason,
    User.name.label("owner_name"),
)


def _contact_name(user: User) -> Any:
    """The card's contact name, only where the user may see the contact: a rep can own a deal
    on another rep's contact, whose page is a 404 for them (``crm.access``)."""
    if user.role != Role.REP:
        return Contact.name.label("contact_name")
    return case((visible_contacts(user), Contact.name), else_=null()).label("contact_name")


def visible_deals(user: User) -> Any:
    """A WHERE clause for the deals ``user`` may see: ``crm.deals.can_see`` in SQL (the API's
    deal list uses the same)."""
    if user.role != Role.REP:
        return true()
    theirs = Deal.owner_id == user.id
    unowned = and_(
        Deal.owner_id.is_(None),
        Deal.contact_id.in_(select(Contact.id).where(visible_contacts(user))),
    )
    return or_(theirs, unowned)


@dataclass
class Column:
    stage: str
    outcome: str | None  # "won", "lost" or None (open)
    cards: list[Any] = field(default_factory=list)  # rows of CARD
    count: int = 0
    totals: list[tuple[str, Decimal]] = field(default_factory=list)  # (currency, sum)

    @property
    def more(self) -> int:
        return max(0, self.count - len(self.cards))


def id_url(endpoint: str, key: str, **values: str) -> Callable[[int], str]:
    """``url_for(endpoint, key=id, **values)`` for any id, built once: a board renders hundreds
    of links, and ``url_for`` is most of a card's cost."""
    built = url_for(endpoint, **{key: MAX_ID}, **values)
    prefix, found, suffix = built.partition(str(MAX_ID))
    assert found, built
    return lambda value: f"{prefix}{int(value)}{suffix}"


def board(session: Session, user: User) -> dict[str, Any]:
    """The columns: one query per stage for its cards, one for every column's totals."""
    pipeline = load_pipeline()
    since = utcnow() - timedelta(days=CLOSED_DAYS)
    closed = pipeline.won | pipeline.lost
    columns = {
        stage: Column(
            stage, "won" if stage in pipeline.won else "lost" if stage in pipeline.lost else None
        )
        for stage in pipeline.stages
    }
    seen = visible_deals(user)
    for stage, column in columns.items():
        query = (
            select(*CARD, _contact_name(user))
            .join(Contact, Contact.id == Deal.contact_id)
            .outerjoin(User, User.id == Deal.owner_id)
            .where(Deal.stage == stage, seen)
        )
        if stage in closed:
            query = query.where(Deal.closed_at >= since).order_by(
                Deal.closed_at.desc(), Deal.id.desc()
            )
        else:
            query = query.order_by(Deal.id.desc())
        column.cards = list(session.execute(query.limit(PER_STAGE)))
    in_view = or_(
        Deal.stage.in_(pipeline.open_stages),
        and_(Deal.stage.in_(sorted(closed)), Deal.closed_at >= since),
    )
    totals = session.execute(
        select(Deal.stage, Deal.currency, func.count(), func.sum(Deal.amount))
        .where(in_view, seen)
        .group_by(Deal.stage, Deal.currency)
        .order_by(Deal.stage, Deal.currency)
    )
    for stage, currency, count, amount in totals:
        column = columns[stage]
        column.count += count
        column.totals.append((currency, Decimal(amount or 0).quantize(Decimal("0.01"))))
    return {
        "columns": list(columns.values()),
        "pipeline": pipeline,
        "movable": user.role in WORKERS,
        # Per stage, where its cards' buttons move them: other open or won stages, and lost.
        "targets": {
            stage: (
                [s for s in pipeline.stages if s != stage and s not in pipeline.lost],
                [s for s in pipeline.stages if s != stage and s in pipeline.lost],
            )
            for stage in pipeline.stages
        },
        "today": utcnow().date(),
        "contact_url": id_url("web.contact", "contact_id"),
        "move_url": id_url("web.deal_stage", "deal_id"),
        "lost_urls": {s: id_url("web.deal_lost", "deal_id", stage=s) for s in pipeline.lost},
        "per_stage": PER_STAGE,
        "closed_days": CLOSED_DAYS,
    }


@web.get("/pipeline")
@page(ALL_ROLES)
def pipeline(*, session: Session):  # type: ignore[no-untyped-def]
    return render_template("web/pipeline.html", **board(session, g.user))


def _changeable_deal(session: Session, deal_id: int) -> Deal:
    """The deal if the user may change it (``crm.deals.can_change``, as the API); else 404."""
    deal = session.get(Deal, deal_id)
    if deal is None or not can_change(g.user, deal, session.get_one(Contact, deal.contact_id)):
        abort(404, "No such deal.")
    return deal


@web.get("/deals/<id:deal_id>/lost")
@page(WORKERS)
def deal_lost(deal_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Asks why a deal was lost: a card's "lost" button without JavaScript (with it, a dialog
    on the board asks)."""
    deal = _changeable_deal(session, deal_id)
    config = load_pipeline()
    stage = request.args.get("stage", "")
    return render_template(
        "web/pipeline_lost.html",
        deal=deal,
        contact=session.get_one(Contact, deal.contact_id),
        contact_visible=sees_contact(g.user, session.get_one(Contact, deal.contact_id)),
        stage=stage if stage in config.lost else sorted(config.lost)[0],
        pipeline=config,
    )


@web.post("/deals/<id:deal_id>/stage")
@page(WORKERS)
def deal_stage(deal_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Move a deal, as the API's ``PATCH /deals/<id>`` with ``stage`` (and ``lost_reason``).

    A plain form post is answered with a redirect to the board; an htmx one (a card's buttons or
    a drop) with the board itself, 422 when the move was refused."""
    deal = _changeable_deal(session, deal_id)
    stage = request.form.get("stage", "")
    try:
        with session.begin_nested():
            moved = move_stage(
                session,
                deal,
                stage,
                actor=f"user:{g.user.id}",
                lost_reason=request.form.get("lost_reason") or None,
            )
        status = 200
        notice = (
            "success",
            f"Moved “{deal.title}” to {stage}." if moved else f"“{deal.title}” is in {stage}.",
        )
    except DealError as exc:
        status, notice = 422, ("error", str(exc))
    if request.headers.get("HX-Request"):
        context = board(session, g.user)
        return render_template("web/pipeline_board.html", notice=notice, **context), status
    flash(notice[1], notice[0])
    return redirect(url_for("web.pipeline", _anchor=f"deal-{deal_id}"))
