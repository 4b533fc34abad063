"""The OpenAPI document (crm/api/openapi.yaml): a valid OpenAPI 3.1 document that describes
exactly the routes the API registers, served at /api/v1/openapi.json, whose roles and response
schemas match what the real API answers (real app, database, Redis and RQ jobs)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import select
from werkzeug.test import TestResponse

from crm.api.openapi import SPEC_FILE, spec
from crm.models import Campaign, CampaignRecipient, Handoff, Identity, Interaction, Role
from crm.runtime import Runtime
from tests.conftest import Webhooks, finish_launch, make_token, run_jobs

SPEC = spec()
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PHONE = "+233241230001"
OTHER_PHONE = "+233241230002"
MISSING = 999_999


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/components/...``) until a node without one."""
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validate against a schema of the document, its ``$ref``s resolved in the document."""
    OAS31Validator(
        {**schema, "components": SPEC["components"]}, format_checker=oas31_format_checker
    ).validate(instance)


def operation(method: str, path_template: str) -> dict[str, Any]:
    item = SPEC["paths"].get(path_template)
    assert item is not None, f"{path_template} is not documented"
    op = item.get(method.lower())
    assert op is not None, f"{method} {path_template} is not documented"
    return op


def check(response: TestResponse, method: str, path_template: str) -> Any:
    """Assert the response is documented for the operation (its status, headers and body
    schema); the JSON body, or None for a documented empty one."""
    responses = operation(method, path_template)["responses"]
    status = str(response.status_code)
    assert status in responses, (
        f"{method} {path_template} answered {status} (documented: {sorted(responses)}): "
        f"{response.get_data(as_text=True)[:300]}"
    )
    documented = resolve(responses[status])
    for header in documented.get("headers", {}):
        assert header in response.headers, f"{method} {path_template} {status}: no {header}"
        validate(response.headers[header], documented["headers"][header]["schema"])
    content = documented.get("content")
    if not content:
        assert response.get_data() == b"", f"{method} {path_template} {status} has a body"
        return None
    assert response.mimetype == "application/json"
    body = response.get_json()
    validate(body, content["application/json"]["schema"])
    return body


def request_schema(method: str, path_template: str) -> dict[str, Any]:
    return operation(method, path_template)["requestBody"]["content"]["application/json"]["schema"]


def send(
    client: FlaskClient,
    method: str,
    path_template: str,
    headers: dict[str, str],
    *,
    body: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    **path: int,
) -> TestResponse:
    """Call an operation; a body is first checked against the documented request schema, so
    the document accepts what the API is really sent."""
    if body is not None:
        validate(body, request_schema(method, path_template))
    url = path_template.format(**path)
    return client.open(url, method=method, json=body, query_string=query, headers=headers)


def bearer(rt: Runtime, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(rt, role, email=f'{role}@example.com')}"}


def inbound(webhooks: Webhooks, phone: str, body: str) -> None:
    sid = "SM" + uuid.uuid4().hex
    assert webhooks.message(Body=body, From=phone, MessageSid=sid).status_code == 200


def contact_of(rt: Runtime, phone: str) -> int:
    with rt.session() as session:
        contact_id = session.scalar(select(Identity.contact_id).where(Identity.value == phone))
    assert contact_id is not None
    return contact_id


def documented_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def registered_operations(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_the_document_is_valid_openapi_3_1():
    assert SPEC["openapi"] == "3.1.0"
    validate_spec(SPEC)  # raises on any error
    assert SPEC["security"] == [{"bearerAuth": []}]
    scheme = SPEC["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_the_document_describes_exactly_the_registered_routes(app: Flask):
    registered = registered_operations(app)
    documented = documented_operations()
    assert len(registered) > 20  # the rules were found
    assert registered - documented == set(), "routes without documentation"
    assert documented - registered == set(), "documented routes that do not exist"


def test_every_operation_has_a_summary_roles_and_the_auth_errors():
    for method, path in documented_operations():
        op = operation(method, path)
        where = f"{method} {path}"
        assert op.get("summary"), where
        assert op.get("operationId"), where
        roles = op.get("x-roles")
        assert roles and set(roles) <= {"rep", "marketer", "admin"}, where
        assert all(role in op.get("description", "") for role in roles), where
        assert "401" in op["responses"], where
        assert ("403" in op["responses"]) == (len(roles) < 3), where
        for name in re.findall(r"{(\w+)}", path):
            declared = [resolve(p) for p in SPEC["paths"][path].get("parameters", [])]
            declared += [resolve(p) for p in op.get("parameters", [])]
            assert any(p["in"] == "path" and p["name"] == name for p in declared), where


def test_x_roles_are_the_roles_the_api_lets_in(runtime: Runtime, client: FlaskClient):
    """Every operation, called by each role and without a token: 403 exactly for the roles
    x-roles leaves out, 401 without a token, and each answer as documented."""
    tokens = {role: bearer(runtime, role) for role in Role}
    for method, path in sorted(documented_operations()):
        op = operation(method, path)
        params = {name: MISSING for name in re.findall(r"{(\w+)}", path)}
        body = {} if "requestBody" in op else None
        url = path.format(**params)
        anonymous = client.open(url, method=method, json=body)
        assert anonymous.status_code == 401, f"{method} {path}"
        check(anonymous, method, path)
        for role, headers in tokens.items():
            response = client.open(url, method=method, json=body, headers=headers)
            allowed = str(role) in op["x-roles"]
            assert (response.status_code == 403) != allowed, (method, path, role)
            assert response.status_code != 401, (method, path, role)
            check(response, method, path)


def test_the_document_is_served_as_json_to_a_signed_in_user(runtime: Runtime, client: FlaskClient):
    anonymous = client.get("/api/v1/openapi.json")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="crm"'
    check(anonymous, "GET", "/api/v1/openapi.json")

    answer = client.get("/api/v1/openapi.json", headers=bearer(runtime, Role.MARKETER))
    assert answer.status_code == 200
    assert check(answer, "GET", "/api/v1/openapi.json") == SPEC
    assert answer.get_json() == yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))


def test_real_responses_match_the_documented_schemas(
    runtime: Runtime, client: FlaskClient, webhooks: Webhooks
):
    admin = bearer(runtime, Role.ADMIN)
    rep = bearer(runtime, Role.REP)
    marketer = bearer(runtime, Role.MARKETER)
    inbound(webhooks, PHONE, "is there somebody in your office I can speak with?")
    run_jobs(runtime)  # enrichment: a human request -> a handoff to the rep, notified

    # Contacts: look up by phone, list with filters, read, edit, timeline pages.
    found = check(
        send(client, "GET", "/api/v1/contacts", admin, query={"phone": "0241230001"}),
        "GET",
        "/api/v1/contacts",
    )
    [contact] = found["data"]
    contact_id = contact["id"]
    assert contact_id == contact_of(runtime, PHONE) and contact["phones"] == [PHONE]
    assert found["next_cursor"] is None
    inbound(webhooks, OTHER_PHONE, "Hello, how much is the solar kit?")
    page = check(
        send(client, "GET", "/api/v1/contacts", admin, query={"limit": 1, "channel": "sms"}),
        "GET",
        "/api/v1/contacts",
    )
    assert len(page["data"]) == 1 and isinstance(page["next_cursor"], int)
    rest = send(client, "GET", "/api/v1/contacts", admin, query={"cursor": page["next_cursor"]})
    assert [c["id"] for c in check(rest, "GET", "/api/v1/contacts")["data"]] == [contact_id]
    stages = {"stage": "subscriber,lead,mql,sql", "owner": "none", "q": "23324"}
    check(send(client, "GET", "/api/v1/contacts", admin, query=stages), "GET", "/api/v1/contacts")

    detail = check(
        send(client, "GET", "/api/v1/contacts/{contact_id}", admin, contact_id=contact_id),
        "GET",
        "/api/v1/contacts/{contact_id}",
    )
    assert detail["id"] == contact_id and "score_now" in detail
    changes = {
        "name": "Ama Mensah",
        "email": "ama@example.com",
        "tags": ["VIP", "solar"],
        "attributes": {"city": "Accra", "panels": 4, "paid": False},
    }
    edited = check(
        send(
            client,
            "PATCH",
            "/api/v1/contacts/{contact_id}",
            admin,
            body=changes,
            contact_id=contact_id,
        ),
        "PATCH",
        "/api/v1/contacts/{contact_id}",
    )
    assert (edited["name"], edited["tags"]) == ("Ama Mensah", ["solar", "vip"])
    assert edited["attributes"] == {"city": "Accra", "panels": 4, "paid": False}

    timeline = "/api/v1/contacts/{contact_id}/timeline"
    first = check(
        send(client, "GET", timeline, admin, query={"limit": 1}, contact_id=contact_id),
        "GET",
        timeline,
    )
    assert len(first["data"]) == 1 and isinstance(first["next_cursor"], str)
    rest = send(
        client,
        "GET",
        timeline,
        admin,
        query={"cursor": first["next_cursor"]},
        contact_id=contact_id,
    )
    entries = check(rest, "GET", timeline)["data"]
    assert any(e["direction"] == "inbound" and e["signals"] for e in entries + first["data"])

    # Merge the second contact into the first.
    other_id = contact_of(runtime, OTHER_PHONE)
    merged = check(
        send(
            client,
            "POST",
            "/api/v1/contacts/{contact_id}/merge",
            admin,
            body={"merge_contact_id": other_id},
            contact_id=contact_id,
        ),
        "POST",
        "/api/v1/contacts/{contact_id}/merge",
    )
    assert sorted(merged["phones"]) == sorted([PHONE, OTHER_PHONE])

    # Deals: pipeline, open, list, read, win; the revenue report counts it.
    pipeline = check(send(client, "GET", "/api/v1/pipeline", rep), "GET", "/api/v1/pipeline")
    won = next(s["name"] for s in pipeline["stages"] if s["outcome"] == "won")
    opened = send(
        client,
        "POST",
        "/api/v1/deals",
        admin,
        body={
            "contact_id": contact_id,
            "title": "Solar kit",
            "amount": "1250.50",
            "currency": "ghs",
            "expected_close_on": "2030-01-31",
        },
    )
    deal = check(opened, "POST", "/api/v1/deals")
    assert (opened.status_code, deal["amount"], deal["currency"]) == (201, "1250.50", "GHS")
    listed = check(
        send(client, "GET", "/api/v1/deals", admin, query={"contact_id": contact_id}),
        "GET",
        "/api/v1/deals",
    )
    assert [d["id"] for d in listed["data"]] == [deal["id"]]
    check(
        send(client, "GET", "/api/v1/deals/{deal_id}", marketer, deal_id=deal["id"]),
        "GET",
        "/api/v1/deals/{deal_id}",
    )
    closed = check(
        send(
            client,
            "PATCH",
            "/api/v1/deals/{deal_id}",
            admin,
            body={"stage": won},
            deal_id=deal["id"],
        ),
        "PATCH",
        "/api/v1/deals/{deal_id}",
    )
    assert closed["stage"] == won and closed["closed_at"] is not None
    spare = check(
        send(client, "POST", "/api/v1/deals", admin, body={"contact_id": contact_id, "title": "X"}),
        "POST",
        "/api/v1/deals",
    )
    gone = send(client, "DELETE", "/api/v1/deals/{deal_id}", admin, deal_id=spare["id"])
    assert gone.status_code == 204 and check(gone, "DELETE", "/api/v1/deals/{deal_id}") is None

    revenue = check(
        send(client, "GET", "/api/v1/reports/revenue", marketer, query={"by": "channel"}),
        "GET",
        "/api/v1/reports/revenue",
    )
    assert revenue["data"] == [{"key": "sms", "currency": "GHS", "deals": 1, "revenue": "1250.50"}]
    by_campaign = {"by": "campaign", "touch": "last", "from": "2020-01-01"}
    check(
        send(client, "GET", "/api/v1/reports/revenue", admin, query=by_campaign),
        "GET",
        "/api/v1/reports/revenue",
    )

    # Conversations, notifications, handoffs, made by the enrichment job.
    threads = check(
        send(
            client,
            "GET",
            "/api/v1/conversations",
            admin,
            query={"view": "all", "status": "any", "contact_id": contact_id},
        ),
        "GET",
        "/api/v1/conversations",
    )
    [thread] = threads["data"]
    assert (thread["channel"], thread["unread"]) == ("sms", True)
    read = check(
        send(
            client,
            "PATCH",
            "/api/v1/conversations/{conversation_id}",
            admin,
            body={"read": True},
            conversation_id=thread["id"],
        ),
        "PATCH",
        "/api/v1/conversations/{conversation_id}",
    )
    assert read["unread"] is False

    notices = check(
        send(client, "GET", "/api/v1/notifications", rep, query={"unread": "true"}),
        "GET",
        "/api/v1/notifications",
    )
    [notice] = notices["data"]
    assert notice["kind"] == "hot_lead" and notice["read_at"] is None
    seen = check(
        send(
            client,
            "POST",
            "/api/v1/notifications/{notification_id}/read",
            rep,
            notification_id=notice["id"],
        ),
        "POST",
        "/api/v1/notifications/{notification_id}/read",
    )
    assert seen["read_at"] is not None
    check(send(client, "GET", "/api/v1/notifications", admin), "GET", "/api/v1/notifications")

    handoffs = check(
        send(client, "GET", "/api/v1/handoffs", admin, query={"status": "open"}),
        "GET",
        "/api/v1/handoffs",
    )
    [handoff] = handoffs["data"]
    accepted = check(
        send(
            client,
            "POST",
            "/api/v1/handoffs/{handoff_id}/accept",
            admin,
            handoff_id=handoff["id"],
        ),
        "POST",
        "/api/v1/handoffs/{handoff_id}/accept",
    )
    assert accepted["status"] == "accepted"

    # A reply: queued (202), and the handoff's first touch.
    message = {"contact_id": contact_id, "channel": "sms", "body": "Hi Ama, Kofi here"}
    sent = send(client, "POST", "/api/v1/messages", admin, body=message)
    queued = check(sent, "POST", "/api/v1/messages")
    assert sent.status_code == 202 and queued["delivery_status"] == "pending"
    with runtime.session() as session:
        assert session.get_one(Handoff, handoff["id"]).status == "done"

    report = check(
        send(client, "GET", "/api/v1/reports/handoffs", admin, query={"from": "2020-01-01"}),
        "GET",
        "/api/v1/reports/handoffs",
    )
    [row] = report["data"]
    assert row["handoffs"] == 1 and row["touched_in_time"] == 1


def test_segment_and_campaign_responses_match_the_documented_schemas(
    runtime: Runtime, client: FlaskClient, webhooks: Webhooks
):
    """A marketer composes a segment and a campaign, previews it and deletes both: each answer,
    and the errors on the way, as documented."""
    marketer = bearer(runtime, Role.MARKETER)
    inbound(webhooks, PHONE, "Hello, how much is the solar kit?")
    run_jobs(runtime)  # enrichment: the contact's last touch, which segments filter on
    contact_id = contact_of(runtime, PHONE)

    # Segments: a live count while composing, then saved, listed, read and changed.
    filters = {
        "countries": ["gh"],
        "score_min": 0,
        "score_max": None,
        "tags": [],
        "exclude_tags": ["Competitor"],
        "consent": {"whatsapp": "unknown"},
        "last_inbound_after": "2020-01-01T00:00:00+00:00",
        "attributes": {},
    }
    counted = send(client, "POST", "/api/v1/segments/count", marketer, body={"filters": filters})
    assert check(counted, "POST", "/api/v1/segments/count") == {"count": 1}
    everyone = send(client, "POST", "/api/v1/segments/count", marketer, body={})
    assert check(everyone, "POST", "/api/v1/segments/count") == {"count": 1}

    created = send(
        client, "POST", "/api/v1/segments", marketer, body={"name": " Ghana ", "filters": filters}
    )
    segment = check(created, "POST", "/api/v1/segments")
    assert created.status_code == 201
    assert (segment["name"], segment["filters"], segment["count"]) == ("Ghana", filters, 1)
    segment_id = segment["id"]
    listed = check(send(client, "GET", "/api/v1/segments", marketer), "GET", "/api/v1/segments")
    assert [(s["id"], s["count"]) for s in listed["data"]] == [(segment_id, None)]
    one = "/api/v1/segments/{segment_id}"
    shown = check(send(client, "GET", one, marketer, segment_id=segment_id), "GET", one)
    assert shown == segment
    narrower = {"stages": ["customer"], "sentiment": ["positive"]}
    patched = check(
        send(
            client,
            "PATCH",
            one,
            marketer,
            body={"name": "Happy customers", "filters": narrower},
            segment_id=segment_id,
        ),
        "PATCH",
        one,
    )
    assert (patched["name"], patched["filters"], patched["count"]) == (
        "Happy customers",
        narrower,
        0,
    )
    patched = check(
        send(
            client,
            "PATCH",
            one,
            marketer,
            body={"filters": {"countries": ["GH"]}},
            segment_id=segment_id,
        ),
        "PATCH",
        one,
    )
    assert patched["count"] == 1

    # Campaigns: composed as a draft, listed, read, scheduled; a template typo is refused.
    body = "Hi {{ first_name | default('there') }}, it\u2019s 20% off solar kits this week"
    composed = send(
        client,
        "POST",
        "/api/v1/campaigns",
        marketer,
        body={
            "name": "Rainy season",
            "channel": "sms",
            "sender": "SOLARCO",
            "segment_id": segment_id,
            "body": body,
            "timezone": "Africa/Accra",
        },
    )
    campaign = check(composed, "POST", "/api/v1/campaigns")
    assert composed.status_code == 201
    assert (campaign["status"], campaign["send_at"], campaign["launched_at"]) == (
        "draft",
        None,
        None,
    )
    assert campaign["variants"] == [{"name": "A", "body": body, "weight": 100}]
    assert (campaign["quiet_start"], campaign["quiet_end"]) == ("20:00", "08:00")
    campaign_id = campaign["id"]
    campaigns = check(
        send(client, "GET", "/api/v1/campaigns", marketer), "GET", "/api/v1/campaigns"
    )
    assert [c["id"] for c in campaigns["data"]] == [campaign_id]
    path = "/api/v1/campaigns/{campaign_id}"
    assert (
        check(send(client, "GET", path, marketer, campaign_id=campaign_id), "GET", path) == campaign
    )
    changes = {
        "send_at": "2030-12-01T09:00:00+00:00",
        "in_contact_timezone": True,
        "quiet_start": "21:00",
        "quiet_end": "07:30",
        "variants": [
            {"name": "A", "body": body, "weight": 50},
            {"body": "Hello {{ name | default('friend') }}, it\u2019s lamp season", "weight": 50},
        ],
    }
    scheduled = check(
        send(client, "PATCH", path, marketer, body=changes, campaign_id=campaign_id), "PATCH", path
    )
    assert (scheduled["status"], scheduled["send_at"]) == ("scheduled", "2030-12-01T09:00:00+00:00")
    assert [v["name"] for v in scheduled["variants"]] == ["A", "B"]
    typo = send(
        client,
        "PATCH",
        path,
        marketer,
        body={"body": "Hi {{ frist_name }}"},
        campaign_id=campaign_id,
    )
    assert typo.status_code == 422 and "frist_name" in check(typo, "PATCH", path)["message"]

    # The preview: the contact, their message rendered, and the character that forced UCS-2.
    preview = "/api/v1/campaigns/{campaign_id}/preview"
    answer = check(
        send(client, "POST", preview, marketer, campaign_id=campaign_id), "POST", preview
    )
    assert (answer["recipients"], answer["excluded"], answer["excluded_total"]) == (1, {}, 0)
    [sample] = answer["samples"]
    assert (sample["contact_id"], sample["phone"]) == (contact_id, PHONE)
    assert sample["body"].startswith(("Hi there,", "Hello friend,"))
    assert answer["by_encoding"] == {"UCS-2": 1} and sum(answer["by_variant"].values()) == 1
    assert answer["ucs2_characters"] == [{"character": "\u2019", "suggestion": "'", "messages": 1}]

    # A campaign without a segment cannot be previewed; a launched one is neither changed
    # nor deleted.
    bare = check(
        send(
            client,
            "POST",
            "/api/v1/campaigns",
            marketer,
            body={"name": "Later", "channel": "whatsapp"},
        ),
        "POST",
        "/api/v1/campaigns",
    )
    early = send(client, "POST", preview, marketer, campaign_id=bare["id"])
    assert early.status_code == 422 and check(early, "POST", preview)["error"] == "CampaignError"
    with runtime.session() as session:
        session.get_one(Campaign, bare["id"]).status = "done"
    for method in ("PATCH", "DELETE"):
        refused = send(
            client,
            method,
            path,
            marketer,
            body={} if method == "PATCH" else None,
            campaign_id=bare["id"],
        )
        assert (
            refused.status_code == 422 and check(refused, method, path)["error"] == "CampaignError"
        )

    # Deleting the segment leaves its campaign without one; then the campaign goes too.
    deleted = send(client, "DELETE", one, marketer, segment_id=segment_id)
    assert deleted.status_code == 204 and check(deleted, "DELETE", one) is None
    orphan = check(send(client, "GET", path, marketer, campaign_id=campaign_id), "GET", path)
    assert orphan["segment_id"] is None
    deleted = send(client, "DELETE", path, marketer, campaign_id=campaign_id)
    assert deleted.status_code == 204 and check(deleted, "DELETE", path) is None
    for route, ids in ((one, {"segment_id": segment_id}), (path, {"campaign_id": campaign_id})):
        missing = send(client, "GET", route, marketer, **ids)
        assert missing.status_code == 404
        assert check(missing, "GET", route)["error"] == "CampaignNotFound"


def test_launch_pause_resume_and_cancel_match_the_documented_schemas(
    runtime: Runtime, client: FlaskClient, webhooks: Webhooks
):
    """A marketer launches a campaign, pauses, resumes and follows it to the end, and cancels
    others, launched or not: each answer, with its summary and progress, and the refusals of
    what the campaign's status does not allow, as documented."""
    marketer = bearer(runtime, Role.MARKETER)
    inbound(webhooks, PHONE, "Hello, how much is the solar kit?")
    run_jobs(runtime)
    segment = check(
        send(client, "POST", "/api/v1/segments", marketer, body={"name": "All", "filters": {}}),
        "POST",
        "/api/v1/segments",
    )
    now = {
        "channel": "sms",
        "sender": "MG" + "b" * 32,
        "segment_id": segment["id"],
        "body": "Lamps are back in stock",
        "quiet_start": None,
        "quiet_end": None,
    }

    def compose(name: str, **fields: Any) -> dict[str, Any]:
        created = send(client, "POST", "/api/v1/campaigns", marketer, body={"name": name, **fields})
        assert created.status_code == 201
        return check(created, "POST", "/api/v1/campaigns")

    def act(action: str, campaign_id: int, status: int = 200) -> dict[str, Any]:
        path = f"/api/v1/campaigns/{{campaign_id}}/{action}"
        answer = send(client, "POST", path, marketer, campaign_id=campaign_id)
        assert answer.status_code == status, answer.get_json()
        return check(answer, "POST", path)

    def refused(action: str, campaign_id: int) -> None:
        assert act(action, campaign_id, 422)["error"] == "CampaignError"

    path = "/api/v1/campaigns/{campaign_id}"

    def show(campaign_id: int) -> dict[str, Any]:
        return check(send(client, "GET", path, marketer, campaign_id=campaign_id), "GET", path)

    campaign = compose("Now", **now)
    assert (campaign["summary"], campaign["progress"], campaign["finished_at"]) == ({}, None, None)
    campaign_id = campaign["id"]
    refused("pause", campaign_id)  # not running
    refused("resume", campaign_id)  # not paused

    # Launch requested: launching, nothing written yet; then the worker's job makes it running,
    # its summary fixed, one recipient pending; launched once only.
    requested = act("launch", campaign_id, 202)
    assert (requested["status"], requested["summary"]) == ("launching", {})
    assert requested["launched_at"] is not None and requested["progress"]["total"] == 0
    refused("launch", campaign_id)
    refused("pause", campaign_id)  # launching, not running yet
    finish_launch(runtime, campaign_id)
    launched = show(campaign_id)
    assert (launched["status"], launched["finished_at"]) == ("running", None)
    assert launched["launched_at"] == requested["launched_at"]
    summary = launched["summary"]
    assert (summary["recipients"], summary["excluded"], summary["segments_total"]) == (1, {}, 1)
    assert launched["progress"] == {
        "pending": 1,
        "sending": 0,
        "sent": 0,
        "failed": 0,
        "skipped": 0,
        "delivered": 0,
        "undelivered": 0,
        "total": 1,
    }
    refused("launch", campaign_id)
    refused("resume", campaign_id)  # running, not paused

    # Paused: the send job sends nothing; resumed: it sends, and the campaign is done.
    paused = act("pause", campaign_id)
    assert (paused["status"], paused["progress"]["pending"]) == ("paused", 1)
    refused("pause", campaign_id)
    run_jobs(runtime)
    assert show(campaign_id)["progress"]["sent"] == 0
    assert act("resume", campaign_id)["status"] == "running"
    run_jobs(runtime)
    with runtime.session() as session:
        sid = session.scalar(
            select(Interaction.provider_message_id)
            .join(CampaignRecipient, CampaignRecipient.interaction_id == Interaction.id)
            .where(CampaignRecipient.campaign_id == campaign_id)
        )
    assert sid
    delivered = webhooks.status("twilio/status__delivered.txt", MessageSid=sid, SmsSid=sid)
    assert delivered.status_code == 204
    done = show(campaign_id)
    assert (done["status"], done["summary"]) == ("done", summary)
    assert done["finished_at"] is not None
    assert {k: done["progress"][k] for k in ("pending", "sent", "delivered", "total")} == {
        "pending": 0,
        "sent": 1,
        "delivered": 1,
        "total": 1,
    }
    refused("cancel", campaign_id)  # done
    refused("launch", campaign_id)
    listed = check(send(client, "GET", "/api/v1/campaigns", marketer), "GET", "/api/v1/campaigns")
    assert [c["progress"] for c in listed["data"]] == [None]

    # Cancelled while running: the pending recipient skipped; no more than once.
    later = compose("Later", **{**now, "send_at": "2030-12-01T09:00:00+00:00"})["id"]
    assert act("launch", later, 202)["status"] == "launching"
    finish_launch(runtime, later)
    running = show(later)
    assert running["progress"]["pending"] == 1
    cancelled = act("cancel", running["id"])
    assert (cancelled["status"], cancelled["progress"]["skipped"]) == ("cancelled", 1)
    assert cancelled["progress"]["pending"] == 0 and cancelled["finished_at"] is not None
    refused("cancel", running["id"])
    refused("resume", running["id"])

    # A draft without a segment cannot be launched; cancelled, it never was: no progress.
    draft = compose("Someday", channel="whatsapp")
    refused("launch", draft["id"])
    dropped = act("cancel", draft["id"])
    assert (dropped["status"], dropped["launched_at"], dropped["summary"]) == (
        "cancelled",
        None,
        {},
    )
    assert dropped["progress"] is None and dropped["finished_at"] is not None
    assert show(draft["id"])["progress"] is None
    refused("cancel", draft["id"])
    refused("launch", draft["id"])  # cancelled


def test_a_rejected_handoff_matches_the_documented_schema(
    runtime: Runtime, client: FlaskClient, webhooks: Webhooks
):
    admin = bearer(runtime, Role.ADMIN)
    bearer(runtime, Role.REP)  # the one rep the lead can go to
    inbound(webhooks, PHONE, "is there somebody in your office I can speak with?")
    run_jobs(runtime)
    [handoff] = check(send(client, "GET", "/api/v1/handoffs", admin), "GET", "/api/v1/handoffs")[
        "data"
    ]
    path = "/api/v1/handoffs/{handoff_id}/reject"
    answer = send(
        client, "POST", path, admin, body={"reason": "too_busy"}, handoff_id=handoff["id"]
    )
    rejected = check(answer, "POST", path)
    assert (rejected["status"], rejected["reject_reason"]) == ("rejected", "too_busy")
    successor = rejected["successor"]
    assert successor["rep_id"] is None and successor["status"] == "open"  # nobody else to take it
    again = send(client, "POST", path, admin, body={"reason": "too_busy"}, handoff_id=handoff["id"])
    assert again.status_code == 409
    check(again, "POST", path)
    accept = send(
        client, "POST", "/api/v1/handoffs/{handoff_id}/accept", admin, handoff_id=handoff["id"]
    )
    assert accept.status_code == 409
    check(accept, "POST", "/api/v1/handoffs/{handoff_id}/accept")


@pytest.mark.parametrize(
    ("role", "method", "path", "params", "body", "status", "error"),
    [
        (None, "GET", "/api/v1/contacts", {}, None, 401, "Unauthorized"),
        (Role.MARKETER, "PATCH", "/api/v1/contacts/{contact_id}", {}, {}, 403, "Forbidden"),
        (Role.REP, "GET", "/api/v1/reports/revenue", {}, None, 403, "Forbidden"),
        (Role.ADMIN, "GET", "/api/v1/contacts/{contact_id}", {}, None, 404, "ContactNotFound"),
        (Role.ADMIN, "GET", "/api/v1/deals/{deal_id}", {}, None, 404, "DealNotFound"),
        (
            Role.ADMIN,
            "PATCH",
            "/api/v1/conversations/{conversation_id}",
            {},
            {"read": True},
            404,
            "ConversationNotFound",
        ),
        (Role.ADMIN, "GET", "/api/v1/contacts", {"limit": 0}, None, 400, "FilterError"),
        (Role.ADMIN, "GET", "/api/v1/contacts", {"owner": "x"}, None, 400, "FilterError"),
        (
            Role.ADMIN,
            "GET",
            "/api/v1/contacts/{contact_id}/timeline",
            {"cursor": "nonsense"},
            None,
            400,
            "InvalidCursor",
        ),
        (
            Role.ADMIN,
            "GET",
            "/api/v1/contacts/{contact_id}/timeline",
            {"limit": 0},
            None,
            400,
            "FilterError",
        ),
        (Role.ADMIN, "GET", "/api/v1/reports/revenue", {"by": "week"}, None, 400, "ReportError"),
        (Role.MARKETER, "GET", "/api/v1/reports/handoffs", {"to": "x"}, None, 400, "ReportError"),
        (Role.ADMIN, "GET", "/api/v1/contacts", {"phone": "12"}, None, 422, "InvalidPhoneNumber"),
        (Role.ADMIN, "GET", "/api/v1/conversations", {"view": "x"}, None, 400, "FilterError"),
        (Role.ADMIN, "GET", "/api/v1/deals", {"owner": "x"}, None, 400, "FilterError"),
        (Role.ADMIN, "GET", "/api/v1/handoffs", {"status": "x"}, None, 400, "FilterError"),
        (Role.REP, "POST", "/api/v1/messages", {}, {"channel": "sms"}, 422, "BadId"),
        (
            Role.REP,
            "POST",
            "/api/v1/messages",
            {},
            {"body": "Hi", "channel": "telegram"},
            422,
            "BadId",
        ),
        (Role.ADMIN, "PATCH", "/api/v1/contacts/{contact_id}", {}, {"score": 99}, 422, "EditError"),
        (
            Role.ADMIN,
            "PATCH",
            "/api/v1/contacts/{contact_id}",
            {},
            {"lifecycle_stage": "champion"},
            422,
            "EditError",
        ),
        (Role.ADMIN, "POST", "/api/v1/deals", {}, {"contact_id": "1"}, 422, "BadId"),
        (Role.ADMIN, "POST", "/api/v1/deals", {}, {"title": "X"}, 422, "BadId"),
        (
            Role.ADMIN,
            "POST",
            "/api/v1/contacts/{contact_id}/merge",
            {"merge": "self"},
            {},
            409,
            "MergeError",
        ),
        (
            Role.ADMIN,
            "POST",
            "/api/v1/contacts/{contact_id}/opt-out-review",
            {},
            {"decision": "confirm"},
            409,
            "NothingToReview",
        ),
        (
            Role.ADMIN,
            "POST",
            "/api/v1/contacts/{contact_id}/opt-out-review",
            {},
            {"decision": "maybe"},
            422,
            "SendRefused",
        ),
        (Role.REP, "GET", "/api/v1/campaigns", {}, None, 403, "Forbidden"),
        (
            Role.MARKETER,
            "GET",
            "/api/v1/campaigns/{campaign_id}",
            {},
            None,
            404,
            "CampaignNotFound",
        ),
        (Role.ADMIN, "DELETE", "/api/v1/segments/{segment_id}", {}, None, 404, "CampaignNotFound"),
        (
            Role.MARKETER,
            "POST",
            "/api/v1/campaigns/{campaign_id}/launch",
            {},
            None,
            404,
            "CampaignNotFound",
        ),
        (
            Role.ADMIN,
            "POST",
            "/api/v1/campaigns/{campaign_id}/cancel",
            {},
            None,
            404,
            "CampaignNotFound",
        ),
        (Role.REP, "POST", "/api/v1/campaigns/{campaign_id}/pause", {}, None, 403, "Forbidden"),
        (
            Role.MARKETER,
            "POST",
            "/api/v1/segments/count",
            {},
            {"filters": {"stages": ["champion"]}},
            422,
            "SegmentError",
        ),
        (
            Role.MARKETER,
            "POST",
            "/api/v1/segments",
            {},
            {"name": "Blue", "filters": {"colour": "blue"}},
            422,
            "SegmentError",
        ),
        (
            Role.MARKETER,
            "POST",
            "/api/v1/campaigns",
            {},
            {"name": "Blank", "channel": "sms", "body": "   "},
            422,
            "CampaignError",
        ),
        (
            Role.MARKETER,
            "POST",
            "/api/v1/campaigns",
            {},
            {"name": "A/B", "channel": "sms", "body": "Hi", "variants": [{"body": "Hi"}]},
            422,
            "CampaignError",
        ),
    ],
)
def test_error_responses_match_the_documented_schemas(
    runtime: Runtime,
    client: FlaskClient,
    webhooks: Webhooks,
    role: Role | None,
    method: str,
    path: str,
    params: dict[str, Any],
    body: dict[str, Any] | None,
    status: int,
    error: str,
):
    """Each error answer is documented for its operation and matches the Error schema; a body
    the API refuses with 422 is refused by the documented request schema too."""
    inbound(webhooks, PHONE, "Hello")
    contact_id = contact_of(runtime, PHONE)
    ids = {"contact_id": MISSING if status == 404 else contact_id}
    ids |= {"deal_id": MISSING, "conversation_id": MISSING}
    ids |= {"campaign_id": MISSING, "segment_id": MISSING}
    query = dict(params)
    if query.pop("merge", None) == "self":
        body = {"merge_contact_id": contact_id}
    headers = bearer(runtime, role) if role else {}
    url = path.format(**ids)
    response = client.open(url, method=method, json=body, query_string=query, headers=headers)
    assert response.status_code == status, response.get_json()
    answer = check(response, method, path)
    assert answer["error"] == error and answer["message"]
    if status == 422 and body is not None:
        with pytest.raises(ValidationError):
            validate(body, request_schema(method, path))


def test_an_unknown_route_answers_with_the_error_shape(runtime: Runtime, client: FlaskClient):
    """An id that is not an integer matches no route: a JSON 404 of the documented shape."""
    response = client.get("/api/v1/contacts/abc", headers=bearer(runtime, Role.ADMIN))
    assert response.status_code == 404
    body = check(response, "GET", "/api/v1/contacts/{contact_id}")
    assert body["error"] == "Not Found"


def test_check_fails_for_an_undocumented_status_or_a_body_off_schema(
    runtime: Runtime, client: FlaskClient
):
    pipeline = client.get("/api/v1/pipeline", headers=bearer(runtime, Role.REP))
    assert pipeline.status_code == 200
    check(pipeline, "GET", "/api/v1/pipeline")
    with pytest.raises(AssertionError, match="answered 200"):
        check(pipeline, "DELETE", "/api/v1/deals/{deal_id}")  # documents 204, not 200
    with pytest.raises(ValidationError):
        check(pipeline, "GET", "/api/v1/deals/{deal_id}")  # 200 documented: a Deal
    with pytest.raises(AssertionError, match="not documented"):
        check(pipeline, "GET", "/api/v1/nothing")
