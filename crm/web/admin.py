"""Admin pages (being written: a placeholder so the navigation resolves)."""

from __future__ import annotations

from flask import render_template

from crm.web import web
from crm.web.auth import ADMINS, page


@web.get("/admin/users")
@page(ADMINS)
def admin_users(*, session):  # type: ignore[no-untyped-def]
    return render_template("web/placeholder.html", title="Admin")
