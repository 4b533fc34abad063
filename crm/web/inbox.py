"""The inbox: conversations filtered by mine / unassigned / hot leads / all, refreshed live.

The list polls a fragment (``/inbox/threads``) every 2 seconds with htmx and shows when it was
last refreshed, so a rep can tell a quiet inbox from a stale one.
"""

from __future__ import annotations

from flask import abort, g, render_template, request

from crm.models import ConversationStatus
from crm.web import web
from crm.web.auth import WORKERS, page
from crm.web.threads import VIEWS, BadCursor, threads

STATUSES = (*ConversationStatus, "any")


def _filters() -> tuple[str, str]:
    view = request.args.get("view", "mine")
    status = request.args.get("status", "open")
    if view not in VIEWS:
        abort(400, f"view must be one of {', '.join(VIEWS)}")
    if status not in STATUSES:
        abort(400, f"status must be one of {', '.join(STATUSES)}")
    return view, status


def list_filters(selected: int | None = None) -> dict[str, object]:
    """The list's filters, for a page that loads the list itself (the conversation view)."""
    view, status = _filters()
    return {
        "view": view,
        "status": status,
        "views": VIEWS,
        "statuses": STATUSES,
        "selected": selected,
    }


def thread_page(session, *, selected: int | None = None):  # type: ignore[no-untyped-def]
    """The list's context: the page of rows and the filters."""
    view, status = _filters()
    try:
        found = threads(
            session,
            g.user,
            view=view,
            status=None if status == "any" else status,
            cursor=request.args.get("cursor"),
        )
    except BadCursor as exc:
        abort(400, str(exc))
    return {
        "rows": found.rows,
        "next_cursor": found.next_cursor,
        "view": view,
        "status": status,
        "views": VIEWS,
        "statuses": STATUSES,
        "selected": selected,
        "cursor": request.args.get("cursor") or "",
    }


@web.get("/inbox")
@page(WORKERS)
def inbox(*, session):  # type: ignore[no-untyped-def]
    return render_template("web/inbox.html", **thread_page(session))


@web.get("/inbox/threads")
@page(WORKERS)
def inbox_threads(*, session):  # type: ignore[no-untyped-def]
    selected = request.args.get("selected", type=int)
    return render_template("web/inbox_threads.html", **thread_page(session, selected=selected))
