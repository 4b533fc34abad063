"""The runtime a worker process uses, rebuilt after fork.

Our worker runs jobs in process (``SimpleWorker``), but a forking worker class (RQ's default,
if someone runs ``rq worker``) must not share database connections with its children, so the
engine's pool is reset in a forked child (SQLAlchemy's documented ``dispose(close=False)``).
"""

from __future__ import annotations

import os

from crm.runtime import Runtime, build_runtime
from crm.settings import Settings

_runtime: Runtime | None = None
_pid: int | None = None


def use(runtime: Runtime) -> None:
    """Install the runtime jobs run with (the worker command and the tests call this)."""
    global _runtime, _pid
    _runtime, _pid = runtime, os.getpid()


def runtime() -> Runtime:
    global _pid
    if _runtime is None:
        use(build_runtime(Settings.from_env()))
    assert _runtime is not None
    if _pid != os.getpid():
        _runtime.engine.dispose(close=False)
        _runtime.redis.connection_pool.reset()
        _pid = os.getpid()
    return _runtime
