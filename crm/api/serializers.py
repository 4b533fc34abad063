"""JSON shapes of API resources."""

from __future__ import annotations

from typing import Any

from crm.models import Contact, Interaction


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
        "created_at": interaction.created_at.isoformat(),
    }
