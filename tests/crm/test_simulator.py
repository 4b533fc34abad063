"""The phone simulator: real signed webhooks over HTTP to the running app, and its guards."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from crm.app import create_app
from crm.messaging import queue_message
from crm.models import Contact, Interaction, Role
from crm.runtime import Runtime
from crm.users import create_user

PHONE = "+233241234567"
HEADERS = {"X-Requested-With": "simulator"}


def send(base: str, **body: Any) -> requests.Response:
    return requests.post(f"{base}/simulator/api/send", json=body, headers=HEADERS, timeout=30)


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def interactions(rt: Runtime, *where: Any) -> list[Interaction]:
    with rt.session() as session:
        return list(session.scalars(select(Interaction).where(*where).order_by(Interaction.id)))


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Another app on a real threaded HTTP server (as the ``live_server`` fixture does)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def app_with(runtime: Runtime, **overrides: Any) -> Flask:
    settings = runtime.settings.with_overrides(**overrides)
    return create_app(runtime=dataclasses.replace(runtime, settings=settings))


# -- SMS and WhatsApp ----------------------------------------------------------------------


def test_an_sms_is_stored_as_inbound_and_answered_with_the_welcome(
    live_server: str, runtime: Runtime
):
    answer = ok(send(live_server, phone="024 123 4567", channel="sms", text="Is the lamp in?"))

    assert answer == {"replies": [runtime.settings.welcome_text], "ended": False, "session": {}}
    [message] = interactions(runtime, Interaction.direction == "inbound")
    assert (message.channel, message.body, message.provider) == ("sms", "Is the lamp in?", "twilio")
    assert message.provider_message_id.startswith("SM")
    assert len(message.provider_message_id) == 34
    assert message.meta["from"] == PHONE  # the local number was normalized to E.164
    assert message.meta["FromCountry"] == "GH"


def test_a_whatsapp_message_carries_the_prefix_and_profile_name(live_server: str, runtime: Runtime):
    answer = ok(
        send(live_server, phone=PHONE, channel="whatsapp", text="Habari!", name="Ama Mensah")
    )

    assert answer["replies"] == [runtime.settings.welcome_text]
    [message] = interactions(runtime, Interaction.direction == "inbound")
    assert message.channel == "whatsapp"
    assert message.meta["from"] == f"whatsapp:{PHONE}"
    with runtime.session() as session:
        assert session.get_one(Contact, message.contact_id).name == "Ama Mensah"


def test_the_thread_shows_outbound_messages_newest_last(live_server: str, runtime: Runtime):
    ok(send(live_server, phone=PHONE, channel="sms", text="Hello"))
    with runtime.session() as session:
        [inbound] = session.scalars(select(Interaction).where(Interaction.body == "Hello")).all()
        queue_message(
            session=session,
            contact_id=inbound.contact_id,
            channel="sms",
            body="Hi Ama, the lamp is in stock.",
            provider="twilio",
            default_region="GH",
        )

    thread = ok(
        requests.get(
            f"{live_server}/simulator/api/thread",
            params={"phone": PHONE},
            headers=HEADERS,
            timeout=10,
        )
    )
    assert thread["contact_id"] == inbound.contact_id
    assert [(e["direction"], e["body"]) for e in thread["entries"]] == [
        ("inbound", "Hello"),
        ("outbound", runtime.settings.welcome_text),
        ("outbound", "Hi Ama, the lamp is in stock."),
    ]
    assert thread["entries"][-1]["status"] == "pending"


def test_the_thread_of_an_unknown_number_is_empty(live_server: str):
    response = requests.get(
        f"{live_server}/simulator/api/thread",
        params={"phone": "+254712345678"},
        headers=HEADERS,
        timeout=10,
    )
    assert ok(response) == {"phone": "+254712345678", "contact_id": None, "entries": []}


# -- USSD ----------------------------------------------------------------------------------


def test_a_three_hop_ussd_session_shows_the_screens_and_is_one_interaction(
    live_server: str, runtime: Runtime
):
    first = ok(send(live_server, phone=PHONE, channel="ussd", text=""))
    assert first["ended"] is False
    assert first["replies"][0].startswith("Welcome to Sunrise Solar.")
    assert "1 Products and prices" in first["replies"][0]
    assert first["session"]["session_id"].startswith("ATUid_")
    assert first["session"]["inputs"] == []

    second = ok(send(live_server, phone=PHONE, channel="ussd", text="1", session=first["session"]))
    assert second["ended"] is False
    assert second["replies"][0].startswith("Our products")
    assert second["session"]["inputs"] == ["1"]

    third = ok(send(live_server, phone=PHONE, channel="ussd", text="2", session=second["session"]))
    assert third["ended"] is True
    assert third["session"] == {}
    assert third["replies"][0].startswith("Home kit, 3 lights and radio: GHS 1,200")

    [session] = interactions(runtime, Interaction.channel == "ussd")
    assert session.provider_message_id == first["session"]["session_id"]
    assert session.delivery_status == "completed"
    assert session.meta["path"] == ["main", "products", "home_kit"]
    assert session.meta["service_code"] == "*384*1234#"
    assert session.meta["gateway_status"] == "Success"  # the end-of-session notification came


def test_cancelling_a_ussd_session_is_recorded_as_abandoned(live_server: str, runtime: Runtime):
    first = ok(send(live_server, phone=PHONE, channel="ussd", text=""))
    state = first["session"]
    cancelled = ok(
        send(live_server, phone=PHONE, channel="ussd", text="", hangup=True, session=state)
    )

    assert cancelled == {"replies": [], "ended": True, "session": {}}
    [session] = interactions(runtime, Interaction.channel == "ussd")
    assert session.delivery_status == "abandoned"
    assert session.meta["gateway_status"] == "Incomplete"


# -- voice ---------------------------------------------------------------------------------


def test_a_call_walks_the_menu_with_keys_to_an_end(live_server: str, runtime: Runtime):
    call = ok(send(live_server, phone=PHONE, channel="voice", text=""))
    assert call["ended"] is False
    assert any(r.startswith("Welcome to Sunrise Solar.") for r in call["replies"])
    assert call["session"]["wait"]["kind"] == "gather"
    assert call["session"]["wait"]["action"].startswith("/webhooks/twilio/voice/gather")

    state = call["session"]
    products = ok(send(live_server, phone=PHONE, channel="voice", text="1", session=state))
    assert products["ended"] is False
    assert "For Solar lamp with phone charger, press 1." in products["replies"][0]

    end = ok(send(live_server, phone=PHONE, channel="voice", text="2", session=products["session"]))
    assert end["ended"] is True
    assert end["session"] == {}
    assert end["replies"][0].startswith("Home kit")

    [record] = interactions(runtime, Interaction.channel == "voice")
    assert record.provider_message_id == call["session"]["call_sid"]
    assert record.meta["path"] == ["main", "products", "home_kit"]
    assert [i["digits"] for i in record.meta["inputs"]] == ["1", "2"]
    assert record.delivery_status == "completed"  # the status callback came at the end


def test_asking_for_a_person_dials_then_takes_a_voicemail(live_server: str, runtime: Runtime):
    with runtime.session() as session:
        rep = create_user(
            session=session, email="rep@example.com", role=Role.REP, password="x" * 12
        )
        rep.phone = "+233200000001"
    call = ok(send(live_server, phone=PHONE, channel="voice", text=""))

    dialled = ok(send(live_server, phone=PHONE, channel="voice", text="0", session=call["session"]))
    assert dialled["ended"] is False
    assert "[Dialling +233200000001: no answer]" in dialled["replies"]
    assert dialled["replies"][-1].startswith("[Beep. Recording")
    assert dialled["session"]["wait"]["kind"] == "record"

    message = "Please call me back about the home kit."
    left = ok(
        send(live_server, phone=PHONE, channel="voice", text=message, session=dialled["session"])
    )
    assert left["ended"] is True
    assert left["replies"] == ["Thank you, we got your message. Goodbye."]
    [voicemail] = interactions(runtime, Interaction.provider == "twilio-voicemail")
    assert voicemail.body == message  # the transcription callback came too
    [record] = interactions(runtime, Interaction.provider == "twilio")
    assert record.meta["dial"]["status"] == "no-answer"
    assert record.meta["missed"] is True


# -- refusals ------------------------------------------------------------------------------


def test_a_bad_phone_number_is_a_clear_400(live_server: str, runtime: Runtime):
    response = send(live_server, phone="12345", channel="sms", text="hi")

    assert response.status_code == 400
    assert "phone" in response.json()["message"]
    assert interactions(runtime) == []


def test_a_bad_channel_or_a_too_long_text_is_a_400(live_server: str):
    assert send(live_server, phone=PHONE, channel="fax", text="hi").status_code == 400
    too_long = send(live_server, phone=PHONE, channel="sms", text="x" * 1601)
    assert too_long.status_code == 400
    assert "1600" in too_long.json()["message"]


def test_the_api_refuses_requests_without_the_simulator_header(live_server: str, runtime: Runtime):
    body = {"phone": PHONE, "channel": "sms", "text": "hi"}
    response = requests.post(f"{live_server}/simulator/api/send", json=body, timeout=10)
    assert response.status_code == 403
    assert "X-Requested-With" in response.json()["message"]
    form = requests.post(
        f"{live_server}/simulator/api/send", data=body, headers=HEADERS, timeout=10
    )
    assert form.status_code == 415
    thread = requests.get(f"{live_server}/simulator/api/thread?phone={PHONE}", timeout=10)
    assert thread.status_code == 403
    assert interactions(runtime) == []


def test_the_simulator_is_404_when_disabled_or_in_production(runtime: Runtime):
    for overrides in ({"simulator_enabled": False}, {"env": "production"}):
        client = app_with(runtime, **overrides).test_client()
        assert client.get("/simulator").status_code == 404, overrides
        sent = client.post(
            "/simulator/api/send", json={"phone": PHONE, "channel": "sms"}, headers=HEADERS
        )
        assert sent.status_code == 404, overrides


def test_only_this_machine_may_use_it(app: Flask):
    client = app.test_client()
    assert client.get("/simulator").status_code == 200
    remote = client.get("/simulator", environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert remote.status_code == 403
    rebound = client.get("/simulator", headers={"Host": "attacker.example:5000"})
    assert rebound.status_code == 403  # a DNS-rebinding page names its own host


def test_the_page_and_its_script_are_served(app: Flask):
    client = app.test_client()
    page = client.get("/simulator")
    html = page.get_data(as_text=True)
    assert 'value="+233241234567"' in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    script = client.get("/simulator/static/simulator.js")
    assert script.status_code == 200
    assert "innerHTML" not in script.get_data(as_text=True)


def test_without_public_base_url_it_signs_the_url_the_server_sees(runtime: Runtime):
    with serve(app_with(runtime, public_base_url="")) as base:
        answer = ok(send(base, phone=PHONE, channel="sms", text="hello"))
    assert answer["replies"] == [runtime.settings.welcome_text]
    assert [i.body for i in interactions(runtime, Interaction.direction == "inbound")] == ["hello"]
