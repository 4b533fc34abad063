"""Launching a campaign: recipients materialized once, then fanned out to workers in chunks.

The API only *requests* a launch (:func:`request_launch`): it checks the campaign, marks it
``launching`` and queues a ``campaign_launch`` job, so a request never spends the seconds that
100,000 recipients take. The job (:func:`launch_requested`), or the CLI directly (:func:`launch`),
then materializes in one transaction: it renders each recipient's message (the same split and
rendering as the preview), writes one ``campaign_recipients`` row per contact (unique per
campaign, so a repeated launch adds nobody twice) with the earliest moment it may go
(``crm.send_windows``: the schedule and quiet hours in the recipient's local time), and one
``campaign_send`` outbox job per chunk of recipient ids. Nothing reaches Redis before the rows
are committed; a lost job is swept again from the outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm import outbox
from crm.campaign_preview import parse_variants, plan_messages
from crm.campaign_send import finish_if_done
from crm.campaigns import EDITABLE, CampaignError, ready_to_send
from crm.db import insert_skipping_conflicts
from crm.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    Interaction,
    RecipientState,
    Segment,
)
from crm.models.base import utcnow
from crm.segments import parse_filters
from crm.send_windows import earliest_send

log = logging.getLogger(__name__)

# Recipients per send job: at 100/s a worker sends one in about 20 s (a job stops after 60 s
# anyway). Each job's last round trips leave its process's threads idle; smaller chunks paid that
# every 5 s, 3-5% of the rate (bench/campaigns.py).
CHUNK = 2000
INSERT_BATCH = 2000


@dataclass(frozen=True)
class Launched:
    recipients: int
    jobs: int


def _locked(session: Session, campaign: Campaign) -> None:
    """Re-read the campaign under a row lock: two launches (or a resume and a launch) at once
    serialize here, and the second sees the first's status."""
    session.refresh(campaign, with_for_update=True)


def _launchable(session: Session, campaign: Campaign, statuses: tuple[str, ...]) -> None:
    _locked(session, campaign)
    if campaign.status not in statuses:
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}: it cannot be launched")
    ready_to_send(campaign)
    if not campaign.variants:
        raise CampaignError("write the message first")


def request_launch(session: Session, campaign: Campaign, now: datetime | None = None) -> None:
    """Check the campaign can be launched, mark it ``launching`` and queue the launch job."""
    _launchable(session, campaign, EDITABLE)
    campaign.status = CampaignStatus.LAUNCHING.value
    campaign.launched_at = now or utcnow()
    outbox.add(session, "campaign_launch", campaign_id=campaign.id)


def launch_requested(session: Session, campaign_id: int) -> Launched | None:
    """The launch job: materialize a campaign still ``launching`` (None if it was cancelled
    meanwhile). A campaign that can no longer be launched (its segment deleted meanwhile) goes
    back to draft, with the reason logged."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return None
    try:
        _launchable(session, campaign, (CampaignStatus.LAUNCHING,))
    except CampaignError as exc:
        if campaign.status == CampaignStatus.LAUNCHING:
            campaign.status = CampaignStatus.DRAFT.value
            campaign.launched_at = None
            log.warning("campaign %s went back to draft: %s", campaign_id, exc)
        return None
    return _materialize(session, campaign, utcnow())


def launch(session: Session, campaign: Campaign, now: datetime | None = None) -> Launched:
    """Launch at once, in this transaction (the CLI; tests)."""
    _launchable(session, campaign, EDITABLE)
    return _materialize(session, campaign, now or utcnow())


def _materialize(session: Session, campaign: Campaign, now: datetime) -> Launched:
    segment = session.get_one(Segment, campaign.segment_id)
    plan = plan_messages(
        session,
        filters=parse_filters(segment.filters),
        channel=campaign.channel,
        variants=parse_variants(campaign.variants),
        content_sid=campaign.content_sid,
    )
    rows = []
    for message in plan.rendered:
        member = message.member
        rows.append(
            {
                "campaign_id": campaign.id,
                "contact_id": member.contact_id,
                "phone": member.phone,
                "variant": message.variant,
                "body": message.body,
                "segments": message.segments,
                "state": RecipientState.PENDING.value,
                "not_before": earliest_send(
                    now=now,
                    phone=member.phone,
                    campaign_zone=campaign.timezone,
                    send_at=campaign.send_at,
                    in_contact_timezone=campaign.in_contact_timezone,
                    quiet_start=campaign.quiet_start,
                    quiet_end=campaign.quiet_end,
                ),
                "attempts": 0,
                "round": 0,
            }
        )
    statement = insert_skipping_conflicts(
        session, CampaignRecipient.__table__, ["campaign_id", "contact_id", "round"]
    )
    for start in range(0, len(rows), INSERT_BATCH):
        session.execute(statement, rows[start : start + INSERT_BATCH])
    ids = list(
        session.scalars(
            select(CampaignRecipient.id)
            .where(CampaignRecipient.campaign_id == campaign.id)
            .order_by(CampaignRecipient.id)
        )
    )
    jobs = _queue_chunks(session, campaign.id, ids)
    # Nobody to send to (all excluded): done at once, not running forever.
    campaign.status = (CampaignStatus.RUNNING if ids else CampaignStatus.DONE).value
    campaign.launched_at = campaign.launched_at or now  # requested at, when it was
    campaign.finished_at = None if ids else now
    campaign.summary = {
        "recipients": len(rows),
        "excluded": dict(plan.excluded),
        "segments_total": sum(r["segments"] for r in rows),
        "estimated_cost": str(plan.cost.quantize(Decimal("0.01"))),
        "currency": plan.currency,
    }
    return Launched(recipients=len(rows), jobs=jobs)


def _queue_chunks(session: Session, campaign_id: int, ids: list[int]) -> int:
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        outbox.add(
            session, "campaign_send", campaign_id=campaign_id, first_id=chunk[0], last_id=chunk[-1]
        )
    return -(-len(ids) // CHUNK)


def pause(session: Session, campaign: Campaign) -> None:
    """Stop sending after the messages in flight; nothing pending is lost."""
    _locked(session, campaign)
    if campaign.status != CampaignStatus.RUNNING:
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}, not running")
    campaign.status = CampaignStatus.PAUSED.value


def resume(session: Session, campaign: Campaign) -> int:
    """Send what is still pending; the number of send jobs queued."""
    _locked(session, campaign)
    if campaign.status != CampaignStatus.PAUSED:
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}, not paused")
    campaign.status = CampaignStatus.RUNNING.value
    pending = list(
        session.scalars(
            select(CampaignRecipient.id)
            .where(
                CampaignRecipient.campaign_id == campaign.id,
                CampaignRecipient.state == RecipientState.PENDING.value,
            )
            .order_by(CampaignRecipient.id)
        )
    )
    if not pending:
        finish_if_done(session, campaign.id)  # the last message went out during the pause
    return _queue_chunks(session, campaign.id, pending)


def cancel(session: Session, campaign: Campaign, now: datetime | None = None) -> int:
    """Stop for good: pending recipients are skipped. The number skipped."""
    _locked(session, campaign)
    if campaign.status not in (
        CampaignStatus.RUNNING,
        CampaignStatus.PAUSED,
        CampaignStatus.LAUNCHING,
        CampaignStatus.SCHEDULED,
        CampaignStatus.DRAFT,
    ):
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}")
    campaign.status = CampaignStatus.CANCELLED.value
    campaign.finished_at = now or utcnow()
    result = session.execute(
        update(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.state == RecipientState.PENDING.value,
        )
        .values(state=RecipientState.SKIPPED.value, action="campaign cancelled")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def state_counts(session: Session, campaign: Campaign) -> dict[str, int]:
    """Recipients by state (one index range: cheap to poll)."""
    counts = {state.value: 0 for state in RecipientState}
    for state, count in session.execute(
        select(CampaignRecipient.state, func.count())
        .where(CampaignRecipient.campaign_id == campaign.id)
        .group_by(CampaignRecipient.state)
    ):
        counts[state] = count
    counts["total"] = sum(counts[s.value] for s in RecipientState)
    return counts


def delivery_counts(session: Session, campaign: Campaign) -> dict[str, int]:
    """What the provider reported for the messages sent: a lookup per sent recipient, so it
    costs in proportion to the campaign's size."""
    delivery = dict(
        session.execute(
            select(Interaction.delivery_status, func.count())
            .join(CampaignRecipient, CampaignRecipient.interaction_id == Interaction.id)
            .where(CampaignRecipient.campaign_id == campaign.id)
            .group_by(Interaction.delivery_status)
        ).all()
    )
    return {
        "delivered": delivery.get("delivered", 0) + delivery.get("read", 0),
        "undelivered": delivery.get("undelivered", 0),
    }


def progress(session: Session, campaign: Campaign) -> dict[str, int]:
    """Recipients by state, and by the provider's delivery status of what was sent."""
    return state_counts(session, campaign) | delivery_counts(session, campaign)
