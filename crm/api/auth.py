"""Bearer-token authentication and role checks for API views.

``@api_view(roles)`` opens the request's one transaction, authenticates the token, checks the
role and passes the session to the view; anything the view raises rolls the transaction back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, jsonify, request

from crm.messaging import SendRefused
from crm.models import Role
from crm.users import authenticate_token

ALL_ROLES = frozenset(Role)


def _unauthorized(message: str):  # type: ignore[no-untyped-def]
    response = jsonify(error="Unauthorized", message=message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="crm"'
    return response, 401


def api_view(
    roles: frozenset[Role] = ALL_ROLES,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return _unauthorized("send an API token as 'Authorization: Bearer <token>'")
            runtime = current_app.extensions["crm"]
            with runtime.session() as session:
                user = authenticate_token(session, token.strip())
                if user is None:
                    return _unauthorized("invalid or revoked API token")
                if user.role not in roles:
                    return jsonify(
                        error="Forbidden", message=f"role {user.role} may not do this"
                    ), 403
                g.user = user
                return view(*args, session=session, **kwargs)

        return wrapper

    return decorate


def json_body() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # thousands of nested brackets: not a body anyone means
        raise SendRefused("request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise SendRefused("request body must be a JSON object")
    return data
