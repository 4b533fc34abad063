"""Messages API: send a message to a contact on a channel."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view, json_body
from crm.api.contacts import changeable_contact
from crm.api.ids import body_id
from crm.api.serializers import interaction_json
from crm.conversations import record_reply
from crm.handoffs import record_first_touch
from crm.messaging import SendRefused, provider_for, queue_message
from crm.models import Role
from crm.reply_library import load as load_replies


@api.post("/messages")
@api_view(frozenset({Role.REP, Role.ADMIN}))  # marketers send campaigns, not one-off messages
def send_message(*, session: Session):  # type: ignore[no-untyped-def]
    runtime = current_app.extensions["crm"]
    body = json_body()
    contact_id = body_id(body, "contact_id")
    channel = body.get("channel", "sms")
    text = body.get("body")
    to = body.get("to")
    if body.get("template") is not None and text is None:
        text = ""
    if (
        not isinstance(channel, str)
        or not isinstance(text, str)
        or not (to is None or isinstance(to, str))
    ):
        raise SendRefused("channel, body and to must be strings")
    contact = changeable_contact(session, contact_id, g.user)  # not another rep's contact
    template_sid = body.get("template")
    variables = None
    if template_sid is not None:
        template = load_replies().template(template_sid) if isinstance(template_sid, str) else None
        if template is None:
            raise SendRefused("template must be the content SID of an approved template")
        text, variables = template.text_for(contact), template.values_for(contact)
    interaction = queue_message(
        session=session,
        contact_id=contact_id,
        channel=channel,
        body=text,
        to=to,
        provider=provider_for(session, contact_id, channel, default="twilio"),
        default_region=runtime.settings.default_region,
        author_id=g.user.id,
        content_sid=template_sid,
        content_variables=variables,
    )
    # A person's reply: the thread is read (and the rep's if it was nobody's), and it ends an
    # active handoff's clock.
    record_reply(session, contact_id, channel, g.user)
    record_first_touch(session, contact_id, g.user.id)
    return interaction_json(interaction), 202
