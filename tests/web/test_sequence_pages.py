"""Sequence pages: write one from an example, see its steps and results, pause and resume it,
and the refusals (bad YAML, a definition that cannot run, a rep)."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from sqlalchemy import select

from crm.models import Contact, Identity, Role, Sequence, SequenceEnrollment
from crm.runtime import Runtime
from crm.sequence_triggers import note
from tests.conftest import run_jobs
from tests.web.conftest import browser_sign_in, make_user
from workers.sequence_clock import run_steps

WELCOME = """
name: Welcome
trigger: {type: tag_added, tag: vip}
audience: {}
quiet_hours: null
steps:
  - {id: hello, send: {channel: sms, body: "Hello {{ first_name | default('friend') }}"}}
  - {id: later, wait: {days: 2}}
  - {id: done, exit: {}}
"""


def _sequence(runtime: Runtime) -> Sequence:
    with runtime.session() as session:
        return session.scalars(select(Sequence)).one()


def test_a_marketer_writes_activates_and_reads_results(web_as, runtime: Runtime, fake_twilio):
    marketer = web_as(Role.MARKETER)
    form = marketer.get("/sequences/new?from=price_follow_up").get_data(as_text=True)
    assert "trigger: {type: intent, intent: pricing}" in form  # the example, to start from
    response = marketer.post("/sequences/new", {"definition": WELCOME, "activate": "on"})
    assert response.status_code == 302
    sequence = _sequence(runtime)
    assert sequence.status == "active"
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=False):
        with runtime.session() as session:
            contact = Contact(name="Esi Owusu", lifecycle_stage="lead", attributes={})
            session.add(contact)
            session.flush()
            session.add(Identity(contact_id=contact.id, kind="phone", value="+233241112233"))
            note(session, "tag_added", contact, "vip")
        run_steps(runtime)
        run_jobs(runtime)
    assert [m["body"] for m in fake_twilio.accepted_messages()] == ["Hello Esi"]
    page = marketer.get(f"/sequences/{sequence.id}").get_data(as_text=True)
    assert 'id="seq-enrolled">1<' in page
    assert 'id="seq-sent">1<' in page
    assert "<code>hello</code>" in page and "<code>later</code>" in page
    listing = marketer.get("/sequences").get_data(as_text=True)
    assert "Welcome" in listing


def test_pause_holds_and_resume_continues(web_as, runtime: Runtime):
    marketer = web_as(Role.MARKETER)
    marketer.post("/sequences/new", {"definition": WELCOME, "activate": "on"})
    sequence = _sequence(runtime)
    with runtime.session() as session:
        contact = Contact(name="Kofi", lifecycle_stage="lead", attributes={})
        session.add(contact)
        session.flush()
        session.add(Identity(contact_id=contact.id, kind="phone", value="+233241112244"))
        note(session, "tag_added", contact, "vip")
    paused = marketer.post(f"/sequences/{sequence.id}/status", {"action": "pause"})
    assert paused.status_code == 302
    assert run_steps(runtime).claimed == 0  # held where it is
    with runtime.session() as session:
        assert session.scalars(select(SequenceEnrollment.status)).one() == "paused"
    again = marketer.post(f"/sequences/{sequence.id}/status", {"action": "pause"})
    assert again.status_code == 302  # refused with its reason, flashed
    assert "cannot become paused" in marketer.get(f"/sequences/{sequence.id}").get_data(
        as_text=True
    )
    marketer.post(f"/sequences/{sequence.id}/status", {"action": "resume"})
    assert run_steps(runtime).queued == 1


def test_bad_definitions_are_refused_with_the_reason(web_as, runtime: Runtime):
    marketer = web_as(Role.MARKETER)
    bad_yaml = marketer.post("/sequences/new", {"definition": "name: [unclosed"})
    assert bad_yaml.status_code == 422
    assert "not valid YAML on line" in bad_yaml.get_data(as_text=True)
    cannot_run = marketer.post(
        "/sequences/new", {"definition": WELCOME.replace("type: tag_added", "type: weather")}
    )
    assert cannot_run.status_code == 422
    assert "trigger type must be one of" in cannot_run.get_data(as_text=True)
    not_a_mapping = marketer.post("/sequences/new", {"definition": "- just\n- a list"})
    assert not_a_mapping.status_code == 422
    long = marketer.post("/sequences/new", {"definition": "x" * 40_000})
    assert long.status_code == 422
    assert "longer than 32 KB" in long.get_data(as_text=True)
    huge = marketer.post("/sequences/new", {"definition": "x" * 70_000})
    assert huge.status_code == 413  # the app's request body limit
    with runtime.session() as session:
        assert session.scalars(select(Sequence)).all() == []  # nothing half-written


def test_an_edit_bumps_the_version_and_keeps_enrolments(web_as, runtime: Runtime):
    marketer = web_as(Role.MARKETER)
    marketer.post("/sequences/new", {"definition": WELCOME, "activate": "on"})
    sequence = _sequence(runtime)
    edit_form = marketer.get(f"/sequences/{sequence.id}/edit").get_data(as_text=True)
    assert "tag_added" in edit_form
    edited = WELCOME.replace("name: Welcome", "name: Welcome (v2)")
    response = marketer.post(f"/sequences/{sequence.id}/edit", {"definition": edited})
    assert response.status_code == 302
    with runtime.session() as session:
        found = session.get_one(Sequence, sequence.id)
        assert (found.name, found.version) == ("Welcome (v2)", 2)


def test_reps_may_not_see_or_change_sequences(web_as, runtime: Runtime):
    marketer = web_as(Role.MARKETER)
    marketer.post("/sequences/new", {"definition": WELCOME})
    sequence = _sequence(runtime)
    rep = web_as(Role.REP)
    assert rep.get("/sequences").status_code == 403
    assert rep.get(f"/sequences/{sequence.id}").status_code == 403
    assert rep.post(f"/sequences/{sequence.id}/status", {"action": "activate"}).status_code == 403
    assert _sequence(runtime).status == "draft"


def test_the_pages_work_in_a_browser(page, runtime: Runtime):
    email = "marketer-browser@example.com"
    make_user(runtime, Role.MARKETER, email)
    browser_sign_in(page, email)
    page.goto("/sequences/new?from=welcome_after_ussd")
    page.check("input[name=activate]")
    page.click("form.panel button[type=submit]")
    page.wait_for_selector("#sequence-status")
    assert page.inner_text("#sequence-status") == "active"
    page.click("button[value=pause]")
    page.wait_for_selector("#sequence-status:has-text('paused')")
