"""Who a campaign reaches, and who it leaves out and why.

The audience is the segment's contacts (one query, with each contact's first phone number and
consent on the campaign's channel), minus those who must not get marketing:

- ``opted_out``: opted out of the channel;
- ``no_whatsapp_consent``: WhatsApp marketing needs an explicit opt-in (Meta's policy);
- ``opt_out_review``: the model read an opt-out in their words and a person has not decided;
- ``no_phone`` / ``invalid_number``: nothing valid to send to;
- ``duplicate``: merged into another contact (the survivor is the one messaged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from crm.models import ChannelConsent, ConsentStatus, Contact, Identity
from crm.phones import InvalidPhoneNumber, region_of, to_e164
from crm.segments import SegmentFilters, conditions

EXCLUSION_REASONS = (
    "opted_out",
    "no_whatsapp_consent",
    "opt_out_review",
    "no_phone",
    "invalid_number",
    "duplicate",
)


@dataclass(frozen=True)
class Member:
    contact_id: int
    phone: str
    region: str | None
    name: str | None
    lifecycle_stage: str
    score: int
    attributes: dict[str, Any]


@dataclass
class Audience:
    members: list[Member] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())


def _rows(session: Session, filters: SegmentFilters, channel: str) -> Iterator[Any]:
    first_phone = (
        select(Identity.contact_id, func.min(Identity.id).label("identity_id"))
        .where(Identity.kind == "phone")
        .group_by(Identity.contact_id)
        .subquery()
    )
    where = conditions(filters, with_merged=True)  # tombstones are counted as duplicates
    query = (
        select(
            Contact.id,
            Contact.name,
            Contact.lifecycle_stage,
            Contact.score,
            Contact.attributes,
            Contact.merged_into_id,
            Contact.opt_out_review_at,
            Identity.value,
            ChannelConsent.status,
        )
        .outerjoin(first_phone, first_phone.c.contact_id == Contact.id)
        .outerjoin(Identity, Identity.id == first_phone.c.identity_id)
        .outerjoin(
            ChannelConsent,
            and_(ChannelConsent.contact_id == Contact.id, ChannelConsent.channel == channel),
        )
        .where(*where)
        .order_by(Contact.id)
    )
    return iter(session.execute(query.execution_options(yield_per=5000)))


def build_audience(session: Session, filters: SegmentFilters, channel: str) -> Audience:
    audience = Audience()
    for row in _rows(session, filters, channel):
        reason = _exclusion(row, channel)
        if reason is not None:
            audience.excluded[reason] += 1
            continue
        audience.members.append(
            Member(
                contact_id=row.id,
                phone=row.value,
                region=region_of(row.value),
                name=row.name,
                lifecycle_stage=row.lifecycle_stage,
                score=row.score,
                attributes=row.attributes or {},
            )
        )
    return audience


def _exclusion(row: Any, channel: str) -> str | None:
    if row.merged_into_id is not None:
        return "duplicate"
    if row.status == ConsentStatus.OPTED_OUT:
        return "opted_out"
    if channel == "whatsapp" and row.status != ConsentStatus.OPTED_IN:
        return "no_whatsapp_consent"
    if row.opt_out_review_at is not None:
        return "opt_out_review"
    if not row.value:
        return "no_phone"
    try:
        to_e164(row.value, "US")  # stored in E.164; numbering plans change
    except InvalidPhoneNumber:
        return "invalid_number"
    return None
