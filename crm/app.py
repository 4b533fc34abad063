"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask, Request, jsonify
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from crm import log_redaction
from crm.runtime import Runtime, build_runtime
from crm.settings import Settings


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    """Skip building the signing serializer for requests without a session cookie: webhooks
    and API calls never carry one, and it is a measurable share of a webhook's CPU."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    runtime = runtime or build_runtime(settings)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log_redaction.install()

    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_webhook_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        SESSION_COOKIE_NAME="crm_session",
        PERMANENT_SESSION_LIFETIME=settings.web_session_hours * 3600,
    )
    app.session_interface = LazyCookieSessionInterface()
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["crm"] = runtime

    from crm.api import api
    from crm.api.ids import IdConverter
    from crm.webhooks import webhooks

    app.url_map.converters["id"] = IdConverter
    app.register_blueprint(webhooks)
    app.register_blueprint(api)
    if settings.simulator_enabled and not settings.production:
        from crm.simulator import simulator

        app.register_blueprint(simulator)

    from crm import web

    web.init_app(app)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return {"status": "ok"}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return jsonify(error=exc.name, message=exc.description), exc.code

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["crm"]
