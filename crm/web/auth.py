"""Signing in and out, and ``@page(roles)``: the web pages' counterpart of ``api_view``.

``@page`` opens the request's one transaction, resolves the session cookie to a user, sends
anonymous visitors to the sign-in page, answers 403 to a role that may not use the page, and
passes the database session to the view.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import (
    session as cookie,
)
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from crm.models import Role, User
from crm.users import check_password
from crm.web import sessions, web
from crm.web.security import limiter

ALL_ROLES = frozenset(Role)
WORKERS = frozenset({Role.REP, Role.ADMIN})  # reps' work: inbox, conversations, handoffs
MARKETING = frozenset({Role.MARKETER, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})
HOME = {Role.REP: "web.inbox", Role.ADMIN: "web.inbox", Role.MARKETER: "web.dashboard"}


@functools.cache
def _dummy_hash() -> str:
    """Checked when the email is unknown, so a wrong email costs as long as a wrong password."""
    return generate_password_hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Viewer:
    id: int
    name: str
    role: Role


def _runtime():  # type: ignore[no-untyped-def]
    return current_app.extensions["crm"]


def page(roles: frozenset[Role] = ALL_ROLES) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            runtime = _runtime()
            with runtime.session() as session:
                token = cookie.get("sid", "")
                user = sessions.resolve(session, token, hours=runtime.settings.web_session_hours)
                if user is None:
                    cookie.pop("sid", None)
                    if request.headers.get("HX-Request"):
                        # htmx follows this header with a full page load of the sign-in page.
                        return "", 401, {"HX-Redirect": url_for("web.login")}
                    if request.method != "GET":
                        abort(401)
                    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
                if user.role not in roles:
                    abort(403, f"A {user.role} may not open this page.")
                g.user = user
                # Plain values for the page frame: still readable when an error page is
                # rendered after the transaction was rolled back.
                g.viewer = Viewer(user.id, user.name or user.email, Role(user.role))
                return view(*args, session=session, **kwargs)

        return wrapper

    return decorate


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an absolute URL (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None  # urlsplit drops tabs and newlines before the checks below see them
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc or "\\" in target else target


def _login_email() -> str:
    return "login:" + (request.form.get("email") or "").strip().lower()[:320]


def _login_limit() -> str:
    return _runtime().settings.login_rate_limit


@web.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_email)
def login():  # type: ignore[no-untyped-def]
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("web/login.html", next=next_url or "", email="")
    email = (request.form.get("email") or "").strip().lower()
    password = request.form.get("password") or ""
    runtime = _runtime()
    with runtime.session() as session:
        found = select(User).where(func.lower(User.email) == email)
        user = session.scalar(found) if email else None
        if user is None:
            check_password_hash(_dummy_hash(), password)
        if user is None or not check_password(user, password):
            flash("Wrong email or password.", "error")
            return render_template("web/login.html", next=next_url or "", email=email), 401
        cookie.clear()  # a fresh session (and CSRF secret) at sign-in: no fixation
        cookie["sid"] = sessions.start(
            session,
            user,
            hours=runtime.settings.web_session_hours,
            user_agent=request.user_agent.string,
        )
        cookie.permanent = True
        return redirect(next_url or url_for(HOME[Role(user.role)]))


@web.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    token = cookie.get("sid")
    if token:
        with _runtime().session() as session:
            sessions.end(session, token)
    cookie.clear()
    flash("Signed out.", "info")
    return redirect(url_for("web.login"))


@web.get("/")
@page()
def home(*, session):  # type: ignore[no-untyped-def]
    return redirect(url_for(HOME[Role(g.user.role)]))
