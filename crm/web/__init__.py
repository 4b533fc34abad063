"""The web app reps, marketers and admins work in: server-rendered pages, enhanced with htmx.

Pages call the same ``crm`` services and access rules as the JSON API; this package adds no
business rules. Each page module registers its routes on the ``web`` blueprint when imported.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, request
from werkzeug.exceptions import HTTPException

web = Blueprint("web", __name__)


@web.after_request
def _headers(response):  # type: ignore[no-untyped-def]
    from crm.web.security import page_headers

    return page_headers(response)


@web.errorhandler(HTTPException)
def _error_page(exc: HTTPException):  # type: ignore[no-untyped-def]
    if request.headers.get("HX-Request"):
        return exc.description or exc.name, exc.code
    return render_template("web/error.html", error=exc), exc.code


def init_app(app: Flask) -> None:
    from crm.web import filters, security

    filters.register(app)
    runtime = app.extensions["crm"]
    security.init_app(app, runtime.redis.connection_pool)
    for blueprint in ("webhooks", "api", "simulator"):
        if blueprint in app.blueprints:
            security.csrf.exempt(app.blueprints[blueprint])
    app.register_blueprint(web)


# Routes register on import.
from crm.web import (  # noqa: E402
    admin,
    auth,
    campaigns,
    contacts,
    conversation,
    dashboard,
    inbox,
    pipeline,
    segment_pages,
    sequence_pages,
)

__all__ = [
    "admin",
    "auth",
    "campaigns",
    "contacts",
    "conversation",
    "dashboard",
    "inbox",
    "init_app",
    "pipeline",
    "segment_pages",
    "sequence_pages",
    "web",
]
