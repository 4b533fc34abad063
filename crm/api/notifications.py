"""Notifications API: what needs the signed-in user (hot leads, escalations), and marking read."""

from __future__ import annotations

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view
from crm.api.serializers import notification_json
from crm.contact_search import FilterError
from crm.models import Notification
from crm.models.base import utcnow


class NotificationNotFound(LookupError):
    pass


@api.get("/notifications")
@api_view()
def list_notifications(*, session: Session):  # type: ignore[no-untyped-def]
    """The user's own, newest first; ``?unread=true`` for the unread only."""
    query = (
        select(Notification)
        .where(Notification.user_id == g.user.id)
        .order_by(Notification.id.desc())
        .limit(100)
    )
    unread = request.args.get("unread")
    if unread not in (None, "true", "false", "1", "0"):
        raise FilterError("unread must be true or false")
    if unread in ("true", "1"):
        query = query.where(Notification.read_at.is_(None))
    return {"data": [notification_json(n) for n in session.scalars(query)]}


@api.post("/notifications/<id:notification_id>/read")
@api_view()
def read_notification(notification_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != g.user.id:
        raise NotificationNotFound(f"notification {notification_id} not found")
    notification.read_at = notification.read_at or utcnow()
    return notification_json(notification)
