"""At most N marketing messages per contact per window, across campaigns and sequences.

Every marketing message (a broadcast's or a sequence step's) is a campaign recipient row, so the
messages a contact got lately are one index range (``ix_campaign_recipients_contact_sent``). A
message that would break the cap is not dropped: it waits until the oldest counted message
leaves the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm.models import CampaignRecipient, RecipientState


@dataclass(frozen=True)
class FrequencyCap:
    messages: int = 2  # 0: no cap
    window: timedelta = timedelta(hours=24)

    @property
    def on(self) -> bool:
        return self.messages > 0

    def frees_at(self, sent: list[datetime], now: datetime) -> datetime | None:
        """When one more message may go, given the times of those counted (None: now)."""
        if not self.on:
            return None
        recent = sorted(at for at in sent if at > now - self.window)
        if len(recent) < self.messages:
            return None
        return recent[len(recent) - self.messages] + self.window


def recent_marketing(
    session: Session,
    contact_ids: Iterable[int],
    now: datetime,
    cap: FrequencyCap,
    *,
    queued: bool = False,
) -> dict[int, list[datetime]]:
    """The marketing messages each contact got within the window, or has in flight; with
    ``queued``, also those waiting to go, at the time they may go (a sequence step deciding
    whether it may queue one more)."""
    ids = sorted(set(contact_ids))
    if not ids or not cap.on:
        return {}
    since = now - cap.window
    waiting = [RecipientState.SENDING.value]
    if queued:
        waiting.append(RecipientState.PENDING.value)
    found: dict[int, list[datetime]] = {}
    rows = session.execute(
        select(
            CampaignRecipient.contact_id,
            CampaignRecipient.sent_at,
            CampaignRecipient.claimed_at,
            CampaignRecipient.not_before,
        ).where(
            CampaignRecipient.contact_id.in_(ids),
            or_(
                CampaignRecipient.sent_at > since,
                CampaignRecipient.state.in_(waiting),
            ),
        )
    )
    for contact_id, sent_at, claimed_at, not_before in rows:
        found.setdefault(contact_id, []).append(sent_at or claimed_at or not_before or now)
    return found
