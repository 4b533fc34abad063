"""Inbox pages (being written)."""

from __future__ import annotations

from flask import render_template

from crm.web import web
from crm.web.auth import WORKERS, page


@web.get("/inbox")
@page(WORKERS)
def inbox(*, session):  # type: ignore[no-untyped-def]
    return render_template("web/placeholder.html", title="Inbox")
