"""Sending a campaign's recipients: each exactly once, at the provider's rate, resumable.

A recipient row moves ``pending -> sending -> sent | failed`` (or ``skipped``). One job sends
one chunk of rows as a pipeline, so that database work is paid per batch, not per message:

1. claim: one SELECT ... FOR UPDATE SKIP LOCKED takes a batch of due pending rows (threads and
   processes split rows), checks each again at send time (consent, possible opt-out under
   review, WhatsApp's window, quiet hours), inserts the outbound interactions of the ones to
   send and marks them ``sending``: one transaction, committed before any provider call;
2. send, from a pool of threads (provider round trips overlap): each thread waits for the
   sender's next slot (:mod:`workers.send_rate`, shared in Redis), then calls the provider;
3. record: the answers are written back in batches, ``sent`` with the provider's id, or the
   error (retryable ones go back to ``pending`` with a backoff; permanent ones fail with the
   action taken, and 21610 opts the contact out of the channel).

A worker killed between 1 and 3 leaves rows ``sending``; the provider may or may not have them.
When a later job finds such a row older than ``stale`` (far longer than a live send takes), it
asks the provider (:class:`channels.base.SentLookup`): a message found is recorded as sent, one
not found goes back to ``pending`` and is sent. That is what makes it exactly once rather than
at most once. A live job never sends a row claimed more than half ``stale`` ago (it puts it
back instead), so a row cannot be looked up while its own send is still coming.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from channels.base import LATE, ChannelAdapter, OutboundMessage, SendError, SendResult, SentLookup
from channels.twilio import STATUS_RANK
from crm.consent import set_consent
from crm.db import session_scope, skip_locked
from crm.frequency_cap import FrequencyCap, recent_marketing
from crm.messaging import WHATSAPP_WINDOW
from crm.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    ChannelConsent,
    ConsentStatus,
    Contact,
    Direction,
    Interaction,
    RecipientState,
)
from crm.models.base import utcnow
from crm.send_windows import earliest_send
from crm.timeline import status_rank

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
STALE_SENDING = timedelta(minutes=5)
JOB_SECONDS = 60  # a job sends this long, then hands the rest to its next run (queues stay fair)
BACKOFF = (5, 30, 120, 600, 1800)  # seconds, per attempt
RECORD_EVERY = 0.5  # seconds: answers are written back in batches at least this often
ANSWER_WAIT = 0.05  # seconds the sending loop waits for an answer before looking again
ACTIONS = {
    "21610": "opted out of the channel (replied STOP)",
    "21211": "invalid number: check the contact's phone",
    "21408": "cannot route to this country: enable it in Twilio's geo permissions",
    "21612": "cannot route to this number",
    "63016": "outside WhatsApp's 24-hour window: use a template",
}

# Rows with their recipients' columns, in bulk statements: built once.
_RECIPIENTS = CampaignRecipient.__table__
_INTERACTIONS = Interaction.__table__
_RANK = status_rank(_INTERACTIONS.c.delivery_status, STATUS_RANK)
_MARK_SENT = (
    update(_RECIPIENTS)
    .where(_RECIPIENTS.c.id == bindparam("r_id"))
    .values(
        state=RecipientState.SENT.value,
        provider_message_id=bindparam("r_sid"),
        sent_at=bindparam("r_at"),
    )
)
# The provider's answer moves the message's status forward only: a status callback may have
# come first.
_RECORD_SENT_INTERACTION = (
    update(_INTERACTIONS)
    .where(_INTERACTIONS.c.id == bindparam("i_id"))
    .values(
        provider=bindparam("i_provider"),
        provider_message_id=bindparam("i_sid"),
        delivery_status=case(
            (bindparam("i_rank") > _RANK, bindparam("i_status")),
            else_=_INTERACTIONS.c.delivery_status,
        ),
    )
)
_RELEASE = (
    update(_RECIPIENTS)
    .where(
        _RECIPIENTS.c.id == bindparam("r_id"),
        _RECIPIENTS.c.state == RecipientState.SENDING.value,
    )
    .values(state=RecipientState.PENDING.value, claimed_at=None, attempts=bindparam("r_attempts"))
)


@dataclass
class ChunkResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    late: int = 0  # sends dropped at the last moment for leaving too long after their slot
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
    attempts: int
    claimed: float = field(default_factory=time.monotonic)  # for the fence, see send_chunk
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None

    def message(self, status_callback: str | None) -> OutboundMessage:
        return OutboundMessage(
            channel=self.channel,
            to=self.phone,
            body=self.body,
            status_callback=status_callback,
            sender=self.sender or None,
            content_sid=self.content_sid,
            content_variables=self.content_variables,
        )


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed row in a sending thread."""

    claimed: Claimed
    sent: SendResult | None = None
    error: SendError | None = None
    released: bool = False  # never sent (paused, cancelled, or its claim grew old): back to pending
    late: bool = False  # released because it would have left too long after its slot
    doubt: bool = False  # crashed around the provider call: left sending for the lookup


# --- claim ---------------------------------------------------------------------------------


def _opted_out(session: Session, contact_ids: list[int], channel: str) -> set[int]:
    return set(
        session.scalars(
            select(ChannelConsent.contact_id).where(
                ChannelConsent.contact_id.in_(contact_ids),
                ChannelConsent.channel == channel,
                ChannelConsent.status == ConsentStatus.OPTED_OUT.value,
            )
        )
    )


def _in_whatsapp_window(session: Session, contact_ids: list[int], now: datetime) -> set[int]:
    return set(
        session.scalars(
            select(Interaction.contact_id)
            .where(
                Interaction.contact_id.in_(contact_ids),
                Interaction.channel == "whatsapp",
                Interaction.direction == Direction.INBOUND.value,
                Interaction.created_at > now - WHATSAPP_WINDOW,
            )
            .distinct()
        )
    )


def claim_batch(
    session: Session,
    campaign: Campaign,
    first_id: int,
    last_id: int,
    now: datetime,
    limit: int,
    result: ChunkResult | None = None,
    cap: FrequencyCap | None = None,
) -> tuple[list[Claimed], int]:
    """Take up to ``limit`` due pending rows of the chunk and mark those that may go now
    ``sending`` (their interactions on the timeline). Rows that may not go are skipped with the
    reason, or wait for the end of quiet hours or for the frequency cap (never dropped).
    Checked at send time: consent, quiet hours, WhatsApp's window and the messages the contact
    got lately may have changed since launch. A sequence's message is skipped once its contact
    has left the sequence. Returns the claimed rows and how many due rows were taken in all (0:
    nothing is due)."""
    result = result or ChunkResult()
    rows = session.execute(
        skip_locked(
            session,
            select(
                CampaignRecipient.id,
                CampaignRecipient.contact_id,
                CampaignRecipient.phone,
                CampaignRecipient.body,
                CampaignRecipient.variant,
                CampaignRecipient.attempts,
                CampaignRecipient.interaction_id,
                Contact.opt_out_review_at,
                CampaignRecipient.round,
                CampaignRecipient.content_variables,
            )
            .join(Contact, Contact.id == CampaignRecipient.contact_id)
            .where(
                CampaignRecipient.campaign_id == campaign.id,
                CampaignRecipient.id.between(first_id, last_id),
                CampaignRecipient.state == RecipientState.PENDING.value,
                CampaignRecipient.not_before <= now,
            )
            .order_by(CampaignRecipient.id)
            .limit(limit),
            of=CampaignRecipient,
        )
    ).all()
    if not rows:
        return [], 0
    contact_ids = [row.contact_id for row in rows]
    opted_out = _opted_out(session, contact_ids, campaign.channel)
    needs_window = campaign.channel == "whatsapp" and not campaign.content_sid
    in_window = _in_whatsapp_window(session, contact_ids, now) if needs_window else set()
    quiet = bool(campaign.quiet_start and campaign.quiet_end)
    recent = _recent_locked(session, contact_ids, now, cap) if cap and cap.on else {}
    left = _left_sequence(session, [row.round for row in rows]) if campaign.sequence_id else {}

    skips: list[dict[str, Any]] = []
    waits: list[dict[str, Any]] = []
    go = []
    for row in rows:
        reason = None
        if row.contact_id in opted_out:
            reason = "opted out since launch"
        elif row.opt_out_review_at is not None:
            reason = "possible opt-out under review since launch"
        elif needs_window and row.contact_id not in in_window:
            reason = "outside WhatsApp's 24-hour window and no template"
        elif row.round in left:
            reason = f"left the sequence: {left[row.round]}"
        if reason:
            skips.append({"id": row.id, "state": RecipientState.SKIPPED.value, "action": reason})
            continue
        if quiet:
            after = earliest_send(
                now=now,
                phone=row.phone,
                campaign_zone=campaign.timezone,
                send_at=None,
                in_contact_timezone=False,
                quiet_start=campaign.quiet_start,
                quiet_end=campaign.quiet_end,
            )
            if after > now:  # quiet hours began since launch: it waits, never drops
                waits.append({"id": row.id, "not_before": after})
                continue
        if cap is not None and (frees := cap.frees_at(recent.get(row.contact_id, []), now)):
            waits.append({"id": row.id, "not_before": frees})  # the frequency cap: it waits
            continue
        recent.setdefault(row.contact_id, []).append(now)
        go.append(row)
    if skips:
        session.execute(update(CampaignRecipient), skips)
        result.skipped += len(skips)
    if waits:
        session.execute(update(CampaignRecipient), waits)

    new = [row for row in go if row.interaction_id is None]
    interaction_ids = dict(
        zip(
            [row.id for row in new],
            session.scalars(
                insert(Interaction).returning(Interaction.id, sort_by_parameter_order=True),
                [
                    {
                        "contact_id": row.contact_id,
                        "channel": campaign.channel,
                        "direction": Direction.OUTBOUND.value,
                        "body": row.body,
                        # The recipient row holds "sending"; the message itself starts at the
                        # bottom of the status ladder, so the provider's answer moves it on.
                        "delivery_status": "pending",
                        "meta": {
                            "to": row.phone,
                            "campaign_id": campaign.id,
                            "variant": row.variant,
                        },
                        "created_at": now,
                    }
                    for row in new
                ],
            ).all()
            if new
            else [],
            strict=True,
        )
    )
    claimed = [
        Claimed(
            id=row.id,
            contact_id=row.contact_id,
            phone=row.phone,
            body=row.body,
            interaction_id=row.interaction_id or interaction_ids[row.id],
            channel=campaign.channel,
            sender=campaign.sender or "",
            attempts=row.attempts + 1,
            content_sid=campaign.content_sid if campaign.channel == "whatsapp" else None,
            content_variables=dict(row.content_variables or campaign.content_variables or {})
            or None,
        )
        for row in go
    ]
    if claimed:
        session.execute(
            update(CampaignRecipient),
            [
                {
                    "id": c.id,
                    "state": RecipientState.SENDING.value,
                    "claimed_at": now,
                    "attempts": c.attempts,
                    "interaction_id": c.interaction_id,
                }
                for c in claimed
            ],
        )
    return claimed, len(rows)


# pg_advisory_xact_lock(class, id): the class keeps these apart from any other advisory lock.
_CAP_LOCKS = text(
    "SELECT pg_advisory_xact_lock(8, ids.id) FROM "
    "(SELECT id FROM unnest(CAST(:ids AS integer[])) AS u(id) ORDER BY id) AS ids"
)


def _recent_locked(
    session: Session, contact_ids: list[int], now: datetime, cap: FrequencyCap
) -> dict[int, list[datetime]]:
    """The contacts' recent marketing messages, read under a per-contact advisory lock held to
    the commit: two jobs (two campaigns, or a campaign and a sequence) claiming for the same
    contact at once take turns, so the second sees the first's message and the cap holds.
    Advisory, not row locks: only claims take them, so a claim never waits on a webhook, the
    enrichment job or a sequence batch that writes the contact; in id order, so two claims
    never wait on each other in a cycle."""
    if session.get_bind().dialect.name == "postgresql":  # SQLite serializes writers anyway
        session.execute(_CAP_LOCKS, {"ids": sorted(set(contact_ids))})
    return recent_marketing(session, contact_ids, now, cap)


def _left_sequence(session: Session, rounds: list[int]) -> dict[int, str]:
    """Of these step runs (a sequence recipient's ``round``), those whose enrolment has ended
    since the message was queued, with why: a reply, an opt-out, a rep taking over."""
    from crm.models import SequenceEnrollment, SequenceStepRun

    rows = session.execute(
        select(SequenceStepRun.id, SequenceEnrollment.exit_reason)
        .join(SequenceEnrollment, SequenceEnrollment.id == SequenceStepRun.enrollment_id)
        .where(
            SequenceStepRun.id.in_(rounds),
            SequenceEnrollment.status == "exited",
        )
    )
    return {run_id: reason or "exited" for run_id, reason in rows}


# --- record --------------------------------------------------------------------------------


def _record_sent(session: Session, sent: list[tuple[Claimed, SendResult]]) -> None:
    now = utcnow()
    session.connection().execute(
        _MARK_SENT,
        [{"r_id": c.id, "r_sid": r.provider_message_id, "r_at": now} for c, r in sent],
    )
    session.connection().execute(
        _RECORD_SENT_INTERACTION,
        [
            {
                "i_id": c.interaction_id,
                "i_provider": r.provider,
                "i_sid": r.provider_message_id,
                "i_status": status,
                "i_rank": STATUS_RANK[status],
            }
            for c, r in sent
            for status in [r.status if r.status in STATUS_RANK else "sent"]
        ],
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


def record(session: Session, outcomes: list[Outcome], result: ChunkResult) -> None:
    """Write a batch of answers back: sends in two statements, errors one by one (rare)."""
    sent = [(o.claimed, o.sent) for o in outcomes if o.sent is not None]
    if sent:
        _record_sent(session, sent)
        result.sent += len(sent)
    result.late += sum(1 for o in outcomes if o.late)
    released = [o.claimed for o in outcomes if o.released]
    if released:
        session.connection().execute(
            _RELEASE, [{"r_id": c.id, "r_attempts": c.attempts - 1} for c in released]
        )
    for outcome in outcomes:
        if outcome.error is not None:
            _record_error(session, outcome.claimed, outcome.error, result)


# --- send ----------------------------------------------------------------------------------


@dataclass
class SendOptions:
    """How a chunk is sent; the job builds it from the settings."""

    # Wait for a budget's slot: when it began (time.monotonic()), or None to stop.
    acquire: Callable[[str, threading.Event], float | None]
    tolerance: float | None = None  # a send leaving this much after its slot is dropped
    threads: int = 8
    per_second: Callable[[str], int] = lambda _budget: 1  # a budget's limit, for the batch size
    # The budget a (channel, sender) draws on (crm.send_limits.rate_key).
    budget: Callable[[str, str], str] = lambda _channel, sender: sender
    # The sender of a campaign without one of its own, per channel.
    default_senders: dict[str, str] = field(default_factory=dict)
    status_callback: Callable[[int], str | None] = lambda _id: None
    seconds: float = JOB_SECONDS
    stale: timedelta = STALE_SENDING
    cap: FrequencyCap | None = None  # marketing messages per contact per window


def _send_one(
    adapter: ChannelAdapter,
    claimed: Claimed,
    options: SendOptions,
    budget: str,
    stop: threading.Event,
    fence: float,
) -> Outcome:
    try:
        slot = None if stop.is_set() else options.acquire(budget, stop)
    except Exception:  # Redis down or slow: not sent, so it goes back to pending
        log.warning("no send slot for recipient %s; put back", claimed.id, exc_info=True)
        slot = None
    if slot is None or time.monotonic() - claimed.claimed > fence:
        # Stopped; or too old to send: a job beside this one may be looking it up already.
        return Outcome(claimed, released=True)
    message = claimed.message(options.status_callback(claimed.interaction_id))
    if options.tolerance is not None:
        message = replace(message, deadline=slot + options.tolerance)
    try:
        return Outcome(claimed, sent=adapter.send(message))
    except SendError as exc:
        if exc.code == LATE:  # never left: it waits for another slot
            return Outcome(claimed, released=True, late=True)
        if exc.in_doubt:  # it may be at the provider: looked up there before any resend
            log.warning("campaign send of recipient %s in doubt: %s", claimed.id, exc)
            return Outcome(claimed, doubt=True)
        return Outcome(claimed, error=exc)
    except Exception:  # the request may or may not have reached the provider
        log.exception("campaign send of recipient %s crashed; left for the lookup", claimed.id)
        return Outcome(claimed, doubt=True)


def _answer(
    answers: queue.SimpleQueue[Outcome],
    adapter: ChannelAdapter,
    claimed: Claimed,
    options: SendOptions,
    budget: str,
    stop: threading.Event,
    fence: float,
) -> None:
    """A thread's task: every claimed row gets exactly one answer, whatever happens (the
    sending loop waits for one per row)."""
    try:
        outcome = _send_one(adapter, claimed, options, budget, stop, fence)
    except BaseException:
        log.exception("campaign send of recipient %s failed; left for the lookup", claimed.id)
        outcome = Outcome(claimed, doubt=True)
    answers.put(outcome)


def _campaign_state(session: Session, campaign_id: int) -> tuple[Campaign | None, str | None]:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return None, "deleted"
    if campaign.status != CampaignStatus.RUNNING:
        return campaign, campaign.status
    return campaign, None


def send_chunk(
    sessions: sessionmaker[Session],
    adapter: ChannelAdapter,
    *,
    campaign_id: int,
    first_id: int,
    last_id: int,
    options: SendOptions,
) -> ChunkResult:
    """Send the due recipients of one chunk for at most ``options.seconds``: claim in batches,
    send from ``options.threads`` threads at the sender's rate, record in batches. What is left
    (quiet hours, retries) is found by :func:`next_due`."""
    result = ChunkResult()
    with session_scope(sessions) as session:
        campaign, result.stopped = _campaign_state(session, campaign_id)
        if campaign is None or result.stopped:
            return result
        channel = campaign.channel
        sender = campaign.sender or options.default_senders.get(channel) or "default"
    budget = options.budget(channel, sender)
    # Rows claimed but not answered: enough to keep every thread busy, and no more than about
    # two seconds of the sender's budget (claims wait for their slots while they are held).
    # More are claimed once fewer than `refill` are left, so threads never wait for work while
    # answers are being recorded.
    ahead = max(1, min(2 * options.threads, 2 * options.per_second(budget)))
    refill = max(1, min(options.threads + options.threads // 2, ahead - 1))
    fence = options.stale.total_seconds() / 2
    deadline = time.monotonic() + options.seconds
    stop = threading.Event()
    answers: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    unanswered = 0
    unrecorded: list[Outcome] = []
    recorded_at = time.monotonic()
    exhausted = False
    with ThreadPoolExecutor(options.threads, thread_name_prefix=f"campaign-{campaign_id}") as pool:
        while True:
            if time.monotonic() >= deadline:
                stop.set()
            if not (exhausted or stop.is_set()) and unanswered < refill:
                with session_scope(sessions) as session:
                    campaign, result.stopped = _campaign_state(session, campaign_id)
                    batch, taken = (
                        claim_batch(
                            session,
                            campaign,
                            first_id,
                            last_id,
                            utcnow(),
                            ahead - unanswered,
                            result,
                            options.cap,
                        )
                        if campaign is not None and not result.stopped
                        else ([], 0)
                    )
                if result.stopped:
                    stop.set()
                exhausted = taken == 0
                for claimed in batch:
                    pool.submit(_answer, answers, adapter, claimed, options, budget, stop, fence)
                unanswered += len(batch)
            done = unanswered == 0 and (exhausted or stop.is_set())
            if not done:
                # Wait for answers while there is nothing to claim; else only take what came.
                idle = unanswered >= refill or exhausted or stop.is_set()
                got = _gather(answers, unanswered, wait=ANSWER_WAIT if idle else 0.0)
                unanswered -= len(got)
                unrecorded.extend(got)
                # Put back (late for its slot): recorded at once, to be claimed again.
                put_back = any(o.released for o in got) and not stop.is_set()
                exhausted = exhausted and not put_back
            else:
                put_back = False
            if unrecorded and (done or put_back or time.monotonic() - recorded_at >= RECORD_EVERY):
                with session_scope(sessions) as session:
                    record(session, unrecorded, result)
                unrecorded = []
                recorded_at = time.monotonic()
            if done:
                break
    return result


def _gather(answers: queue.SimpleQueue[Outcome], most: int, *, wait: float) -> list[Outcome]:
    """The answers that have come (at most ``most``), waiting up to ``wait`` s for the first."""
    outcomes: list[Outcome] = []
    try:
        if most and wait:
            outcomes.append(answers.get(timeout=wait))
        while len(outcomes) < most:
            outcomes.append(answers.get_nowait())
    except queue.Empty:
        pass
    return outcomes


# --- rows left in doubt, progress ------------------------------------------------------------


def settle_stale(
    sessions: sessionmaker[Session],
    adapter: ChannelAdapter,
    *,
    campaign_id: int,
    first_id: int,
    last_id: int,
    stale: timedelta = STALE_SENDING,
) -> int:
    """Rows a dead worker left ``sending``: ask the provider, then record the message it has
    or put the row back to ``pending`` to be sent. Adapters that cannot be asked: the row is
    failed as ``unknown`` and never resent (at most once). Rows the provider cannot be asked
    about now stay as they are, for the next run. Returns how many were settled."""
    with session_scope(sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        rows = session.execute(
            select(
                CampaignRecipient.id,
                CampaignRecipient.contact_id,
                CampaignRecipient.phone,
                CampaignRecipient.body,
                CampaignRecipient.attempts,
                CampaignRecipient.interaction_id,
                CampaignRecipient.claimed_at,
            ).where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.id.between(first_id, last_id),
                CampaignRecipient.state == RecipientState.SENDING.value,
                CampaignRecipient.claimed_at < utcnow() - stale,
            )
        ).all()
    if not rows or campaign is None:
        return 0
    lookup: SentLookup | None = adapter if hasattr(adapter, "find_sent") else None  # type: ignore[assignment]
    found: list[tuple[Claimed, SendResult]] = []
    again: list[Claimed] = []
    unknown: list[int] = []
    for row in rows:
        claimed = Claimed(
            id=row.id,
            contact_id=row.contact_id,
            phone=row.phone,
            body=row.body,
            interaction_id=row.interaction_id,
            channel=campaign.channel,
            sender=campaign.sender or "",
            attempts=row.attempts,
            content_sid=campaign.content_sid if campaign.channel == "whatsapp" else None,
        )
        if lookup is None:
            unknown.append(row.id)
            continue
        try:
            copy = lookup.find_sent(claimed.message(None), row.claimed_at)
        except SendError as exc:
            log.warning("could not look up recipient %s at the provider: %s", row.id, exc)
            continue
        if copy is None:
            again.append(claimed)
        else:
            found.append((claimed, copy))
    with session_scope(sessions) as session:
        if found:
            _record_sent(session, found)
        if again:  # never reached the provider: it goes out again, as the same attempt
            session.connection().execute(
                _RELEASE, [{"r_id": c.id, "r_attempts": c.attempts - 1} for c in again]
            )
        if unknown:
            session.execute(
                update(CampaignRecipient)
                .where(CampaignRecipient.id.in_(unknown))
                .values(
                    state=RecipientState.FAILED.value,
                    error_code="unknown",
                    action="outcome unknown: the worker stopped mid-send; not resent",
                )
            )
    if found or again:
        log.info(
            "campaign %s: %d sends left in doubt were at the provider, %d go out again",
            campaign_id,
            len(found),
            len(again),
        )
    return len(found) + len(again) + len(unknown)


def next_due(
    session: Session,
    campaign_id: int,
    first_id: int,
    last_id: int,
    stale: timedelta = STALE_SENDING,
) -> datetime | None:
    """When the chunk next has work: its earliest pending row, or the moment a row left
    ``sending`` turns stale and can be settled; None when neither is left. Asked once per job."""
    in_chunk = and_(
        CampaignRecipient.campaign_id == campaign_id,
        CampaignRecipient.id.between(first_id, last_id),
    )
    pending = session.scalar(
        select(func.min(CampaignRecipient.not_before)).where(
            in_chunk, CampaignRecipient.state == RecipientState.PENDING.value
        )
    )
    sending = session.scalar(
        select(func.min(CampaignRecipient.claimed_at)).where(
            in_chunk, CampaignRecipient.state == RecipientState.SENDING.value
        )
    )
    due = [moment for moment in (pending, sending and sending + stale) if moment is not None]
    return min(due) if due else None


def finish_if_done(session: Session, campaign_id: int) -> bool:
    """Mark the campaign done when no recipient is left pending or sending."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is not None and campaign.sequence_id is not None:
        return False  # a sequence's step campaign runs as long as its sequence
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
    if left or campaign is None or campaign.status != CampaignStatus.RUNNING:
        return False
    campaign.status = CampaignStatus.DONE.value
    campaign.finished_at = utcnow()
    return True
