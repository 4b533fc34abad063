"""Tell a user something needs them: in the app (their notifications) and by SMS if they have a
phone number.

The SMS goes out from a worker (outbox job ``notify_sms``) through the same provider adapter as
customer messages, with the same forward-only states, so a job retried after a crash never texts
the same notice twice: one it finds ``sending`` is marked ``unknown`` instead of sent again.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.base import ChannelAdapter, OutboundMessage, SendError
from crm import outbox
from crm.models import Notification, Role, User

log = logging.getLogger(__name__)

SMS_CHARS = 306  # two GSM-7 segments: enough for a lead's summary, cheap to send


def notify(
    session: Session,
    user: User,
    kind: str,
    body: str,
    *,
    contact_id: int | None = None,
    handoff_id: int | None = None,
) -> Notification:
    """Add a notification for ``user``; queue its SMS copy when the user has a phone."""
    notification = Notification(
        user_id=user.id,
        kind=kind,
        body=body[:480],
        contact_id=contact_id,
        handoff_id=handoff_id,
        sms_status="pending" if user.phone else None,
    )
    session.add(notification)
    session.flush()
    if user.phone:
        outbox.add(session, "notify_sms", notification_id=notification.id)
    return notification


def notify_admins(session: Session, kind: str, body: str, **about: int | None) -> list[int]:
    """Notify every active admin; the ids of the notifications."""
    admins = session.scalars(select(User).where(User.role == Role.ADMIN, User.active.is_(True)))
    return [notify(session, admin, kind, body, **about).id for admin in admins]


def send_sms(session: Session, notification_id: int, adapter: ChannelAdapter) -> str:
    """Send a notification's SMS copy once. Returns its status afterwards.

    Commits before the provider call (``sending``) and after it, like a customer message.
    Retryable provider errors re-raise, with the notification back at ``pending``, so the job's
    retry sends it.
    """
    notification = session.get(Notification, notification_id)
    if notification is None or notification.sms_status not in ("pending", "sending"):
        return notification.sms_status if notification else "gone"
    if notification.sms_status == "sending":
        # A previous attempt died between the provider call and its commit: it may have gone.
        notification.sms_status = "unknown"
        session.commit()
        return "unknown"
    user = session.get_one(User, notification.user_id)
    if not user.phone:
        notification.sms_status = None
        session.commit()
        return "no_phone"
    notification.sms_status = "sending"
    session.commit()
    try:
        body = notification.body[:SMS_CHARS]
        adapter.send(OutboundMessage(channel="sms", to=user.phone, body=body))
    except SendError as exc:
        notification.sms_error = f"{exc.code or 'error'}: {exc}"[:200]
        notification.sms_status = "pending" if exc.retryable else "failed"
        session.commit()
        if exc.retryable:
            raise
        log.warning("notification %s SMS failed: %s", notification_id, exc.code)
        return "failed"
    notification.sms_status = "sent"
    session.commit()
    return "sent"
