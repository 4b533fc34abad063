"""One conversation: the contact's whole timeline across channels, the reply box on the
thread's channel, notes, assignment, snooze/close, and the handoff's accept/reject.

Every action calls the service the JSON API calls, with the same checks; a refused action is
a flashed message (or, for htmx, the reason in the fragment), never a half-done change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from channels.sms_segments import analyze
from crm.access import changes_contact
from crm.consent import OptedOut, consent_status
from crm.contacts import ContactNotFound, MergeError
from crm.conversations import ConversationError, change, record_reply, sees
from crm.handoffs import (
    REJECT_REASONS,
    HandoffError,
    InvalidReason,
    NotYourHandoff,
    accept,
    record_first_touch,
    reject,
)
from crm.messaging import (
    MAX_BODY_CHARS,
    SendRefused,
    provider_for,
    queue_message,
    whatsapp_window_closes,
)
from crm.models import (
    Contact,
    Conversation,
    Direction,
    Handoff,
    Identity,
    Interaction,
    Role,
    User,
)
from crm.models.base import utcnow
from crm.models.handoffs import ACTIVE
from crm.phones import InvalidPhoneNumber
from crm.reply_library import fill_canned, load
from crm.timeline import InvalidCursor, add_entry, decode_cursor, encode_cursor, read_timeline
from crm.web import web
from crm.web.auth import WORKERS, page
from crm.web.inbox import list_filters

TIMELINE_PAGE = 50
MAX_NOTE_CHARS = 4000
RESTATUS_WINDOW = timedelta(hours=1)  # outbound messages whose status the live poll refreshes
RESTATUS_LIMIT = 20
REFUSED = (
    SendRefused,
    OptedOut,
    InvalidPhoneNumber,
    ContactNotFound,
    MergeError,
    ConversationError,
    HandoffError,
    InvalidReason,
)
SNOOZES = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1)}


def _conversation(session: Session, conversation_id: int) -> Conversation:
    """The thread if this user may see it; another rep's thread is a 404, as in the API."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not sees(session, g.user, conversation):
        abort(404, "No such conversation, or it is not yours.")
    return conversation


def _changeable(session: Session, conversation: Conversation) -> Contact:
    contact = session.get(Contact, conversation.contact_id)
    if contact is None or not changes_contact(g.user, contact):
        abort(404, "No such conversation, or it is not yours.")
    return contact


def _back(conversation_id: int):  # type: ignore[no-untyped-def]
    return redirect(url_for("web.conversation", conversation_id=conversation_id))


def _authors(session: Session, entries: list[Interaction]) -> dict[int, str]:
    ids = {e.author_id for e in entries if e.author_id}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
    return {user_id: name or email for user_id, name, email in rows}


def _entries_after(session: Session, contact_id: int, cursor: str) -> list[Interaction]:
    created_at, last_id = decode_cursor(cursor)
    query = (
        select(Interaction)
        .where(
            Interaction.contact_id == contact_id,
            (Interaction.created_at > created_at)
            | ((Interaction.created_at == created_at) & (Interaction.id > last_id)),
        )
        .order_by(Interaction.created_at, Interaction.id)
        .limit(TIMELINE_PAGE)
    )
    return list(session.scalars(query))


def _cursor_of(entries: list[Interaction], fallback: str = "") -> str:
    return encode_cursor(entries[-1].created_at, entries[-1].id) if entries else fallback


@web.get("/conversations/<id:conversation_id>")
@page(WORKERS)
def conversation(conversation_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    thread = _conversation(session, conversation_id)
    contact = session.get(Contact, thread.contact_id)
    assert contact is not None
    if thread.assignee_id == g.user.id and thread.unread:
        change(session, thread, g.user, read=True)  # opened by its rep: read
    try:
        timeline = read_timeline(
            session=session,
            contact_id=contact.id,
            limit=TIMELINE_PAGE,
            cursor=request.args.get("before"),
        )
    except InvalidCursor as exc:
        abort(400, str(exc))
    entries = list(reversed(timeline.items))
    handoff = session.scalar(
        select(Handoff).where(Handoff.contact_id == contact.id, Handoff.status.in_(ACTIVE))
    )
    phones = list(
        session.scalars(
            select(Identity.value).where(Identity.contact_id == contact.id).order_by(Identity.id)
        )
    )
    colleagues = session.scalars(
        select(User)
        .where(
            # The current assignee too, even if deactivated: the form must not default to
            # "nobody" and unassign the thread on a stray submit.
            or_(
                and_(User.active.is_(True), User.role.in_([Role.REP.value, Role.ADMIN.value])),
                User.id == thread.assignee_id,
            )
        )
        .order_by(User.name)
    ).all()
    library = load()
    return render_template(
        "web/conversation.html",
        **list_filters(selected=thread.id),
        thread=thread,
        contact=contact,
        phones=phones,
        entries=entries,
        authors=_authors(session, entries),
        older_cursor=timeline.next_cursor,
        newest_cursor=_cursor_of(entries) if not request.args.get("before") else "",
        shown_cursor=encode_cursor(entries[0].created_at, entries[0].id) if entries else "",
        handoff=handoff,
        consent=consent_status(session, contact.id, thread.channel),
        window_closes=(
            whatsapp_window_closes(session, contact.id) if thread.channel == "whatsapp" else None
        ),
        canned=[(r.title, fill_canned(r, contact)) for r in library.canned],
        templates=library.templates,
        can_change=changes_contact(g.user, contact),
        colleagues=colleagues,
        reject_reasons=REJECT_REASONS,
        snoozes=SNOOZES,
        max_body=MAX_BODY_CHARS,
    )


@web.get("/conversations/<id:conversation_id>/entries")
@page(WORKERS)
def conversation_entries(conversation_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """New timeline entries since ``after`` (the live poll), as a fragment that carries the
    next poll's cursor."""
    thread = _conversation(session, conversation_id)
    after = request.args.get("after", "")
    shown = request.args.get("shown", "")
    try:
        entries = _entries_after(session, thread.contact_id, after) if after else []
        oldest_shown = decode_cursor(shown) if shown else None
    except InvalidCursor as exc:
        abort(400, str(exc))
    if entries and thread.assignee_id == g.user.id:
        change(session, thread, g.user, read=True)
    moving = _recent_outbound(
        session, thread.contact_id, oldest_shown, exclude={e.id for e in entries}
    )
    return render_template(
        "web/conversation_entries.html",
        thread=thread,
        entries=entries,
        moving=moving,
        authors=_authors(session, entries + moving),
        newest_cursor=_cursor_of(entries, after),
        shown_cursor=shown,
    )


def _recent_outbound(
    session: Session,
    contact_id: int,
    oldest_shown: tuple[datetime, int] | None,
    exclude: set[int],
) -> list[Interaction]:
    """Messages sent in the last hour that the page shows (from its oldest entry on), shown
    again so their delivery status moves on screen (queued, sent, delivered, or failed with
    its code) without a reload."""
    if oldest_shown is None:
        return []
    shown_at, shown_id = oldest_shown
    query = (
        select(Interaction)
        .where(
            Interaction.contact_id == contact_id,
            Interaction.created_at >= utcnow() - RESTATUS_WINDOW,
            Interaction.direction == Direction.OUTBOUND.value,
            Interaction.channel.in_(("sms", "whatsapp")),
            (Interaction.created_at > shown_at)
            | ((Interaction.created_at == shown_at) & (Interaction.id >= shown_id)),
        )
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(RESTATUS_LIMIT)
    )
    return [e for e in session.scalars(query) if e.id not in exclude]


@web.post("/conversations/<id:conversation_id>/reply")
@page(WORKERS)
def reply(conversation_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Send on the thread's channel: free text, or an approved WhatsApp template."""
    thread = _conversation(session, conversation_id)
    contact = _changeable(session, thread)
    settings = current_app.extensions["crm"].settings
    template_sid = (request.form.get("template") or "").strip()
    body = request.form.get("body") or ""
    variables = None
    if template_sid:
        template = load().template(template_sid)
        if template is None or thread.channel != "whatsapp":
            flash("That template is not one of the approved WhatsApp templates.", "error")
            return _back(thread.id)
        body, variables = template.text_for(contact), template.values_for(contact)
    try:
        with session.begin_nested():
            queue_message(
                session=session,
                contact_id=contact.id,
                channel=thread.channel,
                body=body,
                provider=provider_for(session, contact.id, thread.channel, default="twilio"),
                default_region=settings.default_region,
                author_id=g.user.id,
                content_sid=template_sid or None,
                content_variables=variables,
            )
            record_reply(session, contact.id, thread.channel, g.user)
            record_first_touch(session, contact.id, g.user.id)
    except REFUSED as exc:
        flash(f"Not sent: {exc}", "error")
        return _back(thread.id)
    flash("Reply queued for sending.", "success")
    return _back(thread.id)


@web.post("/conversations/<id:conversation_id>/note")
@page(WORKERS)
def note(conversation_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """An internal note on the timeline: the team sees it, the customer never does."""
    thread = _conversation(session, conversation_id)
    contact = _changeable(session, thread)
    body = (request.form.get("body") or "").strip()
    if not body or len(body) > MAX_NOTE_CHARS:
        flash(f"A note needs between 1 and {MAX_NOTE_CHARS} characters.", "error")
        return _back(thread.id)
    add_entry(
        session=session,
        contact_id=contact.id,
        channel="note",
        direction=Direction.INTERNAL,
        body=body,
        author_id=g.user.id,
    )
    flash("Note added.", "success")
    return _back(thread.id)


@web.post("/conversations/<id:conversation_id>/assign")
@page(WORKERS)
def assign(conversation_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    thread = _conversation(session, conversation_id)
    raw = request.form.get("assignee_id", "")
    assignee: int | None = None
    if raw not in ("", "none"):
        if not raw.isdecimal():
            flash("Pick a person to assign.", "error")
            return _back(thread.id)
        assignee = int(raw)
    try:
        with session.begin_nested():
            change(session, thread, g.user, assignee_id=assignee)
    except ConversationError as exc:
        flash(str(exc), "error")
        return _back(thread.id)
    flash("Conversation assigned." if assignee else "Conversation unassigned.", "success")
    if thread.assignee_id not in (g.user.id, None) and g.user.role == Role.REP:
        return redirect(url_for("web.inbox"))  # transferred away: no longer theirs to see
    return _back(thread.id)


@web.post("/conversations/<id:conversation_id>/status")
@page(WORKERS)
def set_status(conversation_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    thread = _conversation(session, conversation_id)
    status = request.form.get("status", "")
    until = None
    if status == "snoozed":
        span = SNOOZES.get(request.form.get("for", ""))
        if span is None:
            flash("Pick how long to snooze.", "error")
            return _back(thread.id)
        until = utcnow() + span
    try:
        with session.begin_nested():
            change(session, thread, g.user, status=status, snoozed_until=until)
    except ConversationError as exc:
        flash(str(exc), "error")
        return _back(thread.id)
    flash(f"Conversation {status}.", "success")
    return _back(thread.id)


@web.post("/handoffs/<id:handoff_id>/accept")
@page(WORKERS)
def accept_handoff(handoff_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _handoff_action(session, handoff_id, lambda: accept(session, handoff_id, g.user))


@web.post("/handoffs/<id:handoff_id>/reject")
@page(WORKERS)
def reject_handoff(handoff_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    reason = request.form.get("reason", "")
    return _handoff_action(
        session, handoff_id, lambda: reject(session, handoff_id, g.user, reason), rejected=True
    )


def _handoff_action(session: Session, handoff_id: int, act, rejected: bool = False):  # type: ignore[no-untyped-def]
    handoff = session.get(Handoff, handoff_id)
    thread = (
        session.scalars(
            select(Conversation)
            .where(Conversation.contact_id == handoff.contact_id)
            .order_by(Conversation.last_inbound_at.desc().nulls_last(), Conversation.id.desc())
        ).first()
        if handoff
        else None
    )
    try:
        with session.begin_nested():
            act()
    except REFUSED as exc:
        if isinstance(exc, NotYourHandoff):
            abort(404, str(exc))
        flash(str(exc), "error")
    else:
        flash(
            "Lead rejected: it goes to the next rep." if rejected else "Lead accepted.", "success"
        )
        if rejected and g.user.role == Role.REP:
            return redirect(url_for("web.inbox"))
    if thread is None:
        return redirect(url_for("web.inbox"))
    return _back(thread.id)


@web.post("/compose/counter")
@page(WORKERS)
def counter(*, session: Session):  # type: ignore[no-untyped-def]
    """Encoding and parts of the reply being typed (the same code the campaign preview uses)."""
    text = request.form.get("body") or ""
    info = analyze(text)
    return render_template(
        "web/_counter.html", info=info, length=len(text), max_body=MAX_BODY_CHARS
    )
