"""JSON shapes of API resources."""

from __future__ import annotations

from typing import Any

from crm.models import Contact, Handoff, Interaction


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "email": contact.email,
        "lifecycle_stage": contact.lifecycle_stage,
        "score": contact.score,
        "owner_id": contact.owner_id,
        "first_touch_channel": contact.first_touch_channel,
        "first_touch_campaign_id": contact.first_touch_campaign_id,
        "phones": [i.value for i in contact.identities if i.kind == "phone"],
        "consent": {c.channel: c.status for c in contact.consents},
        "tags": contact.tag_names,
        "attributes": contact.attributes or {},
        "merged_into_id": contact.merged_into_id,
        "sentiment": contact.sentiment,
        "sentiment_score": contact.sentiment_score,
        "last_intent": contact.last_intent,
        "opt_out_review": (
            {
                "flagged_at": contact.opt_out_review_at.isoformat(),
                "interaction_id": contact.opt_out_review_interaction_id,
            }
            if contact.opt_out_review_at
            else None
        ),
        "created_at": contact.created_at.isoformat(),
    }


def interaction_json(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "contact_id": interaction.contact_id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "body": interaction.body,
        "provider": interaction.provider,
        "provider_message_id": interaction.provider_message_id,
        "delivery_status": interaction.delivery_status,
        "error_code": interaction.error_code,
        "metadata": interaction.meta or {},
        "signals": (
            {
                "sentiment": interaction.sentiment,
                "sentiment_score": interaction.sentiment_score,
                "intent": interaction.intent,
                "intent_confidence": interaction.intent_confidence,
                "model_version": interaction.model_version,
            }
            if interaction.model_version
            else None
        ),
        "created_at": interaction.created_at.isoformat(),
    }


def handoff_json(handoff: Handoff) -> dict[str, Any]:
    return {
        "id": handoff.id,
        "contact_id": handoff.contact_id,
        "rep_id": handoff.rep_id,
        "reason": handoff.reason,
        "summary": handoff.summary,
        "status": handoff.status,
        "created_at": handoff.created_at.isoformat(),
        "due_at": handoff.due_at.isoformat(),
        "first_touch_at": handoff.first_touch_at.isoformat() if handoff.first_touch_at else None,
        "speed_to_lead_s": handoff.speed_to_lead_s,
        "reject_reason": handoff.reject_reason,
    }
