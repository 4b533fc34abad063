"""Sequences API (marketers and admins): define, edit, start and stop automations, enrol
contacts by hand, take them out, and read what each sequence did.

The rules are the engine's (``crm.sequences``, ``crm.sequence_enrol``, ``crm.sequence_exits``,
``crm.sequence_results``); this module checks the shape of what it is sent, so that bad input
is a 4xx with its reason, and turns records into JSON.
"""

from __future__ import annotations

from typing import Any

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view, json_body
from crm.api.campaigns import MARKETING
from crm.api.ids import query_id
from crm.contact_search import FilterError
from crm.ids import MAX_ID, is_id
from crm.models import EnrollmentStatus, Sequence, SequenceEnrollment, SequenceStatus
from crm.models.base import utcnow
from crm.sequence_definition import DefinitionError
from crm.sequence_enrol import enrol, enrol_everyone
from crm.sequence_exits import LIVE, end
from crm.sequence_results import enrollment_counts, results
from crm.sequences import (
    STOPPING,
    SequenceError,
    create_sequence,
    delete_sequence,
    set_status,
    update_sequence,
)

MAX_CONTACT_IDS = 10_000
PAGE_DEFAULT = 50
PAGE_MAX = 200
MANUAL = "enrolled by hand"


class SequenceNotFound(LookupError):
    pass


class EnrollmentNotFound(LookupError):
    pass


class SequenceInputError(ValueError):
    """A request body field that is missing, unknown or of the wrong type (422)."""


# --- JSON shapes ----------------------------------------------------------------------------


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def sequence_json(sequence: Sequence, counts: dict[str, Any] | None = None) -> dict[str, Any]:
    """``counts`` (enrolments by status, exits by reason) only where they were asked for."""
    return {
        "id": sequence.id,
        "name": sequence.name,
        "status": sequence.status,
        "version": sequence.version,
        "trigger_type": sequence.trigger_type,
        "definition": sequence.definition,
        "created_at": sequence.created_at.isoformat(),
        "updated_at": _time(sequence.updated_at),
        "activated_at": _time(sequence.activated_at),
        "counts": counts,
    }


def _detail(session: Session, sequence: Sequence, **extra: Any) -> dict[str, Any]:
    session.flush()
    return {**sequence_json(sequence, enrollment_counts(session, sequence.id)), **extra}


def enrollment_json(enrollment: SequenceEnrollment) -> dict[str, Any]:
    return {
        "id": enrollment.id,
        "contact_id": enrollment.contact_id,
        "status": enrollment.status,
        "step_id": enrollment.step_id,
        "due_at": _time(enrollment.due_at),
        "entered_at": enrollment.entered_at.isoformat(),
        "ended_at": _time(enrollment.ended_at),
        "exit_reason": enrollment.exit_reason,
        "trigger": enrollment.trigger,
    }


# --- checking input -------------------------------------------------------------------------


def _fields(body: dict[str, Any], allowed: set[str]) -> None:
    if unknown := sorted(set(body) - allowed):
        raise SequenceInputError(
            f"unknown field {', '.join(unknown)}; fields: {', '.join(sorted(allowed))}"
        )


def _definition(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("definition")
    if not isinstance(raw, dict):
        raise DefinitionError("definition (a sequence: name, trigger, steps...) is required")
    return raw


def _sequence(session: Session, sequence_id: int) -> Sequence:
    sequence = session.get(Sequence, sequence_id)
    if sequence is None:
        raise SequenceNotFound(f"sequence {sequence_id} not found")
    return sequence


def _choice(name: str, allowed: type[SequenceStatus] | type[EnrollmentStatus]) -> str | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    values = [str(v) for v in allowed]
    if raw not in values:
        raise FilterError(f"{name} must be one of {', '.join(values)}")
    return raw


def _limit() -> int:
    raw = request.args.get("limit")
    if raw in (None, ""):
        return PAGE_DEFAULT
    if len(raw) > 3 or not raw.isascii() or not raw.isdecimal() or not 1 <= int(raw) <= PAGE_MAX:
        raise FilterError(f"limit must be a whole number from 1 to {PAGE_MAX}")
    return int(raw)


def _query_id(name: str) -> int | None:
    """An id from the query string (None if absent); digits past an id's length are refused
    before ``int()`` (which refuses more than 4,300 digits with an error of its own)."""
    raw = request.args.get(name)
    if raw is not None and len(raw) > len(str(MAX_ID)):
        raise FilterError(f"{name} must be a positive integer id")
    return query_id(raw, name)


# --- sequences ------------------------------------------------------------------------------


@api.get("/sequences")
@api_view(MARKETING)
def list_sequences(*, session: Session):  # type: ignore[no-untyped-def]
    query = select(Sequence).order_by(Sequence.id.desc()).limit(PAGE_MAX)
    if status := _choice("status", SequenceStatus):
        query = query.where(Sequence.status == status)
    return {"data": [sequence_json(s) for s in session.scalars(query)]}


@api.post("/sequences")
@api_view(MARKETING)
def new_sequence(*, session: Session):  # type: ignore[no-untyped-def]
    body = json_body()
    _fields(body, {"definition", "activate"})
    activate = body.get("activate", False)
    if not isinstance(activate, bool):
        raise SequenceInputError("activate must be true or false")
    sequence = create_sequence(session, _definition(body), g.user, activate=activate)
    return _detail(session, sequence), 201


@api.get("/sequences/<id:sequence_id>")
@api_view(MARKETING)
def show_sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _detail(session, _sequence(session, sequence_id))


@api.put("/sequences/<id:sequence_id>")
@api_view(MARKETING)
def edit_sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Replace the definition; ``moved``: enrolments on removed steps, per removed step."""
    sequence = _sequence(session, sequence_id)
    body = json_body()
    _fields(body, {"definition"})
    moved = update_sequence(session, sequence, _definition(body))
    return _detail(session, sequence, moved=moved)


@api.delete("/sequences/<id:sequence_id>")
@api_view(MARKETING)
def remove_sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    delete_sequence(session, _sequence(session, sequence_id))
    return "", 204


# Each action: the status it needs the sequence in (set_status allows a little more: activate
# also resumes; here each action says what it does), and the status it moves it to.
ACTIONS: dict[str, tuple[tuple[SequenceStatus, ...], SequenceStatus]] = {
    "activate": ((SequenceStatus.DRAFT,), SequenceStatus.ACTIVE),
    "pause": ((SequenceStatus.ACTIVE,), SequenceStatus.PAUSED),
    "resume": ((SequenceStatus.PAUSED,), SequenceStatus.ACTIVE),
    "archive": (
        (SequenceStatus.DRAFT, SequenceStatus.ACTIVE, SequenceStatus.PAUSED),
        SequenceStatus.ARCHIVED,
    ),
}


def _act(session: Session, sequence_id: int, action: str) -> dict[str, Any]:
    sequence = _sequence(session, sequence_id)
    session.refresh(sequence, with_for_update=STOPPING)
    sources, target = ACTIONS[action]
    if sequence.status not in sources:
        raise SequenceError(f"sequence {sequence_id} is {sequence.status}: it cannot {action}")
    changed = set_status(session, sequence, target)
    return _detail(session, sequence, changed=changed)


@api.post("/sequences/<id:sequence_id>/activate")
@api_view(MARKETING)
def activate_sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _act(session, sequence_id, "activate")


@api.post("/sequences/<id:sequence_id>/pause")
@api_view(MARKETING)
def pause_sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _act(session, sequence_id, "pause")


@api.post("/sequences/<id:sequence_id>/resume")
@api_view(MARKETING)
def resume_sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _act(session, sequence_id, "resume")


@api.post("/sequences/<id:sequence_id>/archive")
@api_view(MARKETING)
def archive_sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _act(session, sequence_id, "archive")


@api.get("/sequences/<id:sequence_id>/results")
@api_view(MARKETING)
def sequence_results(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return results(session, _sequence(session, sequence_id))


# --- enrolments -----------------------------------------------------------------------------


@api.get("/sequences/<id:sequence_id>/enrollments")
@api_view(MARKETING)
def list_enrollments(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Newest first, keyset-paged by id (``cursor``: the previous page's ``next_cursor``)."""
    _sequence(session, sequence_id)
    limit = _limit()
    query = (
        select(SequenceEnrollment)
        .where(SequenceEnrollment.sequence_id == sequence_id)
        .order_by(SequenceEnrollment.id.desc())
        .limit(limit + 1)
    )
    if status := _choice("status", EnrollmentStatus):
        query = query.where(SequenceEnrollment.status == status)
    if (contact_id := _query_id("contact_id")) is not None:
        query = query.where(SequenceEnrollment.contact_id == contact_id)
    if (cursor := _query_id("cursor")) is not None:
        query = query.where(SequenceEnrollment.id < cursor)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return {
        "data": [enrollment_json(e) for e in page],
        "next_cursor": page[-1].id if len(rows) > limit else None,
    }


def _contact_ids(raw: object) -> list[int]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CONTACT_IDS:
        raise SequenceInputError(f"contact_ids must list 1 to {MAX_CONTACT_IDS:,} contact ids")
    for value in raw:
        if not is_id(value):
            shown = repr(value)[:40]
            raise SequenceInputError(f"contact_ids holds {shown}: ids are positive whole numbers")
    return raw


@api.post("/sequences/<id:sequence_id>/enrollments")
@api_view(MARKETING)
def enrol_contacts(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Enrol contacts by id (those in the audience and allowed in by re-entry; unknown ids are
    skipped) or the whole audience; how many were enrolled."""
    sequence = _sequence(session, sequence_id)
    body = json_body()
    _fields(body, {"contact_ids", "audience"})
    if ("contact_ids" in body) == ("audience" in body):
        raise SequenceInputError("send contact_ids (a list of ids) or audience: true")
    if "audience" in body and body["audience"] is not True:
        raise SequenceInputError("audience must be true (the sequence's whole audience)")
    ids = _contact_ids(body["contact_ids"]) if "contact_ids" in body else None
    # Shared with the runner, exclusive of a pause or archive: nobody enrols while it stops.
    session.refresh(sequence, with_for_update={"read": True})
    if sequence.status != SequenceStatus.ACTIVE:
        raise SequenceError(
            f"sequence {sequence_id} is {sequence.status}: only an active sequence enrols"
        )
    if ids is None:
        enrolled = enrol_everyone(session, sequence)
    else:
        enrolled = enrol(session, sequence, ids, trigger=MANUAL)
    return {"enrolled": len(enrolled)}


@api.delete("/sequences/<id:sequence_id>/enrollments/<id:enrollment_id>")
@api_view(MARKETING)
def remove_enrollment(sequence_id: int, enrollment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Take a contact out by hand: its live enrolment ends (``exited``, reason ``removed``);
    a message of it still queued is not sent."""
    sequence = _sequence(session, sequence_id)
    enrollment = session.scalar(
        select(SequenceEnrollment)
        .where(
            SequenceEnrollment.id == enrollment_id,
            SequenceEnrollment.sequence_id == sequence_id,
            SequenceEnrollment.status.in_(LIVE),
        )
        .with_for_update()
    )
    if enrollment is None:
        raise EnrollmentNotFound(
            f"sequence {sequence_id} has no live enrolment {enrollment_id} (ended, or not its)"
        )
    row = (enrollment.id, enrollment.contact_id, enrollment.entered_at, sequence.id, sequence.name)
    end(session, [row], "removed", utcnow())
    session.refresh(enrollment)
    return enrollment_json(enrollment)
