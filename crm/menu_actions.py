"""What a caller's choices in a USSD or voice menu do to the CRM, and the data menus show.

``bot.menu_walk`` decides *what* happened (a value captured, a callback asked for, an opt-out);
this module applies it to the contact, with a timeline entry for each change.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.menu_walk import Effects
from crm.consent import set_consent
from crm.models import ConsentStatus, Contact
from crm.signals import CALLBACK_REQUEST, record_signal

CONTACT_COLUMNS = frozenset({"name", "email"})


def template_data(contact: Contact, phone: str) -> dict[str, object]:
    """The values a menu prompt may show, keyed by placeholder name."""
    data: dict[str, object] = {
        "name": contact.name,
        "first_name": (contact.name or "").split(" ")[0] or None,
        "phone": phone,
        "lifecycle_stage": contact.lifecycle_stage,
        "score": contact.score,
    }
    for key, value in (contact.attributes or {}).items():
        data[f"attributes.{key}"] = value
    return data


def apply_effects(
    *,
    session: Session,
    contact: Contact,
    effects: Effects,
    channel: str,
    interaction_id: int,
    node_id: str,
) -> None:
    """Apply one menu step's effects to ``contact``."""
    if effects.captured is not None:
        attribute, value = effects.captured.attribute, effects.captured.value
        if attribute in CONTACT_COLUMNS:
            setattr(contact, attribute, value)
        else:
            contact.attributes = {**(contact.attributes or {}), attribute: value}
    if effects.callback:
        record_signal(
            session=session,
            contact_id=contact.id,
            kind=CALLBACK_REQUEST,
            source_channel=channel,
            source_interaction_id=interaction_id,
            summary=f"Asked for a call back ({channel.upper()} menu)",
            detail={"node": node_id},
        )
    for opted_out_channel in effects.opt_out:
        set_consent(
            session=session,
            contact=contact,
            channel=opted_out_channel,
            status=ConsentStatus.OPTED_OUT,
            source=f"{channel}_menu:{node_id}",
        )
