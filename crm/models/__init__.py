"""All models, imported here so metadata is complete for Alembic and create_all."""

from crm.models.base import Base
from crm.models.campaigns import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    RecipientState,
    Segment,
)
from crm.models.contacts import (
    ChannelConsent,
    ConsentStatus,
    Contact,
    ContactTag,
    Identity,
    LifecycleStage,
)
from crm.models.conversations import Conversation, ConversationStatus
from crm.models.deals import Deal
from crm.models.handoffs import Handoff, HandoffStatus
from crm.models.interactions import Channel, Direction, Interaction
from crm.models.notifications import Notification
from crm.models.outbox import OutboxJob
from crm.models.scoring import ScoreEvent
from crm.models.sequences import (
    EnrollmentStatus,
    Sequence,
    SequenceEnrollment,
    SequenceStatus,
    SequenceStepRun,
)
from crm.models.users import ApiToken, Role, User
from crm.models.web_sessions import WebSession

__all__ = [
    "ApiToken",
    "Base",
    "Campaign",
    "CampaignRecipient",
    "CampaignStatus",
    "Channel",
    "ChannelConsent",
    "ConsentStatus",
    "Contact",
    "ContactTag",
    "Conversation",
    "ConversationStatus",
    "Deal",
    "Direction",
    "EnrollmentStatus",
    "Handoff",
    "HandoffStatus",
    "Identity",
    "Interaction",
    "LifecycleStage",
    "Notification",
    "OutboxJob",
    "RecipientState",
    "Role",
    "ScoreEvent",
    "Segment",
    "Sequence",
    "SequenceEnrollment",
    "SequenceStatus",
    "SequenceStepRun",
    "User",
    "WebSession",
]
