"""Model signals onto interactions and contacts: what the enrichment job does with ``classify``.

A batch of pending interactions is classified in one call; each interaction gets its signals,
each contact its rolling sentiment and last intent, and the timeline gets a "signal" entry only
when something changed that a rep acts on: sentiment turned negative (or recovered), the
customer asked for a person, wants to cancel, or wrote an opt-out in their own words. Each
message also scores (``crm.scoring``: wrote to us, intent, sentiment), and a lead whose score
reaches the MQL threshold becomes an MQL (``crm.lifecycle``).

A free-text opt-out is not applied: the model can be wrong, and an opt-out cannot be undone
with the customer. It flags the contact for review (marketing to them pauses) until a person
confirms or dismisses it (``crm.consent.resolve_opt_out_review``). Keywords (STOP...) still
opt out at once, in the webhook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.orm import Session

from crm import lifecycle, routing, scoring
from crm.attribution import Inbound, attribute_replies
from crm.conversations import Arrival, record_arrivals
from crm.db import insert_skipping_conflicts, skip_locked
from crm.models import Channel, ChannelConsent, ConsentStatus, Contact, Direction, Interaction
from crm.models.base import utcnow
from crm.sequence_exits import exit_contacts
from crm.sequence_triggers import note
from crm.signals import HUMAN_REQUEST, signal_values
from intelligence.signals import Signals
from intelligence.text import has_words, normalize

Classify = Callable[[Sequence[str]], list[Signals]]

ENRICHED_CHANNELS = frozenset({Channel.SMS, Channel.WHATSAPP, Channel.VOICE, Channel.USSD})
# Weight of the newest message in the contact's moving average of sentiment scores: a run of
# three negative messages turns a neutral contact negative; one sour reply among happy ones
# does not.
ROLLING_WEIGHT = 0.4
NEGATIVE_BELOW = -0.25
POSITIVE_ABOVE = 0.25
SNIPPET_CHARS = 80

SENTIMENT_NEGATIVE = "sentiment_negative"
SENTIMENT_RECOVERED = "sentiment_recovered"
OPT_OUT_REVIEW = "opt_out_review"
CANCEL_REQUEST = "cancel_request"


def text_for(interaction: Interaction) -> str:
    """What the model reads: the message, transcript, or a USSD session's free-text answers."""
    if interaction.channel == Channel.USSD:
        return " ".join(str(v) for v in (interaction.meta or {}).get("free_text", []))
    return interaction.body or ""


def rolling_label(score: float) -> str:
    if score <= NEGATIVE_BELOW:
        return "negative"
    if score >= POSITIVE_ABOVE:
        return "positive"
    return "neutral"


@dataclass
class Outcome:
    """What one batch did, for the job's log and the tests."""

    enriched: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # already enriched, or gone
    signals: list[tuple[int, str]] = field(default_factory=list)  # (contact id, kind)
    promoted: list[int] = field(default_factory=list)  # contacts the score made MQLs
    handoffs: list[int] = field(default_factory=list)  # contacts queued for a rep


def _pending(session: Session, ids: Sequence[int]) -> list[tuple[Interaction, Contact]]:
    """The interactions not enriched yet, each with its contact, in one query."""
    query = (
        select(Interaction, Contact)
        .join(Contact, Contact.id == Interaction.contact_id)
        .where(Interaction.id.in_(ids), Interaction.enriched_at.is_(None))
        .order_by(Interaction.id)
    )
    # Two workers holding overlapping batches (a sweep re-enqueued one) split them.
    return [
        (row, contact)
        for row, contact in session.execute(skip_locked(session, query, of=Interaction))
    ]


def enrich(session: Session, interaction_ids: Sequence[int], classify: Classify) -> Outcome:
    """Classify the pending interactions among ``interaction_ids`` in one batch and apply the
    signals. Interactions already enriched are skipped, so a re-run changes nothing.

    A batch costs a fixed number of statements, whatever its size: read the interactions and
    their contacts (and consents, when the model read an opt-out); write the conversations (one
    upsert), the timeline entries (one multi-row insert that skips entries already there, e.g. a
    ``human_request`` the auto-replies recorded for the same message), the score events, and at
    commit the interactions and contacts (executemany)."""
    outcome = Outcome()
    pending = _pending(session, sorted(set(interaction_ids)))
    rows = [row for row, _contact in pending]
    contacts = {contact.id: contact for _row, contact in pending}
    outcome.skipped = sorted(set(interaction_ids) - {r.id for r in rows})
    if not rows:
        return outcome
    texts = [text_for(r) for r in rows]
    signals = classify(texts)
    contact_ids = set(contacts)
    # Consent matters only to an opt-out the model read: ask the database only then.
    opted_out = (
        _opted_out(session, contact_ids)
        if any(signal.intent == "opt_out" for signal in signals)
        else set()
    )
    entries: list[dict[str, Any]] = []
    score_events: dict[Contact, list[scoring.Event]] = {}
    arrivals: list[Arrival] = []
    now = utcnow()
    for row, text, signal in zip(rows, texts, signals, strict=True):
        row.sentiment = signal.sentiment
        row.sentiment_score = signal.sentiment_score
        row.intent = signal.intent
        row.intent_confidence = signal.intent_confidence
        row.model_version = signal.model_version
        row.enriched_at = now
        outcome.enriched.append(row.id)
        contact = contacts.get(row.contact_id)
        if contact is None or row.direction != Direction.INBOUND:
            continue
        arrivals.append(Arrival(contact.id, row.channel, row.created_at, contact.owner_id))
        if contact.last_touch_at is None or contact.last_touch_at <= row.created_at:
            contact.last_touch_channel = row.channel
            contact.last_touch_at = row.created_at
        if not has_words(normalize(text)):
            continue  # numbers or punctuation (a USSD choice): says nothing about the person
        paused = (contact.id, row.channel) in opted_out
        mood = contact.sentiment
        found = _roll_up(contact, row, text, signal, already_opted_out=paused, now=now)
        if signal.intent != "other":
            note(session, "intent", contact, signal.intent)
        if contact.sentiment != mood:
            note(session, "sentiment", contact, contact.sentiment)
        entries.extend(found)
        kinds = {entry["metadata"]["signal"] for entry in found}
        score_events.setdefault(contact, []).extend(_score_events(row, signal, kinds))
    # The Core statements below must not flush the rows changed above half-way: each
    # interaction and contact is written once, by one UPDATE, when the job commits.
    with session.no_autoflush:
        record_arrivals(session, arrivals)
        inbound = [Inbound(a.contact_id, a.channel, a.at) for a in arrivals]
        for reply in attribute_replies(session, inbound, contacts):
            event = scoring.Event("campaign_reply", f"campaign:{reply.campaign_id}", reply.at, None)
            score_events.setdefault(contacts[reply.contact_id], []).append(event)
        outcome.signals = _insert_entries(session, entries)
        rules = scoring.load_rules()
        counted = scoring.apply_events(session, score_events, rules, now)
    moved = set(counted)
    for contact in score_events:
        if contact.id in moved and lifecycle.promote_on_score(
            session, contact, rules.mql_threshold, scoring.total(contact)
        ):
            outcome.promoted.append(contact.id)
    _request_handoffs(session, outcome, entries)
    # A reply ends the sequences that stop on one (those it enrols in come at commit, after).
    latest: dict[int, datetime] = {}
    for arrival in arrivals:
        latest[arrival.contact_id] = max(arrival.at, latest.get(arrival.contact_id, arrival.at))
    exit_contacts(session, latest, "reply", now=now, since=latest)
    return outcome


def _opted_out(session: Session, contact_ids: set[int]) -> set[tuple[int, str]]:
    """(contact id, channel) of each opt-out among these contacts."""
    rows = session.execute(
        select(ChannelConsent.contact_id, ChannelConsent.channel).where(
            ChannelConsent.contact_id.in_(contact_ids),
            ChannelConsent.status == ConsentStatus.OPTED_OUT,
        )
    )
    return {(contact_id, channel) for contact_id, channel in rows}


def _request_handoffs(session: Session, outcome: Outcome, entries: list[dict[str, Any]]) -> None:
    """A new MQL, or a customer asking for a person, is queued for routing (``crm.routing``):
    one ``handoff`` job each, run by a worker after this batch commits."""
    asked = {
        entry["contact_id"]: entry
        for entry in entries
        if entry["metadata"]["signal"] == HUMAN_REQUEST
        and (entry["contact_id"], HUMAN_REQUEST) in outcome.signals
    }
    for contact_id, entry in asked.items():
        trigger = routing.Trigger(
            HUMAN_REQUEST, entry["body"], entry["metadata"]["source_interaction_id"]
        )
        routing.request_handoff(session, contact_id, trigger)
        outcome.handoffs.append(contact_id)
    for contact_id in outcome.promoted:
        if contact_id not in asked:
            routing.request_handoff(session, contact_id, routing.Trigger(routing.MQL, ""))
            outcome.handoffs.append(contact_id)


def _score_events(row: Interaction, signal: Signals, kinds: set[str]) -> list[scoring.Event]:
    """What this message is worth to the lead score (rules in crm/config/scoring.yaml)."""
    rules = ["replied"]
    if signal.intent != "other":
        rules.append(f"intent_{signal.intent}")
    if signal.sentiment == "positive":
        rules.append("sentiment_positive")
    if SENTIMENT_NEGATIVE in kinds:
        rules.append("sentiment_turned_negative")
    source = f"interaction:{row.id}"
    return [scoring.Event(rule, source, row.created_at, row.channel) for rule in rules]


def _insert_entries(session: Session, entries: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Insert the signal entries not already on the timeline; (contact id, kind) of each."""
    if not entries:
        return []
    statement = _insert_entries_statement(session.get_bind().dialect.name)
    # executemany: multi-row batches from a statement compiled once.
    return [
        (contact_id, meta["signal"]) for contact_id, meta in session.execute(statement, entries)
    ]


@functools.cache
def _insert_entries_statement(dialect_name: str) -> Insert:
    table = Interaction.__table__
    return insert_skipping_conflicts(
        dialect_name, table, ["provider", "provider_message_id"]
    ).returning(table.c.contact_id, table.c.metadata)


def _roll_up(
    contact: Contact,
    row: Interaction,
    text: str,
    signal: Signals,
    *,
    already_opted_out: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """Update the contact from one message's signals; the timeline entries it calls for."""
    before = contact.sentiment
    previous = contact.sentiment_score
    score = (
        signal.sentiment_score
        if previous is None
        else (1 - ROLLING_WEIGHT) * previous + ROLLING_WEIGHT * signal.sentiment_score
    )
    contact.sentiment_score = round(score, 4)
    contact.sentiment = rolling_label(score)
    contact.sentiment_at = row.created_at
    if signal.intent != "other":
        contact.last_intent = signal.intent
        contact.last_intent_at = row.created_at
    found: list[tuple[str, str]] = []
    if contact.sentiment == "negative" and before != "negative":
        found.append((SENTIMENT_NEGATIVE, "Sentiment turned negative"))
    elif before == "negative" and contact.sentiment == "positive":
        found.append((SENTIMENT_RECOVERED, "Sentiment recovered"))
    if signal.intent == "opt_out":
        # Not applied: flagged for a person, unless flagged already or opted out by keyword.
        if contact.opt_out_review_at is None and not already_opted_out:
            contact.opt_out_review_at = now
            contact.opt_out_review_interaction_id = row.id
            found.append((OPT_OUT_REVIEW, "Possible opt-out, marketing paused until reviewed"))
    elif signal.intent in REQUESTS:
        found.append(REQUESTS[signal.intent])
    snippet = _snippet(text)
    return [_entry(contact, row, kind, f"{title}: {snippet}", now) for kind, title in found]


REQUESTS = {
    "human": (HUMAN_REQUEST, "Asked for a person"),
    "cancel": (CANCEL_REQUEST, "Wants to cancel"),
}


def _entry(
    contact: Contact, row: Interaction, kind: str, summary: str, now: datetime
) -> dict[str, Any]:
    return signal_values(
        contact_id=contact.id,
        kind=kind,
        source_channel=row.channel,
        source_interaction_id=row.id,
        summary=summary,
        detail={
            "intent": row.intent,
            "intent_confidence": row.intent_confidence,
            "sentiment": row.sentiment,
            "sentiment_score": row.sentiment_score,
            "contact_sentiment": contact.sentiment,
            "model_version": row.model_version,
        },
        created_at=now,
    )


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    short = flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"
    return f"“{short}”"
