"""Users and API tokens. Passwords are hashed with werkzeug (scrypt); tokens are random and
only their SHA-256 is stored, so a database leak reveals neither."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from crm.models import ApiToken, Role, User
from crm.models.base import utcnow

TOKEN_PREFIX = "crm_"  # noqa: S105 - a public prefix, not a secret
MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserError(ValueError):
    pass


def create_user(
    *,
    session: Session,
    email: str,
    role: str,
    password: str,
    name: str = "",
    phone: str | None = None,
) -> User:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise UserError(f"not an email address: {email!r}")
    if role not in {r.value for r in Role}:
        raise UserError(f"role must be one of {', '.join(r.value for r in Role)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError(f"a user with email {email} already exists")
    user = User(
        email=email,
        role=role,
        name=name,
        phone=phone,
        password_hash=generate_password_hash(password),
    )
    session.add(user)
    session.flush()
    return user


def takes_work(session: Session, user_id: int) -> bool:
    """Whether a user can own contacts, deals and conversations: an active rep or admin
    (marketers run campaigns; they are not assigned customers)."""
    user = session.get(User, user_id)
    return user is not None and user.active and user.role != Role.MARKETER


def check_password(user: User, password: str) -> bool:
    """Whether ``password`` is the active user's. The hash is always checked, so a
    deactivated account answers as slowly as a wrong password (no timing tells it apart)."""
    matches = check_password_hash(user.password_hash, password)
    return matches and user.active


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once; never stored
    record: ApiToken


def create_token(*, session: Session, user: User, name: str) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(user_id=user.id, name=name, prefix=token[:12], token_hash=_digest(token))
    session.add(record)
    session.flush()
    return IssuedToken(token=token, record=record)


def authenticate_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = _digest(token)
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    # The lookup is by hash; the constant-time compare guards against any index timing leak.
    if record is None or not hmac.compare_digest(record.token_hash, digest):
        return None
    if record.revoked_at is not None or not record.user.active:
        return None
    record.last_used_at = utcnow()
    return record.user
