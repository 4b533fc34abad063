"""Running due sequence steps, each exactly once per contact.

A worker claims a batch of due enrolments with one index range (``due_at <= now`` on the
partial index of active enrolments, ``FOR UPDATE SKIP LOCKED`` so workers split them), walks
each from its current step until it has to wait, and commits the moves in one transaction:
the step runs (unique per enrolment and run number), the enrolments' new place and due time,
the timeline entries, and for each send a campaign recipient plus its ``campaign_send`` outbox
job. Nothing is sent here: the message goes out through the campaign send path (rate limits,
consent checks at send time, the lookup of sends a dead worker left in doubt), so a worker
killed before the commit leaves the enrolment due as it was, and one killed after it leaves a
pending recipient that is sent once.

A send that quiet hours (in the contact's zone) or the frequency cap would hold back keeps the
enrolment on that step until it may go: the step waits; it is never dropped, and the waits after
it count from when it really went.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from channels.sms_segments import analyze
from crm import outbox, sequence_events
from crm.campaign_render import TemplateError, context_for, render
from crm.db import skip_locked
from crm.frequency_cap import FrequencyCap, recent_marketing
from crm.lifecycle import TransitionError, move
from crm.models import (
    Campaign,
    CampaignRecipient,
    ChannelConsent,
    ConsentStatus,
    Contact,
    Direction,
    EnrollmentStatus,
    Identity,
    Interaction,
    RecipientState,
    Sequence,
    SequenceEnrollment,
    SequenceStepRun,
)
from crm.models.base import utcnow
from crm.routing import Trigger, request_handoff
from crm.scoring import load_rules, score_now
from crm.send_windows import after_quiet_hours, zone_of
from crm.sequence_definition import NEXT, Step, Wait
from crm.sequence_definition import Sequence as Definition
from crm.sequence_exits import end
from crm.sequences import definition_of, sync_step_campaigns

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class RunResult:
    claimed: int = 0
    steps: int = 0
    queued: int = 0  # messages handed to the send path
    held: int = 0  # sends waiting for quiet hours or the frequency cap
    completed: int = 0
    exited: int = 0


@dataclass
class _Context:
    """What the walks of one batch read, loaded with a fixed number of queries."""

    contacts: dict[int, Contact]
    phones: dict[int, str]
    opted_out: dict[tuple[int, str], datetime]
    whatsapp_opted_in: set[int]
    last_inbound: dict[int, datetime]
    recent: dict[int, list[datetime]]
    sent_before_edit: set[tuple[int, str]]
    campaigns: dict[tuple[int, str], int]


@dataclass
class _Writes:
    runs: list[dict[str, Any]] = field(default_factory=list)
    recipients: dict[int, dict[str, Any]] = field(default_factory=dict)  # by index in runs
    entries: list[dict[str, Any]] = field(default_factory=list)
    ended: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # reason -> rows
    completed: list[tuple[Any, ...]] = field(default_factory=list)


def wait_until(now: datetime, wait: Wait, zone: ZoneInfo) -> datetime:
    """The end of a wait. Without ``at``: its duration. With ``at`` (local time): the hours
    and minutes first, then ``days`` calendar days on in the contact's zone, at ``at``; the next
    day's ``at`` if that time has passed (``{days: 1, at: "09:30"}``: tomorrow at 09:30;
    ``{at: "18:00"}``: the next 18:00)."""
    if wait.at is None:
        return now + wait.duration
    moment = now + timedelta(seconds=wait.duration.seconds)  # the hours and minutes
    at = time.fromisoformat(wait.at)
    local = moment.astimezone(zone)
    day = local.date() + timedelta(days=wait.duration.days)
    candidate = datetime.combine(day, at, tzinfo=zone)
    if candidate < local:
        candidate = datetime.combine(day + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(UTC)


def claim(session: Session, now: datetime, limit: int) -> list[SequenceEnrollment]:
    query = (
        select(SequenceEnrollment)
        .where(
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE.value,
            SequenceEnrollment.due_at <= now,
        )
        .order_by(SequenceEnrollment.due_at)
        .limit(limit)
    )
    return list(session.scalars(skip_locked(session, query, of=SequenceEnrollment)))


def run_due(
    session: Session,
    now: datetime | None = None,
    *,
    limit: int = BATCH,
    cap: FrequencyCap | None = None,
) -> RunResult:
    """Claim up to ``limit`` due enrolments and run their steps until each must wait. The
    caller commits (the runtime's session announces the send jobs after the commit)."""
    now = now or utcnow()
    enrollments = claim(session, now, limit)
    result = RunResult(claimed=len(enrollments))
    if not enrollments:
        return result
    enrollments = _walkable(session, enrollments)
    if not enrollments:
        return result
    sequences = {
        s.id: s
        for s in session.scalars(
            select(Sequence).where(Sequence.id.in_({e.sequence_id for e in enrollments}))
        )
    }
    context = _load(session, enrollments, sequences, now, cap)
    writes = _Writes()
    walker = _Walker(session, now, cap, context, writes, result)
    for enrollment in enrollments:
        walker.walk(enrollment, sequences[enrollment.sequence_id])
    _write(session, writes, now)
    return result


def _walkable(session: Session, enrollments: list[SequenceEnrollment]) -> list[SequenceEnrollment]:
    """Those whose sequence this batch could lock FOR SHARE: the definition and status it walks
    by cannot change under it. An edit or a pause in progress holds its sequence; that
    sequence's enrolments stay due for the next turn."""
    if session.get_bind().dialect.name != "postgresql":
        return enrollments  # SQLite: one writer at a time
    locked = set(
        session.scalars(
            select(Sequence.id)
            .where(Sequence.id.in_({e.sequence_id for e in enrollments}))
            .with_for_update(read=True, skip_locked=True)
        )
    )
    return [e for e in enrollments if e.sequence_id in locked]


def _load(
    session: Session,
    enrollments: list[SequenceEnrollment],
    sequences: dict[int, Sequence],
    now: datetime,
    cap: FrequencyCap | None,
) -> _Context:
    ids = sorted({e.contact_id for e in enrollments})
    contacts = {
        c.id: c
        for c in session.scalars(
            select(Contact).where(Contact.id.in_(ids)).options(selectinload(Contact.tags))
        )
    }
    phones: dict[int, str] = {}
    for contact_id, value in session.execute(
        select(Identity.contact_id, Identity.value)
        .where(Identity.contact_id.in_(ids), Identity.kind == "phone")
        .order_by(Identity.id)
    ):
        phones.setdefault(contact_id, value)
    opted_out: dict[tuple[int, str], datetime] = {}
    opted_in: set[int] = set()
    for contact_id, channel, status, changed_at in session.execute(
        select(
            ChannelConsent.contact_id,
            ChannelConsent.channel,
            ChannelConsent.status,
            ChannelConsent.changed_at,
        ).where(ChannelConsent.contact_id.in_(ids))
    ):
        if status == ConsentStatus.OPTED_OUT:
            opted_out[(contact_id, channel)] = changed_at
        elif channel == "whatsapp":
            opted_in.add(contact_id)
    earliest = min(e.entered_at for e in enrollments)
    last_inbound = dict(
        session.execute(
            select(Interaction.contact_id, func.max(Interaction.created_at))
            .where(
                Interaction.contact_id.in_(ids),
                Interaction.created_at >= earliest,
                Interaction.direction == Direction.INBOUND.value,
            )
            .group_by(Interaction.contact_id)
        ).all()
    )
    edited = [e.id for e in enrollments if sequences[e.sequence_id].version > 1]
    sent_before_edit: set[tuple[int, str]] = set()
    if edited:
        for enrollment_id, step_id, version, sequence_id in session.execute(
            select(
                SequenceStepRun.enrollment_id,
                SequenceStepRun.step_id,
                SequenceStepRun.version,
                SequenceStepRun.sequence_id,
            ).where(SequenceStepRun.enrollment_id.in_(edited), SequenceStepRun.kind == "send")
        ):
            if version < sequences[sequence_id].version:
                sent_before_edit.add((enrollment_id, step_id))
    campaigns = {
        (sequence_id, step or ""): campaign_id
        for campaign_id, sequence_id, step in session.execute(
            select(Campaign.id, Campaign.sequence_id, Campaign.sequence_step).where(
                Campaign.sequence_id.in_(sequences)
            )
        )
    }
    recent = recent_marketing(session, ids, now, cap, queued=True) if cap and cap.on else {}
    return _Context(
        contacts, phones, opted_out, opted_in, last_inbound, recent, sent_before_edit, campaigns
    )


class _Hold(Exception):
    """The step may not run yet: the enrolment stays on it until ``until``."""

    def __init__(self, until: datetime, why: str) -> None:
        super().__init__(why)
        self.until = until
        self.why = why


class _Walker:
    def __init__(
        self,
        session: Session,
        now: datetime,
        cap: FrequencyCap | None,
        context: _Context,
        writes: _Writes,
        result: RunResult,
    ) -> None:
        self.session = session
        self.now = now
        self.cap = cap
        self.context = context
        self.writes = writes
        self.result = result

    # --- one enrolment -----------------------------------------------------------------

    def walk(self, enrollment: SequenceEnrollment, sequence: Sequence) -> None:
        if sequence.status != "active":  # enrolled as it was being paused or archived
            if sequence.status == "paused":
                enrollment.status = EnrollmentStatus.PAUSED.value
            else:
                self._end(enrollment, sequence, "archived")
            return
        definition = definition_of(sequence)
        contact = self.context.contacts.get(enrollment.contact_id)
        if contact is None:
            return  # deleted meanwhile: the enrolment went with it
        reason = self._exit_reason(enrollment, sequence, contact)
        if reason:
            self._end(enrollment, sequence, reason)
            return
        ids = [step.id for step in definition.steps]
        position = ids.index(enrollment.step_id) if enrollment.step_id in ids else len(ids)
        jumped = False
        for _ in range(2 * len(ids) + 2):
            if position >= len(ids):
                self._complete(enrollment, sequence)
                return
            step = definition.steps[position]
            if step.kind == "wait":
                assert step.wait is not None
                until = wait_until(self.now, step.wait, self._zone(contact.id, definition))
                self._run(enrollment, sequence, step, f"until {until:%Y-%m-%d %H:%M} UTC")
                following = ids[position + 1] if position + 1 < len(ids) else None
                self._place(enrollment, sequence, following, until)
                return
            if step.kind == "branch":
                position, back = self._branch(enrollment, sequence, step, contact, ids, position)
                jumped = jumped or back
                continue
            try:
                done = self._act(enrollment, sequence, definition, step, contact, jumped)
            except _Hold as hold:
                self._hold(enrollment, sequence, step, hold)
                return
            if done:  # an exit step, or the contact left the sequence during the step
                return
            position += 1
        # Cannot happen to a definition that was checked (every loop passes a wait): end it
        # rather than run its steps again.
        log.error("sequence %s enrolment %s did not reach a wait", sequence.id, enrollment.id)
        self._end(enrollment, sequence, "loop")

    def _exit_reason(
        self, enrollment: SequenceEnrollment, sequence: Sequence, contact: Contact
    ) -> str | None:
        if contact.merged_into_id is not None:
            return "merged"
        for channel in ("sms", "whatsapp"):
            changed = self.context.opted_out.get((contact.id, channel))
            if changed is not None and changed >= enrollment.entered_at:
                return "opt_out"
        replied = self.context.last_inbound.get(contact.id)
        if sequence.exit_on_reply and replied is not None and replied > enrollment.entered_at:
            return "reply"
        if sequence.exit_on_customer and contact.lifecycle_stage == "customer":
            return "customer"
        return None

    def _zone(self, contact_id: int, definition: Definition) -> ZoneInfo:
        return zone_of(self.context.phones.get(contact_id, ""), definition.timezone)

    # --- steps ---------------------------------------------------------------------------

    def _branch(
        self,
        enrollment: SequenceEnrollment,
        sequence: Sequence,
        step: Step,
        contact: Contact,
        ids: list[str],
        position: int,
    ) -> tuple[int, bool]:
        branch = step.branch
        assert branch is not None
        value = branch.value
        if branch.condition == "replied":
            replied = self.context.last_inbound.get(contact.id)
            holds = (replied is not None and replied > enrollment.entered_at) == value
        elif branch.condition == "score_above":
            holds = score_now(contact, load_rules(), self.now) > int(value)
        elif branch.condition == "intent":
            holds = contact.last_intent == value
        elif branch.condition == "sentiment":
            holds = contact.sentiment == value
        else:  # tag
            holds = str(value).strip().lower() in contact.tag_names
        target = branch.then if holds else branch.otherwise
        answer = "yes" if holds else "no"
        self._run(enrollment, sequence, step, f"{branch.condition} {value}? {answer}: {target}")
        if target == NEXT:
            return position + 1, False
        landing = ids.index(target)
        return landing, landing <= position

    def _act(
        self,
        enrollment: SequenceEnrollment,
        sequence: Sequence,
        definition: Definition,
        step: Step,
        contact: Contact,
        jumped: bool,
    ) -> bool:
        """Run a send, tag, stage, handoff or exit step; True when the walk ends here."""
        if step.kind == "send":
            outcome = self._send(enrollment, sequence, definition, step, contact, jumped)
            self._run(enrollment, sequence, step, outcome[0], recipient=outcome[1])
            return False
        if step.kind == "exit":
            self._run(enrollment, sequence, step, "exit")
            self._complete(enrollment, sequence)
            return True
        if step.kind == "tag":
            added = [t.lower()[:64] for t in step.add_tags if t.lower() not in contact.tag_names]
            removed = {t.lower() for t in step.remove_tags} & set(contact.tag_names)
            if removed:
                contact.tags = [t for t in contact.tags if t.tag not in removed]
            if added:
                from crm.contacts import set_tags  # fires tag_added for other sequences

                set_tags(session=self.session, contact=contact, tags=added)
            if added or removed:
                from crm.contact_edits import rescore  # fit rules may read tags

                rescore(self.session, contact)
            changes = [f"+{t}" for t in added] + [f"-{t}" for t in sorted(removed)]
            self._run(enrollment, sequence, step, "tags " + (" ".join(changes) or "unchanged"))
        elif step.kind == "stage":
            assert step.stage is not None
            try:
                moved = move(
                    self.session,
                    contact,
                    step.stage,
                    actor=f"sequence “{sequence.name}”",
                    reason=step.reason,
                )
                outcome = f"moved to {step.stage}" if moved else f"already {step.stage}"
            except TransitionError as exc:
                outcome = f"not moved: {exc}"[:120]
            self._run(enrollment, sequence, step, outcome)
            if step.stage == "customer":  # a customer leaves sequences that exit on it
                return self._left_meanwhile(enrollment)
        elif step.kind == "handoff":
            summary = f"Sequence “{sequence.name}”, step {step.id}"
            request_handoff(self.session, contact.id, Trigger(step.reason or "sequence", summary))
            self._run(enrollment, sequence, step, f"handoff requested ({step.reason})")
        return False

    def _left_meanwhile(self, enrollment: SequenceEnrollment) -> bool:
        """Becoming a customer can end this very enrolment (``exit_on: customer``)."""
        status = self.session.scalar(
            select(SequenceEnrollment.status).where(SequenceEnrollment.id == enrollment.id)
        )
        if status == EnrollmentStatus.ACTIVE:
            return False
        self.session.refresh(enrollment)
        self.result.exited += 1
        return True

    def _send(
        self,
        enrollment: SequenceEnrollment,
        sequence: Sequence,
        definition: Definition,
        step: Step,
        contact: Contact,
        jumped: bool,
    ) -> tuple[str, dict[str, Any] | None]:
        send = step.send
        assert send is not None
        channel = send.channel
        phone = self.context.phones.get(contact.id)
        skipped = None
        if (contact.id, channel) in self.context.opted_out:
            skipped = f"opted out of {channel}"
        elif contact.opt_out_review_at is not None:
            skipped = "possible opt-out under review"
        elif not phone:
            skipped = "no phone number"
        elif channel == "whatsapp" and contact.id not in self.context.whatsapp_opted_in:
            skipped = "no WhatsApp opt-in"
        elif (enrollment.id, step.id) in self.context.sent_before_edit and not jumped:
            skipped = "sent before the sequence was edited"
        if skipped or not phone:
            return f"not sent: {skipped}", None
        zone = zone_of(phone, definition.timezone)
        start = time.fromisoformat(definition.quiet_start) if definition.quiet_start else None
        finish = time.fromisoformat(definition.quiet_end) if definition.quiet_end else None
        after = after_quiet_hours(self.now, zone, start, finish)
        if after > self.now:
            raise _Hold(after, "quiet hours")
        sent = self.context.recent.setdefault(contact.id, [])
        if self.cap is not None and (frees := self.cap.frees_at(sent, self.now)):
            raise _Hold(frees, f"frequency cap ({self.cap.messages} a day)")
        seen = context_for(
            name=contact.name,
            phone=phone,
            lifecycle_stage=contact.lifecycle_stage,
            score=contact.score,
            attributes=contact.attributes,
        )
        try:
            body = render(send.body, seen) if send.body is not None else ""
            variables = {name: render(t, seen) for name, t in send.content_variables.items()}
        except TemplateError as exc:
            return f"not sent: {exc}"[:120], None
        key = (sequence.id, step.id)
        if key not in self.context.campaigns:  # saved before its campaigns existed
            sync_step_campaigns(self.session, sequence, definition)
            self.context.campaigns.update(
                {
                    (sequence.id, c.sequence_step or ""): c.id
                    for c in self.session.scalars(
                        select(Campaign).where(Campaign.sequence_id == sequence.id)
                    )
                }
            )
        sent.append(self.now)
        return "queued", {
            "campaign_id": self.context.campaigns[key],
            "contact_id": contact.id,
            "phone": phone,
            "variant": "A",
            "body": body,
            "segments": analyze(body).segments if channel == "sms" else 1,
            "state": RecipientState.PENDING.value,
            "not_before": self.now,
            "attempts": 0,
            "content_variables": variables or None,
        }

    # --- bookkeeping ---------------------------------------------------------------------

    def _run(
        self,
        enrollment: SequenceEnrollment,
        sequence: Sequence,
        step: Step,
        outcome: str,
        recipient: dict[str, Any] | None = None,
    ) -> None:
        enrollment.steps_run += 1
        enrollment.version = sequence.version
        self.result.steps += 1
        if recipient is not None:
            self.writes.recipients[len(self.writes.runs)] = recipient
            self.result.queued += 1
        self.writes.runs.append(
            {
                "enrollment_id": enrollment.id,
                "sequence_id": sequence.id,
                "contact_id": enrollment.contact_id,
                "run_no": enrollment.steps_run,
                "step_id": step.id,
                "kind": step.kind,
                "outcome": outcome[:120],
                "version": sequence.version,
                "ran_at": self.now,
            }
        )
        # Every step is on the timeline; a sent message is also an entry of its own.
        self.writes.entries.append(
            sequence_events.entry(
                enrollment.contact_id,
                f"Sequence “{sequence.name}”, step {step.id} ({step.kind}): {outcome}",
                self.now,
                sequence_id=sequence.id,
                what="step",
                enrollment_id=enrollment.id,
                step_id=step.id,
                kind=step.kind,
            )
        )

    def _place(
        self,
        enrollment: SequenceEnrollment,
        sequence: Sequence,
        step_id: str | None,
        due: datetime,
    ) -> None:
        enrollment.step_id = step_id
        enrollment.due_at = due
        enrollment.version = sequence.version

    def _hold(
        self, enrollment: SequenceEnrollment, sequence: Sequence, step: Step, hold: _Hold
    ) -> None:
        self.result.held += 1
        self._place(enrollment, sequence, step.id, hold.until)
        self.writes.entries.append(
            sequence_events.entry(
                enrollment.contact_id,
                f"Sequence “{sequence.name}”, step {step.id} waits for the {hold.why}: "
                f"until {hold.until:%Y-%m-%d %H:%M} UTC",
                self.now,
                sequence_id=sequence.id,
                what="held",
                enrollment_id=enrollment.id,
                step_id=step.id,
                reason=hold.why,
            )
        )

    def _row(self, enrollment: SequenceEnrollment, sequence: Sequence) -> tuple[Any, ...]:
        return (
            enrollment.id,
            enrollment.contact_id,
            enrollment.entered_at,
            sequence.id,
            sequence.name,
        )

    def _complete(self, enrollment: SequenceEnrollment, sequence: Sequence) -> None:
        self.result.completed += 1
        self.writes.completed.append(self._row(enrollment, sequence))

    def _end(self, enrollment: SequenceEnrollment, sequence: Sequence, reason: str) -> None:
        self.result.exited += 1
        self.writes.ended.setdefault(reason, []).append(self._row(enrollment, sequence))


def _write(session: Session, writes: _Writes, now: datetime) -> None:
    """The batch's inserts, in a fixed number of statements; the enrolments' own changes are
    flushed by the session (one executemany UPDATE)."""
    session.flush()
    if writes.runs:
        run_ids = list(
            session.scalars(
                insert(SequenceStepRun).returning(SequenceStepRun.id, sort_by_parameter_order=True),
                writes.runs,
            )
        )
        recipients = [
            {**recipient, "round": run_ids[index]} for index, recipient in writes.recipients.items()
        ]
        if recipients:
            ids = list(
                session.scalars(
                    insert(CampaignRecipient).returning(
                        CampaignRecipient.id, sort_by_parameter_order=True
                    ),
                    recipients,
                )
            )
            by_campaign: dict[int, list[int]] = {}
            for recipient, recipient_id in zip(recipients, ids, strict=True):
                by_campaign.setdefault(recipient["campaign_id"], []).append(recipient_id)
            for campaign_id, queued in by_campaign.items():
                outbox.add(
                    session,
                    "campaign_send",
                    campaign_id=campaign_id,
                    first_id=min(queued),
                    last_id=max(queued),
                )
    sequence_events.write(session, writes.entries)
    for reason, rows in writes.ended.items():
        end(session, rows, reason, now)
    if writes.completed:
        end(session, writes.completed, "completed", now, EnrollmentStatus.COMPLETED)
