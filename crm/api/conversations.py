"""Conversations API: the inbox's threads, and changing one (status, snooze, assignee, read)."""

from __future__ import annotations

from datetime import datetime

from flask import g, request
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view, json_body
from crm.api.ids import query_id
from crm.api.serializers import conversation_json
from crm.contact_search import FilterError
from crm.conversations import ConversationError, change, inbox_query, sees
from crm.models import Conversation, ConversationStatus, Role

WORKERS = frozenset({Role.REP, Role.ADMIN})


class ConversationNotFound(LookupError):
    pass


def _flag(name: str) -> bool | None:
    value = request.args.get(name)
    if value is None:
        return None
    if value not in ("true", "false", "1", "0"):
        raise FilterError(f"{name} must be true or false")
    return value in ("true", "1")


@api.get("/conversations")
@api_view(WORKERS)
def list_conversations(*, session: Session):  # type: ignore[no-untyped-def]
    """``view``: mine (default) | unassigned | all; ``status``: open (default) | snoozed |
    closed | any; ``unread``: true | false."""
    status = request.args.get("status", "open")
    view = request.args.get("view", "mine")
    if view not in ("mine", "unassigned", "all"):
        raise FilterError("view must be mine, unassigned or all")
    if status not in {*ConversationStatus, "any"}:
        raise FilterError(f"status must be one of {', '.join(ConversationStatus)} or any")
    query = inbox_query(
        g.user,
        view=view,
        status=None if status == "any" else status,
        unread=_flag("unread"),
    )
    if (contact_id := query_id(request.args.get("contact_id"), "contact_id")) is not None:
        query = query.where(Conversation.contact_id == contact_id)
    return {"data": [conversation_json(c) for c in session.scalars(query.limit(200))]}


@api.patch("/conversations/<id:conversation_id>")
@api_view(WORKERS)
def update_conversation(conversation_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Fields: status, snoozed_until (ISO 8601 with offset), assignee_id, read (bool)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not sees(session, g.user, conversation):
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    assert conversation is not None
    body = json_body()
    unknown = sorted(set(body) - {"status", "snoozed_until", "assignee_id", "read"})
    if unknown:
        raise ConversationError(f"cannot change {', '.join(unknown)}")
    status = body.get("status")
    if status is not None and not isinstance(status, str):
        raise ConversationError("status must be a string")
    snoozed_until = None
    if body.get("snoozed_until") is not None and status != "snoozed":
        raise ConversationError("snoozed_until goes with status snoozed")
    if body.get("snoozed_until") is not None:
        try:
            snoozed_until = datetime.fromisoformat(str(body["snoozed_until"]))
        except ValueError:
            raise ConversationError("snoozed_until must be an ISO 8601 time") from None
        if snoozed_until.tzinfo is None:
            raise ConversationError("snoozed_until needs a UTC offset, e.g. +00:00")
    assignee = body.get("assignee_id", ...)
    if (
        assignee is not ...
        and assignee is not None
        and not (isinstance(assignee, int) and not isinstance(assignee, bool))
    ):
        raise ConversationError("assignee_id must be a user id or null")
    read = body.get("read")
    if read is not None and not isinstance(read, bool):
        raise ConversationError("read must be true or false")
    change(
        session,
        conversation,
        g.user,
        status=status,
        snoozed_until=snoozed_until,
        assignee_id=assignee,
        read=read,
    )
    session.flush()
    return conversation_json(conversation)
