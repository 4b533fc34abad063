"""RQ jobs: thin functions that load by id, call the services, commit, mark their outbox row."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

from crm import campaign_launch, campaign_send, enrichment, handoffs, notifications, outbox, routing
from crm.messaging import perform_send
from crm.models import Interaction
from workers.context import runtime

log = logging.getLogger(__name__)


def enrich_batch(*, outbox_ids: list[int], interaction_ids: list[int]) -> None:
    """Classify a batch of inbound interactions and apply the signals (crm.enrichment)."""
    from intelligence import classify  # the model loads once per worker process, on first use

    rt = runtime()
    with rt.session() as session:
        outcome = enrichment.enrich(session, interaction_ids, classify)
        outbox.mark_done(session, *outbox_ids)
    log.info(
        "enriched %d interactions (%d already done), %d signals",
        len(outcome.enriched),
        len(outcome.skipped),
        len(outcome.signals),
    )


def enrich_interaction(*, outbox_id: int, interaction_id: int) -> None:
    """Jobs queued before enrichment was batched."""
    enrich_batch(outbox_ids=[outbox_id], interaction_ids=[interaction_id])


def send_message(*, outbox_id: int, interaction_id: int) -> None:
    """Send one queued outbound message; retryable provider errors re-raise for RQ's retry."""
    rt = runtime()
    with rt.session() as session:
        interaction = session.get(Interaction, interaction_id)
        adapter_name = (interaction.provider if interaction else None) or "twilio"
        adapter = rt.adapters.get(adapter_name, rt.adapters["twilio"])
        perform_send(
            session=session,
            interaction_id=interaction_id,
            adapter=adapter,
            status_callback=rt.status_callback_url(adapter.name, interaction_id),
        )
        outbox.mark_done(session, outbox_id)


def check_handoff_sla(*, outbox_id: int, handoff_id: int) -> None:
    """At a handoff's deadline: escalate it if the lead is still untouched."""
    rt = runtime()
    with rt.session() as session:
        outcome = handoffs.check_sla(session, handoff_id)
        if outcome != "not_due":  # early (a clock ahead): the sweeper schedules it again
            outbox.mark_done(session, outbox_id)
    log.info("handoff %s SLA check: %s", handoff_id, outcome)


def route_lead(
    *, outbox_id: int, contact_id: int, reason: str, summary: str, source_interaction_id: int | None
) -> None:
    """Hand a hot lead to a rep (crm.routing): assign, notify, start the SLA clock."""
    rt = runtime()
    with rt.session() as session:
        trigger = routing.Trigger(reason, summary, source_interaction_id)
        handoff = routing.route_lead(session, contact_id, trigger)
        outbox.mark_done(session, outbox_id)
    if handoff is not None:
        log.info("contact %s handed off (%s) to rep %s", contact_id, reason, handoff.rep_id)


def send_notification_sms(*, outbox_id: int, notification_id: int) -> None:
    """Text a notification to its user's phone; retryable provider errors re-raise."""
    rt = runtime()
    with rt.session() as session:
        status = notifications.send_sms(session, notification_id, rt.adapters["twilio"])
        outbox.mark_done(session, outbox_id)
    log.info("notification %s SMS: %s", notification_id, status)


def launch_campaign(*, outbox_id: int, campaign_id: int) -> None:
    """Materialize a campaign whose launch was requested: its recipients and send jobs."""
    rt = runtime()
    with rt.session() as session:
        launched = campaign_launch.launch_requested(session, campaign_id)
        outbox.mark_done(session, outbox_id)
    if launched is not None:
        log.info(
            "campaign %s launched: %d recipients in %d jobs",
            campaign_id,
            launched.recipients,
            launched.jobs,
        )


def send_campaign_chunk(*, outbox_id: int, campaign_id: int, first_id: int, last_id: int) -> None:
    """Send one chunk of a campaign's recipients (crm.campaign_send): settle what a dead worker
    left in doubt, send with several threads (provider round trips overlap) under the senders'
    shared rate limits, and come back when quiet hours, retries or doubts leave work for later."""
    from workers.send_rate import SendRate, limit_for, rate_key

    rt = runtime()
    settings = rt.settings
    rates = SendRate(rt.redis)
    configured = dict(settings.send_rates)
    adapter = rt.adapters["twilio"]
    stale = timedelta(seconds=settings.campaign_stale_seconds)
    prepare = getattr(adapter, "prepare", None)
    if prepare is not None:
        prepare()
    settled = campaign_send.settle_stale(
        rt.sessions,
        adapter,
        campaign_id=campaign_id,
        first_id=first_id,
        last_id=last_id,
        stale=stale,
    )
    options = campaign_send.SendOptions(
        acquire=lambda budget, stop: rates.slot(budget, limit_for(budget, configured), stop=stop),
        tolerance=rates.tolerance,
        threads=max(1, settings.campaign_threads),
        per_second=lambda sender: limit_for(sender, configured),
        budget=rate_key,
        default_senders={
            "sms": settings.twilio_messaging_service_sid or settings.twilio_from_number,
            "whatsapp": settings.twilio_messaging_service_sid or settings.twilio_whatsapp_from,
        },
        status_callback=lambda interaction_id: rt.status_callback_url(adapter.name, interaction_id),
        stale=stale,
        cap=settings.frequency_cap,
    )
    # A thread waking for its send slot waits for the GIL: at most 1 ms a holder, not Python's
    # default 5, so sends leave on time (a late one gives up its slot).
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        result = campaign_send.send_chunk(
            rt.sessions,
            adapter,
            campaign_id=campaign_id,
            first_id=first_id,
            last_id=last_id,
            options=options,
        )
    finally:
        sys.setswitchinterval(switch)
    with rt.session() as session:
        next_due = campaign_send.next_due(session, campaign_id, first_id, last_id, stale)
        if next_due is not None and result.stopped is None:
            outbox.add(
                session,
                "campaign_send",
                campaign_id=campaign_id,
                first_id=first_id,
                last_id=last_id,
                run_at=next_due.isoformat(),
            )
        outbox.mark_done(session, outbox_id)
        campaign_send.finish_if_done(session, campaign_id)
    log.info(
        "campaign %s chunk %s-%s: %d sent, %d failed, %d retried, %d skipped, %d settled, "
        "%d slots given up late and %d sends dropped late, next %s, stopped %s",
        campaign_id,
        first_id,
        last_id,
        result.sent,
        result.failed,
        result.retried,
        result.skipped,
        settled,
        rates.late,
        result.late,
        next_due,
        result.stopped,
    )
