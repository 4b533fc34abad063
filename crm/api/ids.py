"""Record ids in URLs, bodies and query strings: integers the database can hold.

An id past the column's range is answered as not found (in a path) or as a bad value (in a
body or query), never with a driver overflow error.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

from crm.ids import MAX_ID, is_id


class IdConverter(IntegerConverter):
    """``<id:name>``: a positive integer within MAX_ID, else the route does not match (404)."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


class BadId(ValueError):
    """An id in a body (answered with 422) or a query string (400, as QueryError)."""


def body_id(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not is_id(value):
        raise BadId(f"{name} (a positive integer id) is required")
    return value  # type: ignore[return-value]


def query_id(raw: str | None, name: str) -> int | None:
    """An id from a query parameter; None if absent. Raises QueryError."""
    from crm.contact_search import FilterError

    if raw in (None, ""):
        return None
    if not raw.isdecimal() or len(raw) > 19 or not is_id(int(raw)):
        raise FilterError(f"{name} must be a positive integer id")
    return int(raw)
