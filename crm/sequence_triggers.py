"""Trigger events, noted where they happen and enrolled when their transaction commits.

The services that see an event (a stage move, a tag, a menu node, the model's reading of a
message, a score change) only *note* it on the session (:func:`note`, :func:`note_score`): a
dictionary append, nothing more, so no hot path pays for sequences it has none of. Just before
the session commits, :func:`dispatch` enrols the contacts (``crm.sequence_enrol.fire``) in the
same transaction, with everything the transaction changed flushed and visible to the audience
filter: an event is never lost, and never enrols from a transaction that rolled back.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from crm.models import Contact, Sequence

_EVENTS = "crm:sequence_events"
_SCORES = "crm:score_before"
_LISTENING = "crm:sequences:listening"


def note(session: Session, kind: str, contact: Contact | int, value: object) -> None:
    """A trigger event (``stage_entered``, ``intent``, ``sentiment``, ``menu_node``,
    ``tag_added``) for one contact (a new one may have no id until the flush)."""
    session.info.setdefault(_EVENTS, []).append((kind, contact, value))


def note_score(session: Session, contact: Contact, before: int) -> None:
    """The contact's score is about to change from ``before``; ``score_crossed`` compares it
    with the score at commit (several changes in one transaction count once)."""
    if contact.id is not None:
        session.info.setdefault(_SCORES, {}).setdefault(contact.id, before)


MENU_NODES_TTL = 5.0  # seconds a process trusts its list of the menu nodes sequences listen to
_menu_nodes: tuple[float, frozenset[str]] = (float("-inf"), frozenset())


def menu_nodes(engine: Engine) -> frozenset[str]:
    """The menu nodes active sequences enrol on, cached a few seconds per process: a USSD hop
    that changes nothing takes its one-statement fast path unless it reaches one of these."""
    global _menu_nodes
    fetched, nodes = _menu_nodes
    if time.monotonic() - fetched < MENU_NODES_TTL:
        return nodes
    with engine.connect() as connection:
        definitions = connection.scalars(
            select(Sequence.definition).where(
                Sequence.status == "active", Sequence.trigger_type == "menu_node"
            )
        ).all()
    nodes = frozenset(str(d.get("trigger", {}).get("node")) for d in definitions)
    _menu_nodes = (time.monotonic(), nodes)
    return nodes


def forget_menu_nodes() -> None:
    """Read the list again on the next hop (a sequence was activated, paused or edited)."""
    global _menu_nodes
    _menu_nodes = (float("-inf"), frozenset())


@event.listens_for(Session, "before_commit")
def dispatch(session: Session) -> None:
    """Enrol for the events noted in this transaction (and any the enrolments note)."""
    if _EVENTS not in session.info and _SCORES not in session.info:
        return
    from crm.sequence_enrol import fire  # the sequence machinery loads only when used

    try:
        while _EVENTS in session.info or _SCORES in session.info:
            events = session.info.pop(_EVENTS, [])
            session.flush()  # new contacts get their ids; the audience filter sees the changes
            for contact_id, before in session.info.pop(_SCORES, {}).items():
                contact = session.get(Contact, contact_id)
                if contact is not None and contact.score != before:
                    fire(session, "score_crossed", [contact_id], contact.score, before=before)
            grouped: dict[tuple[str, object], list[int]] = {}
            for kind, contact, value in events:
                contact_id = contact if isinstance(contact, int) else contact.id
                if contact_id is not None:
                    grouped.setdefault((kind, value), []).append(contact_id)
            for (kind, value), contact_ids in grouped.items():
                fire(session, kind, contact_ids, value)
    finally:
        session.info.pop(_LISTENING, None)  # the next transaction asks again


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_EVENTS, None)
    session.info.pop(_SCORES, None)
    session.info.pop(_LISTENING, None)
