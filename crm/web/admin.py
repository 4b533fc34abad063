"""Admin pages: users (roles, routing hours and caps, passwords, API tokens) and a read-only
view of the active configuration.

Rules live in ``crm.user_admin``; these views parse forms, call it, and show the result. A
refused change stores nothing: the reason is flashed and the browser is sent back to the form,
which shows what was typed (passwords excepted) once more. Secrets shown once (a generated
password, a new API token) are rendered in the POST's response, never put in the session
cookie or a redirect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask import session as cookie
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.auto_replies import HANDOFF, AutoReplies
from bot.menu import Menu, Node
from crm import user_admin
from crm.ids import is_id
from crm.models import ApiToken, Role, User
from crm.routing import DAYS
from crm.send_limits import limit_for, rate_key
from crm.settings import Settings
from crm.users import MIN_PASSWORD_LENGTH, UserError
from crm.web import web
from crm.web.auth import ADMINS, page

USERS_PAGE = 50
TOKENS_PAGE = 50
ROLES = tuple(r.value for r in Role)


def _runtime():  # type: ignore[no-untyped-def]
    return current_app.extensions["crm"]


def _after(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdecimal() and is_id(int(raw)) else None


def _load_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        abort(404, "No such user.")
    return user


# -- users list ---------------------------------------------------------------------------------


@web.get("/admin/users")
@page(ADMINS)
def admin_users(*, session: Session):  # type: ignore[no-untyped-def]
    """Users by id, a page at a time (keyset on id); counts and last sign-in for the page only."""
    after = _after("after")
    query = select(User).order_by(User.id).limit(USERS_PAGE + 1)
    if after is not None:
        query = query.where(User.id > after)
    users = list(session.scalars(query))
    more = len(users) > USERS_PAGE
    users = users[:USERS_PAGE]
    ids = [u.id for u in users]
    return render_template(
        "web/admin_users.html",
        users=users,
        open_handoffs=user_admin.open_handoffs(session, ids),
        last_seen=user_admin.last_seen(session, ids),
        summarize_hours=user_admin.summarize_hours,
        next_after=users[-1].id if more else None,
        first_page=after is None,
    )


# -- create -------------------------------------------------------------------------------------


_KEPT = "admin_form"


def _refused(session: Session, exc: Exception, back: str, typed: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """Undo anything the refused action touched, say why, and go back to the form with what
    was typed kept for its next render (in the signed cookie: never a password)."""
    session.rollback()
    flash(str(exc)[:1].upper() + str(exc)[1:], "error")
    if typed is not None:
        cookie[_KEPT] = {"form": back, "values": typed}
    return redirect(back, 303)


def _typed(form: str) -> dict[str, Any] | None:
    """The values kept for ``form`` by a refused post, once."""
    if _KEPT not in cookie:
        return None  # reading alone leaves the cookie as it is
    kept = cookie.pop(_KEPT)
    return kept["values"] if isinstance(kept, dict) and kept.get("form") == form else None


@web.get("/admin/users/new")
@page(ADMINS)
def admin_user_new(*, session: Session):  # type: ignore[no-untyped-def]
    return render_template(
        "web/admin_user_new.html",
        roles=ROLES,
        values=_typed(request.path) or {"role": Role.REP.value},
        min_password=MIN_PASSWORD_LENGTH,
    )


@web.post("/admin/users")
@page(ADMINS)
def admin_user_create(*, session: Session):  # type: ignore[no-untyped-def]
    form = request.form
    generate = form.get("generate") == "1"
    password = user_admin.generate_password() if generate else form.get("password", "")
    try:
        user = user_admin.create(
            session,
            email=form.get("email", ""),
            name=form.get("name", ""),
            role=form.get("role", ""),
            phone=form.get("phone"),
            password=password,
            region=_runtime().settings.default_region,
        )
    except UserError as exc:
        typed = {k: form.get(k, "") for k in ("email", "name", "role", "phone", "generate")}
        return _refused(session, exc, url_for("web.admin_user_new"), typed)
    flash(f"Created {user.role} {user.email}.", "success")
    if generate:
        return _user_page(session, user, status=201, issued_password=password)
    return redirect(url_for("web.admin_user", user_id=user.id), 303)


# -- one user: edit, password, tokens ---------------------------------------------------------


def _values(user: User) -> dict[str, Any]:
    hours = user.working_hours or {}
    return {
        "name": user.name,
        "role": user.role,
        "phone": user.phone or "",
        "active": user.active,
        "timezone": user.timezone or "UTC",
        "lead_cap": "" if user.lead_cap is None else str(user.lead_cap),
        "hours": {day: tuple(hours.get(day) or ("", "")) for day in DAYS},
    }


def _posted_values() -> dict[str, Any]:
    form = request.form
    return {
        "name": form.get("name", ""),
        "role": form.get("role", ""),
        "phone": form.get("phone", ""),
        "active": form.get("active") == "on",
        "timezone": form.get("timezone", ""),
        "lead_cap": form.get("lead_cap", ""),
        "hours": {day: (form.get(f"{day}_start", ""), form.get(f"{day}_end", "")) for day in DAYS},
    }


def _user_page(  # type: ignore[no-untyped-def]
    session: Session,
    user: User,
    *,
    status: int = 200,
    issued_password: str | None = None,
    issued_token: str | None = None,
    values: dict[str, Any] | None = None,
):
    before = _after("tokens_before")
    query = (
        select(ApiToken)
        .where(ApiToken.user_id == user.id)
        .order_by(ApiToken.id.desc())
        .limit(TOKENS_PAGE + 1)
    )
    if before is not None:
        query = query.where(ApiToken.id < before)
    tokens = list(session.scalars(query))
    more = len(tokens) > TOKENS_PAGE
    tokens = tokens[:TOKENS_PAGE]
    return render_template(
        "web/admin_user.html",
        subject=user,
        values=values or _values(user),
        roles=ROLES,
        days=[(day, user_admin.DAY_NAMES[day]) for day in DAYS],
        time_zones=user_admin.time_zones(),
        tokens=tokens,
        tokens_next=tokens[-1].id if more else None,
        tokens_first_page=before is None,
        issued_password=issued_password,
        issued_token=issued_token,
        min_password=MIN_PASSWORD_LENGTH,
        is_self=user.id == g.user.id,
        open_handoffs=user_admin.open_handoffs(session, [user.id]).get(user.id, 0),
        last_seen=user_admin.last_seen(session, [user.id]).get(user.id),
    ), status


@web.get("/admin/users/<id:user_id>")
@page(ADMINS)
def admin_user(user_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _user_page(session, _load_user(session, user_id), values=_typed(request.path))


@web.post("/admin/users/<id:user_id>")
@page(ADMINS)
def admin_user_update(user_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    user = _load_user(session, user_id)
    posted = _posted_values()
    try:
        changes = user_admin.UserChanges(
            name=user_admin.parse_name(posted["name"]),
            role=user_admin.parse_role(posted["role"]),
            phone=user_admin.parse_phone(posted["phone"], _runtime().settings.default_region),
            active=posted["active"],
            timezone=user_admin.parse_timezone(posted["timezone"]),
            lead_cap=user_admin.parse_lead_cap(posted["lead_cap"]),
            working_hours=user_admin.parse_working_hours(posted["hours"]),
        )
        signed_out = user_admin.update(session, actor=g.user, user=user, changes=changes)
    except UserError as exc:
        return _refused(session, exc, url_for("web.admin_user", user_id=user_id), posted)
    if signed_out and user.id == g.user.id:
        flash("Your role changed: sign in again.", "success")
        return redirect(url_for("web.login"), 303)
    message = f"Saved {user.email}."
    if signed_out:
        message += " They were signed out everywhere."
    flash(message, "success")
    return redirect(url_for("web.admin_user", user_id=user.id), 303)


@web.post("/admin/users/<id:user_id>/password")
@page(ADMINS)
def admin_user_password(user_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    user = _load_user(session, user_id)
    generate = request.form.get("generate") == "1"
    password = user_admin.generate_password() if generate else request.form.get("password", "")
    try:
        user_admin.set_password(session, user=user, password=password)
    except UserError as exc:
        return _refused(session, exc, url_for("web.admin_user", user_id=user_id))
    if user.id == g.user.id:
        flash("Your password was changed: sign in again with the new one.", "success")
        if not generate:
            return redirect(url_for("web.login"), 303)
    else:
        flash(f"New password set for {user.email}. They were signed out everywhere.", "success")
    if generate:
        return _user_page(session, user, issued_password=password)
    return redirect(url_for("web.admin_user", user_id=user.id), 303)


@web.post("/admin/users/<id:user_id>/tokens")
@page(ADMINS)
def admin_token_create(user_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    user = _load_user(session, user_id)
    try:
        issued = user_admin.issue_token(session, user=user, name=request.form.get("name", ""))
    except UserError as exc:
        return _refused(session, exc, url_for("web.admin_user", user_id=user_id))
    flash(f"Token {issued.record.prefix}… created. Copy it now: it is not shown again.", "success")
    return _user_page(session, user, status=201, issued_token=issued.token)


@web.post("/admin/users/<id:user_id>/tokens/<id:token_id>/revoke")
@page(ADMINS)
def admin_token_revoke(user_id: int, token_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    user = _load_user(session, user_id)
    try:
        record = user_admin.revoke_token(session, user_id=user.id, token_id=token_id)
    except UserError as exc:
        return _refused(session, exc, url_for("web.admin_user", user_id=user_id))
    flash(f"Token {record.prefix}… ({record.name}) revoked.", "success")
    return redirect(url_for("web.admin_user", user_id=user.id), 303)


# -- configuration (read-only) ------------------------------------------------------------------


@web.get("/admin/config")
@page(ADMINS)
def admin_config(*, session: Session):  # type: ignore[no-untyped-def]
    runtime = _runtime()
    settings = runtime.settings
    return render_template(
        "web/admin_config.html",
        channels=_channels(settings),
        send_rates=_send_rates(settings),
        configured_rates=settings.send_rates,
        webhook_base=settings.public_base_url or request.host_url.rstrip("/"),
        public_base_url=settings.public_base_url,
        webhook_urls=_webhook_urls(),
        general=_general(settings),
        replies=_reply_texts(settings),
        menu=_menu_tree(runtime.menu),
        menu_screen_chars=runtime.menu.screen_chars,
        auto_replies=_auto_replies(runtime.auto_replies),
        scoring=_scoring(),
        pipeline=_pipeline(),
    )


# What the configuration page shows. Only names, numbers and switches: never a credential
# (auth tokens, API keys, callback secrets, SECRET_KEY) nor a URL that may carry one (the
# database's, Redis's).

Facts = list[tuple[str, str]]


def _masked(value: str) -> str:
    """An account id as "AC…1234": enough to tell accounts apart."""
    return f"{value[:2]}…{value[-4:]}" if len(value) > 8 else ("set" if value else "not set")


def _channels(settings: Settings) -> list[dict[str, Any]]:
    twilio_live = settings.twilio_configured
    at_live = settings.africastalking_configured
    if settings.africastalking_webhook_secret:
        at_key = "set (AT_WEBHOOK_SECRET)"
    elif settings.production:
        at_key = "not set: every callback is refused"
    else:
        at_key = "the development default (set AT_WEBHOOK_SECRET)"
    return [
        {
            "name": "Twilio",
            "serves": "SMS, WhatsApp, voice calls, campaigns",
            "live": twilio_live,
            "facts": [
                (
                    "Mode",
                    "live: sends through the Twilio REST API"
                    if twilio_live
                    else "sandbox: outbound messages are recorded locally, nothing is sent",
                ),
                ("Account", _masked(settings.twilio_account_sid)),
                ("SMS from number", settings.twilio_from_number or "not set"),
                ("Messaging service", settings.twilio_messaging_service_sid or "not set"),
                ("WhatsApp sender", settings.twilio_whatsapp_from or "not set"),
                ("API base URL", settings.twilio_api_base_url or "Twilio's default"),
                (
                    "Webhook signatures",
                    "checked with the account's auth token"
                    if settings.twilio_auth_token
                    else "checked with the development token (set TWILIO_AUTH_TOKEN)",
                ),
            ],
        },
        {
            "name": "Africa's Talking",
            "serves": "USSD menus, SMS",
            "live": at_live,
            "facts": [
                (
                    "Mode",
                    "live: sends through the Africa's Talking API"
                    if at_live
                    else "sandbox: outbound messages are recorded locally, nothing is sent",
                ),
                ("Username", settings.africastalking_username or "not set"),
                ("SMS sender", settings.africastalking_sms_from or "the account's default"),
                ("API base URL", settings.africastalking_api_base_url),
                ("Callback key", at_key),
                (
                    "Callbacks accepted from",
                    ", ".join(settings.africastalking_allowed_ips) or "any address",
                ),
            ],
        },
    ]


def _send_rates(settings: Settings) -> list[dict[str, Any]]:
    """Campaign senders and their messages per second, by the rule the send workers apply."""
    configured = dict(settings.send_rates)
    service = settings.twilio_messaging_service_sid
    senders = [
        ("SMS", "sms", service or settings.twilio_from_number),
        ("WhatsApp", "whatsapp", service or settings.twilio_whatsapp_from),
    ]
    rows = []
    for label, channel, sender in senders:
        if not sender:
            continue
        key = rate_key(channel, sender)
        rows.append(
            {
                "channel": label,
                "sender": sender,
                "per_second": limit_for(key, configured),
                "configured": key in configured,
            }
        )
    return rows


def _webhook_urls() -> list[dict[str, Any]]:
    """Paths the providers call, from the webhook routes themselves."""

    def path(endpoint: str, **values: str) -> str:
        return url_for(f"webhooks.{endpoint}", **values)

    return [
        {
            "provider": "Twilio",
            "what": "A message comes in (each SMS number and WhatsApp sender)",
            "path": path("messaging", adapter_name="twilio"),
        },
        {
            "provider": "Twilio",
            "what": "Message status callback (added to each send when PUBLIC_BASE_URL is set)",
            "path": path("status", adapter_name="twilio"),
        },
        {"provider": "Twilio", "what": "A call comes in", "path": path("voice_call")},
        {"provider": "Twilio", "what": "Call status changes", "path": path("voice_status")},
        {
            "provider": "Africa's Talking",
            "what": "Incoming SMS",
            "path": path("africastalking_sms"),
            "key": True,
        },
        {
            "provider": "Africa's Talking",
            "what": "SMS delivery reports",
            "path": path("africastalking_delivery"),
            "key": True,
        },
        {
            "provider": "Africa's Talking",
            "what": "USSD service code callback",
            "path": path("ussd_hop"),
            "key": True,
        },
        {
            "provider": "Africa's Talking",
            "what": "USSD session end notifications",
            "path": path("ussd_session_end"),
            "key": True,
        },
    ]


def _general(settings: Settings) -> Facts:
    def hours(value: int) -> str:
        return f"{value} h"

    return [
        ("Environment", settings.env),
        ("Default phone region", settings.default_region),
        ("Sign-in session ends after", hours(settings.web_session_hours) + " without a request"),
        ("Sign-in attempts allowed", settings.login_rate_limit + " per address and per email"),
        ("Bot stays quiet after a rep replies", hours(settings.rep_handling_hours)),
        ("USSD screen", f"{settings.ussd_screen_chars} characters"),
        ("USSD session expires after", f"{settings.ussd_session_ttl} s"),
        ("Campaign sends in flight per job", str(settings.campaign_threads)),
        ("Simulator (/simulator)", "on" if settings.simulator_enabled else "off"),
        ("Menu file", str(settings.bot_menu_file or "bot/menus/default.yaml (shipped)")),
        ("Auto-reply rules file", str(settings.bot_rules_file or "bot/menus/auto_replies.yaml")),
    ]


def _reply_texts(settings: Settings) -> Facts:
    return [
        ("HELP", settings.help_text),
        ("STOP (opted out)", settings.opt_out_text),
        ("START (opted back in)", settings.opt_in_text),
        ("First message from a new contact", settings.welcome_text or "(none)"),
    ]


@dataclass
class MenuItem:
    """A node in the menu tree as shown: reached by ``key``/``label`` from its parent."""

    node: Node
    key: str = ""
    label: str = ""
    children: list[MenuItem] = field(default_factory=list)
    shown_above: bool = False  # reached again: listed once, expanded where first shown


def _menu_tree(menu: Menu) -> dict[str, list[MenuItem]]:
    """The menu from its start node, each node expanded once (menus may loop back), then any
    nodes no path reaches."""
    shown: set[str] = set()

    def expand(node_id: str, key: str = "", label: str = "") -> MenuItem:
        node = menu.node(node_id)
        if node_id in shown:
            return MenuItem(node, key, label, shown_above=True)
        shown.add(node_id)
        item = MenuItem(node, key, label)
        for option in node.options:
            item.children.append(expand(option.goto, option.key, option.label))
        if node.next is not None:
            item.children.append(expand(node.next, "", "then"))
        return item

    reached = [expand(menu.start)]
    unreached = [expand(node_id) for node_id in menu.nodes if node_id not in shown]
    return {"reached": reached, "unreached": unreached}


def _phrases(pattern: str) -> list[str]:
    """The phrases of an auto-reply rule, read back from its compiled pattern
    (``(?<!\\w)(?:a|b\\ c)(?!\\w)``, each phrase passed through ``re.escape``)."""
    head, tail = r"(?<!\w)(?:", r")(?!\w)"
    if not (pattern.startswith(head) and pattern.endswith(tail)):
        return [pattern]
    phrases, current, escaped = [], [], False
    for char in pattern[len(head) : -len(tail)]:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            phrases.append("".join(current))
            current = []
        else:
            current.append(char)
    phrases.append("".join(current))
    return phrases


def _auto_replies(rules: AutoReplies) -> list[dict[str, Any]]:
    return [
        {
            "name": rule.name,
            "handoff": rule.name == HANDOFF,
            "phrases": _phrases(rule.pattern.pattern),
            "reply": rule.reply,
        }
        for rule in rules.rules
    ]


def _scoring() -> dict[str, Any]:
    from crm.scoring import load_rules

    try:
        rules = load_rules()
    except (ValueError, OSError) as exc:
        return {"error": str(exc)}
    fit = []
    for name, rule in rules.fit.items():
        if rule.field is not None:
            when = f"has a {rule.field}"
        elif rule.attribute is not None:
            when = (
                f"attribute {rule.attribute} is set"
                if rule.equals is None
                else f"attribute {rule.attribute} = {rule.equals}"
            )
        else:
            when = f"tagged {rule.tag}"
        fit.append({"name": name, "points": rule.points, "reason": rule.reason, "when": when})
    return {
        "half_life_hours": rules.half_life.total_seconds() / 3600,
        "mql_threshold": rules.mql_threshold,
        "rules": [
            {"name": name, "points": rule.points, "reason": rule.reason}
            for name, rule in rules.rules.items()
        ],
        "fit": fit,
        "file": os.environ.get("SCORING_RULES_FILE", "").strip() or "crm/config/scoring.yaml",
    }


def _pipeline() -> dict[str, Any]:
    from crm.deals import load_pipeline

    try:
        pipeline = load_pipeline()
    except (ValueError, OSError, yaml.YAMLError) as exc:
        return {"error": str(exc)}
    return {
        "stages": [
            {
                "name": stage,
                "outcome": "won"
                if stage in pipeline.won
                else ("lost" if stage in pipeline.lost else ""),
            }
            for stage in pipeline.stages
        ],
        "lost_reasons": pipeline.lost_reasons,
        "currency": pipeline.default_currency,
        "file": os.environ.get("PIPELINE_FILE", "").strip() or "crm/config/pipeline.yaml",
    }
