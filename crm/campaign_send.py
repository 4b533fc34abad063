"""Sending a campaign's recipients: each at most once, at the provider's rate, resumable.

A recipient row moves ``pending -> sending -> sent | failed`` (or ``skipped``):

1. claim: one UPDATE takes the next due pending row of the chunk (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so threads and processes split rows) and marks it ``sending``, with its
   outbound interaction on the timeline; committed before the provider is called;
2. wait for the sender's rate limit (shared in Redis by every process);
3. send, then record ``sent`` with the provider's id, or the error.

A worker killed between 1 and 3 leaves the row ``sending``: a restarted job never sends it
again (the provider may have it), it marks it ``unknown``. That is the price of at most once;
the window is one provider round trip per thread. Retryable errors (429, 5xx, timeouts) put
the row back to ``pending`` with a backoff; permanent ones fail it with the action taken
(21610 opts the contact out of the channel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from channels.base import ChannelAdapter, OutboundMessage, SendError
from channels.twilio import STATUS_RANK
from crm.consent import is_opted_out, set_consent
from crm.db import session_scope, skip_locked
from crm.messaging import in_whatsapp_window
from crm.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    ConsentStatus,
    Contact,
    Direction,
    Interaction,
    RecipientState,
)
from crm.models.base import utcnow
from crm.send_windows import earliest_send
from crm.timeline import add_entry, advance_status

MAX_ATTEMPTS = 6
# A claim older than this cannot belong to a live send (the provider call times out sooner).
STALE_SENDING = timedelta(minutes=5)
JOB_SECONDS = 60  # a job sends this long, then hands the rest to its next run (queues stay fair)
BACKOFF = (5, 30, 120, 600, 1800)  # seconds, per attempt
ACTIONS = {
    "21610": "opted out of the channel (replied STOP)",
    "21211": "invalid number: check the contact's phone",
    "21408": "cannot route to this country: enable it in Twilio's geo permissions",
    "21612": "cannot route to this number",
    "63016": "outside WhatsApp's 24-hour window: use a template",
}


@dataclass
class ChunkResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    stopped: str | None = None  # paused or cancelled


@dataclass(frozen=True)
class Claimed:
    id: int
    contact_id: int
    phone: str
    body: str
    interaction_id: int
    channel: str
    sender: str
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None


def _resolve_unknown(session: Session, campaign_id: int, first_id: int, last_id: int) -> int:
    """Rows left ``sending`` by a killed worker: never resent, marked unknown. Only rows claimed
    longer ago than any live send can take, so a job running the same chunk beside this one (a
    resume while the old job still ran) keeps its sends."""
    result = session.execute(
        update(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.id.between(first_id, last_id),
            CampaignRecipient.state == RecipientState.SENDING.value,
            CampaignRecipient.claimed_at < utcnow() - STALE_SENDING,
        )
        .values(
            state=RecipientState.FAILED.value,
            error_code="unknown",
            action="outcome unknown: the worker stopped mid-send; not resent",
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _hold(
    session: Session, campaign: Campaign, row: CampaignRecipient, now: datetime
) -> tuple[str, datetime | None] | None:
    """Why this recipient must not get the message now: ("skip", None) with the reason set on
    the row, or ("later", when) for quiet hours; None to send. Checked at send time: consent,
    quiet hours and WhatsApp's window may have changed since launch."""
    if is_opted_out(session, row.contact_id, campaign.channel):
        row.action = "opted out since launch"
        return "skip", None
    if session.scalar(select(Contact.opt_out_review_at).where(Contact.id == row.contact_id)):
        row.action = "possible opt-out under review since launch"
        return "skip", None
    if (
        campaign.channel == "whatsapp"
        and not campaign.content_sid
        and not in_whatsapp_window(session, row.contact_id)
    ):
        row.action = "outside WhatsApp's 24-hour window and no template"
        return "skip", None
    quiet = earliest_send(
        now=now,
        phone=row.phone,
        campaign_zone=campaign.timezone,
        send_at=None,
        in_contact_timezone=False,
        quiet_start=campaign.quiet_start,
        quiet_end=campaign.quiet_end,
    )
    return ("later", quiet) if quiet > now else None


def claim(
    session: Session, campaign: Campaign, first_id: int, last_id: int, now: datetime
) -> Claimed | None:
    """Take the next due pending recipient of the chunk; None when none is due."""
    query = (
        select(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.id.between(first_id, last_id),
            CampaignRecipient.state == RecipientState.PENDING.value,
            CampaignRecipient.not_before <= now,
        )
        .order_by(CampaignRecipient.id)
        .limit(1)
    )
    while True:
        row = session.scalars(skip_locked(session, query)).first()
        if row is None:
            return None
        hold = _hold(session, campaign, row, now)
        if hold is None:
            break
        if hold[0] == "skip":
            row.state = RecipientState.SKIPPED.value
        else:
            row.not_before = hold[1]  # quiet hours began since launch: it waits, never drops
        session.flush()
    row.state = RecipientState.SENDING.value
    row.claimed_at = now
    row.attempts += 1
    if row.interaction_id is None:
        entry = add_entry(
            session=session,
            contact_id=row.contact_id,
            channel=campaign.channel,
            direction=Direction.OUTBOUND,
            body=row.body,
            provider=None,
            # The recipient row holds "sending"; the message itself starts at the bottom of the
            # status ladder, so the provider's answer (accepted, queued) moves it forward.
            delivery_status="pending",
            meta={"to": row.phone, "campaign_id": campaign.id, "variant": row.variant},
        )
        row.interaction_id = entry.id
    return Claimed(
        row.id,
        row.contact_id,
        row.phone,
        row.body,
        row.interaction_id,
        campaign.channel,
        campaign.sender or "",
        campaign.content_sid if campaign.channel == "whatsapp" else None,
        dict(campaign.content_variables or {}) or None,
    )


def _record_sent(session: Session, claimed: Claimed, provider: str, sid: str, status: str) -> None:
    now = utcnow()
    session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.id == claimed.id)
        .values(state=RecipientState.SENT.value, provider_message_id=sid, sent_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Interaction)
        .where(Interaction.id == claimed.interaction_id)
        .values(provider=provider, provider_message_id=sid)
        .execution_options(synchronize_session=False)
    )
    # A status callback may have come first: the status only moves forward.
    advance_status(
        session=session,
        ranks=STATUS_RANK,
        status=status if status in STATUS_RANK else "sent",
        error_code=None,
        provider=provider,
        provider_message_id=sid,
        interaction_id=claimed.interaction_id,
    )


def _record_error(session: Session, claimed: Claimed, exc: SendError, result: ChunkResult) -> None:
    row = session.get_one(CampaignRecipient, claimed.id)
    row.error_code = exc.code or "error"
    if exc.retryable and row.attempts < MAX_ATTEMPTS:
        row.state = RecipientState.PENDING.value
        retry_at = utcnow() + timedelta(seconds=BACKOFF[min(row.attempts, len(BACKOFF)) - 1])
        row.not_before = retry_at  # quiet hours are checked again when it is claimed
        result.retried += 1
        return
    row.state = RecipientState.FAILED.value
    row.action = ACTIONS.get(exc.code or "", "gave up after retries" if exc.retryable else None)
    result.failed += 1
    interaction = session.get(Interaction, claimed.interaction_id)
    if interaction is not None:
        interaction.delivery_status = "failed"
        interaction.error_code = row.error_code
    if exc.opted_out:
        set_consent(
            session=session,
            contact=session.get_one(Contact, claimed.contact_id),
            channel=claimed.channel,
            status=ConsentStatus.OPTED_OUT,
            source=f"provider:{exc.code or 'opted_out'}",
        )


def send_chunk(
    sessions: sessionmaker[Session],
    adapter: ChannelAdapter,
    *,
    campaign_id: int,
    first_id: int,
    last_id: int,
    acquire: Callable[[str], Any],
    default_sender: str = "default",
    status_callback: Callable[[int], str | None] = lambda _id: None,
    seconds: float = JOB_SECONDS,
) -> ChunkResult:
    """Send the due recipients of one chunk, one at a time (call it from several threads for
    concurrency: claims never overlap) for at most ``seconds``. ``acquire`` waits for the
    sender's rate limit; a campaign without a sender of its own sends from ``default_sender``.
    What is left is found by :func:`next_due`."""
    result = ChunkResult()
    with session_scope(sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        sender = (campaign.sender if campaign else None) or default_sender
    stop_at = utcnow() + timedelta(seconds=seconds)
    while utcnow() < stop_at:
        # The rate slot first: a row is marked sending only when it can go at once, so a
        # worker lost while waiting leaves nothing in doubt.
        acquire(sender)
        with session_scope(sessions) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != CampaignStatus.RUNNING:
                result.stopped = campaign.status if campaign else "deleted"
                return result
            claimed = claim(session, campaign, first_id, last_id, utcnow())
        if claimed is None:
            break
        message = OutboundMessage(
            channel=claimed.channel,
            to=claimed.phone,
            body=claimed.body,
            status_callback=status_callback(claimed.interaction_id),
            sender=claimed.sender or None,
            content_sid=claimed.content_sid,
            content_variables=claimed.content_variables,
        )
        try:
            sent = adapter.send(message)
        except SendError as exc:
            with session_scope(sessions) as session:
                _record_error(session, claimed, exc, result)
            continue
        with session_scope(sessions) as session:
            _record_sent(session, claimed, sent.provider, sent.provider_message_id, sent.status)
        result.sent += 1
    return result


def next_due(session: Session, campaign_id: int, first_id: int, last_id: int) -> datetime | None:
    """When the chunk has something left to send (the earliest pending row), or None. Asked
    once per job, not per thread: the query reads the chunk's pending rows."""
    return session.scalar(
        select(func.min(CampaignRecipient.not_before)).where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.id.between(first_id, last_id),
            CampaignRecipient.state == RecipientState.PENDING.value,
        )
    )


def start_chunk(
    sessions: sessionmaker[Session], campaign_id: int, first_id: int, last_id: int
) -> int:
    """Before a chunk's job sends: rows a killed worker left mid-send are settled, not resent."""
    with session_scope(sessions) as session:
        return _resolve_unknown(session, campaign_id, first_id, last_id)


def finish_if_done(session: Session, campaign_id: int) -> bool:
    """Mark the campaign done when no recipient is left pending or sending."""
    left = session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.state.in_(
                (RecipientState.PENDING.value, RecipientState.SENDING.value)
            ),
        )
    )
    campaign = session.get(Campaign, campaign_id)
    if left or campaign is None or campaign.status != CampaignStatus.RUNNING:
        return False
    campaign.status = CampaignStatus.DONE.value
    campaign.finished_at = utcnow()
    return True
