"""CSRF protection, the sign-in rate limit and the pages' security headers.

CSRF tokens come from Flask-WTF (every form and htmx request carries one; webhooks and the
bearer-token API are exempt, since browsers cannot attach their credentials). The sign-in limit
is Flask-Limiter on the app's Redis, so it holds across web processes.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[], strategy="fixed-window")

# Scripts and styles only from our own /static: no inline script, no CDN, no eval.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' https:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


def init_app(app: Flask, redis_pool: object) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    csrf.init_app(app)
    app.config["RATELIMIT_STORAGE_URI"] = "redis://"
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"connection_pool": redis_pool}
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True  # Redis down: sign-in still works
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    limiter.init_app(app)


def page_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    return response
