"""The contacts list: filters on lifecycle stage, score, owner, tag, channel and a name or phone
search, keyset-paginated by id (newest first), compiled to one query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session, selectinload

from crm.access import visible_contacts
from crm.models import Contact, ContactTag, Direction, Identity, Interaction, LifecycleStage, User
from crm.segments import SegmentFilters, conditions

MAX_PAGE = 200


class FilterError(ValueError):
    """A filter value that cannot be used (answered with 400)."""


@dataclass(frozen=True)
class ContactFilters:
    stages: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    owner: int | str | None = None  # a user id, "me" or "none"
    tag: str | None = None
    channel: str | None = None  # wrote to us on this channel
    search: str | None = None  # name contains, or phone contains (3+ digits)
    include_merged: bool = False
    # A saved segment's filters (crm.segments), resolved by the caller: every segment filter
    # (consent, sentiment, countries, attributes...) on top of the list's own.
    segment: SegmentFilters | None = None

    @classmethod
    def from_args(cls, args: Any) -> ContactFilters:
        """From query parameters: stage (comma list), score_min, score_max, owner, tag, channel,
        q."""
        stages = tuple(s for s in (args.get("stage") or "").split(",") if s)
        bad = [s for s in stages if s not in set(LifecycleStage)]
        if bad:
            raise FilterError(f"stage must be among {', '.join(LifecycleStage)}")
        owner: int | str | None = args.get("owner") or None
        if owner not in (None, "me", "none"):
            owner = _int(str(owner), "owner")
        return cls(
            stages=stages,
            score_min=_int(args.get("score_min"), "score_min"),
            score_max=_int(args.get("score_max"), "score_max"),
            owner=owner,
            tag=args.get("tag") or None,
            channel=args.get("channel") or None,
            search=(args.get("q") or "").strip() or None,
        )


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise FilterError(f"{name} must be an integer") from None
    if not -(2**31) < number < 2**31:
        raise FilterError(f"{name} is out of range")
    return number


def contacts_query(user: User, filters: ContactFilters) -> Select[tuple[Contact]]:
    query = select(Contact).where(visible_contacts(user))
    if not filters.include_merged:
        query = query.where(Contact.merged_into_id.is_(None))
    if filters.segment is not None:
        query = query.where(*conditions(filters.segment))
    if filters.stages:
        query = query.where(Contact.lifecycle_stage.in_(filters.stages))
    if filters.score_min is not None:
        query = query.where(Contact.score >= filters.score_min)
    if filters.score_max is not None:
        query = query.where(Contact.score <= filters.score_max)
    if filters.owner == "me":
        query = query.where(Contact.owner_id == user.id)
    elif filters.owner == "none":
        query = query.where(Contact.owner_id.is_(None))
    elif filters.owner is not None:
        query = query.where(Contact.owner_id == filters.owner)
    if filters.tag:
        query = query.where(
            exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag == filters.tag)
        )
    if filters.channel:
        query = query.where(
            exists().where(
                Interaction.contact_id == Contact.id,
                Interaction.channel == filters.channel,
                Interaction.direction == Direction.INBOUND.value,
            )
        )
    if filters.search:
        # A number as people type it: local ("024 100 0003") or international, in part.
        digits = "".join(ch for ch in filters.search if ch.isdigit()).lstrip("0")
        by_name = Contact.name.ilike(f"%{_escape(filters.search)}%", escape="\\")
        matches = [by_name]
        if len(digits) >= 3:
            matches.append(
                exists().where(
                    Identity.contact_id == Contact.id,
                    Identity.value.like(f"%{digits}%"),
                )
            )
        query = query.where(or_(*matches))
    return query


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_contacts(
    session: Session, user: User, filters: ContactFilters, *, limit: int = 50, after: int | None
) -> tuple[list[Contact], int | None]:
    """A page of contacts, newest first, and the cursor (an id) for the next page."""
    if not 1 <= limit <= MAX_PAGE:
        raise FilterError(f"limit must be between 1 and {MAX_PAGE}")
    query = contacts_query(user, filters)
    if after is not None:
        query = query.where(Contact.id < after)
    query = (
        query.order_by(Contact.id.desc())
        .limit(limit + 1)
        .options(
            selectinload(Contact.identities),
            selectinload(Contact.consents),
            selectinload(Contact.tags),
        )
    )
    rows = list(session.scalars(query))
    more = len(rows) > limit
    page = rows[:limit]
    return page, (page[-1].id if more else None)
