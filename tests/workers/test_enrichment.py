"""Enrichment on a real database and Redis: inbound messages get the model's signals, contacts
roll them up, and the timeline hears only about what a rep acts on."""

from __future__ import annotations

import subprocess
import sys
import uuid

from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import select

from crm import enrichment, outbox
from crm.models import ChannelConsent, Contact, Interaction, OutboxJob, Role
from crm.runtime import Runtime
from intelligence import classifier, classify
from tests.conftest import Webhooks, make_token, run_jobs
from workers.worker import relay_once

SENDERS = ["+233241110001", "+233241110002", "+233241110003", "+233241110004"]


def text(webhooks: Webhooks, body: str, sender: str) -> int:
    """An inbound SMS with its own MessageSid; the webhook's status code."""
    return webhooks.message(Body=body, From=sender, MessageSid="SM" + uuid.uuid4().hex).status_code


def inbound(rt: Runtime) -> list[Interaction]:
    with rt.session() as session:
        rows = session.scalars(
            select(Interaction).where(Interaction.direction == "inbound").order_by(Interaction.id)
        )
        return list(rows)


def contact_of(rt: Runtime, phone: str) -> Contact:
    from crm.contacts import find_by_phone

    with rt.session() as session:
        contact = find_by_phone(session, phone)
        assert contact is not None
        session.expunge(contact)
        return contact


def signal_entries(rt: Runtime, kind: str) -> list[Interaction]:
    with rt.session() as session:
        rows = session.scalars(
            select(Interaction).where(
                Interaction.provider == "signal",
                Interaction.provider_message_id.like(f"{kind}:%"),
            )
        )
        return list(rows)


def test_an_inbound_sms_gets_signals_and_the_contact_rolls_them_up(
    runtime: Runtime, webhooks: Webhooks
):
    assert text(webhooks, "how much is the solar lamp?", SENDERS[0]) == 200
    run_jobs(runtime)
    [message] = inbound(runtime)
    assert message.intent == "pricing"
    assert message.intent_confidence is not None and message.intent_confidence >= 0.5
    assert message.sentiment in {"negative", "neutral", "positive"}
    assert message.model_version == classifier().model_version
    assert message.enriched_at is not None
    contact = contact_of(runtime, SENDERS[0])
    assert contact.last_intent == "pricing"
    assert contact.sentiment_score == message.sentiment_score
    with runtime.session() as session:
        assert session.scalar(select(OutboxJob.done_at).where(OutboxJob.job == "enrich"))


def test_messages_relayed_together_are_one_job_and_keep_their_own_signals(
    runtime: Runtime, webhooks: Webhooks
):
    texts = [
        "how much is the solar lamp?",
        "stop sending me messages",
        "thank you so much!",
        "I want to cancel my order",
    ]
    for sender, body in zip(SENDERS, texts, strict=True):
        assert text(webhooks, body, sender) == 200
    assert relay_once(runtime) == 4
    queue = Queue("enrichment", connection=runtime.redis)
    assert queue.count == 1  # one batch job carries the four rows
    with runtime.session() as session:
        assert len({row.rq_job_id for row in session.scalars(select(OutboxJob))}) == 1
    run_jobs(runtime)
    rows = inbound(runtime)
    assert [r.body for r in rows] == texts
    assert [r.intent for r in rows] == [s.intent for s in classify(texts)]
    assert [r.intent for r in rows] == ["pricing", "opt_out", "smalltalk", "cancel"]
    with runtime.session() as session:
        assert all(row.done_at for row in session.scalars(select(OutboxJob)))


def test_a_lost_batch_job_is_swept_again(runtime: Runtime, webhooks: Webhooks):
    for sender in SENDERS[:2]:
        text(webhooks, "is the fridge in stock?", sender)
    relay_once(runtime)
    runtime.redis.flushdb()  # Redis lost the batch job
    with runtime.session() as session:
        swept = outbox.sweep(session=session, connection=runtime.redis, grace_seconds=0)
    assert swept == 2
    run_jobs(runtime)
    assert all(r.enriched_at is not None for r in inbound(runtime))


def test_enriching_twice_classifies_once(runtime: Runtime, webhooks: Webhooks):
    text(webhooks, "the lamp stopped charging, please help", SENDERS[0])
    [message] = inbound(runtime)
    seen: list[str] = []

    def counting(texts):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return classify(texts)

    with runtime.session() as session:
        first = enrichment.enrich(session, [message.id], counting)
    with runtime.session() as session:
        second = enrichment.enrich(session, [message.id, 999_999], counting)
    assert first.enriched == [message.id]
    assert second.enriched == [] and second.skipped == [message.id, 999_999]
    assert seen == ["the lamp stopped charging, please help"]


def test_sentiment_turning_negative_is_one_timeline_signal(runtime: Runtime, webhooks: Webhooks):
    text(webhooks, "thanks, the lamp works great", SENDERS[0])
    run_jobs(runtime)
    assert contact_of(runtime, SENDERS[0]).sentiment == "positive"
    assert signal_entries(runtime, enrichment.SENTIMENT_NEGATIVE) == []
    angry = [
        "this is terrible, the lamp broke after two days",
        "very bad service, nobody answers my calls 😡",
        "worst company ever, I am so angry",
    ]
    for body in angry:
        text(webhooks, body, SENDERS[0])
    run_jobs(runtime)
    contact = contact_of(runtime, SENDERS[0])
    assert contact.sentiment == "negative" and contact.sentiment_score < -0.25
    [entry] = signal_entries(runtime, enrichment.SENTIMENT_NEGATIVE)
    assert entry.contact_id == contact.id
    assert entry.body.startswith("Sentiment turned negative")
    assert entry.meta["source_channel"] == "sms"


def test_a_free_text_opt_out_is_flagged_for_review_not_applied(
    runtime: Runtime, webhooks: Webhooks, client: FlaskClient
):
    text(webhooks, "please don't text me anymore, not interested", SENDERS[0])
    run_jobs(runtime)
    contact = contact_of(runtime, SENDERS[0])
    assert contact.opt_out_review_at is not None
    with runtime.session() as session:
        assert list(session.scalars(select(ChannelConsent))) == []  # consent untouched
    [entry] = signal_entries(runtime, enrichment.OPT_OUT_REVIEW)
    assert "marketing paused" in entry.body

    rep = {"Authorization": f"Bearer {make_token(runtime, Role.REP)}"}
    marketer = {"Authorization": f"Bearer {make_token(runtime, Role.MARKETER)}"}
    url = f"/api/v1/contacts/{contact.id}/opt-out-review"
    shown = client.get(f"/api/v1/contacts/{contact.id}", headers=rep).get_json()
    assert shown["opt_out_review"]["interaction_id"] == contact.opt_out_review_interaction_id
    assert client.post(url, json={"decision": "confirm"}, headers=marketer).status_code == 403
    assert client.post(url, json={"decision": "maybe"}, headers=rep).status_code == 422
    answer = client.post(url, json={"decision": "confirm"}, headers=rep)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["consent"] == {"sms": "opted_out", "whatsapp": "opted_out"}
    assert answer.get_json()["opt_out_review"] is None
    assert client.post(url, json={"decision": "confirm"}, headers=rep).status_code == 409


def test_dismissing_a_review_resumes_marketing_without_opting_out(
    runtime: Runtime, webhooks: Webhooks, client: FlaskClient
):
    text(webhooks, "stop sending me messages", SENDERS[1])
    run_jobs(runtime)
    contact = contact_of(runtime, SENDERS[1])
    assert contact.opt_out_review_at is not None
    rep = {"Authorization": f"Bearer {make_token(runtime, Role.REP)}"}
    answer = client.post(
        f"/api/v1/contacts/{contact.id}/opt-out-review", json={"decision": "dismiss"}, headers=rep
    )
    assert answer.status_code == 200
    assert answer.get_json()["consent"] == {} and answer.get_json()["opt_out_review"] is None


def test_a_stop_keyword_opts_out_at_once_and_is_not_flagged(runtime: Runtime, webhooks: Webhooks):
    text(webhooks, "STOP", SENDERS[2])
    run_jobs(runtime)
    contact = contact_of(runtime, SENDERS[2])
    assert contact.opt_out_review_at is None
    with runtime.session() as session:
        consent = session.scalar(
            select(ChannelConsent).where(ChannelConsent.contact_id == contact.id)
        )
        assert consent is not None and consent.status == "opted_out"


def test_asking_for_a_person_in_free_text_is_a_hot_lead_signal(
    runtime: Runtime, webhooks: Webhooks
):
    text(webhooks, "is there somebody in your office I can speak with?", SENDERS[3])
    run_jobs(runtime)
    entries = signal_entries(runtime, enrichment.HUMAN_REQUEST)
    assert len(entries) == 1
    assert entries[0].meta["intent"] == "human"


def test_ussd_free_text_is_enriched(runtime: Runtime, webhooks: Webhooks):
    assert webhooks.ussd("").status_code == 200
    assert webhooks.ussd("6").get_data(as_text=True).startswith("CON Type your message")
    answer = webhooks.ussd("6*my lamp is broken and nobody helps me, I am very unhappy")
    assert answer.get_data(as_text=True).startswith("END Thank you")
    run_jobs(runtime)
    with runtime.session() as session:
        session_row = session.scalar(select(Interaction).where(Interaction.channel == "ussd"))
        assert session_row is not None
        assert session_row.meta["free_text"] == [
            "my lamp is broken and nobody helps me, I am very unhappy"
        ]
        assert session_row.sentiment == "negative"
        assert session_row.intent in {"complaint", "support"}


def test_the_web_process_never_imports_the_model():
    code = (
        "import sys\n"
        "from crm.app import create_app\n"
        "import crm.enrichment, crm.api, workers.jobs, intelligence\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_a_merge_keeps_a_pending_opt_out_review(runtime: Runtime, webhooks: Webhooks):
    from crm.contacts import merge_contacts

    text(webhooks, "hello, how much is the home kit?", SENDERS[0])
    text(webhooks, "stop sending me messages", SENDERS[1])
    run_jobs(runtime)
    survivor, merged = contact_of(runtime, SENDERS[0]), contact_of(runtime, SENDERS[1])
    assert survivor.opt_out_review_at is None and merged.opt_out_review_at is not None
    with runtime.session() as session:
        merge_contacts(session=session, survivor_id=survivor.id, merged_id=merged.id, actor="test")
    kept = contact_of(runtime, SENDERS[0])
    assert kept.opt_out_review_interaction_id == merged.opt_out_review_interaction_id
    assert kept.last_intent == "opt_out"  # the newer of the two
