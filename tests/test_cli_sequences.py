"""`crm sequences`: list, show (status, trigger, steps, results), load a YAML file, and
activate, pause, resume, archive; run through click against the real database."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result
from sqlalchemy import select

from crm.cli import cli
from crm.models import Contact, Identity, Sequence, SequenceEnrollment
from crm.runtime import Runtime
from crm.sequence_enrol import enrol
from crm.sequence_results import results
from tests.conftest import cli_env, run_jobs
from workers.sequence_clock import run_steps

SHIPPED = Path(__file__).resolve().parents[1] / "crm" / "config" / "sequences"
PRICE = SHIPPED / "price_follow_up.yaml"

NUDGE = """\
name: Nudge ☀️
trigger: {type: tag_added, tag: nurture}
audience: {stages: [lead]}
quiet_hours: null
steps:
  - id: hello
    send: {channel: sms, body: "Hi {{ first_name }}, the lamps are in."}
  - id: a-day
    wait: {days: 1, hours: 2}
  - id: hot
    branch: {if: {score_above: 40}, then: to-a-rep, else: next}
  - id: again
    send: {channel: sms, body: "Still thinking about it?"}
  - id: to-a-rep
    handoff: {reason: nudge}
"""


def crm(rt: Runtime, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=cli_env(rt))


def ok(rt: Runtime, *args: str) -> str:
    result = crm(rt, *args)
    assert result.exit_code == 0, result.output
    return result.output


def failed(rt: Runtime, *args: str) -> str:
    result = crm(rt, *args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    return result.output


def sequence_id(rt: Runtime, name: str) -> int:
    with rt.session() as session:
        found = session.scalar(select(Sequence.id).where(Sequence.name == name))
    assert found is not None
    return found


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def lead(rt: Runtime, phone: str) -> int:
    with rt.session() as session:
        contact = Contact(name="Ama Mensah", lifecycle_stage="lead", attributes={})
        session.add(contact)
        session.flush()
        session.add(Identity(contact_id=contact.id, kind="phone", value=phone))
        return contact.id


def test_load_shipped_sequences_and_list_them(runtime: Runtime):
    assert ok(runtime, "sequences", "list").strip() == "No sequences."

    draft = ok(runtime, "sequences", "load", str(PRICE))
    price_id = sequence_id(runtime, "Price follow-up")
    assert draft.strip() == f"Created sequence {price_id} “Price follow-up” (draft)."
    active = ok(runtime, "sequences", "load", str(SHIPPED / "win_back.yaml"), "--activate")
    win_back_id = sequence_id(runtime, "Win back inactive customers")
    assert f"{win_back_id} “Win back inactive customers” (active)" in active
    with runtime.session() as session:
        stored = session.get_one(Sequence, price_id)
        assert stored.definition == yaml.safe_load(PRICE.read_text(encoding="utf-8"))
        assert (stored.status, stored.created_by) == ("draft", None)

    listing = ok(runtime, "sequences", "list").splitlines()
    assert listing[0].split() == ["ID", "STATUS", "TRIGGER", "LIVE", "ENROLLED", "NAME"]
    rows = [line.split(maxsplit=5) for line in listing[1:]]
    assert rows == [
        [str(price_id), "draft", "intent", "0", "0", "Price follow-up"],
        [str(win_back_id), "active", "inactive", "0", "0", "Win back inactive customers"],
    ]
    only = ok(runtime, "sequences", "list", "--status", "active").splitlines()[1:]
    assert [line.split()[0] for line in only] == [str(win_back_id)]
    assert "No sequences." in ok(runtime, "sequences", "list", "--status", "archived")
    assert "Invalid value" in failed(runtime, "sequences", "list", "--status", "running")


def test_load_refuses_files_that_are_not_a_sequence(runtime: Runtime, tmp_path: Path):
    cases = {
        "broken.yaml": ("name: [unclosed", "is not valid YAML"),
        "list.yaml": ("- name: x", "list.yaml: sequence must be an object"),
        "empty.yaml": ("", "empty.yaml: sequence must be an object"),
        "no-steps.yaml": (
            "name: x\ntrigger: {type: tag_added, tag: vip}\nsteps: []",
            "no-steps.yaml: steps must be a list of 1 to 50 steps",
        ),
        "typo.yaml": (
            NUDGE.replace("then: to-a-rep", "then: to-a-rpe"),
            "step hot jumps to to-a-rpe, which is not a step",
        ),
        "latin1.yaml": ("name: Caf\xe9".encode("latin-1"), "latin1.yaml is not UTF-8 text"),
        "nul.yaml": ('name: "A\\0B"\n', "nul.yaml: text may not contain NUL characters"),
    }
    for name, (text, message) in cases.items():
        output = failed(runtime, "sequences", "load", write(tmp_path, name, text))
        assert message in output, (name, output)
    assert "does not exist" in failed(runtime, "sequences", "load", str(tmp_path / "none.yaml"))
    assert ok(runtime, "sequences", "list").strip() == "No sequences."


def test_show_prints_status_trigger_steps_and_results(
    runtime: Runtime, tmp_path: Path, fake_twilio
):
    ok(runtime, "sequences", "load", write(tmp_path, "nudge.yaml", NUDGE), "--activate")
    nudge_id = sequence_id(runtime, "Nudge ☀️")
    contacts = [lead(runtime, "+233241120001"), lead(runtime, "+233241120002")]
    with runtime.session() as session:
        sequence = session.get_one(Sequence, nudge_id)
        assert len(enrol(session, sequence, contacts, trigger="test")) == 2
    assert run_steps(runtime).queued == 2
    run_jobs(runtime)
    assert len(fake_twilio.accepted_messages()) == 2

    shown = ok(runtime, "sequences", "show", str(nudge_id)).splitlines()
    assert shown == [
        f"Sequence {nudge_id}: Nudge ☀️",
        "Status: active (version 1)",
        "Trigger: tag_added nurture",
        "Exits on: reply",
        "Enrolled: 2 (active 2, completed 0, exited 0)",
        "Messages sent: 2, delivered 0, replies 0, opted out 0, handoffs 0",
        "Revenue: none (attribution 7 days)",
        "Steps:",
        "  1. hello: send sms: Hi {{ first_name }}, the lamps are in. (runs 2; sent 2, queued 0, "
        "delivered 0, replied 0)",
        "  2. a-day: wait 1 day, 2 hours (runs 2)",
        "  3. hot: branch if score_above 40: to-a-rep else next (runs 0)",
        "  4. again: send sms: Still thinking about it? (runs 0; sent 0, queued 0, delivered 0, "
        "replied 0)",
        "  5. to-a-rep: handoff (nudge) (runs 0)",
    ]
    as_json = json.loads(ok(runtime, "sequences", "show", str(nudge_id), "--json"))
    with runtime.session() as session:
        assert as_json == results(session, session.get_one(Sequence, nudge_id))
    assert as_json["messages_sent"] == 2

    price = ok(runtime, "sequences", "load", str(PRICE))
    price_id = sequence_id(runtime, "Price follow-up")
    assert str(price_id) in price
    lines = ok(runtime, "sequences", "show", str(price_id)).splitlines()
    assert lines[1:5] == [
        "Status: draft (version 1)",
        "Trigger: intent pricing",
        "Exits on: customer, rep, reply",
        "Enrolled: 0 (active 0, completed 0, exited 0)",
    ]
    assert "  1. next-morning: wait 1 day, until 09:30 (runs 0)" in lines
    assert "  7. done: exit (runs 0)" in lines
    assert "no sequence 999999" in failed(runtime, "sequences", "show", "999999")


def test_pause_resume_archive_and_activate(runtime: Runtime, tmp_path: Path):
    ok(runtime, "sequences", "load", write(tmp_path, "nudge.yaml", NUDGE))
    nudge_id = str(sequence_id(runtime, "Nudge ☀️"))
    contact_id = lead(runtime, "+233241120003")

    def statuses() -> tuple[str, list[str]]:
        with runtime.session() as session:
            sequence = session.get_one(Sequence, int(nudge_id))
            enrolments = session.scalars(select(SequenceEnrollment.status)).all()
            return sequence.status, list(enrolments)

    assert "is draft: it cannot pause" in failed(runtime, "sequences", "pause", nudge_id)
    assert "is draft: it cannot resume" in failed(runtime, "sequences", "resume", nudge_id)
    assert ok(runtime, "sequences", "activate", nudge_id).strip() == (
        f"Sequence {nudge_id} is active."
    )
    with runtime.session() as session:
        enrol(session, session.get_one(Sequence, int(nudge_id)), [contact_id], trigger="test")
    assert "is active: it cannot activate" in failed(runtime, "sequences", "activate", nudge_id)

    paused = ok(runtime, "sequences", "pause", nudge_id)
    assert paused.strip() == f"Sequence {nudge_id} is paused; 1 enrolments paused."
    assert statuses() == ("paused", ["paused"])
    assert "is paused: it cannot pause" in failed(runtime, "sequences", "pause", nudge_id)

    resumed = ok(runtime, "sequences", "resume", nudge_id)
    assert resumed.strip() == f"Sequence {nudge_id} is active; 1 enrolments resumed."
    assert statuses() == ("active", ["active"])

    archived = ok(runtime, "sequences", "archive", nudge_id)
    assert archived.strip() == f"Sequence {nudge_id} is archived; 1 enrolments exited."
    assert statuses() == ("archived", ["exited"])
    for action in ("activate", "pause", "resume", "archive"):
        assert "is archived" in failed(runtime, "sequences", action, nudge_id)
        assert "no sequence 424242" in failed(runtime, "sequences", action, "424242")
    assert "not a valid integer" in failed(runtime, "sequences", "pause", "abc")
