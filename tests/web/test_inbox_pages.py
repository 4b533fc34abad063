"""The inbox and the conversation view through the test client: what rows show, views,
live fragments, replies, notes, assignment, snooze/close and handoffs."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from crm.conversations import Arrival, record_arrivals
from crm.handoffs import REJECT_REASONS
from crm.models import (
    Contact,
    Conversation,
    Handoff,
    HandoffStatus,
    Interaction,
    Role,
)
from crm.models.base import utcnow
from crm.runtime import Runtime
from tests.conftest import run_jobs


def _inbound(webhooks, body: str, phone: str = "+233241234567", **extra: str) -> None:
    extra.setdefault("From", phone)
    response = webhooks.message(
        Body=body, MessageSid=f"SM{abs(hash((phone, body))):032x}"[:34], **extra
    )
    assert response.status_code == 200


def _thread(runtime: Runtime, phone: str = "+233241234567") -> Conversation:
    with runtime.session() as session:
        contact_id = session.scalar(
            select(Contact.id).join(Contact.identities).where(Contact.identities.any(value=phone))
        )
        conversation = session.scalars(
            select(Conversation).where(Conversation.contact_id == contact_id)
        ).one()
        session.expunge(conversation)
        return conversation


def test_inbound_message_shows_in_the_unassigned_view_with_its_signals(
    web_as, webhooks, runtime: Runtime
):
    rep = web_as(Role.REP)
    _inbound(webhooks, "How much is the solar lamp? I want to buy two today")
    run_jobs(runtime)  # enrichment opens the thread and reads sentiment and intent
    html = rep.get("/inbox?view=unassigned").get_data(as_text=True)
    # The row shows the customer's words, not the bot's automatic welcome that followed.
    assert "How much is the solar lamp?" in html and "Thanks for your message" not in html
    assert 'class="thread unread' in html
    assert re.search(r'chip-intent" title="Intent">(pricing|purchase)<', html)
    assert "chan-sms" in html
    # Not the rep's yet: "mine" is empty.
    assert "No conversations here" in rep.get("/inbox?view=mine").get_data(as_text=True)


def test_the_live_fragment_carries_new_messages_and_its_freshness(
    web_as, webhooks, runtime: Runtime
):
    rep = web_as(Role.REP)
    before = rep.get("/inbox/threads?view=all").get_data(as_text=True)
    assert 'hx-trigger="every 1500ms"' in before and "data-refreshed=" in before
    _inbound(webhooks, "Habari", phone="+254712345678")
    _inbound(webhooks, "Is the 50kg bag in stock?", phone="+254712345678")
    run_jobs(runtime)
    after = rep.get("/inbox/threads?view=all").get_data(as_text=True)
    assert "Is the 50kg bag in stock?" in after and "Is the 50kg bag" not in before


def test_hot_view_lists_threads_with_an_active_handoff_and_its_countdown(
    web_as, webhooks, runtime: Runtime
):
    admin = web_as(Role.ADMIN)
    _inbound(webhooks, "hello", phone="+233241234567")
    _inbound(webhooks, "hi there", phone="+233241234568")
    run_jobs(runtime)
    hot = _thread(runtime, "+233241234567")
    with runtime.session() as session:
        session.add(
            Handoff(
                contact_id=hot.contact_id,
                rep_id=admin.user_id,
                reason="human_request",
                due_at=utcnow() + timedelta(minutes=10),
            )
        )
    html = admin.get("/inbox?view=hot").get_data(as_text=True)
    assert f'id="thread-{hot.id}"' in html
    assert "hi there" not in html
    assert 'class="chip chip-hot sla" data-due=' in html


def test_bad_filters_are_a_400_page_not_a_crash(web_as):
    rep = web_as(Role.REP)
    assert rep.get("/inbox?view=everything").status_code == 400
    assert rep.get("/inbox?cursor=%%%").status_code == 400


def test_inbox_keyset_pages_do_not_repeat_rows(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    now = utcnow()
    with runtime.session() as session:
        contacts = [Contact(name=f"Customer {i:02d}") for i in range(55)]
        session.add_all(contacts)
        session.flush()
        record_arrivals(
            session,
            [
                Arrival(c.id, "sms", now - timedelta(minutes=i % 7), None)
                for i, c in enumerate(contacts)
            ],
        )
    first = admin.get("/inbox?view=all").get_data(as_text=True)
    ids_first = re.findall(r'id="thread-(\d+)"', first)
    cursor = re.search(r'cursor=([\w-]+)">Older conversations', first).group(1)
    second = admin.get(f"/inbox?view=all&cursor={cursor}").get_data(as_text=True)
    ids_second = re.findall(r'id="thread-(\d+)"', second)
    assert len(ids_first) == 50 and len(ids_second) == 5
    assert not set(ids_first) & set(ids_second)


def test_conversation_shows_the_whole_timeline_and_a_reply_is_recorded(
    web_as, webhooks, runtime: Runtime, fake_twilio
):
    rep = web_as(Role.REP)
    _inbound(webhooks, "Can I pay with mobile money?")
    run_jobs(runtime)
    thread = _thread(runtime)
    page = rep.get(f"/conversations/{thread.id}").get_data(as_text=True)
    assert "Can I pay with mobile money?" in page
    assert 'id="reply-body"' in page and "Send SMS" in page
    response = rep.post(f"/conversations/{thread.id}/reply", {"body": "Yes, MoMo works"})
    assert response.status_code == 302
    with runtime.session() as session:
        sent = session.scalars(
            select(Interaction).where(
                Interaction.direction == "outbound", Interaction.author_id == rep.user_id
            )
        ).one()
        assert sent.body == "Yes, MoMo works" and sent.channel == "sms"
        conversation = session.get(Conversation, thread.id)
        assert conversation.assignee_id == rep.user_id  # took the unassigned thread
        assert not conversation.unread
    run_jobs(runtime)  # the worker sends it through the twilio SDK to the fake
    assert any(m["body"] == "Yes, MoMo works" for m in fake_twilio.accepted_messages())
    page = rep.get(f"/conversations/{thread.id}").get_data(as_text=True)
    assert "Yes, MoMo works" in page


def test_a_refused_reply_is_explained_and_stores_nothing(web_as, webhooks, runtime: Runtime):
    rep = web_as(Role.REP)
    _inbound(webhooks, "STOP")
    run_jobs(runtime)
    thread = _thread(runtime)
    response = rep.post(
        f"/conversations/{thread.id}/reply", {"body": "Are you sure?"}, follow_redirects=True
    )
    assert "Not sent:" in response.get_data(as_text=True)
    with runtime.session() as session:
        assert (
            session.scalar(select(Interaction.id).where(Interaction.author_id == rep.user_id))
            is None
        )


def test_whatsapp_outside_the_window_offers_templates_only(web_as, webhooks, runtime: Runtime):
    rep = web_as(Role.REP)
    _inbound(
        webhooks,
        "Habari",
        phone="+254712345678",
        From="whatsapp:+254712345678",
        To="whatsapp:+14155238886",
    )
    run_jobs(runtime)
    thread = _thread(runtime, "+254712345678")
    assert thread.channel == "whatsapp"
    with runtime.session() as session:
        for entry in session.scalars(
            select(Interaction).where(Interaction.contact_id == thread.contact_id)
        ):
            entry.created_at = utcnow() - timedelta(hours=30)
    page = rep.get(f"/conversations/{thread.id}").get_data(as_text=True)
    assert "WhatsApp window closed" in page and 'name="template"' in page
    assert 'id="reply-body"' not in page
    refused = rep.post(
        f"/conversations/{thread.id}/reply", {"body": "free text"}, follow_redirects=True
    )
    assert "outside WhatsApp" in refused.get_data(as_text=True)
    sid = re.search(r'name="template" value="(HX\w+)"', page).group(1)
    rep.post(f"/conversations/{thread.id}/reply", {"template": sid})
    with runtime.session() as session:
        sent = session.scalars(
            select(Interaction).where(Interaction.author_id == rep.user_id)
        ).one()
        assert sent.meta["content_sid"] == sid and sent.channel == "whatsapp"


def test_notes_assignment_snooze_and_close(web_as, webhooks, runtime: Runtime):
    rep = web_as(Role.REP)
    other = web_as(Role.REP)
    _inbound(webhooks, "hello")
    run_jobs(runtime)
    thread = _thread(runtime)
    rep.post(f"/conversations/{thread.id}/note", {"body": "Prefers calls after 5pm"})
    rep.post(f"/conversations/{thread.id}/assign", {"assignee_id": str(rep.user_id)})
    rep.post(f"/conversations/{thread.id}/status", {"status": "snoozed", "for": "1h"})
    with runtime.session() as session:
        conversation = session.get(Conversation, thread.id)
        assert conversation.assignee_id == rep.user_id and conversation.status == "snoozed"
        note = session.scalars(select(Interaction).where(Interaction.channel == "note")).one()
        assert note.direction == "internal" and note.author_id == rep.user_id
    # Now the thread is the rep's: another rep cannot open it or act on it.
    assert other.get(f"/conversations/{thread.id}").status_code == 404
    assert other.post(f"/conversations/{thread.id}/status", {"status": "closed"}).status_code == 404
    rep.post(f"/conversations/{thread.id}/status", {"status": "closed"})
    with runtime.session() as session:
        assert session.get(Conversation, thread.id).status == "closed"


def test_accept_and_reject_a_handoff_from_the_conversation(web_as, webhooks, runtime: Runtime):
    rep = web_as(Role.REP, working_hours={}, timezone="UTC")
    _inbound(webhooks, "hello")
    run_jobs(runtime)
    thread = _thread(runtime)
    with runtime.session() as session:
        handoff = Handoff(
            contact_id=thread.contact_id,
            rep_id=rep.user_id,
            reason="human_request",
            due_at=utcnow() + timedelta(minutes=15),
        )
        session.add(handoff)
        session.flush()
        handoff_id = handoff.id
    page = rep.get(f"/conversations/{thread.id}").get_data(as_text=True)
    assert "Hot lead: human request" in page and "Accept" in page
    bad = rep.post(f"/handoffs/{handoff_id}/reject", {"reason": "bored"}, follow_redirects=True)
    assert "reason must be one of" in bad.get_data(as_text=True)
    rep.post(f"/handoffs/{handoff_id}/accept")
    with runtime.session() as session:
        assert session.get(Handoff, handoff_id).status == HandoffStatus.ACCEPTED
    rep.post(f"/handoffs/{handoff_id}/reject", {"reason": REJECT_REASONS[0]})
    with runtime.session() as session:
        rejected = session.get(Handoff, handoff_id)
        assert (
            rejected.status == HandoffStatus.REJECTED
            and rejected.reject_reason == REJECT_REASONS[0]
        )


def test_counter_reports_encoding_and_parts(web_as):
    rep = web_as(Role.REP)
    gsm = rep.post("/compose/counter", {"body": "a" * 161}).get_data(as_text=True)
    assert "GSM-7" in gsm and "2 parts" in gsm
    ucs = rep.post("/compose/counter", {"body": "Hello 😀"}).get_data(as_text=True)
    assert "UCS-2" in ucs and "forced by" in ucs


def test_new_entries_fragment_returns_only_newer_entries(web_as, webhooks, runtime: Runtime):
    rep = web_as(Role.REP)
    _inbound(webhooks, "first message")
    run_jobs(runtime)
    thread = _thread(runtime)
    page = rep.get(f"/conversations/{thread.id}").get_data(as_text=True)
    poll = re.search(r'hx-get="(/conversations/\d+/entries\?after=[^"]+)"', page).group(1)
    assert "second message" not in rep.get(poll.replace("&amp;", "&")).get_data(as_text=True)
    _inbound(webhooks, "second message")
    fragment = rep.get(poll.replace("&amp;", "&")).get_data(as_text=True)
    assert "second message" in fragment and "first message" not in fragment
    assert 'hx-swap-oob="true"' in fragment  # the next poll's cursor moves forward


def test_the_live_poll_moves_a_sent_messages_delivery_status(
    web_as, webhooks, runtime: Runtime, fake_twilio
):
    rep = web_as(Role.REP)
    _inbound(webhooks, "Can I pay with mobile money?")
    run_jobs(runtime)
    thread = _thread(runtime)
    rep.post(f"/conversations/{thread.id}/reply", {"body": "Yes, MoMo works"})
    page = rep.get(f"/conversations/{thread.id}").get_data(as_text=True)
    poll = re.search(r'hx-get="(/conversations/\d+/entries\?[^"]+)"', page).group(1)
    poll = poll.replace("&amp;", "&")
    run_jobs(runtime)  # sent through the SDK to the fake
    with runtime.session() as session:
        reply = session.scalars(
            select(Interaction).where(Interaction.author_id == rep.user_id)
        ).one()
        reply_id, sid = reply.id, reply.provider_message_id
    assert (
        webhooks.status("twilio/status__delivered.txt", MessageSid=sid, SmsSid=sid).status_code
        == 204
    )
    fragment = rep.get(poll).get_data(as_text=True)
    entry = re.search(rf'<article[^>]*id="entry-{reply_id}"[^>]*>.*?</article>', fragment, re.S)
    assert entry is not None and 'hx-swap-oob="true"' in entry.group(0)
    assert "delivered" in entry.group(0)
