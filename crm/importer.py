"""CSV contact import: normalize numbers to E.164, merge into existing contacts, report rejects."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.contacts import add_identity, find_by_phone, set_tags
from crm.models import Contact
from crm.phones import InvalidPhoneNumber, to_e164
from crm.scoring import refit

PHONE_COLUMNS = ("phone", "phone2", "mobile", "whatsapp")
KNOWN_COLUMNS = {"name", "email", "tags", *PHONE_COLUMNS}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TAG_SPLIT = re.compile(r"[;,|]")
MAX_ROWS = 1_000_000


@dataclass
class Rejected:
    line: int
    reason: str
    row: dict[str, str]


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.created + self.updated + len(self.rejected)


class RowError(ValueError):
    pass


def read_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs with lower-cased, stripped column names."""
    reader = csv.DictReader(stream)
    if not reader.fieldnames:
        raise RowError("the file is empty (expected a header row)")
    columns = [c.strip().lower() for c in reader.fieldnames]
    if not any(c in PHONE_COLUMNS for c in columns):
        raise RowError("no phone column (expected one of: " + ", ".join(PHONE_COLUMNS) + ")")
    reader.fieldnames = columns
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def count_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        return max(sum(1 for _ in csv.reader(stream)) - 1, 0)


def _import_row(session: Session, row: dict[str, str], default_region: str) -> bool:
    """Import one row; True if a contact was created. Raises RowError with the reason."""
    raw_numbers = [row[c] for c in PHONE_COLUMNS if row.get(c)]
    if not raw_numbers:
        raise RowError("no phone number")
    numbers: list[str] = []
    for raw in raw_numbers:
        try:
            numbers.append(to_e164(raw, default_region))
        except InvalidPhoneNumber as exc:
            raise RowError(str(exc)) from None
    email = row.get("email", "").lower()
    if email and not _EMAIL.match(email):
        raise RowError(f"invalid email {email!r}")
    # PostgreSQL refuses over-long values (and would abort the whole batch); SQLite would keep them.
    for column, limit in (("name", Contact.name.type.length), ("email", Contact.email.type.length)):
        if limit is not None and len(row.get(column, "")) > limit:
            raise RowError(f"{column} is longer than {limit} characters")

    owners = {c.id: c for n in numbers if (c := find_by_phone(session, n)) is not None}
    if len(owners) > 1:
        ids = ", ".join(f"#{i}" for i in sorted(owners))
        raise RowError(f"numbers belong to different contacts ({ids}); merge them first")
    contact = next(iter(owners.values()), None)
    if contact is None and email:
        contact = session.scalar(
            select(Contact).where(Contact.email == email, Contact.merged_into_id.is_(None)).limit(1)
        )
    created = contact is None
    if contact is None:
        contact = Contact(first_touch_channel="import", attributes={})
        session.add(contact)
        session.flush()
    contact.name = row.get("name") or contact.name
    contact.email = email or contact.email
    for number in numbers:
        add_identity(session=session, contact=contact, e164=number)
    if row.get("tags"):
        set_tags(session=session, contact=contact, tags=_TAG_SPLIT.split(row["tags"]))
    extra = {k: v for k, v in row.items() if k not in KNOWN_COLUMNS and v}
    if extra:
        contact.attributes = {**(contact.attributes or {}), **extra}
    # Fit points follow the imported fields; an import never promotes or hands off by itself
    # (a bulk load would flood the reps), the contact's next message does.
    refit(contact)
    session.flush()
    return created


def import_rows(
    *,
    session: Session,
    rows: Iterable[tuple[int, dict[str, str]]],
    default_region: str,
) -> ImportReport:
    """Each row in its own savepoint: a bad row is rejected without touching the others."""
    report = ImportReport()
    for line, row in rows:
        try:
            with session.begin_nested():
                created = _import_row(session, row, default_region)
        except RowError as exc:
            report.rejected.append(Rejected(line, str(exc), row))
            continue
        if created:
            report.created += 1
        else:
            report.updated += 1
    return report


def write_rejects(report: ImportReport, path: Path) -> None:
    columns: list[str] = ["reject_line", "reject_reason"]
    for rejected in report.rejected:
        columns += [c for c in rejected.row if c not in columns]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for rejected in report.rejected:
            writer.writerow(
                {**rejected.row, "reject_line": rejected.line, "reject_reason": rejected.reason}
            )
