"""What a campaign will do before it is launched: who gets what, in how many parts, at what cost.

For each recipient the body is rendered (``crm.campaign_render``), its encoding and parts
counted (``channels.sms_segments``: one character outside GSM-7 makes the whole message UCS-2),
and priced by the recipient's country (``crm.prices``). The preview shows a few rendered
messages, the totals, the characters that forced UCS-2 with a suggested replacement, and how
many contacts are left out and why (``crm.audience``). A/B variants split recipients by a hash
of the contact id, so the launch puts each contact in the variant the preview counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.sms_segments import analyze
from crm.audience import Audience, Member, build_audience
from crm.campaign_render import Template, TemplateError, compile_template, context_for, render
from crm.models import Direction, Interaction
from crm.models.base import utcnow
from crm.prices import load_prices
from crm.segments import SegmentFilters

WHATSAPP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Variant:
    name: str
    template: Template
    weight: int  # percent


def parse_variants(raw: object) -> list[Variant]:
    """``[{"name": "A", "body": "...", "weight": 50}, ...]``; weights add up to 100 (a single
    variant may leave its weight out)."""
    if not isinstance(raw, list) or not raw or len(raw) > 5:
        raise TemplateError("variants: a list of 1 to 5 {name, body, weight}")
    variants = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict):
            raise TemplateError("variants: a list of 1 to 5 {name, body, weight}")
        name = str(spec.get("name") or "ABCDE"[i])[:20]
        weight = spec.get("weight", 100 if len(raw) == 1 else None)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= 100:
            raise TemplateError(f"variant {name}: weight is a whole percentage, 1 to 100")
        variants.append(Variant(name, compile_template(spec.get("body")), weight))
    if sum(v.weight for v in variants) != 100:
        raise TemplateError("variant weights must add up to 100")
    if len({v.name for v in variants}) != len(variants):
        raise TemplateError("variant names must differ")
    return variants


def variant_for(contact_id: int, variants: list[Variant]) -> Variant:
    """A stable split: the same contact always lands in the same variant."""
    bucket = (contact_id * 2654435761) % 2**32 % 100  # Knuth's multiplicative hash
    total = 0
    for variant in variants:
        total += variant.weight
        if bucket < total:
            return variant
    return variants[-1]


@dataclass
class Rendered:
    member: Member
    variant: str
    body: str
    encoding: str
    segments: int


@dataclass
class Preview:
    channel: str
    recipients: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    samples: list[Rendered] = field(default_factory=list)
    segments_total: int = 0
    by_encoding: Counter[str] = field(default_factory=Counter)
    by_variant: Counter[str] = field(default_factory=Counter)
    ucs2_characters: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimated_cost: Decimal = Decimal(0)
    currency: str = "USD"

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "recipients": self.recipients,
            "excluded": dict(self.excluded),
            "excluded_total": sum(self.excluded.values()),
            "samples": [
                {
                    "contact_id": r.member.contact_id,
                    "phone": r.member.phone,
                    "variant": r.variant,
                    "body": r.body,
                    "encoding": r.encoding,
                    "segments": r.segments,
                }
                for r in self.samples
            ],
            "segments_total": self.segments_total,
            "by_encoding": dict(self.by_encoding),
            "by_variant": dict(self.by_variant),
            "ucs2_characters": list(self.ucs2_characters.values()),
            "estimated_cost": str(self.estimated_cost.quantize(Decimal("0.01"))),
            "currency": self.currency,
        }


def render_all(
    audience: Audience, variants: list[Variant]
) -> tuple[list[Rendered], dict[int, str]]:
    """Each member's message; members whose message failed to render, with the error."""
    rendered, failed = [], {}
    for member in audience.members:
        variant = variant_for(member.contact_id, variants)
        context = context_for(
            name=member.name,
            phone=member.phone,
            lifecycle_stage=member.lifecycle_stage,
            score=member.score,
            attributes=member.attributes,
        )
        try:
            body = render(variant.template, context)
        except TemplateError as exc:
            failed[member.contact_id] = str(exc)
            continue
        if not body:
            failed[member.contact_id] = "renders to an empty message"
            continue
        info = analyze(body)
        rendered.append(Rendered(member, variant.name, body, info.encoding, info.segments))
    return rendered, failed


def outside_whatsapp_window(session: Session, contact_ids: list[int]) -> set[int]:
    """Members who have not written on WhatsApp in 24 hours: free-form messages cannot reach
    them, only an approved template."""
    since = utcnow() - WHATSAPP_WINDOW
    recent = set(
        session.scalars(
            select(Interaction.contact_id)
            .where(
                Interaction.channel == "whatsapp",
                Interaction.direction == Direction.INBOUND.value,
                Interaction.created_at >= since,
            )
            .group_by(Interaction.contact_id)
            .having(func.count() > 0)
        )
    )
    return {contact_id for contact_id in contact_ids if contact_id not in recent}


@dataclass
class Plan:
    """Who gets which message, who is left out and why, and what it costs: what the preview
    shows and the launch writes."""

    rendered: list[Rendered]
    excluded: Counter[str]
    cost: Decimal
    currency: str


def plan_messages(
    session: Session,
    *,
    filters: SegmentFilters,
    channel: str,
    variants: list[Variant],
    content_sid: str | None = None,
) -> Plan:
    prices = load_prices()
    audience = build_audience(session, filters, channel)
    if channel == "whatsapp" and not content_sid:
        closed = outside_whatsapp_window(session, [m.contact_id for m in audience.members])
        if closed:
            audience.excluded["needs_template"] += len(closed)
            audience.members = [m for m in audience.members if m.contact_id not in closed]
    rendered, failed = render_all(audience, variants)
    if failed:
        audience.excluded["render_failed"] += len(failed)
    cost = sum(
        (
            prices.unit_price(channel, m.member.region) * (m.segments if channel == "sms" else 1)
            for m in rendered
        ),
        Decimal(0),
    )
    return Plan(rendered, audience.excluded, cost, prices.currency)


def build_preview(
    session: Session,
    *,
    filters: SegmentFilters,
    channel: str,
    variants: list[Variant],
    content_sid: str | None = None,
    samples: int = 5,
) -> Preview:
    plan = plan_messages(
        session, filters=filters, channel=channel, variants=variants, content_sid=content_sid
    )
    preview = Preview(
        channel=channel,
        excluded=plan.excluded,
        currency=plan.currency,
        recipients=len(plan.rendered),
        samples=plan.rendered[:samples],
        estimated_cost=plan.cost,
    )
    for message in plan.rendered:
        preview.by_variant[message.variant] += 1
        preview.by_encoding[message.encoding] += 1
        preview.segments_total += message.segments
    _culprits(preview, plan.rendered)
    return preview


def _culprits(preview: Preview, rendered: list[Rendered]) -> None:
    """The characters that forced UCS-2, with how many messages each affected."""
    for message in rendered:
        if message.encoding == "GSM-7":
            continue
        for culprit in analyze(message.body).ucs2_characters:
            entry = preview.ucs2_characters.setdefault(
                culprit.char,
                {"character": culprit.char, "suggestion": culprit.suggestion, "messages": 0},
            )
            entry["messages"] += 1
