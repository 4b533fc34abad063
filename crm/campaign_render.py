"""Campaign message templates: personalization in a sandboxed Jinja environment.

``Hi {{ first_name | default("there") }}, your order is ready`` renders per contact. The
sandbox keeps a marketer's template from reaching anything but the values given to it, and the
names a template may use are checked when it is saved, so a typo (``{{ frist_name }}``) is an
error in the composer, not an empty gap in 100,000 messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

MAX_TEMPLATE_CHARS = 1600  # Twilio's limit for one message body
NAMES = ("first_name", "last_name", "name", "phone", "lifecycle_stage", "score", "attributes")

_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


class TemplateError(ValueError):
    """A template that cannot be used; the message says where (answered with 422)."""


@dataclass(frozen=True)
class Template:
    source: str
    compiled: Any

    def render(self, context: dict[str, Any]) -> str:
        return self.compiled.render(context).strip()


def compile_template(source: object) -> Template:
    """Parse and check a campaign body: syntax, length, and only the names contacts have."""
    if not isinstance(source, str) or not source.strip():
        raise TemplateError("the message body is empty")
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"the message body is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        parsed = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template error on line {exc.lineno}: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(parsed) - set(NAMES))
    if unknown:
        raise TemplateError(
            f"unknown name {', '.join(unknown)}; a template can use {', '.join(NAMES)}"
        )
    return Template(source, _ENV.from_string(source))


def context_for(
    *,
    name: str | None,
    phone: str,
    lifecycle_stage: str,
    score: int,
    attributes: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a template sees of one contact. A missing name is left undefined, so
    ``default("there")`` applies."""
    context: dict[str, Any] = {
        "phone": phone,
        "lifecycle_stage": lifecycle_stage,
        "score": score,
        "attributes": dict(attributes or {}),
    }
    parts = (name or "").split()
    if parts:
        context["name"] = " ".join(parts)
        context["first_name"] = parts[0]
        if len(parts) > 1:
            context["last_name"] = parts[-1]
    return context


def render(template: Template, context: dict[str, Any]) -> str:
    """The message for one contact. Raises TemplateError when rendering fails (a filter
    given a wrong value, a sandbox refusal)."""
    try:
        return template.render(context)
    except Exception as exc:  # any template failure is the marketer's to fix
        raise TemplateError(f"template failed for this contact: {exc}") from None
