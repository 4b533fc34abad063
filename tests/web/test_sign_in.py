"""Sign-in, sessions, CSRF, the sign-in rate limit and security headers."""

from __future__ import annotations

import time

from sqlalchemy import select

from crm.models import Role, User, WebSession
from crm.runtime import Runtime
from tests.web.conftest import PASSWORD, csrf_token, make_user, sign_in


def test_pages_send_anonymous_visitors_to_sign_in(client):
    response = client.get("/contacts")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/contacts")


def test_sign_in_stores_only_a_hash_and_sign_out_ends_the_session(client, runtime: Runtime):
    make_user(runtime, Role.REP, "ama@example.com")
    response = sign_in(client, "AMA@example.com ")
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
    assert client.get("/inbox").status_code == 200
    with runtime.session() as session:
        stored = session.scalars(select(WebSession)).one()
        assert len(stored.token_hash) == 64
        cookie = client.get_cookie("crm_session")
        assert cookie is not None and stored.token_hash not in cookie.value
        assert cookie.http_only
    token = csrf_token(client, "/inbox")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    with runtime.session() as session:
        assert session.scalars(select(WebSession)).all() == []
    assert client.get("/inbox").status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_answer(client, runtime: Runtime):
    make_user(runtime, Role.REP, "ama@example.com")
    wrong = sign_in(client, "ama@example.com", "not the password")
    unknown = sign_in(client, "nobody@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert b"Wrong email or password" in wrong.data and b"Wrong email or password" in unknown.data


def test_deactivated_user_is_signed_out(client, runtime: Runtime):
    user_id = make_user(runtime, Role.REP, "ama@example.com")
    sign_in(client, "ama@example.com")
    with runtime.session() as session:
        session.get(User, user_id).active = False
    assert client.get("/inbox").status_code == 302


def test_a_post_without_csrf_token_is_refused(client, runtime: Runtime):
    make_user(runtime, Role.REP, "ama@example.com")
    response = client.post("/login", data={"email": "ama@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert b"CSRF" in response.data
    sign_in(client, "ama@example.com")
    assert client.post("/logout").status_code == 400
    assert client.get("/inbox").status_code == 200  # still signed in


def test_next_only_goes_to_this_site(client, runtime: Runtime):
    make_user(runtime, Role.ADMIN, "boss@example.com")
    token = csrf_token(client)
    for target, expected in [
        ("/contacts?q=ama", "/contacts?q=ama"),
        ("https://evil.example/", "/inbox"),
        ("//evil.example/x", "/inbox"),
    ]:
        client.post("/logout", data={"csrf_token": csrf_token(client, "/login")})
        token = csrf_token(client)
        response = client.post(
            "/login",
            data={
                "email": "boss@example.com",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert response.headers["Location"] == expected


def test_sign_in_is_rate_limited_per_email(client, runtime: Runtime, app):
    make_user(runtime, Role.REP, "ama@example.com")
    statuses = [sign_in(client, "ama@example.com", f"guess-{i}").status_code for i in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    # The right password is refused too until the window passes: guessing gains nothing.
    assert sign_in(client, "ama@example.com").status_code == 429


def test_pages_carry_security_headers(web_as):
    rep = web_as(Role.REP)
    response = rep.get("/inbox")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_deactivated_account_is_checked_as_slowly_as_a_wrong_password(runtime: Runtime):
    """The password hash (scrypt, tens of ms) is computed for a deactivated account too, so
    a stopwatch cannot tell one from an active account: without it the answer is about 10,000
    times quicker, far beyond any noise."""
    from crm.users import check_password

    active_id = make_user(runtime, Role.REP, "here@example.com")
    gone_id = make_user(runtime, Role.REP, "gone@example.com")
    with runtime.session() as session:
        active, gone = session.get(User, active_id), session.get(User, gone_id)
        gone.active = False

        def fastest(user: User) -> float:
            times = []
            for _ in range(3):
                started = time.perf_counter()
                check_password(user, "not the password")
                times.append(time.perf_counter() - started)
            return min(times)

        assert check_password(gone, PASSWORD) is False
        assert fastest(gone) > fastest(active) / 5


def test_control_characters_in_next_are_ignored(client, runtime: Runtime):
    make_user(runtime, Role.ADMIN, "boss@example.com")
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={
            "email": "boss@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/\r\nX-Evil: 1",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
