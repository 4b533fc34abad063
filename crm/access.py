"""Who may see and change which records, in one place for the API and the web pages.

Admins see and change everything. Marketers see everything and change nothing a rep owns (they
work on segments and campaigns). A rep sees and changes what is assigned to them, plus what is
assigned to nobody (the unassigned queue they pick leads from, as in Chatwoot); another rep's
contact, deal or conversation is answered as not found, so its existence does not leak.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, true

from crm.models import Contact, Role, User


def sees_contact(user: User, contact: Contact) -> bool:
    return user.role != Role.REP or contact.owner_id in (user.id, None)


def changes_contact(user: User, contact: Contact) -> bool:
    if user.role == Role.ADMIN:
        return True
    return user.role == Role.REP and contact.owner_id in (user.id, None)


def visible_contacts(user: User) -> Any:
    """A WHERE clause for the contacts ``user`` may see."""
    if user.role != Role.REP:
        return true()
    return or_(Contact.owner_id == user.id, Contact.owner_id.is_(None))
