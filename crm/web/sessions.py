"""Browser sessions kept on the server (``web_sessions``), keyed by a hashed random token.

The token travels inside Flask's signed, HttpOnly cookie; the row decides whether it is still
valid. Expiry slides: each request within ``web_session_hours`` keeps the session alive, and
``last_seen_at`` is written at most once a minute so reading pages does not write every time.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm.models import User, WebSession
from crm.models.base import utcnow

_TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: User, *, hours: int, user_agent: str = "") -> str:
    """A new session for ``user``; returns the token for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=_digest(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=hours),
            user_agent=user_agent[:200],
        )
    )
    session.flush()
    return token


def resolve(session: Session, token: str, *, hours: int) -> User | None:
    """The signed-in user for ``token``, or None if it is unknown, expired or deactivated."""
    if not token or len(token) > 100:
        return None
    found = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token))
    ).first()
    if found is None:
        return None
    web_session, user = found
    now = utcnow()
    if web_session.expires_at <= now or not user.active:
        session.delete(web_session)
        return None
    if now - web_session.last_seen_at >= _TOUCH_EVERY:
        web_session.last_seen_at = now
        web_session.expires_at = now + timedelta(hours=hours)
    return user


def end(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))


def end_all(session: Session, user_id: int) -> None:
    """Sign a user out everywhere (deactivated, role or password changed)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
