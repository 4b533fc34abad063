"""RQ jobs: thin functions that load by id, call the services, commit, mark their outbox row."""

from __future__ import annotations

from crm import outbox
from crm.messaging import perform_send
from crm.models import Interaction
from crm.models.base import utcnow
from workers.context import runtime


def enrich_interaction(*, outbox_id: int, interaction_id: int) -> None:
    """Enrich an inbound interaction with model signals.

    The sentiment/intent model arrives with the intelligence issue; for now the job only records
    that enrichment ran, which is what the outbox's no-loss guarantee is tested against.
    """
    rt = runtime()
    with rt.session() as session:
        interaction = session.get(Interaction, interaction_id)
        if interaction is not None and interaction.enriched_at is None:
            interaction.enriched_at = utcnow()
        outbox.mark_done(session, outbox_id)


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
