"""The contacts list (search, filters, keyset pages) and the contact page (profile, consent,
score explanation, deals, conversations, edits) with the API's access rules."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm import scoring
from crm.consent import set_consent
from crm.contacts import merge_contacts, resolve_by_phone, set_tags
from crm.conversations import thread
from crm.deals import open_deal
from crm.models import ConsentStatus, Contact, Deal, Interaction, Role
from crm.models.base import utcnow
from crm.runtime import Runtime
from tests.conftest import Webhooks
from tests.web.conftest import WebClient

PHONES = [f"+23324100{i:04d}" for i in range(6)]
_ROW = re.compile(r'id="contact-(\d+)"')
_NEXT = re.compile(r'rel="next" href="([^"]+)"')


def listed(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    return [int(i) for i in _ROW.findall(response.get_data(as_text=True))]


def html(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


@pytest.fixture
def contacts(runtime: Runtime, webhooks: Webhooks) -> list[int]:
    """Six contacts who texted in (the last on WhatsApp), with stages, scores and tags."""
    for i, phone in enumerate(PHONES):
        if i == 5:
            sid = "SMwa" + phone[1:]
            response = webhooks.message(
                "twilio/whatsapp__inbound.txt",
                From=f"whatsapp:{phone}",
                WaId=phone[1:],
                MessageSid=sid,
                SmsMessageSid=sid,
                SmsSid=sid,
                ProfileName="Wanjiru Kamau",
            )
        else:
            response = webhooks.message(From=phone, MessageSid=f"SM{phone[1:]}")
        assert response.status_code == 200
    with runtime.session() as session:
        rows = list(session.scalars(select(Contact).order_by(Contact.id)))
        stages = [("lead", 10), ("mql", 55), ("mql", 70), ("customer", 90), ("lead", 0)]
        for contact, (stage, score) in zip(rows, [*stages, ("sql", 60)], strict=True):
            contact.lifecycle_stage = stage
            contact.score = score
        rows[0].name = "Ama Mensah"
        rows[2].sentiment = "negative"
        edit = rows[3]
        edit.attributes = {"town": "Tamale"}
        set_tags(session=session, contact=edit, tags=["wholesale"])
        return [c.id for c in rows]


def own(runtime: Runtime, contact_id: int, user_id: int | None) -> None:
    with runtime.session() as session:
        session.get_one(Contact, contact_id).owner_id = user_id


def test_the_list_searches_by_name_and_phone_and_filters_like_a_segment(
    web_as, runtime: Runtime, contacts: list[int]
):
    admin: WebClient = web_as(Role.ADMIN)
    own(runtime, contacts[1], admin.user_id)
    get = lambda **q: admin.get("/contacts", query_string=q)  # noqa: E731
    page = html(get())
    assert listed(get()) == contacts[::-1]
    for text in ("Ama Mensah", "+233241000000", "customer", "negative", "wholesale"):
        assert text in page
    assert listed(get(q="mensah")) == [contacts[0]]
    assert listed(get(q="024 100 0003")) == [contacts[3]]
    assert listed(get(stage="mql")) == [contacts[2], contacts[1]]
    assert listed(get(stage="mql", score_min="60")) == [contacts[2]]
    assert listed(get(score_max="10")) == [contacts[4], contacts[0]]
    assert listed(get(owner="me")) == [contacts[1]]
    assert contacts[1] not in listed(get(owner="none"))
    assert listed(get(tag="wholesale")) == [contacts[3]]
    assert listed(get(channel="whatsapp")) == [contacts[5]]
    # The row links to the contact page; the chosen filters stay in the form.
    assert f'href="/contacts/{contacts[0]}"' in page
    assert '<option value="mql" selected>' in html(get(stage="mql"))


def test_a_bad_filter_is_a_visible_error_not_a_crash(web_as, contacts: list[int]):
    admin: WebClient = web_as(Role.ADMIN)
    for bad in ({"score_min": "lots"}, {"stage": "hot"}, {"cursor": "x"}, {"owner": "someone"}):
        response = admin.get("/contacts", query_string=bad)
        assert response.status_code == 400, bad
        assert "flash-error" in html(response)


def test_next_follows_a_keyset_cursor(web_as, runtime: Runtime):
    with runtime.session() as session:
        ids = [
            resolve_by_phone(session=session, e164=f"+2332420{i:05d}", name=f"Kojo {i}").contact.id
            for i in range(57)
        ]
    admin: WebClient = web_as(Role.ADMIN)
    first = admin.get("/contacts")
    assert listed(first) == ids[::-1][:50]
    next_url = _NEXT.search(html(first)).group(1).replace("&amp;", "&")
    assert f"cursor={ids[7]}" in next_url
    second = admin.get(next_url)
    assert listed(second) == ids[6::-1]
    assert _NEXT.search(html(second)) is None and "First page" in html(second)
    # Filters ride along with the cursor.
    filtered = admin.get("/contacts?q=Kojo")
    assert "q=Kojo" in _NEXT.search(html(filtered)).group(1)


def test_a_rep_lists_their_contacts_and_the_unassigned_only(
    web_as, runtime: Runtime, contacts: list[int]
):
    ama: WebClient = web_as(Role.REP)
    kofi: WebClient = web_as(Role.REP)
    own(runtime, contacts[0], ama.user_id)
    own(runtime, contacts[1], kofi.user_id)
    seen = listed(ama.get("/contacts"))
    assert contacts[0] in seen and contacts[2] in seen and contacts[1] not in seen
    assert listed(ama.get("/contacts?owner=me")) == [contacts[0]]


def test_the_contact_page_shows_consent_score_reasons_deals_and_activity(
    web_as, runtime: Runtime, contacts: list[int]
):
    contact_id = contacts[0]
    now = utcnow()
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        set_consent(
            session=session,
            contact=contact,
            channel="sms",
            status=ConsentStatus.OPTED_OUT,
            source="keyword:STOP",
        )
        set_consent(
            session=session,
            contact=contact,
            channel="whatsapp",
            status=ConsentStatus.OPTED_IN,
            source="import",
        )
        pricing = scoring.Event("intent_pricing", "interaction:1", now - timedelta(hours=2), "sms")
        scoring.apply_events(session, {contact: [pricing]}, now=now)
        deal = open_deal(
            session, contact, title="Solar lamp x 20", amount="1250.50", currency="GHS", actor="t"
        )
        deal_id = deal.id
        thread_id = thread(session, contact_id, "sms").id
    admin: WebClient = web_as(Role.ADMIN)
    response = admin.get(f"/contacts/{contact_id}")
    page = html(response)
    assert response.status_code == 200
    assert "Ama Mensah" in page and "+233241000000" in page
    consent = page[page.index('id="consent"') : page.index('id="score"')]
    sms = consent[consent.index('class="consent-sms"') : consent.index('class="consent-whatsapp"')]
    assert "opted out" in sms and "keyword:STOP" in sms
    whatsapp = consent[consent.index('class="consent-whatsapp"') : consent.index("consent-voice")]
    assert "opted in" in whatsapp and "import" in whatsapp
    assert "never asked" in consent[consent.index("consent-voice") :]
    assert "+15 asked about price (SMS, 2 h ago)" in page
    assert "Solar lamp x 20" in page and "GHS 1,250.50" in page
    assert f'href="/pipeline#deal-{deal_id}"' in page
    # The deal moved the contact to opportunity: on the ladder and in the recent activity.
    assert 'class="current" aria-current="step">opportunity' in page
    activity = page[page.index('id="activity"') :]
    assert "Deal opened: Solar lamp x 20" in activity
    assert f'href="/conversations/{thread_id}">SMS thread' in page


def test_a_merged_contact_redirects_to_the_survivor(web_as, runtime: Runtime, contacts):
    with runtime.session() as session:
        merge_contacts(session=session, survivor_id=contacts[0], merged_id=contacts[1], actor="t")
    admin: WebClient = web_as(Role.ADMIN)
    response = admin.get(f"/contacts/{contacts[1]}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/contacts/{contacts[0]}"
    assert f"Contact {contacts[1]} was merged" in html(admin.get(response.headers["Location"]))


def test_a_rep_edits_their_contact_through_the_same_rules_as_the_api(
    web_as, runtime: Runtime, contacts: list[int]
):
    ama: WebClient = web_as(Role.REP)
    contact_id = contacts[3]
    own(runtime, contact_id, ama.user_id)
    assert f'action="/contacts/{contact_id}"' in html(ama.get(f"/contacts/{contact_id}"))
    form = {
        "name": "Abena Owusu",
        "email": "abena@example.org",
        "tags": "VIP, wholesale",
        "owner_id": str(ama.user_id),
        "lifecycle_stage": "customer",
        "attr_key": ["town", "plan"],
        "attr_value": ["", "pro"],
    }
    saved = ama.post(f"/contacts/{contact_id}", form)
    assert saved.status_code == 302 and saved.headers["Location"] == f"/contacts/{contact_id}"
    page = html(ama.get(f"/contacts/{contact_id}"))
    assert "Contact saved." in page and "Abena Owusu" in page
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        assert (contact.name, contact.email) == ("Abena Owusu", "abena@example.org")
        assert contact.tag_names == ["vip", "wholesale"]
        assert contact.attributes == {"plan": "pro"}
        assert contact.owner_id == ama.user_id
    # Moving back needs a reason: refused as a whole, with the service's message shown.
    refused = ama.post(
        f"/contacts/{contact_id}",
        {"name": "Not saved", "lifecycle_stage": "lead", "lifecycle_reason": ""},
    )
    assert refused.status_code == 302
    page = html(ama.get(f"/contacts/{contact_id}"))
    assert "needs a reason" in page and "flash-error" in page
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        assert (contact.name, contact.lifecycle_stage) == ("Abena Owusu", "customer")
    ama.post(
        f"/contacts/{contact_id}", {"lifecycle_stage": "lead", "lifecycle_reason": "returned it"}
    )
    with runtime.session() as session:
        assert session.get_one(Contact, contact_id).lifecycle_stage == "lead"
    # A rep cannot hand the contact to someone else.
    other = web_as(Role.REP)
    ama.post(f"/contacts/{contact_id}", {"owner_id": str(other.user_id)})
    assert "not assign it to others" in html(ama.get(f"/contacts/{contact_id}"))


def test_another_reps_contact_is_not_found_and_a_marketer_only_reads(
    web_as, runtime: Runtime, contacts: list[int]
):
    ama: WebClient = web_as(Role.REP)
    kofi: WebClient = web_as(Role.REP)
    marketer: WebClient = web_as(Role.MARKETER)
    own(runtime, contacts[0], kofi.user_id)
    url = f"/contacts/{contacts[0]}"
    assert ama.get(url).status_code == 404
    assert ama.post(url, {"name": "Taken"}).status_code == 404
    assert ama.post(f"{url}/deals", {"title": "Mine now"}).status_code == 404
    page = marketer.get(url)
    assert page.status_code == 200 and "Ama Mensah" in html(page)
    assert 'id="edit"' not in html(page) and "New deal" not in html(page)
    assert marketer.post(url, {"name": "Marketed"}).status_code == 403
    assert marketer.post(f"{url}/deals", {"title": "Upsell"}).status_code == 403
    with runtime.session() as session:
        assert session.get_one(Contact, contacts[0]).name == "Ama Mensah"
        assert session.scalars(select(Deal)).all() == []


def test_a_post_without_the_csrf_token_is_refused(web_as, runtime: Runtime, contacts):
    admin: WebClient = web_as(Role.ADMIN)
    response = admin.client.post(f"/contacts/{contacts[0]}", data={"name": "Forged"})
    assert response.status_code == 400
    with runtime.session() as session:
        assert session.get_one(Contact, contacts[0]).name == "Ama Mensah"


def test_an_opt_out_read_by_the_model_is_confirmed_from_the_banner(
    web_as, runtime: Runtime, contacts: list[int]
):
    contact_id = contacts[2]
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        message = session.scalars(
            select(Interaction).where(Interaction.contact_id == contact_id)
        ).first()
        contact.opt_out_review_at = utcnow()
        contact.opt_out_review_interaction_id = message.id
        body = message.body
    rep: WebClient = web_as(Role.REP)
    page = html(rep.get(f"/contacts/{contact_id}"))
    assert 'aria-label="Possible opt-out"' in page and body in page
    confirmed = rep.post(f"/contacts/{contact_id}/opt-out-review", {"decision": "confirm"})
    assert confirmed.status_code == 302
    page = html(rep.get(f"/contacts/{contact_id}"))
    assert "Opted out of sms, whatsapp" in page and 'aria-label="Possible opt-out"' not in page
    with runtime.session() as session:
        contact = session.get_one(Contact, contact_id)
        assert {c.channel: c.status for c in contact.consents} == {
            "sms": "opted_out",
            "whatsapp": "opted_out",
        }
    again = rep.post(f"/contacts/{contact_id}/opt-out-review", {"decision": "dismiss"})
    assert again.status_code == 302
    assert "no opt-out waiting for review" in html(rep.get(f"/contacts/{contact_id}"))


def test_a_new_deal_opens_from_the_contact_page(web_as, runtime: Runtime, contacts: list[int]):
    rep: WebClient = web_as(Role.REP)
    contact_id = contacts[0]
    url = f"/contacts/{contact_id}/deals"
    opened = rep.post(
        url,
        {
            "title": "Solar kit",
            "amount": "300",
            "currency": "kes",
            "stage": "proposal",
            "owner_id": str(rep.user_id),
            "expected_close_on": "2030-01-31",
        },
    )
    assert opened.status_code == 302
    page = html(rep.get(f"/contacts/{contact_id}"))
    assert "Deal “Solar kit” opened in proposal." in page and "KES 300.00" in page
    with runtime.session() as session:
        deal = session.scalars(select(Deal)).one()
        assert (deal.stage, deal.owner_id, str(deal.expected_close_on)) == (
            "proposal",
            rep.user_id,
            "2030-01-31",
        )
    for bad, words in [
        ({"title": "Lost already", "stage": "lost"}, "lose it with an update"),
        ({"title": "Odd", "amount": "12.345"}, "two decimals"),
        ({"title": "Gift", "owner_id": str(web_as(Role.REP).user_id)}, "not give it to others"),
        ({"title": "Soon", "expected_close_on": "tomorrow"}, "YYYY-MM-DD"),
    ]:
        assert rep.post(url, bad).status_code == 302
        assert words in html(rep.get(f"/contacts/{contact_id}")), bad
    with runtime.session() as session:
        assert len(session.scalars(select(Deal)).all()) == 1


def test_contacts_list_filters_by_a_saved_segment(web_as, runtime):
    """The list takes every segment filter through a saved segment (here: consent and a
    country), on top of its own filters."""
    from crm.consent import set_consent
    from crm.contacts import resolve_by_phone
    from crm.models import ConsentStatus, Segment

    marketer = web_as("marketer")
    with runtime.session() as session:
        for phone, name in [("+233241110001", "Ama Ghana"), ("+254711110002", "Wanjiru Kenya")]:
            contact = resolve_by_phone(
                session=session, e164=phone, name=name, channel="sms"
            ).contact
            set_consent(
                session=session,
                contact=contact,
                channel="sms",
                status=ConsentStatus.OPTED_IN,
                source="test",
            )
        segment = Segment(
            name="Ghana SMS", filters={"countries": ["GH"], "consent": {"sms": "opted_in"}}
        )
        session.add(segment)
        session.flush()
        segment_id = segment.id
    html = marketer.get(f"/contacts?segment={segment_id}").get_data(as_text=True)
    assert "Ama Ghana" in html and "Wanjiru Kenya" not in html
    assert marketer.get("/contacts?segment=999999").status_code == 400


def test_saved_segments_are_for_marketing_not_reps(web_as, runtime):
    from crm.models import Segment

    with runtime.session() as session:
        segment = Segment(name="VIP buyers", filters={})
        session.add(segment)
        session.flush()
        segment_id = segment.id
    rep = web_as("rep")
    assert "VIP buyers" not in rep.get("/contacts").get_data(as_text=True)
    assert rep.get(f"/contacts?segment={segment_id}").status_code == 400
    assert "VIP buyers" in web_as("marketer").get("/contacts").get_data(as_text=True)
