"""Admin pages: users (create, edit routing hours and caps, deactivate, passwords), API tokens
and the read-only configuration view."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from crm import user_admin
from crm.models import ApiToken, Contact, Role, User, WebSession
from crm.routing import Trigger, hand_off, pick_rep
from crm.runtime import Runtime
from crm.settings import DEV_AFRICASTALKING_SECRET, DEV_TWILIO_AUTH_TOKEN
from tests.conftest import ACCOUNT_SID, AT_API_KEY, AT_SECRET, AUTH_TOKEN
from tests.web.conftest import PASSWORD, browser_sign_in, make_user, screenshot, sign_in

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 13:00 in Nairobi


def shown_secret(html: str, kind: str) -> str:
    match = re.search(r'value="([^"]+)" data-secret="' + kind + '"', html)
    assert match, f"no {kind} shown"
    return match.group(1)


def edit_form(user: User, **changes: str) -> dict[str, str]:
    """The edit form as the page posts it, with the user's current values."""
    form = {
        "name": user.name,
        "role": user.role,
        "phone": user.phone or "",
        "timezone": user.timezone,
        "lead_cap": "" if user.lead_cap is None else str(user.lead_cap),
    }
    if user.active:
        form["active"] = "on"
    for day, (start, end) in (user.working_hours or {}).items():
        form[f"{day}_start"], form[f"{day}_end"] = start, end
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def refused(client, path: str, data: dict[str, str], back: str) -> str:  # type: ignore[no-untyped-def]
    """Post a form that must be refused: the browser goes back to ``back``, whose page (the
    next request) says why in an error flash. Returns that page."""
    response = client.post(path, data)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == back
    html = client.get(back).get_data(as_text=True)
    assert "flash-error" in html
    return html


def load(runtime: Runtime, user_id: int) -> User:
    with runtime.session() as session:
        user = session.get_one(User, user_id)
        session.expunge(user)
        return user


# -- who may use them ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.REP, Role.MARKETER])
def test_only_admins_open_admin_pages_or_act(web_as, app: Flask, runtime: Runtime, role: Role):
    target = make_user(runtime, Role.REP, "target@example.com")
    with runtime.session() as session:
        user = session.get_one(User, target)
        token_id = user_admin.issue_token(session, user=user, name="ci").record.id
    outsider = web_as(role)
    for path in ["/admin/users", "/admin/users/new", f"/admin/users/{target}", "/admin/config"]:
        assert outsider.get(path).status_code == 403, path
    posts = {
        "/admin/users": {"email": "x@example.com", "role": "admin", "password": PASSWORD},
        f"/admin/users/{target}": {"role": "admin", "timezone": "UTC", "active": "on"},
        f"/admin/users/{target}/password": {"password": "taken over 12345"},
        f"/admin/users/{target}/tokens": {"name": "stolen"},
        f"/admin/users/{target}/tokens/{token_id}/revoke": {},
    }
    for path, data in posts.items():
        assert outsider.post(path, data).status_code == 403, path
    with runtime.session() as session:
        assert session.scalar(select(User.role).where(User.id == target)) == Role.REP
        assert session.scalar(select(User).where(User.email == "x@example.com")) is None
        tokens = session.scalars(select(ApiToken)).all()
        assert [(t.name, t.revoked_at) for t in tokens] == [("ci", None)]
    assert sign_in(app.test_client(), "target@example.com").status_code == 302  # same password


# -- users list ------------------------------------------------------------------------------


def test_users_list_shows_routing_open_handoffs_and_last_sign_in(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN, "boss@example.com")
    rep = web_as(
        Role.REP,
        "ama@example.com",
        phone="+233201234567",
        working_hours={d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        timezone="Africa/Accra",
        lead_cap=3,
    )
    make_user(runtime, Role.MARKETER, "never@example.com")
    with runtime.session() as session:
        contacts = [Contact(name=f"Lead {i}", attributes={}) for i in range(2)]
        session.add_all(contacts)
        session.flush()
        for contact in contacts:
            hand_off(session, contact, Trigger("mql", "score 60"), now=MONDAY_10_UTC)
    html = admin.get("/admin/users").get_data(as_text=True)
    row = re.search(rf'data-user-id="{rep.user_id}">(.*?)</tr>', html, re.S)
    assert row, html
    cells = [
        re.sub(r"<[^>]+>|\s+", " ", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    assert cells[1:] == [
        "rep",
        "active",
        "+233201234567",
        "Mon-Fri 08:00-17:00 Africa/Accra",
        "3",
        "2",
        "just now",
    ]
    never = re.search(r"never@example.com.*?</tr>", html, re.S)
    assert never and "not signed in" in never.group(0)


def test_users_list_pages_by_keyset_in_a_fixed_number_of_queries(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)

    def queries_for(path: str) -> tuple[int, str]:
        statements: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(runtime.engine, "before_cursor_execute", count)
        try:
            html = admin.get(path).get_data(as_text=True)
        finally:
            event.remove(runtime.engine, "before_cursor_execute", count)
        return len(statements), html

    few, _ = queries_for("/admin/users")
    for i in range(60):
        make_user(runtime, Role.REP, f"rep{i:02d}@example.com")
    many, first = queries_for("/admin/users")
    assert many == few  # no query per user
    first_ids = re.findall(r'data-user-id="(\d+)"', first)
    assert len(first_ids) == 50
    after = re.search(r'href="/admin/users\?after=(\d+)" rel="next"', first)
    assert after and after.group(1) == first_ids[-1]
    second = admin.get(f"/admin/users?after={after.group(1)}").get_data(as_text=True)
    second_ids = re.findall(r'data-user-id="(\d+)"', second)
    assert len(second_ids) == 11 and not set(first_ids) & set(second_ids)
    assert 'rel="next"' not in second


# -- creating users --------------------------------------------------------------------------


def test_admin_creates_a_user_who_can_then_sign_in(web_as, app: Flask, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    response = admin.post(
        "/admin/users",
        {
            "email": "Kofi@Example.com",
            "name": "Kofi Mensah",
            "role": "rep",
            "phone": "020 123 4567",
            "password": "kofi's own password",
        },
    )
    assert response.status_code == 303
    with runtime.session() as session:
        kofi = session.scalars(select(User).where(User.email == "kofi@example.com")).one()
        assert (kofi.role, kofi.name, kofi.phone) == ("rep", "Kofi Mensah", "+233201234567")
        assert response.headers["Location"] == f"/admin/users/{kofi.id}"
    client = app.test_client()
    assert sign_in(client, "kofi@example.com", "kofi's own password").status_code == 302
    assert client.get("/inbox").status_code == 200


def test_a_generated_password_is_shown_once_and_works(web_as, app: Flask, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    response = admin.post(
        "/admin/users", {"email": "esi@example.com", "role": "marketer", "generate": "1"}
    )
    assert response.status_code == 201
    password = shown_secret(response.get_data(as_text=True), "password")
    assert len(password) >= 16
    with runtime.session() as session:
        esi = session.scalars(select(User).where(User.email == "esi@example.com")).one()
        assert password not in esi.password_hash
    assert password not in admin.get(f"/admin/users/{esi.id}").get_data(as_text=True)
    client = app.test_client()
    assert sign_in(client, "esi@example.com", password).status_code == 302


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "12345", "not a valid phone number"),
        ("password", "short", "at least 10 characters"),
        ("email", "not-an-email", "not an email address"),
        ("role", "owner", "role must be one of"),
    ],
)
def test_an_invalid_new_user_is_refused_and_nothing_stored(
    web_as, runtime: Runtime, field: str, value: str, message: str
):
    admin = web_as(Role.ADMIN)
    form = {"email": "new@example.com", "role": "rep", "password": PASSWORD, field: value}
    html = refused(admin, "/admin/users", {**form, "name": "Kofi"}, "/admin/users/new")
    assert message in html.lower()
    assert 'value="Kofi"' in html and f'value="{form["email"]}"' in html  # typed, kept
    assert PASSWORD not in html and 'value="short"' not in html  # but never a password
    assert 'value="Kofi"' not in admin.get("/admin/users/new").get_data(as_text=True)  # once
    with runtime.session() as session:
        assert session.scalars(select(User.email)).all() == [session.get(User, admin.user_id).email]


def test_a_taken_email_is_refused(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    make_user(runtime, Role.REP, "ama@example.com")
    form = {"email": "AMA@example.com", "role": "rep", "password": PASSWORD}
    assert "already exists" in refused(admin, "/admin/users", form, "/admin/users/new")


# -- editing: routing hours and caps ---------------------------------------------------------


def test_edited_working_hours_and_cap_are_what_routing_uses(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    early = make_user(runtime, Role.REP, "early@example.com", name="Early")
    other = make_user(runtime, Role.REP, "other@example.com", name="Other")
    with runtime.session() as session:
        lead = Contact(name="Lead", attributes={})
        session.add(lead)
        session.flush()
        lead_id = lead.id
        # Before the edit, the rep with the lowest id and no hours is first in line.
        assert pick_rep(session, lead, MONDAY_10_UTC).id == early

    hours = {"mon_start": "08:00", "mon_end": "12:00", "tue_start": "08:00", "tue_end": "12:00"}
    response = admin.post(
        f"/admin/users/{early}",
        edit_form(load(runtime, early), timezone="Africa/Nairobi", **hours),
    )
    assert response.status_code == 303
    stored = load(runtime, early)
    assert stored.working_hours == {"mon": ["08:00", "12:00"], "tue": ["08:00", "12:00"]}
    assert stored.timezone == "Africa/Nairobi"
    page = admin.get(f"/admin/users/{early}").get_data(as_text=True)
    assert 'name="mon_end" value="12:00"' in page and 'name="wed_start" value=""' in page

    # 10:00 UTC is 13:00 in Nairobi: past Early's hours, so Other gets the lead.
    with runtime.session() as session:
        lead = session.get_one(Contact, lead_id)
        assert (
            hand_off(session, lead, Trigger("mql", "score 60"), now=MONDAY_10_UTC).rep_id == other
        )

    # A cap of 1 on Other, who has one open handoff now: nobody is available.
    response = admin.post(f"/admin/users/{other}", edit_form(load(runtime, other), lead_cap="1"))
    assert response.status_code == 303
    assert load(runtime, other).lead_cap == 1
    with runtime.session() as session:
        second = Contact(name="Second", attributes={})
        session.add(second)
        session.flush()
        assert pick_rep(session, second, MONDAY_10_UTC) is None
    # Emptied again: no cap.
    admin.post(f"/admin/users/{other}", edit_form(load(runtime, other), lead_cap=""))
    assert load(runtime, other).lead_cap is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"phone": "+1 555"}, "not a valid phone number"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"mon_start": "25:00", "mon_end": "26:00"}, "is not a time as hh:mm"),
        ({"mon_start": "8am", "mon_end": "5pm"}, "is not a time as hh:mm"),
        ({"tue_start": "17:00", "tue_end": "08:00"}, "end time must be after"),
        ({"wed_start": "09:00", "wed_end": ""}, "give both a start and an end"),
        ({"lead_cap": "-1"}, "lead cap must be a whole number"),
        ({"lead_cap": "lots"}, "lead cap must be a whole number"),
        ({"role": "superuser"}, "role must be one of"),
    ],
)
def test_an_invalid_edit_shows_the_error_and_stores_nothing(
    web_as, runtime: Runtime, changes: dict[str, str], message: str
):
    admin = web_as(Role.ADMIN)
    rep = make_user(
        runtime,
        Role.REP,
        "ama@example.com",
        working_hours={"fri": ["09:00", "17:00"]},
        timezone="Africa/Accra",
    )
    before = load(runtime, rep)
    # A valid change alongside the bad one is not stored either.
    form = edit_form(before, name="Renamed", fri_start="10:00", **changes)
    html = refused(admin, f"/admin/users/{rep}", form, f"/admin/users/{rep}")
    assert message in html.lower()
    assert 'value="Renamed"' in html and 'name="fri_start" value="10:00"' in html  # kept
    after = load(runtime, rep)
    fields = ("name", "role", "phone", "timezone", "lead_cap", "working_hours", "active")
    assert {f: getattr(after, f) for f in fields} == {f: getattr(before, f) for f in fields}


# -- access changes sign people out ----------------------------------------------------------


def test_deactivating_a_user_ends_their_sessions(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    rep = web_as(Role.REP, "ama@example.com")
    assert rep.get("/inbox").status_code == 200
    form = edit_form(load(runtime, rep.user_id))
    form.pop("active")
    response = admin.post(f"/admin/users/{rep.user_id}", form)
    assert response.status_code == 303
    assert "signed out everywhere" in admin.get(response.headers["Location"]).get_data(as_text=True)
    with runtime.session() as session:
        assert (
            session.scalars(select(WebSession).where(WebSession.user_id == rep.user_id)).all() == []
        )
    gone = rep.get("/inbox")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/login")
    assert sign_in(rep.client, "ama@example.com").status_code == 401


def test_a_role_change_signs_them_out_and_other_edits_do_not(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    rep = web_as(Role.REP, "ama@example.com")
    admin.post(f"/admin/users/{rep.user_id}", edit_form(load(runtime, rep.user_id), name="Ama B"))
    assert rep.get("/inbox").status_code == 200  # a name change keeps them signed in
    admin.post(
        f"/admin/users/{rep.user_id}", edit_form(load(runtime, rep.user_id), role="marketer")
    )
    assert rep.get("/inbox").status_code == 302
    assert load(runtime, rep.user_id).role == "marketer"


def test_a_password_reset_signs_them_out_and_only_the_new_one_works(
    web_as, app: Flask, runtime: Runtime
):
    admin = web_as(Role.ADMIN)
    rep = web_as(Role.REP, "ama@example.com")
    path, back = f"/admin/users/{rep.user_id}/password", f"/admin/users/{rep.user_id}"
    assert "at least 10 characters" in refused(admin, path, {"password": "short"}, back)
    assert rep.get("/inbox").status_code == 200
    response = admin.post(f"/admin/users/{rep.user_id}/password", {"generate": "1"})
    assert response.status_code == 200
    password = shown_secret(response.get_data(as_text=True), "password")
    assert rep.get("/inbox").status_code == 302
    client = app.test_client()
    assert sign_in(client, "ama@example.com", PASSWORD).status_code == 401
    assert sign_in(client, "ama@example.com", password).status_code == 302


def test_an_admin_generating_their_own_password_sees_it_before_being_signed_out(web_as, app: Flask):
    boss = web_as(Role.ADMIN, "boss@example.com")
    response = boss.post(f"/admin/users/{boss.user_id}/password", {"generate": "1"})
    assert response.status_code == 200
    password = shown_secret(response.get_data(as_text=True), "password")
    assert boss.get("/admin/users").status_code == 302
    assert sign_in(app.test_client(), "boss@example.com", password).status_code == 302


# -- the last admin --------------------------------------------------------------------------


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(web_as, runtime: Runtime):
    boss = web_as(Role.ADMIN, "boss@example.com")
    me = load(runtime, boss.user_id)
    mine = f"/admin/users/{me.id}"
    assert "last active admin" in refused(boss, mine, edit_form(me, role="rep"), mine)
    no_active = edit_form(me)
    no_active.pop("active")
    assert "cannot deactivate yourself" in refused(boss, mine, no_active, mine)
    assert load(runtime, me.id).role == "admin" and load(runtime, me.id).active

    # With a second admin, one may step down (and is signed out); the other is then the last.
    deputy = web_as(Role.ADMIN, "deputy@example.com")
    step_down = boss.post(f"/admin/users/{me.id}", edit_form(me, role="rep"))
    assert step_down.status_code == 303 and step_down.headers["Location"] == "/login"
    assert boss.get("/admin/users").status_code == 302
    assert load(runtime, me.id).role == "rep"
    theirs = f"/admin/users/{deputy.user_id}"
    form = edit_form(load(runtime, deputy.user_id), role="marketer")
    assert "last active admin" in refused(deputy, theirs, form, theirs)
    assert load(runtime, deputy.user_id).role == "admin"


def test_two_admins_demoting_each_other_at_once_leave_one_admin(runtime: Runtime):
    """The admins' rows are locked while one demotion is decided: the other waits (here: times
    out at once), and once the first commits it sees it is the last admin."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite serializes writers anyway)")
    from sqlalchemy import text

    first = make_user(runtime, Role.ADMIN, "first@example.com")
    second = make_user(runtime, Role.ADMIN, "second@example.com")

    def demote(session, actor_id: int, target_id: int) -> None:  # type: ignore[no-untyped-def]
        actor, target = session.get_one(User, actor_id), session.get_one(User, target_id)
        changes = user_admin.UserChanges(
            name=target.name,
            role="rep",
            phone=None,
            active=True,
            timezone="UTC",
            lead_cap=None,
            working_hours={},
        )
        user_admin.update(session, actor=actor, user=target, changes=changes)

    one, two = runtime.sessions(), runtime.sessions()
    try:
        demote(one, first, second)
        one.flush()
        two.execute(text("SET LOCAL lock_timeout = '100ms'"))
        with pytest.raises(OperationalError, match="lock timeout"):
            demote(two, second, first)
        two.rollback()
        one.commit()
        with pytest.raises(user_admin.UserAdminError, match="last active admin"):
            demote(two, second, first)
    finally:
        one.close()
        two.close()
    assert load(runtime, first).role == "admin"


# -- API tokens ------------------------------------------------------------------------------


def test_a_token_is_shown_once_only_its_hash_is_stored_and_it_can_be_revoked(
    web_as, client, runtime: Runtime
):
    admin = web_as(Role.ADMIN)
    marketer = make_user(runtime, Role.MARKETER, "esi@example.com")
    response = admin.post(f"/admin/users/{marketer}/tokens", {"name": "reporting"})
    assert response.status_code == 201
    token = shown_secret(response.get_data(as_text=True), "token")
    with runtime.session() as session:
        record = session.scalars(select(ApiToken)).one()
        assert record.user_id == marketer and record.name == "reporting"
        assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
        stored = (record.name, record.prefix, record.token_hash)
        assert not any(token in value for value in stored)
        token_id = record.id
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 200

    page = admin.get(f"/admin/users/{marketer}").get_data(as_text=True)
    assert token not in page
    row = re.search(rf'data-token-id="{token_id}">(.*?)</tr>', page, re.S)
    assert row and f"{token[:12]}…" in row.group(1) and "just now" in row.group(1)  # last used
    back = f"/admin/users/{marketer}"
    assert "needs a name" in refused(admin, f"{back}/tokens", {"name": "  "}, back)

    revoked = admin.post(f"/admin/users/{marketer}/tokens/{token_id}/revoke")
    assert revoked.status_code == 303
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 401
    page = admin.get(f"/admin/users/{marketer}").get_data(as_text=True)
    assert "revoked" in page and f"/tokens/{token_id}/revoke" not in page
    # Another user's token id under this user: not found, nothing changed.
    other = make_user(runtime, Role.REP, "ama@example.com")
    back = f"/admin/users/{other}"
    assert "No such token" in refused(admin, f"{back}/tokens/{token_id}/revoke", {}, back)


# -- configuration ---------------------------------------------------------------------------


def test_config_page_shows_senders_and_rules_but_no_secrets(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    response = admin.get("/admin/config")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for shown in [
        "+15005550006",  # Twilio SMS from number
        "+14155238886",  # WhatsApp sender
        "sunrise",  # Africa's Talking username
        "https://crm.example.test/webhooks/twilio/messaging",
        "https://crm.example.test/webhooks/africastalking/ussd?key=<var>AT_WEBHOOK_SECRET</var>",
        "Products and prices",  # a menu option
        'data-node="callback"',
        "We are open Monday to Saturday",  # an auto-reply
        "real person",  # a handoff phrase, read back from the rule
        "asked about price",  # a scoring rule
        "buys for a business",  # a fit rule
        "negotiation",  # a pipeline stage
        "no_budget",  # a lost reason
    ]:
        assert shown in html, shown
    settings = runtime.settings
    for secret in [
        AUTH_TOKEN,
        AT_API_KEY,
        AT_SECRET,
        settings.secret_key,
        ACCOUNT_SID,
        DEV_TWILIO_AUTH_TOKEN,
        DEV_AFRICASTALKING_SECRET,
        settings.database_url,
        settings.redis_url,
    ]:
        assert secret and secret not in html


def test_menu_tree_nests_options_under_their_node(web_as, runtime: Runtime):
    admin = web_as(Role.ADMIN)
    html = admin.get("/admin/config").get_data(as_text=True)
    products = html.index('data-node="products"')
    lamp = html.index('data-node="lamp"')
    main = html.index('data-node="main"')
    account = html.index('data-node="account"')
    assert main < products < lamp < account
    # lamp is in the list nested under products; account follows once that list closes.
    assert "<ul>" in html[products:lamp] and "</ul>" not in html[products:lamp]
    assert "</ul>" in html[lamp:account]


# -- in a real browser -----------------------------------------------------------------------


def test_admin_creates_a_user_in_the_browser(page, runtime: Runtime):
    make_user(runtime, Role.ADMIN, "boss@example.com", name="Boss")
    make_user(
        runtime,
        Role.REP,
        "ama@example.com",
        name="Ama Owusu",
        phone="+233201234567",
        working_hours={d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        timezone="Africa/Accra",
        lead_cap=5,
    )
    browser_sign_in(page, "boss@example.com")
    page.goto("/admin/users")
    page.click("text=New user")
    page.fill("input[name=email]", "kofi@example.com")
    page.fill("input[name=name]", "Kofi Mensah")
    page.select_option("select[name=role]", "rep")
    page.fill("input[name=phone]", "+233 24 123 4567")
    page.check("input[name=generate]")
    page.click("button:has-text('Create user')")
    secret = page.locator("input[data-secret=password]")
    assert len(secret.input_value()) >= 16
    assert page.locator(".flash-success").inner_text().startswith("Created rep kofi@example.com")
    page.fill("input[name=mon_start]", "09:00")
    page.fill("input[name=mon_end]", "13:00")
    page.fill("input[name=lead_cap]", "4")
    page.click("#profile button[type=submit]")
    assert "Saved kofi@example.com" in page.locator(".flash-success").inner_text()
    with runtime.session() as session:
        kofi = session.scalars(select(User).where(User.email == "kofi@example.com")).one()
        assert (kofi.phone, kofi.lead_cap) == ("+233241234567", 4)
        assert kofi.working_hours == {"mon": ["09:00", "13:00"]}
    page.click(".admin-tabs >> text=Users")
    row = page.locator(f"tr[data-user-id='{kofi.id}']")
    assert "Mon 09:00-13:00" in row.inner_text()
    screenshot(page, "admin-users")
