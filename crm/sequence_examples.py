"""The example sequences shipped in ``crm/config/sequences/``, loaded by name."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from crm.models import Sequence, User
from crm.sequences import create_sequence

SHIPPED = Path(__file__).resolve().parent / "config" / "sequences"


def shipped() -> dict[str, Path]:
    return {path.stem: path for path in sorted(SHIPPED.glob("*.yaml"))}


def load_examples(
    session: Session, *, active: Iterable[str] = (), user: User | None = None
) -> list[Sequence]:
    """Create every shipped sequence: those named in ``active`` active, the others drafts."""
    wanted = set(active)
    return [
        create_sequence(
            session,
            yaml.safe_load(path.read_text(encoding="utf-8")),
            user,
            activate=name in wanted,
        )
        for name, path in shipped().items()
    ]
