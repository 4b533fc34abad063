"""The JSON API under /api/v1, authenticated with bearer tokens and authorized by role."""

from __future__ import annotations

from flask import Blueprint, jsonify

from crm.api.ids import BadId
from crm.campaign_render import TemplateError
from crm.campaigns import CampaignError
from crm.consent import NothingToReview, OptedOut
from crm.contact_edits import EditError
from crm.contact_search import FilterError
from crm.contacts import ContactNotFound, MergeError
from crm.conversations import ConversationError
from crm.deals import DealError
from crm.handoffs import HandoffError, InvalidReason, NotYourHandoff
from crm.messaging import SendRefused
from crm.phones import InvalidPhoneNumber
from crm.reports import ReportError
from crm.segments import SegmentError
from crm.sequence_definition import DefinitionError
from crm.sequences import SequenceError
from crm.timeline import InvalidCursor

api = Blueprint("api", __name__, url_prefix="/api/v1")

_ERRORS: list[tuple[type[Exception], int]] = [
    (ContactNotFound, 404),
    (InvalidPhoneNumber, 422),
    (SendRefused, 422),
    (OptedOut, 409),
    (MergeError, 409),
    (NothingToReview, 409),
    (NotYourHandoff, 404),
    (InvalidReason, 422),
    (BadId, 422),
    (HandoffError, 409),
    (InvalidCursor, 400),
    (FilterError, 400),
    (ReportError, 400),
    (EditError, 422),
    (DealError, 422),
    (ConversationError, 422),
    (CampaignError, 422),
    (SegmentError, 422),
    (TemplateError, 422),
    (DefinitionError, 422),
    (SequenceError, 409),
]


def _register_error(exc_type: type[Exception], status: int) -> None:
    @api.errorhandler(exc_type)
    def handler(exc: Exception):  # type: ignore[no-untyped-def]
        return jsonify(error=exc_type.__name__, message=str(exc)), status


for _exc_type, _status in _ERRORS:
    _register_error(_exc_type, _status)

# Routes register on import; errors their modules define register here too.
from crm.api import (  # noqa: E402
    campaigns,
    contacts,
    conversations,
    deals,
    handoffs,
    messages,
    notifications,
    openapi,
    reports,
    sequences,
)

for _exc_type, _status in [
    (campaigns.CampaignNotFound, 404),
    (deals.DealNotFound, 404),
    (conversations.ConversationNotFound, 404),
    (notifications.NotificationNotFound, 404),
    (campaigns.ManagedBySequence, 409),
    (sequences.SequenceNotFound, 404),
    (sequences.EnrollmentNotFound, 404),
    (sequences.SequenceInputError, 422),
]:
    _register_error(_exc_type, _status)

__all__ = [
    "api",
    "campaigns",
    "contacts",
    "handoffs",
    "messages",
    "openapi",
    "reports",
    "sequences",
]
