"""RQ jobs: thin functions that load by id, call the services, commit, mark their outbox row."""

from __future__ import annotations

import logging

from crm import enrichment, handoffs, notifications, outbox, routing
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
