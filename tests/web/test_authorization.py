"""Every web route, every role: pages and actions a role may not use answer 403, anonymous
visitors are sent to sign in, and a POST without the CSRF token is refused.

The expected roles are written here once per area; a route missing from the table fails the
test, so a new page cannot ship without deciding who may use it."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from crm.models import Role
from tests.web.conftest import WebClient

REP, MARKETER, ADMIN = Role.REP, Role.MARKETER, Role.ADMIN
EVERYONE = {REP, MARKETER, ADMIN}
WORKERS = {REP, ADMIN}
MARKETING = {MARKETER, ADMIN}
PUBLIC = {"/login", "/logout"}

# (method, path pattern) -> roles allowed. First match wins.
RULES: list[tuple[str, str, set[Role]]] = [
    ("GET", r"^/$", EVERYONE),
    ("*", r"^/(inbox|conversations|compose|handoffs)\b", WORKERS),
    ("*", r"^/(campaigns|segments|sequences|dashboard)\b", MARKETING),
    ("*", r"^/admin\b", {ADMIN}),
    ("GET", r"^/(contacts|pipeline)\b", EVERYONE),
    ("POST", r"^/(contacts|deals)\b", WORKERS),
    ("GET", r"^/deals/\d+/lost$", WORKERS),
]


def _allowed(method: str, path: str) -> set[Role]:
    for rule_method, pattern, roles in RULES:
        if rule_method in ("*", method) and re.search(pattern, path):
            return roles
    raise AssertionError(f"{method} {path}: no rule says who may use it; add one to RULES")


def _routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web.") or rule.rule in PUBLIC:
            continue
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, path))
    return sorted(routes)


def _call(client: WebClient, method: str, path: str, csrf: bool = True):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(path)
    if csrf:
        return client.post(path, {})
    return client.client.post(path, data={})


@pytest.mark.parametrize("role", [REP, MARKETER, ADMIN])
def test_each_role_gets_403_exactly_where_it_may_not_go(app: Flask, web_as, role: Role):
    client = web_as(role)
    routes = _routes(app)
    assert len(routes) > 30  # the table covers the real app, not an empty list
    wrong = []
    for method, path in routes:
        status = _call(client, method, path).status_code
        allowed = role in _allowed(method, path)
        if (allowed and status in (401, 403, 500)) or (not allowed and status != 403):
            wrong.append(f"{method} {path}: {status} (allowed={allowed})")
    assert wrong == []


def test_anonymous_visitors_are_sent_to_sign_in(app: Flask, client):
    for method, path in _routes(app):
        if method == "GET":
            response = client.get(path)
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/login"), path


def test_posts_without_the_csrf_token_are_refused(app: Flask, web_as):
    admin = web_as(ADMIN)  # may use every page: only the missing token can refuse
    posts = [(m, p) for m, p in _routes(app) if m == "POST"]
    assert posts
    for method, path in posts:
        response = _call(admin, method, path, csrf=False)
        assert response.status_code == 400, f"{path}: {response.status_code}"
        assert b"CSRF" in response.data, path
