"""Malformed input on the pages gets a clear 4xx (or a flashed refusal), never a 500:
digits that are not ASCII ("²" passes str.isdigit), ids and numbers too big for a column,
cursors that decode to nonsense."""

from __future__ import annotations

import base64
import json

from crm.models import Role


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_query_parameters_out_of_shape_are_400(web_as):
    admin = web_as(Role.ADMIN)
    for path in [
        "/contacts?cursor=²",
        "/contacts?segment=²",
        "/contacts?score_min=" + "9" * 40,
        "/contacts?owner=" + "9" * 40,
        "/dashboard?days=²",
        "/inbox?cursor=" + _cursor([None, 10**22]),
        "/inbox?cursor=" + _cursor(["2026-01-01T00:00:00", 5]),  # no UTC offset
        "/inbox?cursor=" + _cursor(["not a time", 5]),
    ]:
        assert admin.get(path).status_code == 400, path


def test_admin_lists_ignore_a_cursor_that_is_not_an_id(web_as):
    admin = web_as(Role.ADMIN)
    assert admin.get("/admin/users?after=²").status_code == 200
    assert admin.get("/admin/users?tokens_before=²").status_code == 200


def test_form_fields_with_non_ascii_digits_are_refused_with_a_message(web_as, runtime):
    from crm.contacts import resolve_by_phone
    from crm.conversations import thread

    rep = web_as(Role.REP)
    with runtime.session() as session:
        contact = resolve_by_phone(session=session, e164="+233241234567", name="Ama").contact
        conversation_id = thread(session, contact.id, "sms").id
        contact_id = contact.id
    for path, data in [
        (f"/conversations/{conversation_id}/assign", {"assignee_id": "²"}),
        (f"/contacts/{contact_id}", {"owner_id": "²", "name": "Ama"}),
        (f"/contacts/{contact_id}/deals", {"owner_id": "²", "title": "Lamps", "amount": "10"}),
    ]:
        response = rep.post(path, data)
        assert response.status_code in (302, 303, 422), (path, response.status_code)
