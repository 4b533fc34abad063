"""Lead scoring and lifecycle on a real database: explanations, decay, no double counting."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crm import lifecycle, scoring
from crm.contacts import find_by_phone
from crm.models import Contact, Handoff, Interaction, Role, ScoreEvent
from crm.models.base import utcnow
from crm.runtime import Runtime
from tests.conftest import Webhooks, make_token, run_jobs

PHONE = "+233241230001"
RULES = scoring.load_rules()


def new_contact(rt: Runtime, name: str = "Ama Owusu") -> int:
    with rt.session() as session:
        contact = Contact(name=name, attributes={})
        session.add(contact)
        session.flush()
        return contact.id


def test_points_decay_with_the_half_life_and_explain_themselves(runtime: Runtime):
    contact_id = new_contact(runtime)
    now = utcnow()
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        counted = scoring.apply_events(
            session,
            {
                contact: [
                    scoring.Event(
                        "intent_pricing", "interaction:1", now - timedelta(hours=2), "sms"
                    )
                ]
            },
            RULES,
            now,
        )
        assert len(counted) == 1
        assert contact.score == 15  # 15 * 0.5 ** (2 / 168) = 14.9
        [reason] = scoring.explain(session, contact, RULES, now)
        assert str(reason) == "+15 asked about price (SMS, 2 h ago)"
        week_later = now + RULES.half_life
        assert scoring.current_score(contact, RULES, week_later) == pytest.approx(
            contact.score_points / 2
        )
        assert str(scoring.explain(session, contact, RULES, week_later)[0]).startswith("+7 asked")


def test_the_same_event_counts_once(runtime: Runtime):
    contact_id = new_contact(runtime)
    now = utcnow()
    event = scoring.Event("intent_purchase", "interaction:7", now, "whatsapp")
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        scoring.apply_events(session, {contact: [event]}, RULES, now)
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        assert scoring.apply_events(session, {contact: [event, event]}, RULES, now) == []
        assert contact.score == 20
        assert session.scalar(select(func.count()).select_from(ScoreEvent)) == 1


def test_enrichment_scores_each_message_once_and_promotes_to_mql(
    runtime: Runtime, webhooks: Webhooks, client: FlaskClient, auth: dict[str, str]
):
    def text(body: str) -> None:
        sid = "SM" + uuid.uuid4().hex
        assert webhooks.message(Body=body, From=PHONE, MessageSid=sid).status_code == 200

    text("how much is the solar lamp?")
    run_jobs(runtime)
    with runtime.session() as session:
        contact = find_by_phone(session, PHONE)
        assert contact is not None
        first = contact.score
        assert first >= 20  # wrote to us (+5), asked about price (+15)
        assert contact.lifecycle_stage == "subscriber"
        reasons = [str(r) for r in scoring.explain(session, contact)]
        assert any("asked about price (SMS" in r for r in reasons)
        interaction_ids = list(session.scalars(select(Interaction.id)))
        contact_id = contact.id
    shown = client.get(f"/api/v1/contacts/{contact_id}", headers=auth).get_json()
    assert shown["score"] == first
    assert any("asked about price (SMS" in r for r in shown["score_reasons"])
    # Enriching again (a re-delivered job) changes nothing.
    from crm import enrichment
    from intelligence import classify

    with runtime.session() as session:
        enrichment.enrich(session, interaction_ids, classify)
    for body in ["I want to buy the home kit", "can I order two lamps today?"]:
        text(body)
    run_jobs(runtime)
    with runtime.session() as session:
        contact = find_by_phone(session, PHONE)
        assert contact is not None
        assert contact.score >= RULES.mql_threshold
        assert contact.lifecycle_stage == "mql"
        moves = session.scalars(
            select(Interaction.body).where(Interaction.body.like("Lifecycle %"))
        ).all()
        assert len(moves) == 1 and "subscriber -> mql by scoring" in moves[0]
        counted = session.scalar(
            select(func.count()).select_from(ScoreEvent).where(ScoreEvent.rule == "intent_pricing")
        )
        assert counted == 1


def test_lifecycle_moves_forward_freely_and_back_only_with_a_reason(runtime: Runtime):
    contact_id = new_contact(runtime)
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        assert lifecycle.move(session, contact, "sql", actor="user:1")
        assert not lifecycle.move(session, contact, "sql", actor="user:1")
        with pytest.raises(lifecycle.TransitionError, match="needs a reason"):
            lifecycle.move(session, contact, "lead", actor="user:1")
        assert lifecycle.move(session, contact, "lead", actor="user:1", reason="budget next year")
        with pytest.raises(lifecycle.TransitionError, match="reason code"):
            lifecycle.move(session, contact, "disqualified", actor="user:1", reason="meh")
        assert lifecycle.move(session, contact, "disqualified", actor="user:1", reason="no_budget")
        with pytest.raises(lifecycle.TransitionError, match="needs a reason"):
            lifecycle.move(session, contact, "customer", actor="deal:1")
        with pytest.raises(lifecycle.TransitionError, match="unknown"):
            lifecycle.move(session, contact, "vip", actor="user:1")
        entries = session.scalars(
            select(Interaction.meta)
            .where(Interaction.contact_id == contact_id)
            .order_by(Interaction.id)
        ).all()
        assert [(m["from"], m["to"]) for m in entries] == [
            ("subscriber", "sql"),
            ("sql", "lead"),
            ("lead", "disqualified"),
        ]
        assert entries[1]["reason"] == "budget next year"


def test_bad_rules_are_refused_with_the_reason():
    with pytest.raises(scoring.ScoringConfigError, match="rules"):
        scoring.ScoringRules.parse({"half_life_hours": 10})
    with pytest.raises(scoring.ScoringConfigError, match="bad scoring rule"):
        scoring.ScoringRules.parse({"rules": {"x": {"points": "many", "reason": "r"}}})
    with pytest.raises(scoring.ScoringConfigError, match="positive"):
        scoring.ScoringRules.parse({"half_life_hours": 0, "rules": {}})


def test_fit_points_follow_edits_do_not_decay_and_can_make_an_mql(
    runtime: Runtime, client: FlaskClient, webhooks: Webhooks
):
    """Who the contact is scores too: an email, a business buyer, a wholesale tag."""
    admin = {"Authorization": f"Bearer {make_token(runtime, Role.ADMIN)}"}
    assert webhooks.message(Body="hello").status_code == 200
    run_jobs(runtime)  # "wrote to us": 5 points
    with runtime.session() as session:
        contact = session.scalars(select(Contact)).one()
        contact.score_points, contact.score_at = 30.0, utcnow() - timedelta(days=7)
        contact.score = 30
        contact_id = contact.id
    url = f"/api/v1/contacts/{contact_id}"
    body = {"email": "ama@example.org", "attributes": {"customer_type": "Business"}}
    edited = client.patch(url, json=body, headers=admin).get_json()
    # 30 behaviour points a week old are worth 15 now; +5 email, +10 business buyer.
    assert (edited["score"], edited["lifecycle_stage"]) == (30, "subscriber")
    shown = client.get(url, headers=admin).get_json()
    assert "+10 buys for a business (fit)" in shown["score_reasons"]
    tagged = client.patch(url, json={"tags": ["wholesale"]}, headers=admin).get_json()
    assert (tagged["score"], tagged["lifecycle_stage"]) == (40, "subscriber")  # 15 + 25
    # The same behaviour points, fresh: with the fit points they reach the threshold.
    client.patch(url, json={"tags": []}, headers=admin)
    with runtime.session() as session:
        session.get_one(Contact, contact_id).score_at = utcnow()
    promoted = client.patch(url, json={"tags": ["wholesale"]}, headers=admin).get_json()
    assert (promoted["score"], promoted["lifecycle_stage"]) == (55, "mql")
    run_jobs(runtime)
    with runtime.session() as session:
        assert session.scalars(select(Handoff.reason)).all() == ["mql"]
    dropped = client.patch(url, json={"tags": [], "email": None}, headers=admin).get_json()
    assert (dropped["score"], dropped["lifecycle_stage"]) == (40, "mql")  # never demoted
