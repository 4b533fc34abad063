"""Canned replies and approved WhatsApp templates, kept as data (``crm/config/replies.yaml``
or ``REPLIES_FILE``).

Outside WhatsApp's 24-hour window only an approved template may be sent: the conversation view
offers these, and ``crm.messaging.queue_message`` sends one by its Content SID.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from crm.models import Contact

DEFAULT_FILE = Path(__file__).parent / "config" / "replies.yaml"
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


class ReplyLibraryError(ValueError):
    pass


@dataclass(frozen=True)
class CannedReply:
    title: str
    body: str


@dataclass(frozen=True)
class WhatsAppTemplate:
    name: str
    content_sid: str
    preview: str
    variables: tuple[str, ...]

    def values_for(self, contact: Contact) -> dict[str, str]:
        """Twilio's content variables ({"1": "Ama"}) from the contact's fields."""
        fields = contact_fields(contact)
        return {str(i): fields.get(name, "") for i, name in enumerate(self.variables, start=1)}

    def text_for(self, contact: Contact) -> str:
        """The message as the customer will read it: what the timeline shows."""
        text = self.preview
        for key, value in self.values_for(contact).items():
            text = text.replace("{{" + key + "}}", value)
        return text


@dataclass(frozen=True)
class ReplyLibrary:
    canned: tuple[CannedReply, ...]
    templates: tuple[WhatsAppTemplate, ...]

    def template(self, content_sid: str) -> WhatsAppTemplate | None:
        return next((t for t in self.templates if t.content_sid == content_sid), None)


def contact_fields(contact: Contact) -> dict[str, str]:
    name = (contact.name or "").strip()
    return {"name": name, "first_name": name.split()[0] if name else "there"}


def fill_canned(reply: CannedReply, contact: Contact) -> str:
    fields = contact_fields(contact)
    return re.sub(r"\{(\w+)\}", lambda m: fields.get(m.group(1), m.group(0)), reply.body)


def _parse(raw: Any) -> ReplyLibrary:
    if not isinstance(raw, dict):
        raise ReplyLibraryError("the replies file must be a mapping")
    try:
        canned = tuple(
            CannedReply(str(item["title"]), str(item["body"])) for item in raw.get("canned") or []
        )
        templates = tuple(
            WhatsAppTemplate(
                name=str(item["name"]),
                content_sid=str(item["content_sid"]),
                preview=str(item["preview"]),
                variables=tuple(str(v) for v in item.get("variables") or ()),
            )
            for item in raw.get("whatsapp_templates") or []
        )
    except (KeyError, TypeError) as exc:
        raise ReplyLibraryError(f"bad entry in the replies file: {exc}") from exc
    for template in templates:
        if not CONTENT_SID.match(template.content_sid):
            raise ReplyLibraryError(f"{template.name}: content_sid must be HX + 32 hex")
    return ReplyLibrary(canned, templates)


@functools.cache
def load(path: Path | None = None) -> ReplyLibrary:
    configured = os.environ.get("REPLIES_FILE", "").strip()
    path = path or (Path(configured) if configured else DEFAULT_FILE)
    return _parse(yaml.safe_load(path.read_text(encoding="utf-8")))
