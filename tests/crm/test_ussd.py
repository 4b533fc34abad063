"""USSD sessions through Africa's Talking's callback: menus, captures, and one interaction each."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm.models import ChannelConsent, Contact, Interaction
from crm.models.base import utcnow
from crm.runtime import Runtime
from crm.ussd import close_stale_sessions
from tests.conftest import Webhooks

PHONE = "+254712345678"


def ussd_interactions(rt: Runtime) -> list[Interaction]:
    with rt.session() as session:
        return list(
            session.scalars(
                select(Interaction).where(Interaction.channel == "ussd").order_by(Interaction.id)
            )
        )


def signals(rt: Runtime) -> list[Interaction]:
    with rt.session() as session:
        return list(session.scalars(select(Interaction).where(Interaction.provider == "signal")))


def screen(response) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(CON|END, text) of a USSD answer, after checking it is a well-formed one."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    kind, _, text = body.partition(" ")
    assert kind in {"CON", "END"}, body
    assert len(body) <= 160, f"{len(body)} characters: {body!r}"
    return kind, text


def test_a_whole_session_with_bad_input_paging_back_capture_is_one_interaction(
    webhooks: Webhooks, runtime: Runtime
):
    hops = [
        ("", "CON", "Welcome to Sunrise Solar"),
        ("7", "CON", "Invalid choice. Welcome"),  # bad input: the menu again, not the end
        ("7*1", "CON", "1 Solar lamp"),
        ("7*1*98", "CON", "4 Fridge"),  # the second page of products
        ("7*1*98*0", "CON", "1 Solar lamp"),  # Back: the first page
        ("7*1*98*0*0", "CON", "Welcome to Sunrise Solar"),  # Back: the main menu
        ("7*1*98*0*0*3", "CON", "Enter your full name"),
        ("7*1*98*0*0*3*Ama Owusu", "CON", "How many people"),
        ("7*1*98*0*0*3*Ama Owusu*lots", "CON", "Enter a number."),
        ("7*1*98*0*0*3*Ama Owusu*lots*5", "END", "Thank you Ama, your details are saved."),
    ]
    for text, kind, expected in hops:
        got_kind, got_text = screen(webhooks.ussd(text))
        assert (got_kind, expected in got_text) == (kind, True), (text, got_text)

    [session] = ussd_interactions(runtime)
    assert session.delivery_status == "completed"
    assert session.meta["path"] == [
        "main",
        "products",
        "main",
        "ask_name",
        "ask_household",
        "details_saved",
    ]
    assert session.meta["hops"] == len(hops)
    assert session.meta["inputs"][-1] == "5"
    assert session.meta["captured"] == {"name": "Ama Owusu", "household_size": "5"}
    assert session.meta["duration_ms"] >= 0
    with runtime.session() as db:
        contact = db.get_one(Contact, session.contact_id)
        assert contact.name == "Ama Owusu"
        assert contact.attributes == {"household_size": "5"}
        assert contact.first_touch_channel == "ussd"
        assert [i.value for i in contact.identities] == [PHONE]


def test_a_callback_request_is_a_hot_lead_signal_once(webhooks: Webhooks, runtime: Runtime):
    screen(webhooks.ussd(""))
    kind, text = screen(webhooks.ussd("4"))
    assert (kind, "call you back" in text) == ("END", True)
    screen(webhooks.ussd("4"))  # the gateway retries the hop
    [signal] = signals(runtime)
    assert signal.meta["signal"] == "callback_request"
    assert signal.meta["source_channel"] == "ussd"
    [session] = ussd_interactions(runtime)
    assert signal.contact_id == session.contact_id


def test_the_account_screen_shows_data_from_the_contact(webhooks: Webhooks, runtime: Runtime):
    webhooks.ussd("", session_id="ATUid_a")
    webhooks.ussd("3", session_id="ATUid_a")
    webhooks.ussd("3*Kofi Mensah", session_id="ATUid_a")
    with runtime.session() as db:
        contact = db.scalars(select(Contact)).one()
        contact.attributes = {**contact.attributes, "last_order": "Home kit"}
    kind, text = screen(webhooks.ussd("2", session_id="ATUid_b"))
    assert kind == "END"
    assert "Hi Kofi." in text
    assert "Last order: Home kit" in text
    assert "Status: subscriber" in text or "Status: lead" in text


def test_stop_promotions_opts_out_of_sms_and_whatsapp(webhooks: Webhooks, runtime: Runtime):
    webhooks.ussd("")
    kind, _ = screen(webhooks.ussd("5"))
    assert kind == "END"
    with runtime.session() as db:
        consents = {c.channel: c.status for c in db.scalars(select(ChannelConsent))}
    assert consents == {"sms": "opted_out", "whatsapp": "opted_out"}


def test_a_session_that_times_out_is_one_interaction_marked_abandoned(
    webhooks: Webhooks, runtime: Runtime
):
    screen(webhooks.ussd(""))
    screen(webhooks.ussd("1"))
    [session] = ussd_interactions(runtime)
    assert session.delivery_status == "active"
    with runtime.session() as db:
        assert close_stale_sessions(session=db, ttl_seconds=300) == 0  # not stale yet
        later = utcnow() + timedelta(seconds=301)
        assert close_stale_sessions(session=db, ttl_seconds=300, now=later) == 1
    [session] = ussd_interactions(runtime)
    assert session.delivery_status == "abandoned"
    assert session.meta["path"] == ["main", "products"]


def test_the_end_of_session_notification_is_recorded(webhooks: Webhooks, runtime: Runtime):
    session_id = "ATUid_a3f1c9e27b5d4e8f9c0b1a2d3e4f5a6b"  # the fixture's session
    webhooks.ussd("", session_id=session_id)
    webhooks.ussd("1", session_id=session_id)
    response = webhooks.africastalking("ussd/events", "africastalking/ussd__session_end.txt")
    assert response.status_code == 200
    [session] = ussd_interactions(runtime)
    assert session.delivery_status == "completed"
    assert session.meta["duration_ms"] == 18432
    assert session.meta["gateway_status"] == "Success"
    assert session.meta["path"] == ["main", "products"]  # the hops' record is kept

    incomplete = webhooks.africastalking(
        "ussd/events",
        "africastalking/ussd__session_end.txt",
        sessionId="ATUid_never_answered",
        status="Incomplete",
    )
    assert incomplete.status_code == 200
    statuses = sorted(i.delivery_status for i in ussd_interactions(runtime))
    assert statuses == ["abandoned", "completed"]


def test_session_survives_losing_its_redis_state(webhooks: Webhooks, runtime: Runtime):
    screen(webhooks.ussd(""))
    runtime.redis.flushdb()  # the cached session state is gone (expired, or Redis restarted)
    kind, text = screen(webhooks.ussd("3"))
    assert (kind, text) == ("CON", "Enter your full name:")
    [session] = ussd_interactions(runtime)
    assert session.meta["hops"] == 2


def test_a_callback_without_the_secret_is_refused_and_stores_nothing(
    webhooks: Webhooks, runtime: Runtime
):
    for key in ["wrong-secret", ""]:
        response = webhooks.africastalking("ussd", "africastalking/ussd__first_hop.txt", key=key)
        assert response.status_code == 403
        assert response.get_data(as_text=True).startswith("END ")
    response = webhooks.client.post(
        "/webhooks/africastalking/ussd", data={"sessionId": "x", "phoneNumber": PHONE}
    )
    assert response.status_code == 403
    assert ussd_interactions(runtime) == []


def test_a_malformed_hop_ends_with_a_clear_error(webhooks: Webhooks, runtime: Runtime):
    response = webhooks.ussd("", phoneNumber="not a number")
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("END Sorry")
    missing = webhooks.africastalking("ussd", "africastalking/ussd__hop.txt", sessionId="")
    assert missing.status_code == 400
    assert ussd_interactions(runtime) == []


def test_ussd_and_sms_land_on_one_timeline(
    webhooks: Webhooks, runtime: Runtime, auth: dict[str, str]
):
    webhooks.ussd("")
    webhooks.ussd("4")
    webhooks.message(From=PHONE)
    [session] = ussd_interactions(runtime)
    response = webhooks.client.get(f"/api/v1/contacts/{session.contact_id}/timeline", headers=auth)
    assert response.status_code == 200
    channels = {entry["channel"] for entry in response.get_json()["data"]}
    assert {"ussd", "sms", "system"} <= channels
