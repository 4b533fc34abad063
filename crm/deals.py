"""Deals through a configurable pipeline, with the contact's attribution and lifecycle kept in step.

Opening a deal makes its contact an opportunity; winning it makes them a customer (forward moves,
``crm.lifecycle``). A lost deal needs a reason code. Each deal copies the contact's first- and
last-touch channel and campaign when it opens, and the last touch again when it is won: the
revenue report reads only this table.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from crm import lifecycle
from crm.access import sees_contact
from crm.ids import is_id
from crm.models import Contact, Deal, Direction, LifecycleStage, Role, User
from crm.models.base import utcnow
from crm.timeline import add_entry
from crm.users import takes_work

DEFAULT_PIPELINE = Path(__file__).parent / "config" / "pipeline.yaml"
MAX_AMOUNT = Decimal("999999999999.99")  # Numeric(14, 2)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class DealError(ValueError):
    """The deal or the change is not valid (answered with 422)."""


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[str, ...]
    won: frozenset[str]
    lost: frozenset[str]
    lost_reasons: tuple[str, ...]
    default_currency: str

    @classmethod
    def parse(cls, raw: object) -> Pipeline:
        if not isinstance(raw, dict) or not isinstance(raw.get("stages"), list):
            raise DealError("the pipeline needs a 'stages' list")
        stages, won, lost = [], set(), set()
        for spec in raw["stages"]:
            name = str(spec["name"]) if isinstance(spec, dict) and "name" in spec else None
            if not name:
                raise DealError(f"bad pipeline stage {spec!r}")
            stages.append(name)
            outcome = spec.get("outcome")
            if outcome == "won":
                won.add(name)
            elif outcome == "lost":
                lost.add(name)
        if not won or not lost or len(set(stages)) != len(stages):
            raise DealError("the pipeline needs unique stages, one won and one lost at least")
        return cls(
            tuple(stages),
            frozenset(won),
            frozenset(lost),
            tuple(str(r) for r in raw.get("lost_reasons", ["other"])),
            str(raw.get("default_currency", "USD")),
        )

    @property
    def open_stages(self) -> tuple[str, ...]:
        return tuple(s for s in self.stages if s not in self.won | self.lost)


@functools.cache
def load_pipeline(path: Path | None = None) -> Pipeline:
    configured = os.environ.get("PIPELINE_FILE", "").strip()
    path = path or (Path(configured) if configured else DEFAULT_PIPELINE)
    return Pipeline.parse(yaml.safe_load(path.read_text(encoding="utf-8")))


def parse_amount(value: object) -> Decimal:
    """A non-negative amount with at most two decimals, from a JSON number or string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DealError("amount must be a number, e.g. 1250.50")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise DealError("amount must be a number, e.g. 1250.50") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise DealError(f"amount must be between 0 and {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal("0.01")):
        raise DealError("amount has at most two decimals")
    return amount.quantize(Decimal("0.01"))


def parse_currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value.upper()):
        raise DealError("currency must be an ISO 4217 code, e.g. GHS, KES, NGN, USD")
    return value.upper()


def close_date(value: object) -> date | None:
    """An expected close date from ``YYYY-MM-DD`` (or None)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DealError("expected_close_on must be a date, YYYY-MM-DD") from None


def deal_owner(session: Session, user: User, value: object) -> int | None:
    """Who ``user`` may make a deal's owner: an admin anyone active who sells, a rep
    themselves or nobody."""
    if value is not None and not is_id(value):
        raise DealError("owner_id must be a user id or null")
    if user.role != Role.ADMIN and value not in (user.id, None):
        raise DealError("a rep can own a deal or leave it unowned, not give it to others")
    if value is not None and not takes_work(session, value):  # type: ignore[arg-type]
        raise DealError(f"user {value} is not an active rep or admin")
    return value  # type: ignore[return-value]


def _note(session: Session, deal: Deal, body: str, actor: str, **meta: Any) -> None:
    add_entry(
        session=session,
        contact_id=deal.contact_id,
        channel="system",
        direction=Direction.INTERNAL,
        body=body,
        meta={"event": "deal", "deal_id": deal.id, "actor": actor, **meta},
    )


def _forward(session: Session, contact: Contact, stage: LifecycleStage, actor: str, why: str):  # type: ignore[no-untyped-def]
    """Move the contact forward to ``stage`` if it is behind; never back."""
    order = lifecycle.ORDER
    current = contact.lifecycle_stage
    behind = current == LifecycleStage.DISQUALIFIED or order.index(
        LifecycleStage(current)
    ) < order.index(stage)
    if behind:
        lifecycle.move(session, contact, stage, actor=actor, reason=why)


def open_deal(
    session: Session,
    contact: Contact,
    *,
    title: str,
    amount: object = 0,
    currency: object = None,
    stage: str | None = None,
    owner_id: int | None = None,
    expected_close_on: date | None = None,
    actor: str,
    pipeline: Pipeline | None = None,
) -> Deal:
    pipeline = pipeline or load_pipeline()
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise DealError("title is required, at most 200 characters")
    stage = stage or pipeline.open_stages[0]
    if stage not in pipeline.stages:
        raise DealError(f"stage must be one of {', '.join(pipeline.stages)}")
    if contact.merged_into_id is not None:
        raise DealError(f"contact {contact.id} was merged into {contact.merged_into_id}")
    deal = Deal(
        contact_id=contact.id,
        title=title,
        stage=pipeline.open_stages[0],
        amount=parse_amount(amount),
        currency=parse_currency(currency or pipeline.default_currency),
        owner_id=owner_id,
        expected_close_on=expected_close_on,
        first_touch_channel=contact.first_touch_channel,
        first_touch_campaign_id=contact.first_touch_campaign_id,
        last_touch_channel=contact.last_touch_channel,
        last_touch_campaign_id=contact.last_touch_campaign_id,
    )
    session.add(deal)
    session.flush()
    _note(session, deal, f"Deal opened: {title} ({deal.amount} {deal.currency})", actor)
    _forward(session, contact, LifecycleStage.OPPORTUNITY, actor, f"deal {deal.id} opened")
    if stage != deal.stage:
        move_stage(session, deal, stage, actor=actor, pipeline=pipeline)
    return deal


def move_stage(
    session: Session,
    deal: Deal,
    stage: str,
    *,
    actor: str,
    lost_reason: str | None = None,
    pipeline: Pipeline | None = None,
    now: datetime | None = None,
) -> bool:
    """Move the deal to ``stage``; False if it is there already. Won: the contact becomes a
    customer. Lost: needs a reason code. Reopening clears the close."""
    pipeline = pipeline or load_pipeline()
    if stage not in pipeline.stages:
        raise DealError(f"stage must be one of {', '.join(pipeline.stages)}")
    if stage == deal.stage:
        return False
    if stage in pipeline.lost and lost_reason not in pipeline.lost_reasons:
        raise DealError(f"a lost deal needs lost_reason, one of {', '.join(pipeline.lost_reasons)}")
    now = now or utcnow()
    before = deal.stage
    deal.stage = stage
    contact = session.get_one(Contact, deal.contact_id)
    if stage in pipeline.won:
        deal.closed_at = now
        deal.lost_reason = None
        # Credit the touch that was last before the sale.
        deal.last_touch_channel = contact.last_touch_channel or deal.last_touch_channel
        deal.last_touch_campaign_id = contact.last_touch_campaign_id or deal.last_touch_campaign_id
        _forward(session, contact, LifecycleStage.CUSTOMER, actor, f"deal {deal.id} won")
    elif stage in pipeline.lost:
        deal.closed_at = now
        deal.lost_reason = lost_reason
    else:
        deal.closed_at = None
        deal.lost_reason = None
    because = f" ({lost_reason})" if stage in pipeline.lost else ""
    _note(
        session,
        deal,
        f"Deal {deal.title}: {before} -> {stage}{because}",
        actor,
        stage_from=before,
        stage_to=stage,
        lost_reason=deal.lost_reason,
    )
    return True


def can_change(user: User, deal: Deal, contact: Contact) -> bool:
    """Admins change any deal; reps their own, or nobody's on a contact they may change;
    marketers only read."""
    if user.role == Role.ADMIN:
        return True
    return user.role == Role.REP and can_see(user, deal, contact)


def can_see(user: User, deal: Deal, contact: Contact) -> bool:
    if user.role != Role.REP or deal.owner_id == user.id:
        return True
    return deal.owner_id is None and sees_contact(user, contact)
