"""Managing users: the rules an admin's changes must keep, for the admin pages (and any CLI).

Inputs are validated before anything changes, so a refused edit stores nothing. The team never
loses its last active admin: demoting or deactivating one is refused, with the admins' rows
locked (PostgreSQL) so two admins demoting each other at once cannot both succeed. A user
whose access changes (deactivated, new role, new password) is signed out everywhere.
"""

from __future__ import annotations

import functools
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from crm.models import ApiToken, Handoff, Role, User, WebSession
from crm.models.base import utcnow
from crm.models.handoffs import ACTIVE
from crm.phones import InvalidPhoneNumber, to_e164
from crm.routing import DAYS
from crm.users import MIN_PASSWORD_LENGTH, IssuedToken, UserError, create_token, create_user
from crm.web import sessions

DAY_NAMES = {
    "mon": "Mon",
    "tue": "Tue",
    "wed": "Wed",
    "thu": "Thu",
    "fri": "Fri",
    "sat": "Sat",
    "sun": "Sun",
}
MAX_LEAD_CAP = 10_000
MAX_NAME = 200
MAX_TOKEN_NAME = 100
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class UserAdminError(UserError):
    """An admin's change is invalid or not allowed; the message says why."""


@functools.cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def parse_timezone(raw: str) -> str:
    name = (raw or "").strip()
    if name not in time_zones():
        raise UserAdminError(f"unknown time zone {name!r} (use a name such as Africa/Accra)")
    return name


def parse_phone(raw: str | None, region: str) -> str | None:
    """The user's own phone in E.164 (for notifications), or None when left empty."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return to_e164(text, region)
    except InvalidPhoneNumber as exc:
        raise UserAdminError(f"phone: {exc}") from None


def parse_lead_cap(raw: str | None) -> int | None:
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isdecimal() or int(text) > MAX_LEAD_CAP:
        raise UserAdminError(f"lead cap must be a whole number from 0 to {MAX_LEAD_CAP}")
    return int(text)


def parse_role(raw: str) -> str:
    if raw not in {r.value for r in Role}:
        raise UserAdminError(f"role must be one of {', '.join(r.value for r in Role)}")
    return raw


def parse_name(raw: str | None) -> str:
    name = " ".join((raw or "").split())
    if len(name) > MAX_NAME:
        raise UserAdminError(f"name is longer than {MAX_NAME} characters")
    return name


def parse_working_hours(spans: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """``{"mon": ("08:00", "17:00"), "sun": ("", "")}`` -> the form ``crm.routing`` reads.

    A day with both times empty is off. Routing compares ``start <= now < end`` on one day, so
    a span must end after it starts (no overnight spans). Every day off gives ``{}``, which
    routing reads as "any time"."""
    hours: dict[str, list[str]] = {}
    for day in DAYS:
        start, end = (value.strip() for value in spans.get(day, ("", "")))
        if not start and not end:
            continue
        label = DAY_NAMES[day]
        if not start or not end:
            raise UserAdminError(f"{label}: give both a start and an end time, or neither")
        for value in (start, end):
            if not _CLOCK.match(value):
                raise UserAdminError(f"{label}: {value!r} is not a time as HH:MM (24 h)")
        if time.fromisoformat(end) <= time.fromisoformat(start):
            raise UserAdminError(f"{label}: the end time must be after the start time")
        hours[day] = [start, end]
    return hours


def summarize_hours(hours: dict[str, list[str]] | None) -> str:
    """ "Mon-Fri 08:00-17:00, Sat 09:00-13:00"; "any time" when none are set."""
    if not hours:
        return "any time"
    parts: list[str] = []
    run: list[str] = []
    for day in (*DAYS, None):
        span = hours.get(day) if day else None
        if run and (span != hours.get(run[-1]) or not span):
            first, last = DAY_NAMES[run[0]], DAY_NAMES[run[-1]]
            days = first if len(run) == 1 else f"{first}-{last}"
            start, end = hours[run[0]]
            parts.append(f"{days} {start}-{end}")
            run = []
        if day and span:
            run.append(day)
    return ", ".join(parts)


def check_password_length(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserAdminError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def generate_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


@dataclass(frozen=True)
class UserChanges:
    """An edit, already parsed (see the ``parse_*`` functions)."""

    name: str
    role: str
    phone: str | None
    active: bool
    timezone: str
    lead_cap: int | None
    working_hours: dict[str, list[str]]


def create(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    phone: str | None,
    password: str,
    region: str,
) -> User:
    """A new user (``crm.users.create_user`` checks the email, role and password length)."""
    return create_user(
        session=session,
        email=email,
        role=parse_role(role),
        password=password,
        name=parse_name(name),
        phone=parse_phone(phone, region),
    )


def _other_active_admins(session: Session, user_id: int) -> int:
    """Active admins besides ``user_id``. On PostgreSQL every active admin's row is locked, in
    id order, until the commit: of two admins demoting each other at once, the second waits
    for the first and then sees it is the last one."""
    query = select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
    if session.get_bind().dialect.name == "postgresql":
        query = query.order_by(User.id).with_for_update()
    return sum(1 for admin_id in session.scalars(query) if admin_id != user_id)


def update(session: Session, *, actor: User, user: User, changes: UserChanges) -> bool:
    """Apply ``changes`` to ``user``; True when the user was signed out everywhere (their
    role or active state changed)."""
    if actor.id == user.id and not changes.active:
        raise UserAdminError("you cannot deactivate yourself; ask another admin")
    was_admin = user.role == Role.ADMIN and user.active
    stays_admin = changes.role == Role.ADMIN and changes.active
    if was_admin and not stays_admin and _other_active_admins(session, user.id) == 0:
        raise UserAdminError(f"{user.email} is the last active admin: make another admin first")
    access_changed = changes.role != user.role or changes.active != user.active
    user.name = changes.name
    user.role = changes.role
    user.phone = changes.phone
    user.active = changes.active
    user.timezone = changes.timezone
    user.lead_cap = changes.lead_cap
    user.working_hours = changes.working_hours
    if access_changed:
        sessions.end_all(session, user.id)
    return access_changed


def set_password(session: Session, *, user: User, password: str) -> None:
    """A new password; the user is signed out everywhere."""
    user.password_hash = generate_password_hash(check_password_length(password))
    sessions.end_all(session, user.id)


def issue_token(session: Session, *, user: User, name: str) -> IssuedToken:
    label = " ".join((name or "").split())
    if not label or len(label) > MAX_TOKEN_NAME:
        raise UserAdminError(f"a token needs a name of 1 to {MAX_TOKEN_NAME} characters")
    return create_token(session=session, user=user, name=label)


def revoke_token(session: Session, *, user_id: int, token_id: int) -> ApiToken:
    record = session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
    )
    if record is None:
        raise UserAdminError("no such token for this user")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


def open_handoffs(session: Session, user_ids: list[int]) -> dict[int, int]:
    """Active handoffs per user, for the listed users (one grouped query)."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(Handoff.rep_id, func.count())
        .where(Handoff.rep_id.in_(user_ids), Handoff.status.in_(ACTIVE))
        .group_by(Handoff.rep_id)
    )
    return {rep_id: count for rep_id, count in rows}


def last_seen(session: Session, user_ids: list[int]) -> dict[int, datetime]:
    """The latest request in any live browser session, per user (one grouped query)."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(WebSession.user_id, func.max(WebSession.last_seen_at))
        .where(WebSession.user_id.in_(user_ids))
        .group_by(WebSession.user_id)
    )
    return {user_id: seen for user_id, seen in rows}
