"""The rep's day in a real browser (Debian's Chromium via Playwright): sign in, a customer's
SMS arrives through the webhook and shows in the open inbox without a reload, the rep replies
and the message is recorded and sent, and a hot lead is accepted before its SLA runs out."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import Conversation, Handoff, HandoffStatus, Interaction, Role
from crm.models.base import utcnow
from crm.runtime import Runtime
from tests.conftest import run_jobs
from tests.web.conftest import browser_sign_in, make_user, screenshot

PHONE = "+233241234567"


def _sms(webhooks, body: str, sid: str) -> None:
    response = webhooks.message(From=PHONE, Body=body, MessageSid=sid, ProfileName="Ama Mensah")
    assert response.status_code == 200


def test_rep_sees_a_new_sms_live_replies_and_accepts_the_handoff(
    page, webhooks, runtime: Runtime, fake_twilio
):
    rep_id = make_user(runtime, Role.REP, "esi@example.com", name="Esi Boateng")
    _sms(webhooks, "Hello, is the shop open today?", "SM" + "1" * 32)
    run_jobs(runtime)

    browser_sign_in(page, "esi@example.com")
    page.goto("/inbox?view=all")
    expect(page.locator(".threads")).to_contain_text("Ama Mensah")
    assert "How much is the solar lamp" not in page.content()

    # The customer writes again while the inbox is open.
    _sms(webhooks, "How much is the solar lamp?", "SM" + "2" * 32)
    run_jobs(runtime)
    arrived = time.monotonic()
    expect(page.locator(".threads")).to_contain_text("How much is the solar lamp?", timeout=2000)
    assert time.monotonic() - arrived < 2.0
    expect(page.locator(".freshness")).to_contain_text("Updated")
    screenshot(page, "inbox")

    # Keyboard: j focuses the first thread, Enter opens it.
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/conversations/\d+"))
    expect(page.locator("#timeline")).to_contain_text("How much is the solar lamp?")

    # Reply: the counter follows the text; Ctrl+Enter sends.
    page.keyboard.press("r")
    page.keyboard.type("It is 250 cedis, delivered free in Accra")
    expect(page.locator("#counter")).to_contain_text("GSM-7")
    expect(page.locator("#counter")).to_contain_text("1 part")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".flash-success")).to_contain_text("Reply queued")
    expect(page.locator(".entry.outbound").last).to_contain_text("It is 250 cedis")
    with runtime.session() as session:
        reply = session.scalars(select(Interaction).where(Interaction.author_id == rep_id)).one()
        assert reply.channel == "sms" and reply.direction == "outbound"
        contact_id = reply.contact_id
    run_jobs(runtime)
    assert [m["body"] for m in fake_twilio.accepted_messages()][-1].startswith("It is 250 cedis")

    # A hot lead routed to the rep: the countdown shows, and Accept works before the deadline.
    with runtime.session() as session:
        handoff = Handoff(
            contact_id=contact_id,
            rep_id=rep_id,
            reason="human_request",
            summary="Asked for a person: wants 3 lamps for her shop",
            due_at=utcnow() + timedelta(minutes=15),
        )
        session.add(handoff)
        session.flush()
        handoff_id, due_at = handoff.id, handoff.due_at
    page.reload()
    expect(page.locator("#handoff")).to_contain_text("Hot lead")
    expect(page.locator("#handoff .sla")).to_contain_text(re.compile(r"SLA 1[45]:\d\d"))
    screenshot(page, "conversation")
    page.click("#handoff button:has-text('Accept')")
    expect(page.locator(".flash-success")).to_contain_text("Lead accepted")
    with runtime.session() as session:
        accepted = session.get(Handoff, handoff_id)
        assert accepted.status == HandoffStatus.ACCEPTED
        assert utcnow() < due_at
        thread = session.scalars(
            select(Conversation).where(Conversation.contact_id == contact_id)
        ).one()
        assert thread.assignee_id == rep_id  # the reply took the unassigned thread
