"""JSON shapes of API resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm.models import Contact, Conversation, Deal, Handoff, Interaction, Notification


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
        "last_touch_channel": contact.last_touch_channel,
        "last_touch_campaign_id": contact.last_touch_campaign_id,
        "last_touch_at": _when(contact.last_touch_at),
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


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def deal_json(deal: Deal) -> dict[str, Any]:
    return {
        "id": deal.id,
        "contact_id": deal.contact_id,
        "title": deal.title,
        "stage": deal.stage,
        "amount": str(deal.amount),
        "currency": deal.currency,
        "owner_id": deal.owner_id,
        "expected_close_on": deal.expected_close_on.isoformat() if deal.expected_close_on else None,
        "lost_reason": deal.lost_reason,
        "first_touch_channel": deal.first_touch_channel,
        "first_touch_campaign_id": deal.first_touch_campaign_id,
        "last_touch_channel": deal.last_touch_channel,
        "last_touch_campaign_id": deal.last_touch_campaign_id,
        "created_at": deal.created_at.isoformat(),
        "closed_at": _when(deal.closed_at),
    }


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "contact_id": conversation.contact_id,
        "channel": conversation.channel,
        "assignee_id": conversation.assignee_id,
        "status": conversation.status,
        "unread": conversation.unread,
        "snoozed_until": _when(conversation.snoozed_until),
        "last_inbound_at": _when(conversation.last_inbound_at),
        "last_outbound_at": _when(conversation.last_outbound_at),
        "last_read_at": _when(conversation.last_read_at),
    }


def notification_json(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "body": notification.body,
        "contact_id": notification.contact_id,
        "handoff_id": notification.handoff_id,
        "created_at": notification.created_at.isoformat(),
        "read_at": _when(notification.read_at),
        "sms_status": notification.sms_status,
    }
