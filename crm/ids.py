"""Record ids: positive integers the database's INTEGER keys can hold."""

from __future__ import annotations

MAX_ID = 2**31 - 1  # INTEGER primary keys; larger ids cannot exist


def is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
