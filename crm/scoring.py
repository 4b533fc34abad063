"""Lead scoring from rules kept as data (``crm/config/scoring.yaml`` or ``SCORING_RULES_FILE``).

Every scoring event is a row (contact, rule, source) that is unique, so an event seen twice
(re-enrichment, a retried webhook) counts once. Points decay exponentially with a half-life. The
contact stores the decayed sum at one instant (``score_points`` at ``score_at``); a new event
moves it forward in O(1): ``points(t) = points(t0) * 0.5 ** ((t - t0) / half_life) + new``.
The explanation is read from the events: "+15 asked about price (SMS, 2 h ago)".

Fit rules score who the contact is (gave an email, buys for a business, tagged wholesale), not
what they did: those points do not decay and are recomputed whenever the contact is edited
(:func:`refit`). The score people see is the decayed behaviour points plus the fit points.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.sql.dml import Insert

from crm.db import insert_skipping_conflicts
from crm.models import Contact, ScoreEvent
from crm.models.base import utcnow
from crm.sequence_triggers import note_score

DEFAULT_RULES = Path(__file__).parent / "config" / "scoring.yaml"
CHANNEL_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "ussd": "USSD", "voice": "call"}


class ScoringConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    points: float
    reason: str


@dataclass(frozen=True)
class FitRule:
    """Points while the contact matches: ``field`` is set (name, email), ``attribute`` is set
    (or ``equals`` a value), or it carries ``tag``."""

    points: float
    reason: str
    field: str | None = None
    attribute: str | None = None
    tag: str | None = None
    equals: object = None

    def matches(self, contact: Contact) -> bool:
        if self.field is not None:
            return bool(getattr(contact, self.field, None))
        if self.attribute is not None:
            value = (contact.attributes or {}).get(self.attribute)
            if self.equals is None:
                return value not in (None, "")
            return str(value).strip().lower() == str(self.equals).strip().lower()
        return self.tag is not None and self.tag in contact.tag_names


FIT_FIELDS = ("name", "email")


def _fit_rule(name: str, spec: dict[str, object]) -> FitRule:
    when = spec.get("when")
    if not isinstance(when, dict) or len({"field", "attribute", "tag"} & set(when)) != 1:
        raise ScoringConfigError(f"fit rule {name}: 'when' needs one of field, attribute, tag")
    if "field" in when and when["field"] not in FIT_FIELDS:
        raise ScoringConfigError(f"fit rule {name}: field must be one of {FIT_FIELDS}")
    tag = when.get("tag")
    return FitRule(
        float(spec["points"]),  # type: ignore[arg-type]
        str(spec["reason"]),
        field=when.get("field"),  # type: ignore[arg-type]
        attribute=when.get("attribute"),  # type: ignore[arg-type]
        tag=str(tag).lower() if tag is not None else None,
        equals=when.get("equals"),
    )


@dataclass(frozen=True)
class ScoringRules:
    half_life: timedelta
    mql_threshold: float
    rules: dict[str, Rule]
    fit: dict[str, FitRule] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: object) -> ScoringRules:
        if not isinstance(raw, dict) or not isinstance(raw.get("rules"), dict):
            raise ScoringConfigError("scoring rules need a 'rules' mapping")
        try:
            half_life = timedelta(hours=float(raw.get("half_life_hours", 168)))
            threshold = float(raw.get("mql_threshold", 50))
            rules = {
                str(name): Rule(float(spec["points"]), str(spec["reason"]))
                for name, spec in raw["rules"].items()
            }
            fit = {
                str(name): _fit_rule(name, spec) for name, spec in (raw.get("fit") or {}).items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ScoringConfigError(f"bad scoring rule: {exc}") from exc
        if half_life <= timedelta(0):
            raise ScoringConfigError("half_life_hours must be positive")
        return cls(half_life, threshold, rules, fit)


@functools.cache
def load_rules(path: Path | None = None) -> ScoringRules:
    configured = os.environ.get("SCORING_RULES_FILE", "").strip()
    path = path or (Path(configured) if configured else DEFAULT_RULES)
    return ScoringRules.parse(yaml.safe_load(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Event:
    """Something that happened, for a rule: ``source`` identifies it (e.g. "interaction:12")."""

    rule: str
    source: str
    occurred_at: datetime
    channel: str | None = None


def decayed(points: float, since: datetime, now: datetime, half_life: timedelta) -> float:
    age = max((now - since).total_seconds(), 0.0)
    return points * 0.5 ** (age / half_life.total_seconds())


def current_score(contact: Contact, rules: ScoringRules, now: datetime | None = None) -> float:
    """The contact's score now: the stored sum, decayed since it was stored."""
    if contact.score_at is None:
        return 0.0
    return decayed(contact.score_points or 0.0, contact.score_at, now or utcnow(), rules.half_life)


def apply_events(
    session: Session,
    events: dict[Contact, list[Event]],
    rules: ScoringRules | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Record the events new to each contact and move its score; the contact id of each event
    that counted.

    One INSERT for the whole batch that skips (contact, rule, source) already recorded; only
    what it inserted moves a score."""
    rules = rules or load_rules()
    now = now or utcnow()
    rows = [
        {
            "contact_id": contact.id,
            "rule": event.rule,
            "points": rules.rules[event.rule].points,
            "reason": rules.rules[event.rule].reason,
            "channel": event.channel,
            "source": event.source,
            "occurred_at": event.occurred_at,
        }
        for contact, happened in events.items()
        for event in happened
        if event.rule in rules.rules
    ]
    if not rows:
        return []
    counted = list(session.execute(_insert_new(session), rows))
    gained: dict[int, float] = {}
    for contact_id, points, occurred_at in counted:
        # An event dated in the past has already lost part of its weight.
        worth = decayed(points, occurred_at, now, rules.half_life)
        gained[contact_id] = gained.get(contact_id, 0.0) + worth
    for contact in events:
        if contact.id in gained:
            note_score(session, contact, score_now(contact, rules, now))
            contact.score_points = current_score(contact, rules, now) + gained[contact.id]
            contact.score_at = now
            contact.score = round(contact.score_points + (contact.fit_points or 0.0))
    return [row.contact_id for row in counted]


def refit(contact: Contact, rules: ScoringRules | None = None, now: datetime | None = None) -> bool:
    """Recompute the contact's fit points (after an edit or an import); True if they changed."""
    rules = rules or load_rules()
    points = sum(rule.points for rule in rules.fit.values() if rule.matches(contact))
    if points == (contact.fit_points or 0.0):
        return False
    session = object_session(contact)
    if session is not None:  # the score before: the old fit points on today's behaviour points
        note_score(session, contact, score_now(contact, rules, now))
    contact.fit_points = points
    contact.score = round(current_score(contact, rules, now) + points)
    return True


def score_now(contact: Contact, rules: ScoringRules, now: datetime | None = None) -> int:
    """The score as of now: behaviour points decayed to ``now`` plus fit points (``score`` is
    as of the last event)."""
    return round(current_score(contact, rules, now) + (contact.fit_points or 0.0))


def total(contact: Contact) -> float:
    """Behaviour points as of the last event plus fit points: the score right after an event."""
    return (contact.score_points or 0.0) + (contact.fit_points or 0.0)


def _insert_new(session: Session) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING what counted; run as executemany, which
    SQLAlchemy sends as multi-row batches with a statement compiled once."""
    return _insert_new_for(session.get_bind().dialect.name)


@functools.cache
def _insert_new_for(dialect_name: str) -> Insert:
    """Built once per dialect (building costs more Python than the round trip)."""
    table = ScoreEvent.__table__
    return insert_skipping_conflicts(
        dialect_name, table, ["contact_id", "rule", "source"]
    ).returning(table.c.contact_id, table.c.points, table.c.occurred_at)


@dataclass(frozen=True)
class Reason:
    points: float  # what this event is worth now, after decay
    text: str

    def __str__(self) -> str:
        return self.text


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{max(seconds // 60, 1)} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def explain(
    session: Session,
    contact: Contact,
    rules: ScoringRules | None = None,
    now: datetime | None = None,
    limit: int = 5,
) -> list[Reason]:
    """The events weighing most on the score now: "+15 asked about price (SMS, 2 h ago)"."""
    rules = rules or load_rules()
    now = now or utcnow()
    horizon = now - rules.half_life * 10  # older events weigh under 0.1%
    events = session.scalars(
        select(ScoreEvent).where(
            ScoreEvent.contact_id == contact.id, ScoreEvent.occurred_at >= horizon
        )
    )
    reasons = [
        Reason(rule.points, f"{rule.points:+.0f} {rule.reason} (fit)")
        for rule in rules.fit.values()
        if rule.matches(contact)
    ]
    for event in events:
        worth = decayed(event.points, event.occurred_at, now, rules.half_life)
        where = f"{CHANNEL_NAMES.get(event.channel, event.channel)}, " if event.channel else ""
        when = _ago(now - event.occurred_at)
        reasons.append(Reason(worth, f"{worth:+.0f} {event.reason} ({where}{when})"))
    reasons.sort(key=lambda r: abs(r.points), reverse=True)
    return reasons[:limit]
