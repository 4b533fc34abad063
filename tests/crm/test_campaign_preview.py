"""Before launch: the audience and why contacts are left out, rendering, encoding, parts and
cost, and A/B splits that the launch will reproduce."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from crm.campaign_preview import build_preview, parse_variants, variant_for
from crm.campaign_render import TemplateError, compile_template
from crm.contacts import set_tags
from crm.models import ChannelConsent, Contact, Identity, Interaction
from crm.models.base import utcnow
from crm.prices import load_prices
from crm.runtime import Runtime
from crm.segments import parse_filters


def add(session: Session, name: str | None, phone: str | None, **fields: object) -> int:
    contact = Contact(name=name, lifecycle_stage="lead", attributes={}, **fields)
    session.add(contact)
    session.flush()
    if phone:
        session.add(Identity(contact_id=contact.id, kind="phone", value=phone))
    set_tags(session=session, contact=contact, tags=["promo"])
    return contact.id


def consent(session: Session, contact_id: int, channel: str, status: str) -> None:
    session.add(ChannelConsent(contact_id=contact_id, channel=channel, status=status, source="t"))


@pytest.fixture
def audience(runtime: Runtime) -> dict[str, int]:
    with runtime.session() as session:
        ids = {
            "ama": add(session, "Ama Mensah", "+233241000001"),
            "zoe": add(session, "Zoë Kamau", "+254712000002"),  # ë is not GSM-7
            "chloe": add(session, "Chloé", "+233241000003"),  # é is
            "anon": add(session, None, "+2348031000004"),
            "stopped": add(session, "Kofi", "+233241000005"),
            "flagged": add(session, "Esi", "+233241000006", opt_out_review_at=utcnow()),
            "nophone": add(session, "Yaw", None),
        }
        consent(session, ids["stopped"], "sms", "opted_out")
        ids["merged"] = add(session, "Old Ama", None, merged_into_id=ids["ama"])
    return ids


def preview(rt: Runtime, body: str | list, channel: str = "sms", **kwargs: object):
    variants = parse_variants(body if isinstance(body, list) else [{"body": body}])
    with rt.session() as session:
        return build_preview(
            session,
            filters=parse_filters({"tags": ["promo"]}),
            channel=channel,
            variants=variants,
            **kwargs,
        )


def test_exclusions_are_counted_with_their_reasons(runtime: Runtime, audience: dict[str, int]):
    result = preview(runtime, "Hello {{ first_name | default('there') }}")
    assert result.recipients == 4
    assert dict(result.excluded) == {
        "opted_out": 1,
        "opt_out_review": 1,
        "no_phone": 1,
        "duplicate": 1,
    }
    bodies = {r.member.contact_id: r.body for r in result.samples}
    assert bodies[audience["ama"]] == "Hello Ama"
    assert bodies[audience["anon"]] == "Hello there"


def test_personalization_that_flips_the_encoding_is_counted_and_priced(
    runtime: Runtime, audience: dict[str, int]
):
    body = "Hi {{ first_name | default('there') }}! " + "x" * 60
    result = preview(runtime, body)
    by_contact = {r.member.contact_id: r for r in result.samples}
    assert (by_contact[audience["chloe"]].encoding, by_contact[audience["chloe"]].segments) == (
        "GSM-7",
        1,
    )
    # "Zoë" forces UCS-2: "Hi Zoë! " + 60 x is 68 units, one part of at most 70.
    assert by_contact[audience["zoe"]].encoding == "UCS-2"
    assert result.by_encoding == {"GSM-7": 3, "UCS-2": 1}
    [culprit] = result.ucs2_characters.values()
    assert culprit == {"character": "ë", "suggestion": "e", "messages": 1}
    prices = load_prices()
    expected = sum(
        (prices.unit_price("sms", r.member.region) * r.segments for r in result.samples),
        Decimal(0),
    )
    assert result.estimated_cost == expected and result.segments_total == 4
    long = preview(runtime, "Hi {{ first_name | default('there') }}! " + "x" * 64)
    zoe = next(r for r in long.samples if r.member.contact_id == audience["zoe"])
    assert (zoe.encoding, zoe.segments) == ("UCS-2", 2)  # 72 units > 70
    assert long.segments_total == 5


def test_variants_split_by_weight_and_each_contact_keeps_its_variant(
    runtime: Runtime, audience: dict[str, int]
):
    variants = parse_variants(
        [
            {"name": "A", "body": "Promo A", "weight": 50},
            {"name": "B", "body": "Promo B", "weight": 50},
        ]
    )
    picks = [variant_for(i, variants).name for i in range(1, 2001)]
    assert 900 < picks.count("A") < 1100  # about half
    assert picks == [variant_for(i, variants).name for i in range(1, 2001)]  # stable
    result = preview(
        runtime,
        [
            {"name": "A", "body": "Promo A", "weight": 50},
            {"name": "B", "body": "Promo B", "weight": 50},
        ],
    )
    assert sum(result.by_variant.values()) == 4
    for rendered in result.samples:
        assert rendered.body == f"Promo {rendered.variant}"


def test_whatsapp_needs_opt_in_and_a_template_outside_the_24h_window(
    runtime: Runtime, audience: dict[str, int]
):
    with runtime.session() as session:
        for name in ("ama", "zoe"):
            consent(session, audience[name], "whatsapp", "opted_in")
        session.add(
            Interaction(
                contact_id=audience["ama"],
                channel="whatsapp",
                direction="inbound",
                body="hi",
                created_at=utcnow() - timedelta(hours=2),
            )
        )
    result = preview(runtime, "Hello", channel="whatsapp")
    assert result.recipients == 1  # Ama wrote 2 h ago
    assert result.excluded["needs_template"] == 1  # Zoë did not
    # Everyone else never opted in to WhatsApp (the first reason found is the one counted).
    assert result.excluded["no_whatsapp_consent"] == 5
    templated = preview(runtime, "Hello", channel="whatsapp", content_sid="HX" + "0" * 32)
    assert templated.recipients == 2 and "needs_template" not in templated.excluded


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("", "empty"),
        ("Hi {{ frist_name }}", "unknown name frist_name"),
        ("Hi {{ first_name ", "line 1"),
        ("x" * 1601, "longer than 1600"),
    ],
)
def test_bad_templates_are_refused_in_the_composer(body: str, words: str):
    with pytest.raises(TemplateError, match=words):
        compile_template(body)


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [{"body": "A", "weight": 60}, {"body": "B", "weight": 30}],
        [{"name": "A", "body": "x", "weight": 50}, {"name": "A", "body": "y", "weight": 50}],
        [{"body": "x", "weight": True}],
    ],
)
def test_bad_variants_are_refused(raw: list):
    with pytest.raises(TemplateError):
        parse_variants(raw)


def test_the_sandbox_refuses_reaching_outside_the_values(
    runtime: Runtime, audience: dict[str, int]
):
    result = preview(runtime, "{{ name.__class__.__mro__ }}")
    assert result.recipients == 0
    assert result.excluded["render_failed"] == 4  # refused by the sandbox, or empty
