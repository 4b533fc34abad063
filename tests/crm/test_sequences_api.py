"""The sequences API (marketers and admins): define, edit, activate, pause, resume, archive and
delete sequences, enrol contacts by id or audience, take one out, read enrolments and results.
Every answer is checked against the OpenAPI document; sends go through the real send job to
the fake Twilio, with simulated time. Sequence step campaigns stay out of the broadcast
campaign screens and cannot be changed there."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crm.models import (
    Campaign,
    Contact,
    Identity,
    Interaction,
    Role,
    Sequence,
    SequenceEnrollment,
    SequenceStepRun,
)
from crm.runtime import Runtime
from crm.sequence_enrol import fire
from tests.conftest import Webhooks, run_jobs
from tests.crm.test_openapi import bearer, check
from tests.web.conftest import make_user, sign_in
from workers.sequence_clock import run_steps, scan_triggers

SHIPPED = Path(__file__).resolve().parents[2] / "crm" / "config" / "sequences"
MISSING = 999_999
BASE = "/api/v1/sequences"
ONE = BASE + "/{sequence_id}"
ENROLLMENTS = ONE + "/enrollments"
ENROLLMENT = ENROLLMENTS + "/{enrollment_id}"


def shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load((SHIPPED / f"{name}.yaml").read_text(encoding="utf-8"))


def simple(name: str = "Nudge", **changes: Any) -> dict[str, Any]:
    """A lead nurture: a message now, another a day later; no quiet hours."""
    return {
        "name": name,
        "trigger": {"type": "tag_added", "tag": "nurture"},
        "audience": {"stages": ["lead"]},
        "quiet_hours": None,
        "steps": [
            {"id": "hello", "send": {"channel": "sms", "body": "Hi {{ first_name }}, welcome!"}},
            {"id": "a-day", "wait": {"days": 1}},
            {"id": "again", "send": {"channel": "sms", "body": "Still thinking about it?"}},
        ],
        **changes,
    }


def add_contact(rt: Runtime, phone: str, stage: str = "lead", name: str = "Ama Mensah") -> int:
    with rt.session() as session:
        contact = Contact(name=name, lifecycle_stage=stage, attributes={})
        session.add(contact)
        session.flush()
        session.add(Identity(contact_id=contact.id, kind="phone", value=phone))
        return contact.id


class Api:
    """Calls as one user, each answer checked against the OpenAPI document."""

    def __init__(self, client: FlaskClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def call(
        self,
        method: str,
        template: str,
        status: int,
        body: Any = None,
        query: dict[str, Any] | None = None,
        **ids: int,
    ) -> Any:
        response = self.client.open(
            template.format(**ids),
            method=method,
            json=body,
            query_string=query,
            headers=self.headers,
        )
        assert response.status_code == status, response.get_data(as_text=True)[:500]
        return check(response, method, template)

    def create(self, definition: dict[str, Any], activate: bool = False) -> dict[str, Any]:
        body = {"definition": definition, "activate": activate}
        return self.call("POST", BASE, 201, body)

    def act(self, sequence_id: int, action: str, status: int = 200) -> dict[str, Any]:
        return self.call("POST", ONE + "/" + action, status, sequence_id=sequence_id)

    def enrol(self, sequence_id: int, body: Any, status: int = 200) -> dict[str, Any]:
        return self.call("POST", ENROLLMENTS, status, body, sequence_id=sequence_id)


@pytest.fixture
def api(runtime: Runtime, client: FlaskClient) -> Api:
    return Api(client, bearer(runtime, Role.MARKETER))


# --- roles ----------------------------------------------------------------------------------

ROUTES = [
    ("GET", BASE, None),
    ("POST", BASE, {"definition": simple()}),
    ("GET", ONE, None),
    ("PUT", ONE, {"definition": simple("Renamed")}),
    ("POST", ONE + "/activate", None),
    ("POST", ONE + "/pause", None),
    ("POST", ONE + "/resume", None),
    ("GET", ENROLLMENTS, None),
    ("POST", ENROLLMENTS, {"audience": True}),
    ("DELETE", ENROLLMENT, None),
    ("GET", ONE + "/results", None),
    ("POST", ONE + "/archive", None),
    ("DELETE", ONE, None),
]


def test_reps_get_403_and_anonymous_callers_401_on_every_route(
    runtime: Runtime, client: FlaskClient, api: Api
):
    """Against a real sequence and enrolment: nothing a rep or an anonymous caller sends
    changes them; an admin may do everything a marketer may."""
    contact_id = add_contact(runtime, "+233241110001")
    sequence = api.create(simple(), activate=True)
    assert api.enrol(sequence["id"], {"contact_ids": [contact_id]}) == {"enrolled": 1}
    with runtime.session() as session:
        enrollment_id = session.scalar(select(SequenceEnrollment.id))
    ids = {"sequence_id": sequence["id"], "enrollment_id": enrollment_id}
    rep = bearer(runtime, Role.REP)
    for method, template, body in ROUTES:
        url = template.format(**ids)
        anonymous = client.open(url, method=method, json=body)
        assert anonymous.status_code == 401, (method, template)
        assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="crm"'
        check(anonymous, method, template)
        refused = client.open(url, method=method, json=body, headers=rep)
        assert refused.status_code == 403, (method, template)
        assert check(refused, method, template)["error"] == "Forbidden"
    still = api.call("GET", ONE, 200, sequence_id=sequence["id"])
    assert (still["status"], still["version"], still["counts"]["active"]) == ("active", 1, 1)

    admin = Api(client, bearer(runtime, Role.ADMIN))
    assert admin.act(sequence["id"], "pause")["status"] == "paused"
    assert admin.call("GET", BASE, 200)["data"][0]["id"] == sequence["id"]


# --- create, read, list ---------------------------------------------------------------------


def test_create_a_shipped_sequence_read_it_and_list_it(api: Api):
    raw = shipped("price_follow_up")
    draft = api.create(raw)
    assert draft["name"] == "Price follow-up"
    assert (draft["status"], draft["version"], draft["trigger_type"]) == ("draft", 1, "intent")
    assert draft["definition"] == raw and draft["activated_at"] is None
    assert draft["counts"] == {
        "enrolled": 0,
        "active": 0,
        "completed": 0,
        "exited": 0,
        "exited_by_reason": {},
    }
    shown = api.call("GET", ONE, 200, sequence_id=draft["id"])
    assert shown == draft

    live = api.create(shipped("win_back"), activate=True)
    assert live["status"] == "active" and live["activated_at"] is not None
    assert live["trigger_type"] == "inactive"

    listed = api.call("GET", BASE, 200)["data"]
    assert [s["id"] for s in listed] == [live["id"], draft["id"]]  # newest first
    assert all(s["counts"] is None for s in listed)
    only_active = api.call("GET", BASE, 200, query={"status": "active"})["data"]
    assert [s["id"] for s in only_active] == [live["id"]]
    assert api.call("GET", BASE, 200, query={"status": "archived"})["data"] == []
    bad = api.call("GET", BASE, 400, query={"status": "running"})
    assert bad["error"] == "FilterError" and "draft" in bad["message"]

    missing = api.call("GET", ONE, 404, sequence_id=MISSING)
    assert missing["error"] == "SequenceNotFound"


def test_unicode_names_and_messages_are_kept_as_sent(runtime: Runtime, api: Api):
    definition = simple("Relance prix · عرض 🌞")
    definition["steps"][0]["send"]["body"] = "Akwaaba {{ first_name }}! Ñandú, 20% off ☀️"
    created = api.create(definition)
    assert created["name"] == "Relance prix · عرض 🌞"
    assert created["definition"]["steps"][0]["send"]["body"].endswith("20% off ☀️")
    with runtime.session() as session:
        stored = session.get_one(Sequence, created["id"])
        assert stored.definition == definition
        step = session.scalars(
            select(Campaign).where(
                Campaign.sequence_id == created["id"], Campaign.sequence_step == "hello"
            )
        ).one()
        assert step.name == "Relance prix · عرض 🌞 · hello"
        assert step.variants[0]["body"] == "Akwaaba {{ first_name }}! Ñandú, 20% off ☀️"


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ([1, 2], "SendRefused", "JSON object"),
        ("a definition", "SendRefused", "JSON object"),
        ({}, "DefinitionError", "definition"),
        ({"definition": "name: x"}, "DefinitionError", "definition"),
        ({"definition": {}}, "DefinitionError", "name"),
        ({"definition": simple(), "activate": "yes"}, "SequenceInputError", "activate"),
        ({"definition": simple(), "owner": 1}, "SequenceInputError", "unknown field owner"),
        ({"definition": simple(colour="blue")}, "DefinitionError", "unknown keys colour"),
        (
            {"definition": simple(trigger={"type": "moon_phase"})},
            "DefinitionError",
            "trigger type",
        ),
        (
            {"definition": simple(steps=[{"id": "x", "wait": {}}])},
            "DefinitionError",
            "step x",
        ),
        (
            {
                "definition": simple(
                    steps=[{"id": "a", "branch": {"if": {"replied": True}, "then": "nowhere"}}]
                )
            },
            "DefinitionError",
            "nowhere, which is not a step",
        ),
        (
            {"definition": simple(steps=[{"id": "s", "send": {"channel": "sms", "body": "{{"}}])},
            "DefinitionError",
            "step s body",
        ),
        ({"definition": simple(audience={"stages": ["champion"]})}, "DefinitionError", "audience"),
        ({"definition": simple(timezone="Mars/Olympus")}, "DefinitionError", "Mars/Olympus"),
        ({"definition": simple("Nul\x00name")}, "DefinitionError", "NUL"),
        (
            {"definition": simple(steps=[{"id": f"s{i}", "exit": {}} for i in range(51)])},
            "DefinitionError",
            "1 to 50 steps",
        ),
    ],
)
def test_a_definition_that_cannot_run_is_refused_with_its_reason(
    runtime: Runtime, api: Api, body: Any, error: str, words: str
):
    answer = api.call("POST", BASE, 422, body)
    assert answer["error"] == error
    assert words in answer["message"]
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Sequence)) == 0
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_text_that_is_not_unicode_deep_nesting_and_oversized_bodies_are_refused(
    runtime: Runtime, client: FlaskClient, api: Api
):
    """A lone surrogate escape (valid JSON, not storable text) is a 422, and so are bodies
    nested deeper than a definition ever is or than the JSON parser reads; a body over the
    request size limit is a 413; none is a 500, and nothing is saved."""
    nested: Any = "deep"
    for _ in range(25):
        nested = {"more": nested}
    junk = simple(trigger={"type": "tag_added", "tag": "vip", "notes": nested})
    answer = api.call("POST", BASE, 422, {"definition": junk})
    assert answer["error"] == "DefinitionError" and "nested" in answer["message"]
    sequence_id = api.create(simple())["id"]
    for url, template in ((BASE, BASE), (ENROLLMENTS.format(sequence_id=sequence_id), ENROLLMENTS)):
        deep = client.post(
            url, data="[" * 5000 + "]" * 5000, content_type="application/json", headers=api.headers
        )
        assert deep.status_code == 422
        assert check(deep, "POST", template)["error"] == "SendRefused"

    raw = json.dumps({"definition": simple("placeholder")}).replace("placeholder", "\\ud800")
    response = client.post(BASE, data=raw, content_type="application/json", headers=api.headers)
    assert response.status_code == 422
    assert check(response, "POST", BASE)["error"] == "DefinitionError"

    huge = simple()
    huge["steps"] = [
        {"id": f"s{i}", "send": {"channel": "sms", "body": "x" * 1600}} for i in range(50)
    ]
    too_big = client.post(BASE, json={"definition": huge}, headers=api.headers)
    assert too_big.status_code == 413
    assert check(too_big, "POST", BASE)["error"] == "Request Entity Too Large"
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Sequence)) == 1  # the draft


@pytest.mark.parametrize(
    "definition",
    [
        simple(trigger={"type": "date_attribute", "attribute": "renewal_date", "offset": -3}),
        simple(steps=[{"id": "s", "send": {"channel": "sms", "body": "Hi", "sender": "MG1"}}]),
        simple(steps=[{"id": "b", "branch": {"if": {"replied": True}, "than": "next"}}]),
        simple(steps=[{"id": "m", "stage": {"to": "lead", "resaon": "back to nurture"}}]),
        simple(steps=[{"id": "h", "handoff": {"reason": "hot", "rep": 3}}]),
    ],
)
def test_a_misspelt_key_inside_a_trigger_or_step_is_refused(api: Api, definition: dict):
    """``offset`` for ``offset_days`` would silently enrol on the date itself, three days
    late; ``resaon`` would silently drop the reason a move back needs."""
    answer = api.call("POST", BASE, 422, {"definition": definition})
    assert answer["error"] == "DefinitionError" and "unknown" in answer["message"]


# --- status actions and delete --------------------------------------------------------------


def test_activate_pause_resume_archive_and_the_refusals_in_between(runtime: Runtime, api: Api):
    contact_id = add_contact(runtime, "+233241110002")
    sequence_id = api.create(simple())["id"]

    def refused(action: str) -> None:
        answer = api.act(sequence_id, action, 409)
        assert answer["error"] == "SequenceError" and "cannot" in answer["message"]

    refused("pause")
    refused("resume")
    assert api.enrol(sequence_id, {"contact_ids": [contact_id]}, 409)["error"] == "SequenceError"

    active = api.act(sequence_id, "activate")
    assert (active["status"], active["changed"]) == ("active", 0)
    assert active["activated_at"] is not None
    refused("activate")
    refused("resume")
    assert api.enrol(sequence_id, {"contact_ids": [contact_id]}) == {"enrolled": 1}

    paused = api.act(sequence_id, "pause")
    assert (paused["status"], paused["changed"]) == ("paused", 1)
    assert paused["activated_at"] == active["activated_at"]
    refused("pause")
    refused("activate")  # a paused sequence is resumed, not activated
    assert api.enrol(sequence_id, {"audience": True}, 409)["error"] == "SequenceError"
    with runtime.session() as session:
        enrollment = session.scalars(select(SequenceEnrollment)).one()
        assert enrollment.status == "paused"
        steps = session.scalars(select(Campaign).where(Campaign.sequence_id == sequence_id))
        assert [c.status for c in steps] == ["paused", "paused"]

    resumed = api.act(sequence_id, "resume")
    assert (resumed["status"], resumed["changed"]) == ("active", 1)
    deleted = api.call("DELETE", ONE, 409, sequence_id=sequence_id)
    assert deleted["error"] == "SequenceError" and "archive" in deleted["message"]

    archived = api.act(sequence_id, "archive")
    assert (archived["status"], archived["changed"]) == ("archived", 1)
    assert archived["counts"]["exited_by_reason"] == {"archived": 1}
    for action in ("activate", "pause", "resume", "archive"):
        refused(action)
    edit = api.call("PUT", ONE, 409, {"definition": simple("Again")}, sequence_id=sequence_id)
    assert "archived" in edit["message"]
    assert api.call("DELETE", ONE, 409, sequence_id=sequence_id)["error"] == "SequenceError"
    for action in ("activate", "pause", "resume", "archive"):
        assert api.act(MISSING, action, 404)["error"] == "SequenceNotFound"


def test_a_contact_enrolled_by_a_trigger_while_the_sequence_pauses_is_held(
    runtime: Runtime, api: Api
):
    """A tag added in a transaction that saw the sequence active before the pause committed
    (PostgreSQL, where the two run at once): the contact is not enrolled as active, and no
    step runs for it until the sequence is resumed."""
    if not runtime.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the pause waits for the trigger")
    definition = simple(
        steps=[{"id": "tag-it", "tag": {"add": ["nudged"]}}, {"id": "a-day", "wait": {"days": 1}}]
    )
    sequence_id = api.create(definition, activate=True)["id"]
    customer = add_contact(runtime, "+233241110100", stage="customer")
    lead_id = add_contact(runtime, "+233241110101")
    with runtime.session() as session:
        assert fire(session, "tag_added", [customer], "other") == []  # it read: active
        assert api.act(sequence_id, "pause")["status"] == "paused"
        fire(session, "tag_added", [lead_id], "nurture")
    run_steps(runtime)
    with runtime.session() as session:
        statuses = session.scalars(select(SequenceEnrollment.status)).all()
        ran = session.scalars(select(SequenceStepRun.step_id)).all()
    assert ("active" not in statuses, list(ran)) == (True, [])


def test_activating_a_win_back_enrols_customers_already_inactive(runtime: Runtime, api: Api):
    """In a running system (the workers have scanned before): a sequence's first scan looks
    at every contact, not only those whose inactivity began since the workers' last scan."""
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        with runtime.session() as session:
            dormant = Contact(
                name="Yaw Owusu",
                lifecycle_stage="customer",
                sentiment="positive",
                attributes={},
                created_at=start - timedelta(days=400),
                last_touch_at=start - timedelta(days=90),
            )
            session.add(dormant)
        scan_triggers(runtime, force=True)  # the workers scan all along, sequences or not
        clock.shift(timedelta(minutes=1))
        sequence_id = api.create(shipped("win_back"))["id"]
        api.act(sequence_id, "activate")
        clock.shift(timedelta(minutes=5))
        scan_triggers(runtime, force=True)
    counts = api.call("GET", ONE, 200, sequence_id=sequence_id)["counts"]
    assert counts["enrolled"] == 1


def test_a_draft_nobody_joined_is_deleted_with_its_step_campaigns(runtime: Runtime, api: Api):
    sequence_id = api.create(simple())["id"]
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 2  # two sends
    assert api.call("DELETE", ONE, 204, sequence_id=sequence_id) is None
    api.call("GET", ONE, 404, sequence_id=sequence_id)
    api.call("DELETE", ONE, 404, sequence_id=sequence_id)
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


# --- enrolments -----------------------------------------------------------------------------


def test_enrol_by_ids_and_by_audience(runtime: Runtime, api: Api):
    """Ids outside the audience, unknown ids and contacts already in are skipped; the
    audience enrols the rest; each enrolment is on the contact's timeline."""
    leads = [add_contact(runtime, f"+23324111001{i}") for i in range(3)]
    customer = add_contact(runtime, "+233241110020", stage="customer")
    sequence_id = api.create(simple(), activate=True)["id"]

    body = {"contact_ids": [leads[0], leads[1], customer, MISSING, leads[0]]}
    assert api.enrol(sequence_id, body) == {"enrolled": 2}
    assert api.enrol(sequence_id, {"contact_ids": leads[:2]}) == {"enrolled": 0}
    assert api.enrol(sequence_id, {"audience": True}) == {"enrolled": 1}
    assert api.enrol(sequence_id, {"audience": True}) == {"enrolled": 0}

    page = api.call("GET", ENROLLMENTS, 200, sequence_id=sequence_id)
    assert sorted(e["contact_id"] for e in page["data"]) == sorted(leads)
    assert {(e["status"], e["step_id"], e["trigger"]) for e in page["data"]} == {
        ("active", "hello", "enrolled by hand")
    }
    assert all(e["due_at"] == e["entered_at"] for e in page["data"])
    assert api.call("GET", ONE, 200, sequence_id=sequence_id)["counts"]["active"] == 3
    with runtime.session() as session:
        entries = session.scalars(
            select(Interaction.body).where(Interaction.contact_id == leads[2])
        ).all()
    assert any("Enrolled in sequence “Nudge”" in entry for entry in entries)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "contact_ids"),
        ({"contact_ids": [1], "audience": True}, "contact_ids"),
        ({"audience": False}, "audience must be true"),
        ({"audience": "yes"}, "audience must be true"),
        ({"contact_ids": []}, "1 to 10,000"),
        ({"contact_ids": "1,2"}, "1 to 10,000"),
        ({"contact_ids": {"1": 1}}, "1 to 10,000"),
        ({"contact_ids": ["1"]}, "'1'"),
        ({"contact_ids": [1.5]}, "1.5"),
        ({"contact_ids": [True]}, "True"),
        ({"contact_ids": [0]}, "holds 0"),
        ({"contact_ids": [-4]}, "holds -4"),
        ({"contact_ids": [2**31]}, "2147483648"),
        ({"contact_ids": [10**30]}, "holds 1000"),
        ({"contact_ids": [None]}, "None"),
        ({"contact_ids": [[1]]}, "[1]"),
        ({"contact_ids": ["ünïcödé" * 20]}, "ünïcödé"),
        ({"contact_ids": [1], "segment_id": 3}, "unknown field segment_id"),
        ({"contact_ids": [1] * 10_001}, "1 to 10,000"),
    ],
)
def test_enrolment_bodies_out_of_shape_are_422(
    runtime: Runtime, api: Api, body: dict[str, Any], words: str
):
    contact_id = add_contact(runtime, "+233241110030")
    sequence_id = api.create(simple(), activate=True)["id"]
    answer = api.enrol(sequence_id, body, 422)
    assert answer["error"] == "SequenceInputError"
    assert words in answer["message"]
    assert len(answer["message"]) < 300
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(SequenceEnrollment)) == 0
    assert api.enrol(sequence_id, {"contact_ids": [contact_id]}) == {"enrolled": 1}


def test_enrolment_edge_cases_of_the_request(runtime: Runtime, client: FlaskClient, api: Api):
    """10,000 ids are accepted (the unknown ones skipped); a body that is not JSON is a 422;
    an unknown sequence is a 404 before the body is read."""
    contact_id = add_contact(runtime, "+233241110040")
    sequence_id = api.create(simple(), activate=True)["id"]
    # Unknown ids of up to 5 digits: 10,000 of them fit the 64 KiB request limit.
    ids = [contact_id, *[i for i in range(1, 10_001) if i != contact_id][:9_999]]
    compact = json.dumps({"contact_ids": ids}, separators=(",", ":"))
    answer = client.post(
        ENROLLMENTS.format(sequence_id=sequence_id),
        data=compact,
        content_type="application/json",
        headers=api.headers,
    )
    assert answer.status_code == 200, answer.get_json()
    assert check(answer, "POST", ENROLLMENTS) == {"enrolled": 1}

    not_json = client.post(
        ENROLLMENTS.format(sequence_id=sequence_id),
        data="contact_ids=1",
        content_type="application/x-www-form-urlencoded",
        headers=api.headers,
    )
    assert not_json.status_code == 422
    assert check(not_json, "POST", ENROLLMENTS)["error"] == "SendRefused"
    assert api.enrol(MISSING, {"bogus": True}, 404)["error"] == "SequenceNotFound"


def test_enrolments_are_listed_newest_first_by_pages_and_filters(runtime: Runtime, api: Api):
    contacts = [add_contact(runtime, f"+23324111005{i}") for i in range(5)]
    sequence_id = api.create(simple(), activate=True)["id"]
    assert api.enrol(sequence_id, {"contact_ids": contacts}) == {"enrolled": 5}

    seen: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 2}
    while True:
        page = api.call("GET", ENROLLMENTS, 200, query=query, sequence_id=sequence_id)
        assert len(page["data"]) <= 2
        seen += page["data"]
        if page["next_cursor"] is None:
            break
        query = {"limit": 2, "cursor": page["next_cursor"]}
    assert len(seen) == 5
    assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)

    removed = seen[0]
    api.call("DELETE", ENROLLMENT, 200, sequence_id=sequence_id, enrollment_id=removed["id"])
    exited = api.call("GET", ENROLLMENTS, 200, query={"status": "exited"}, sequence_id=sequence_id)
    assert [e["id"] for e in exited["data"]] == [removed["id"]]
    active = api.call(
        "GET", ENROLLMENTS, 200, query={"status": "active", "limit": 200}, sequence_id=sequence_id
    )
    assert len(active["data"]) == 4 and active["next_cursor"] is None
    one = api.call(
        "GET",
        ENROLLMENTS,
        200,
        query={"contact_id": removed["contact_id"]},
        sequence_id=sequence_id,
    )
    assert [e["id"] for e in one["data"]] == [removed["id"]]

    for bad in (
        {"limit": 0},
        {"limit": 201},
        {"limit": "²"},
        {"limit": "ten"},
        {"cursor": "abc"},
        {"cursor": str(2**40)},
        {"contact_id": "-1"},
        {"contact_id": "9" * 5000},
        {"cursor": "1" * 4301},
        {"limit": "5" * 5000},
        {"status": "gone"},
    ):
        answer = api.call("GET", ENROLLMENTS, 400, query=bad, sequence_id=sequence_id)
        assert answer["error"] == "FilterError", bad
    api.call("GET", ENROLLMENTS, 404, sequence_id=MISSING)


def test_taking_a_contact_out_by_hand(runtime: Runtime, api: Api, fake_twilio):
    """The live enrolment exits (reason removed) with a timeline entry; its queued message is
    not sent; the same enrolment again, an unknown one or another sequence's is a 404."""
    contact_id = add_contact(runtime, "+233241110060")
    sequence_id = api.create(simple(), activate=True)["id"]
    other_id = api.create(simple("Other", steps=simple()["steps"][1:]), activate=True)["id"]
    api.enrol(sequence_id, {"contact_ids": [contact_id]})
    api.enrol(other_id, {"contact_ids": [contact_id]})
    assert run_steps(runtime).queued == 1  # hello queued, not sent yet
    with runtime.session() as session:
        mine, theirs = session.scalars(
            select(SequenceEnrollment.id).order_by(SequenceEnrollment.id)
        ).all()

    wrong = api.call("DELETE", ENROLLMENT, 404, sequence_id=sequence_id, enrollment_id=theirs)
    assert wrong["error"] == "EnrollmentNotFound"
    removed = api.call("DELETE", ENROLLMENT, 200, sequence_id=sequence_id, enrollment_id=mine)
    assert (removed["status"], removed["exit_reason"]) == ("exited", "removed")
    assert removed["ended_at"] is not None and removed["due_at"] is None
    again = api.call("DELETE", ENROLLMENT, 404, sequence_id=sequence_id, enrollment_id=mine)
    assert again["error"] == "EnrollmentNotFound"
    api.call("DELETE", ENROLLMENT, 404, sequence_id=sequence_id, enrollment_id=MISSING)
    api.call("DELETE", ENROLLMENT, 404, sequence_id=MISSING, enrollment_id=mine)

    counts = api.call("GET", ONE, 200, sequence_id=sequence_id)["counts"]
    assert (counts["active"], counts["exited_by_reason"]) == (0, {"removed": 1})
    with runtime.session() as session:
        entries = session.scalars(
            select(Interaction.body).where(Interaction.contact_id == contact_id)
        ).all()
        assert any("Left sequence “Nudge”" in entry for entry in entries)
        still = session.get_one(SequenceEnrollment, theirs)
        assert still.status == "active"
    run_jobs(runtime)  # the send job: the removed contact's queued message is skipped
    assert fake_twilio.accepted_messages() == []
    hello = api.call("GET", ONE + "/results", 200, sequence_id=sequence_id)["steps"][0]
    assert (hello["messages"]["sent"], hello["messages"]["skipped"]) == (0, 1)


# --- editing --------------------------------------------------------------------------------


def test_an_edit_of_a_running_sequence_sends_the_new_text_and_never_resends(
    runtime: Runtime, api: Api, fake_twilio
):
    """A contact got the first message and waits a day; the edit rewords both messages and
    adds a step: the contact gets the new second message, not the first one again."""
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    phone = "+233241110070"
    with time_machine.travel(start, tick=False) as clock:
        contact_id = add_contact(runtime, phone)
        sequence_id = api.create(simple(), activate=True)["id"]
        api.enrol(sequence_id, {"contact_ids": [contact_id]})
        assert run_steps(runtime).queued == 1  # hello, then the day's wait
        run_jobs(runtime)
        [waiting] = api.call("GET", ENROLLMENTS, 200, sequence_id=sequence_id)["data"]
        assert waiting["step_id"] == "again"
        assert waiting["due_at"] == (start + timedelta(days=1)).isoformat()

        wait = simple()["steps"][1]
        reworded = simple(
            "Nudge, reworded",
            steps=[
                {"id": "hello", "send": {"channel": "sms", "body": "Welcome again!"}},
                wait,
                {"id": "again", "send": {"channel": "sms", "body": "New: free delivery"}},
                {"id": "tag-it", "tag": {"add": ["nudged"]}},
            ],
        )
        body = {"definition": reworded}
        edited = api.call("PUT", ONE, 200, body, sequence_id=sequence_id)
        assert (edited["version"], edited["name"], edited["moved"]) == (2, "Nudge, reworded", {})
        assert edited["definition"] == reworded and edited["counts"]["active"] == 1
        assert edited["updated_at"] is not None

        clock.move_to(start + timedelta(days=1, minutes=1))
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)
    assert [str(m["body"]) for m in fake_twilio.accepted_messages()] == [
        "Hi Ama, welcome!",
        "New: free delivery",
    ]
    [done] = api.call("GET", ENROLLMENTS, 200, sequence_id=sequence_id)["data"]
    assert (done["status"], done["due_at"], done["exit_reason"]) == ("completed", None, "completed")

    refused = api.call("PUT", ONE, 422, {"definition": simple(steps=[])}, sequence_id=sequence_id)
    assert refused["error"] == "DefinitionError" and "steps" in refused["message"]
    body = {"definition": reworded, "activate": True}
    assert api.call("PUT", ONE, 422, body, sequence_id=sequence_id)["error"] == (
        "SequenceInputError"
    )
    answer = api.call("PUT", ONE, 422, [reworded], sequence_id=sequence_id)
    assert answer["error"] == "SendRefused"
    assert api.call("GET", ONE, 200, sequence_id=sequence_id)["version"] == 2
    missing = api.call("PUT", ONE, 404, {"definition": reworded}, sequence_id=MISSING)
    assert missing["error"] == "SequenceNotFound"


def test_an_edit_that_removes_the_step_a_contact_waits_on_reports_the_move(
    runtime: Runtime, api: Api
):
    contact_id = add_contact(runtime, "+233241110080")
    definition = simple(
        steps=[
            {"id": "first-wait", "wait": {"days": 2}},
            {"id": "hello", "send": {"channel": "sms", "body": "Hello"}},
            {"id": "second-wait", "wait": {"days": 2}},
            {"id": "again", "send": {"channel": "sms", "body": "Again"}},
        ]
    )
    sequence_id = api.create(definition, activate=True)["id"]
    api.enrol(sequence_id, {"contact_ids": [contact_id]})
    run_steps(runtime)  # the first wait: next is hello, in two days
    [before] = api.call("GET", ENROLLMENTS, 200, sequence_id=sequence_id)["data"]
    assert before["step_id"] == "hello"

    steps = definition["steps"]
    edited = api.call(
        "PUT",
        ONE,
        200,
        {"definition": {**definition, "steps": [steps[0], steps[2], steps[3]]}},
        sequence_id=sequence_id,
    )
    assert (edited["version"], edited["moved"]) == (2, {"hello": 1})
    [after] = api.call("GET", ENROLLMENTS, 200, sequence_id=sequence_id)["data"]
    assert after["step_id"] == "second-wait" and after["due_at"] == before["due_at"]
    with runtime.session() as session:
        steps_now = session.scalars(
            select(Campaign.sequence_step).where(Campaign.sequence_id == sequence_id)
        ).all()
    assert sorted(step or "" for step in steps_now) == ["again", "hello"]  # kept for history


# --- results, and the step campaigns ---------------------------------------------------------


def test_results_after_sends_and_a_reply(
    runtime: Runtime, api: Api, webhooks: Webhooks, fake_twilio
):
    """Two contacts get the first message; one replies and exits; the other gets the second
    message a day later: the results count it all, per step."""
    ama, kofi = "+233241110090", "+233241110091"
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        contacts = [add_contact(runtime, ama), add_contact(runtime, kofi, name="Kofi Boateng")]
        sequence_id = api.create(simple(), activate=True)["id"]
        assert api.enrol(sequence_id, {"contact_ids": contacts}) == {"enrolled": 2}
        assert run_steps(runtime).queued == 2
        run_jobs(runtime)
        assert sorted(m["to"] for m in fake_twilio.accepted_messages()) == [ama, kofi]

        clock.shift(timedelta(hours=2))
        sid = "SM" + uuid.uuid4().hex
        reply = webhooks.message(Body="Yes please, call me", From=ama, MessageSid=sid)
        assert reply.status_code == 200
        run_jobs(runtime)

        clock.move_to(start + timedelta(days=1, minutes=1))
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)

    sent = fake_twilio.accepted_messages()
    assert [m["to"] for m in sent[2:]] == [kofi]
    assert "Still thinking" in str(sent[2]["body"])
    figures = api.call("GET", ONE + "/results", 200, sequence_id=sequence_id)
    assert (figures["enrolled"], figures["active"], figures["completed"]) == (2, 0, 1)
    assert (figures["exited"], figures["exited_by_reason"]) == (1, {"reply": 1})
    assert (figures["messages_sent"], figures["replies"], figures["opted_out"]) == (3, 1, 0)
    assert (figures["handoffs"], figures["revenue"]) == (0, {})
    hello, wait, again = figures["steps"]
    assert (hello["id"], hello["kind"], hello["runs"]) == ("hello", "send", 2)
    assert hello["messages"]["sent"] == 2 and hello["messages"]["replied"] == 1
    assert (wait["kind"], wait["runs"], wait["outcomes"]) == ("wait", 2, {"waited": 2})
    assert again["messages"]["sent"] == 1 and again["messages"]["replied"] == 0
    assert api.call("GET", ONE + "/results", 404, sequence_id=MISSING)["error"] == (
        "SequenceNotFound"
    )

    # The step's campaign stays readable, with its own results.
    step = api.call("GET", "/api/v1/campaigns/{campaign_id}", 200, campaign_id=hello["campaign_id"])
    assert (step["sequence_id"], step["sequence_step"]) == (sequence_id, "hello")
    assert step["progress"]["sent"] == 2
    campaign_figures = api.call(
        "GET", "/api/v1/campaigns/{campaign_id}/results", 200, campaign_id=hello["campaign_id"]
    )
    assert (campaign_figures["sent"], campaign_figures["replied"]) == (2, 1)


STEP_CAMPAIGN_CHANGES = [
    ("PATCH", "/api/v1/campaigns/{campaign_id}", {"name": "Mine now"}),
    ("DELETE", "/api/v1/campaigns/{campaign_id}", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/launch", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/pause", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/resume", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/cancel", None),
]


def test_step_campaigns_are_not_broadcasts(
    runtime: Runtime, app: Flask, client: FlaskClient, api: Api
):
    """Left out of the campaigns list (API and web), refused when changed (409, naming the
    sequence), readable by id, and the broadcasts around them unaffected."""
    broadcast = api.call(
        "POST", "/api/v1/campaigns", 201, {"name": "Lamps", "channel": "sms", "body": "Hi"}
    )
    sequence_id = api.create(simple(), activate=True)["id"]
    with runtime.session() as session:
        step_ids = session.scalars(
            select(Campaign.id).where(Campaign.sequence_id == sequence_id).order_by(Campaign.id)
        ).all()
    assert len(step_ids) == 2

    listed = api.call("GET", "/api/v1/campaigns", 200)["data"]
    assert [c["id"] for c in listed] == [broadcast["id"]]
    assert listed[0]["sequence_id"] is None

    for campaign_id in step_ids:
        for method, template, body in STEP_CAMPAIGN_CHANGES:
            answer = api.call(method, template, 409, body, campaign_id=campaign_id)
            assert answer["error"] == "ManagedBySequence", (method, template)
            assert f"managed by sequence {sequence_id}" in answer["message"]
        shown = api.call("GET", "/api/v1/campaigns/{campaign_id}", 200, campaign_id=campaign_id)
        assert (shown["status"], shown["sequence_id"]) == ("running", sequence_id)
    with runtime.session() as session:
        kept = session.scalars(select(Campaign).where(Campaign.id.in_(step_ids))).all()
        assert {(c.status, c.name) for c in kept} == {
            ("running", "Nudge · hello"),
            ("running", "Nudge · again"),
        }
    # The sequence's own pause still pauses them.
    api.act(sequence_id, "pause")
    paused = api.call("GET", "/api/v1/campaigns/{campaign_id}", 200, campaign_id=step_ids[0])
    assert paused["status"] == "paused"
    renamed = api.call(
        "PATCH", "/api/v1/campaigns/{campaign_id}", 200, {"name": "Torches"},
        campaign_id=broadcast["id"],
    )  # fmt: skip
    assert renamed["name"] == "Torches"

    # The web campaigns pages: the list shows the broadcast only; a step campaign has no
    # broadcast page and no actions there; its results page stays readable.
    email = "web-marketer@example.com"
    make_user(runtime, Role.MARKETER, email)
    browser = app.test_client()
    assert sign_in(browser, email).status_code == 302
    page = browser.get("/campaigns").get_data(as_text=True)
    assert "Torches" in page and "Nudge · hello" not in page
    linked = {int(found) for found in re.findall(r"/campaigns/(\d+)", page)}
    assert broadcast["id"] in linked and linked.isdisjoint(step_ids)
    assert browser.get(f"/campaigns/{broadcast['id']}").status_code == 200
    assert browser.get(f"/campaigns/{step_ids[0]}").status_code == 404
    assert browser.get(f"/campaigns/{step_ids[0]}/edit").status_code == 404
    results_page = browser.get(f"/campaigns/{step_ids[0]}/results")
    assert results_page.status_code == 200
    assert "Nudge · hello" in results_page.get_data(as_text=True)
