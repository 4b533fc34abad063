"""Playing the demo's stories (``crm.demo_story``) through the real service code, then dating it.

Every step goes through the path the product itself takes: inbound messages through
``crm.inbound.receive_inbound`` (the webhooks' entry), USSD hops through ``crm.ussd``, calls
through ``crm.voice``, replies, notes, edits, deals, handoffs and campaigns through the same
service calls and access checks as the API and the web pages. After each step the jobs it
queued run in this process exactly as a worker runs them (``workers.jobs`` from RQ's queues, fed
by the worker's outbox relay): enrichment with the packaged model, routing, sends (through the
sandbox adapters: the demo never reaches a provider), campaign launches and sends.

Time: the steps are played in the order of their story time (a month back to a few minutes ago)
but happen now, within a minute. Before each step the player notes (real time, story time);
afterwards :func:`Player.retime` moves every timestamp in the database from the real window of
its step to the story time of that step (an UPDATE of ``created_at`` and friends, acceptable for
demo data, and the reason this is not done by any product code). Values that depend on a
duration are then recomputed from the moved times: handoff deadlines and speed-to-lead, USSD
session durations, and lead scores decayed to now from their moved events.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from channels.base import CallEvent, InboundEvent, StatusUpdate, UssdHop, UssdSessionEnd
from crm import demo_story as story
from crm import enrichment, outbox, voice
from crm.access import changes_contact
from crm.campaign_launch import request_launch
from crm.campaigns import create_campaign
from crm.contact_edits import edit_contact
from crm.conversations import change, record_reply, sees, thread
from crm.deals import can_change, move_stage, open_deal
from crm.enrichment import Classify
from crm.handoffs import accept, record_first_touch, reject
from crm.importer import import_rows
from crm.inbound import receive_inbound
from crm.messaging import apply_status, provider_for, queue_message
from crm.models import (
    Base,
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    Contact,
    Deal,
    Direction,
    Handoff,
    HandoffStatus,
    Interaction,
    ScoreEvent,
    Segment,
    User,
)
from crm.models.base import UTCDateTime, utcnow
from crm.models.handoffs import ACTIVE
from crm.routing import DEFAULT_SLA
from crm.runtime import Runtime
from crm.scoring import decayed, load_rules
from crm.segments import parse_filters
from crm.timeline import add_entry
from crm.users import create_token, create_user
from crm.ussd import answer_hop, record_session_end
from intelligence.signals import Signals

log = logging.getLogger(__name__)

# Our numbers, as customers see them.
SMS_NUMBER = "+233302555010"
WHATSAPP_NUMBER = "+233302555010"
VOICE_NUMBER = "+233302555011"
AT_SHORT_CODE = "20880"
NETWORKS = {"GH": "62001", "KE": "63902", "NG": "62130"}
TEAM_JOINED = story.day(-45, "08:00")
# Replies a rep sends to a hot lead the story leaves unanswered, by the handoff's reason.
FOLLOW_UPS = {
    "callback_request": (
        "Hello {first}, Sunrise Solar here. Sorry we missed you! I am calling you back in a few "
        "minutes.",
        "Hi {first}, this is Sunrise Solar. I tried to call you back just now, I will try again "
        "shortly.",
    ),
    "human_request": (
        "Hi {first}, thanks for getting in touch with Sunrise Solar. I will call you in a few "
        "minutes to go through the options.",
        "Hello {first}, Sunrise Solar here. Happy to help! When is a good time to call you today?",
    ),
    "mql": (
        "Hi {first}, thanks for your interest! Shall I call you to go through the "
        "pay-as-you-go options?",
        "Hello {first}, Sunrise Solar here. I can book a visit this week to show you the kit. "
        "Which day suits you?",
    ),
}
# Timestamp columns left as they are: deadlines follow their handoff (recomputed), a snooze is
# set in real time for the days to come, sessions are never created by the demo.
NOT_MOVED = {("handoffs", "due_at"), ("conversations", "snoozed_until")}


class DemoError(RuntimeError):
    """The demo could not be played (a step refused, a job failed); the message says which."""


@dataclass(frozen=True)
class Credentials:
    password: str
    tokens: dict[str, str]  # member key -> API token


@dataclass(order=True)
class Beat:
    at: datetime
    seq: int
    run: Callable[[], None] = field(compare=False)
    person: str | None = field(default=None, compare=False)
    kind: str = field(default="", compare=False)


class ReadAhead:
    """The model's signals for the demo's texts, read in one batch before the play.

    A call of the model costs about a quarter of a second whatever its size (most of it
    building the lexical features), so a hundred one-message enrichment jobs would cost half a
    minute; one batch costs a second or two. A text not read ahead is read when asked."""

    def __init__(self, classify: Classify, texts: list[str]) -> None:
        self._classify = classify
        unique = list(dict.fromkeys(texts))
        self._known = dict(zip(unique, classify(unique), strict=True)) if unique else {}

    def __call__(self, texts: Sequence[str]) -> list[Signals]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._known))
        if missing:
            self._known.update(zip(missing, self._classify(missing), strict=True))
        return [self._known[text] for text in texts]


def texts_of(stories: list[story.Story]) -> list[str]:
    """What customers will write or say in these stories: what the model will be asked."""
    found: list[str] = []
    for entry in stories:
        for _after, step in entry.steps:
            if isinstance(step, story.In):
                found.append(step.text)
            elif isinstance(step, story.Call) and step.transcript:
                found.append(step.transcript)
            elif isinstance(step, story.Ussd):
                found.extend(step.inputs)  # typed answers; bare choices have no words
    return found


class Player:
    """Plays the stories in story-time order; see the module's docstring."""

    def __init__(self, runtime: Runtime, now: datetime, *, seed: int = 7) -> None:
        self.rt = runtime
        self.now = now
        self.rng = random.Random(seed)
        self.marks: list[tuple[datetime, datetime]] = []
        self.users: dict[str, int] = {}
        self.people: dict[str, story.Person] = {}
        self.contacts: dict[str, int] = {}  # person key -> contact id
        self.follow_up: dict[str, bool] = {}
        self.deals: dict[str, int] = {}  # person key -> their latest deal
        self.read: set[int] = set()  # outbound messages the customer reads (WhatsApp)
        self.segments: list[int] = []
        self.campaign_id: int | None = None
        self.signals: Classify | None = None  # set by plan()
        self._beats: list[Beat] = []
        self._seq = itertools.count()
        self._handoffs_seen = 0
        self._outbound_seen = 0
        self._worker = SimpleWorker(outbox.QUEUES, connection=runtime.redis)
        self._queues = [Queue(name, connection=runtime.redis) for name in outbox.QUEUES]

    # -- the plan --------------------------------------------------------------------------

    def schedule(
        self, at: datetime, run: Callable[[], None], person: str | None = None, kind: str = ""
    ) -> None:
        if at >= self.now - timedelta(seconds=30):
            raise DemoError(f"a step of {person or 'the demo'} falls in the future ({at})")
        heapq.heappush(self._beats, Beat(at, next(self._seq), run, person, kind))

    def plan(self, password: str, classify: Classify) -> Credentials:
        """Schedule every step; ``classify`` (the model) reads the customers' texts now."""
        tokens: dict[str, str] = {}
        self.schedule(
            TEAM_JOINED.resolve(self.now), lambda: tokens.update(self._team(password)), kind="team"
        )
        stories = story.all_stories()
        for entry in stories:
            self._plan_story(entry)
        self.signals = ReadAhead(classify, texts_of(stories))
        self.schedule(story.FAIR_DAY.resolve(self.now), self._import_fair)
        self.schedule(story.SEGMENTS_AT.resolve(self.now), self._segments)
        self.schedule(story.CAMPAIGN_CREATED.resolve(self.now), self._create_campaign)
        self.schedule(story.CAMPAIGN_LAUNCH.resolve(self.now), self._launch_campaign)
        self.schedule(story.DRAFT_AT.resolve(self.now), self._draft_campaign)
        return Credentials(password, tokens)

    def _plan_story(self, entry: story.Story) -> None:
        person = entry.person
        known = self.people.setdefault(person.key, person)
        if known != person:
            raise DemoError(f"two people are called {person.key}")
        self.follow_up[person.key] = self.follow_up.get(person.key, True) and entry.follow_up
        at = entry.start.resolve(self.now)
        for after, step in entry.steps:
            at += timedelta(minutes=after)
            for when, run in self._expand(person, step, at):
                self.schedule(when, run, person.key, _kind(step))

    def _expand(
        self, person: story.Person, step: story.Step, at: datetime
    ) -> list[tuple[datetime, Callable[[], None]]]:
        """The beats of one step: most are one; a USSD session is one per screen, a call one per
        webhook Twilio sends."""
        run: Callable[[], None]
        match step:
            case story.Ussd():
                return self._ussd_beats(person, step, at)
            case story.Call():
                return self._call_beats(person, step, at)
            case story.In():
                run = functools.partial(self._inbound, person, step)
            case story.Reply():
                run = functools.partial(self._reply, person, step)
            case story.Note():
                run = functools.partial(self._note, person, step)
            case story.OpenDeal():
                run = functools.partial(self._open_deal, person, step)
            case story.MoveDeal():
                run = functools.partial(self._move_deal, person, step)
            case story.Edit():
                run = functools.partial(self._edit, person, step.changes)
            case story.Thread():
                run = functools.partial(self._thread, person, step)
            case story.HandoffStep():
                run = functools.partial(self._handoff, person, step)
        return [(at, run)]

    # -- playing ---------------------------------------------------------------------------

    def play(self) -> None:
        last = None
        while self._beats:
            beat = heapq.heappop(self._beats)
            if last is not None and beat.at <= last:
                beat.at = last + timedelta(milliseconds=1)
            last = beat.at
            real = utcnow()
            if self.marks and real <= self.marks[-1][0]:
                real = self.marks[-1][0] + timedelta(microseconds=1)
            self.marks.append((real, beat.at))
            beat.run()
            self.work()
            self._receipts()
            self._follow_ups(beat)

    def work(self) -> None:
        """Run every job queued so far, as a worker does: the relay moves announced outbox rows
        to RQ's queues, each job runs, and again while jobs queue more (an enrichment queues a
        handoff, a handoff a notification). Jobs scheduled for later (SLA checks) stay
        scheduled."""
        from workers.worker import relay_once

        while True:
            relay_once(self.rt)
            ran = False
            while (
                found := Queue.dequeue_any(self._queues, None, connection=self.rt.redis)
            ) is not None:
                self._run(*found)
                ran = True
            if not ran:
                return

    def _run(self, job: Job, queue: Queue) -> None:
        if job.func_name == outbox.JOBS["enrich"].func:
            # What that job does (workers.jobs.enrich_batch), with the signals the model gave
            # these texts in the batch read up front (see :class:`ReadAhead`).
            assert self.signals is not None, "plan() first"
            with self.rt.session() as session:
                enrichment.enrich(session, job.kwargs["interaction_ids"], self.signals)
                outbox.mark_done(session, *job.kwargs["outbox_ids"])
            job.delete()
            return
        self._worker.execute_job(job, queue)
        if job.get_status(refresh=True) != JobStatus.FINISHED:
            result = job.latest_result()
            raise DemoError(f"job {job.func_name} failed: {result.exc_string if result else '?'}")

    def _receipts(self) -> None:
        """Delivery receipts for what went out in the last step, through the status callback's
        service: delivered, or read for WhatsApp messages the customer opened."""
        with self.rt.session() as session:
            rows = session.execute(
                select(Interaction.id, Interaction.provider, Interaction.provider_message_id)
                .where(
                    Interaction.id > self._outbound_seen,
                    Interaction.direction == Direction.OUTBOUND.value,
                    Interaction.delivery_status.in_(("sent", "queued", "accepted")),
                    Interaction.provider_message_id.is_not(None),
                )
                .order_by(Interaction.id)
            ).all()
            for interaction_id, provider, message_id in rows:
                apply_status(
                    session=session,
                    update=StatusUpdate(
                        provider=provider,
                        provider_message_id=message_id,
                        status="read" if interaction_id in self.read else "delivered",
                        interaction_id=interaction_id,
                    ),
                )
            newest = session.scalar(select(Interaction.id).order_by(Interaction.id.desc()))
            self._outbound_seen = newest or 0

    def _follow_ups(self, beat: Beat) -> None:
        """A hot lead that came in with this step and that its story does not answer within the
        SLA gets a reply from its rep a few minutes later, as the team would."""
        with self.rt.session() as session:
            opened = session.execute(
                select(Handoff.id, Handoff.contact_id, Handoff.reason, Handoff.status)
                .where(Handoff.id > self._handoffs_seen)
                .order_by(Handoff.id)
            ).all()
        by_contact = {contact_id: key for key, contact_id in self.contacts.items()}
        for handoff_id, contact_id, reason, status in opened:
            self._handoffs_seen = max(self._handoffs_seen, handoff_id)
            key = by_contact.get(contact_id)
            if status != HandoffStatus.OPEN or key is None or not self.follow_up.get(key, True):
                continue
            deadline = beat.at + DEFAULT_SLA
            pending = [b for b in self._beats if b.person == key]
            if any(
                b.kind == "handoff" or (b.kind == "reply" and b.at <= deadline) for b in pending
            ):
                continue  # the story deals with it
            person = self.people[key]
            text = self.rng.choice(FOLLOW_UPS.get(reason, FOLLOW_UPS["mql"]))
            step = story.Reply(text.format(first=person.first_name))
            when = beat.at + timedelta(minutes=self.rng.uniform(3, 12))
            # After a call in progress: a rep who picked up has touched the lead already.
            calls = [b.at for b in pending if b.kind == "call" and b.at <= deadline]
            when = max([when, *(at + timedelta(minutes=1) for at in calls)])
            if when >= self.now - timedelta(minutes=1):
                continue  # came in just now: the lead waits, its SLA running
            self.schedule(when, lambda p=person, s=step: self._follow_up(p, s), key, "reply")

    def _follow_up(self, person: story.Person, step: story.Reply) -> None:
        with self.rt.session() as session:
            contact_id = self._contact_id(session, person)
            waiting = session.scalar(
                select(Handoff.id).where(
                    Handoff.contact_id == contact_id, Handoff.status == HandoffStatus.OPEN.value
                )
            )
        if waiting is not None:
            self._reply(person, step)

    # -- the team and the marketing ----------------------------------------------------------

    def _team(self, password: str) -> dict[str, str]:
        tokens = {}
        with self.rt.session() as session:
            for member in story.TEAM:
                user = create_user(
                    session=session,
                    email=member.email,
                    role=member.role,
                    password=password,
                    name=member.name,
                    phone=member.phone,
                )
                user.timezone = member.timezone
                user.lead_cap = member.lead_cap
                session.flush()
                self.users[member.key] = user.id
                if member.key in ("admin", "esi"):
                    tokens[member.key] = create_token(session=session, user=user, name="demo").token
        return tokens

    def _import_fair(self) -> None:
        rows = [
            (line, {**row, "tags": "agric-fair"}) for line, row in enumerate(story.FAIR_LEADS, 2)
        ]
        with self.rt.session() as session:
            report = import_rows(session=session, rows=rows, default_region="GH")
        if report.rejected:
            raise DemoError(f"fair leads rejected: {report.rejected}")
        with self.rt.session() as session:
            for row in story.FAIR_LEADS:
                person = story.fair_person(row["name"], row["phone"])
                self.people.setdefault(person.key, person)
                contact = session.scalar(
                    select(Contact.id).where(Contact.name == row["name"]).limit(1)
                )
                assert contact is not None
                self.contacts[person.key] = contact

    def _segments(self) -> None:
        with self.rt.session() as session:
            for name, filters in story.SEGMENTS:
                parse_filters(filters)
                segment = Segment(name=name, filters=filters, created_by=self.users["marketer"])
                session.add(segment)
                session.flush()
                self.segments.append(segment.id)

    def _create_campaign(self) -> None:
        with self.rt.session() as session:
            marketer = session.get_one(User, self.users["marketer"])
            campaign = create_campaign(
                session, {**story.CAMPAIGN, "segment_id": self.segments[0]}, marketer
            )
            self.campaign_id = campaign.id

    def _launch_campaign(self) -> None:
        """Launched as the composer does (a worker materializes and sends it), then the
        carriers' receipts: delivered, but for two numbers."""
        with self.rt.session() as session:
            request_launch(session, session.get_one(Campaign, self.campaign_id))
        self.work()
        with self.rt.session() as session:
            rows = session.execute(
                select(Interaction, Contact.name)
                .join(CampaignRecipient, CampaignRecipient.interaction_id == Interaction.id)
                .join(Contact, Contact.id == CampaignRecipient.contact_id)
                .where(CampaignRecipient.campaign_id == self.campaign_id)
            ).all()
            for interaction, name in rows:
                code = story.UNDELIVERED.get(name or "")
                apply_status(
                    session=session,
                    update=StatusUpdate(
                        provider=interaction.provider or "sandbox",
                        provider_message_id=interaction.provider_message_id or "",
                        status="undelivered" if code else "delivered",
                        error_code=code,
                        interaction_id=interaction.id,
                    ),
                )
            campaign = session.get_one(Campaign, self.campaign_id)
            if campaign.status != CampaignStatus.DONE or not rows:
                raise DemoError(f"the campaign did not finish: {campaign.status}")

    def _draft_campaign(self) -> None:
        with self.rt.session() as session:
            marketer = session.get_one(User, self.users["marketer"])
            create_campaign(session, {**story.DRAFT, "segment_id": self.segments[2]}, marketer)

    # -- the customers -------------------------------------------------------------------------

    def _contact_id(self, session: Session, person: story.Person) -> int:
        if person.key not in self.contacts:
            from crm.contacts import find_by_phone

            found = find_by_phone(session, person.phone)
            if found is None:
                raise DemoError(f"{person.name} has no contact yet")
            self.contacts[person.key] = found.id
        return self.contacts[person.key]

    def _inbound(self, person: story.Person, step: story.In) -> None:
        channel = step.channel or person.channel
        kenya_sms = person.country == "KE" and channel == "sms"
        provider = "africastalking" if kenya_sms else "twilio"
        message_id = (
            f"ATXid_{self.rng.getrandbits(128):032x}"
            if kenya_sms
            else f"SM{self.rng.getrandbits(128):032x}"
        )
        whatsapp = channel == "whatsapp"
        event = InboundEvent(
            provider=provider,
            channel=channel,
            provider_message_id=message_id,
            sender=("whatsapp:" if whatsapp else "") + person.phone,
            sender_phone=person.phone,
            recipient=(
                AT_SHORT_CODE
                if kenya_sms
                else ("whatsapp:" + WHATSAPP_NUMBER if whatsapp else SMS_NUMBER)
            ),
            body=step.text,
            profile_name=person.name if whatsapp else None,  # WhatsApp sends the profile name
            extra={"wa_id": person.phone.lstrip("+")} if whatsapp else {},
        )
        result = receive_inbound(runtime=self.rt, event=event, inline_reply=provider == "twilio")
        self.contacts.setdefault(person.key, result.contact_id)

    def _actor(self, session: Session, person: story.Person, contact: Contact) -> User:
        """Who on the team acts: the contact's owner, else the person's rep."""
        user_id = contact.owner_id or self.users[person.rep]
        return session.get_one(User, user_id)

    def _thread_channel(self, session: Session, contact_id: int, person: story.Person) -> str:
        latest = session.scalar(
            select(Interaction.channel)
            .where(
                Interaction.contact_id == contact_id,
                Interaction.direction == Direction.INBOUND.value,
                Interaction.channel.in_(("sms", "whatsapp")),
            )
            .order_by(Interaction.id.desc())
            .limit(1)
        )
        return latest or "sms"

    def _reply(self, person: story.Person, step: story.Reply) -> None:
        """What the conversation page's reply does: queue the send on the thread's channel,
        mark the thread read (and the rep's), end the handoff's clock."""
        with self.rt.session() as session:
            contact = session.get_one(Contact, self._contact_id(session, person))
            user = self._actor(session, person, contact)
            if not changes_contact(user, contact):
                raise DemoError(f"{user.name} may not write to {person.name}")
            if contact.name is None:  # the rep asked: an SMS carries no name
                edit_contact(session, contact, user, {"name": person.name})
            channel = step.channel or self._thread_channel(session, contact.id, person)
            sent = queue_message(
                session=session,
                contact_id=contact.id,
                channel=channel,
                body=step.text,
                provider=provider_for(session, contact.id, channel, default="twilio"),
                default_region=self.rt.settings.default_region,
                author_id=user.id,
            )
            record_reply(session, contact.id, channel, user)
            record_first_touch(session, contact.id, user.id)
            if step.read:
                self.read.add(sent.id)

    def _note(self, person: story.Person, step: story.Note) -> None:
        with self.rt.session() as session:
            contact = session.get_one(Contact, self._contact_id(session, person))
            user = self._actor(session, person, contact)
            if not changes_contact(user, contact):
                raise DemoError(f"{user.name} may not add notes to {person.name}")
            add_entry(
                session=session,
                contact_id=contact.id,
                channel="note",
                direction=Direction.INTERNAL,
                body=step.text,
                author_id=user.id,
            )

    def _edit(self, person: story.Person, changes: dict[str, Any]) -> None:
        with self.rt.session() as session:
            contact = session.get_one(Contact, self._contact_id(session, person))
            user = self._actor(session, person, contact)
            if not changes_contact(user, contact):
                raise DemoError(f"{user.name} may not edit {person.name}")
            edit_contact(session, contact, user, changes)

    def _open_deal(self, person: story.Person, step: story.OpenDeal) -> None:
        with self.rt.session() as session:
            contact = session.get_one(Contact, self._contact_id(session, person))
            user = self._actor(session, person, contact)
            if not changes_contact(user, contact):
                raise DemoError(f"{user.name} may not open a deal for {person.name}")
            deal = open_deal(
                session,
                contact,
                title=step.title,
                amount=step.amount,
                currency=step.currency,
                stage=step.stage,
                owner_id=user.id,
                expected_close_on=(self.now + timedelta(days=self.rng.randint(5, 30))).date(),
                actor=f"user:{user.id}",
            )
            self.deals[person.key] = deal.id

    def _move_deal(self, person: story.Person, step: story.MoveDeal) -> None:
        with self.rt.session() as session:
            deal = session.get_one(Deal, self.deals[person.key])
            contact = session.get_one(Contact, deal.contact_id)
            user = session.get_one(User, deal.owner_id or self.users[person.rep])
            if not can_change(user, deal, contact):
                raise DemoError(f"{user.name} may not move {deal.title}")
            move_stage(
                session, deal, step.stage, actor=f"user:{user.id}", lost_reason=step.lost_reason
            )

    def _thread(self, person: story.Person, step: story.Thread) -> None:
        with self.rt.session() as session:
            contact = session.get_one(Contact, self._contact_id(session, person))
            user = self._actor(session, person, contact)
            conversation = thread(
                session, contact.id, self._thread_channel(session, contact.id, person)
            )
            if not sees(session, user, conversation):
                raise DemoError(f"{user.name} cannot see {person.name}'s conversation")
            if step.status == "read":
                change(session, conversation, user, read=True)
            elif step.status == "snoozed":
                until = utcnow() + timedelta(days=step.days)  # days ahead of the real today
                change(session, conversation, user, status="snoozed", snoozed_until=until)
            else:  # closing a thread, a rep has read it
                change(session, conversation, user, status=step.status, read=True)

    def _handoff(self, person: story.Person, step: story.HandoffStep) -> None:
        with self.rt.session() as session:
            contact_id = self._contact_id(session, person)
            handoff = session.scalar(
                select(Handoff).where(Handoff.contact_id == contact_id, Handoff.status.in_(ACTIVE))
            )
            if handoff is None or handoff.rep_id is None:
                raise DemoError(f"{person.name} has no handoff assigned to a rep")
            rep = session.get_one(User, handoff.rep_id)
            if step.action == "accept":
                accept(session, handoff.id, rep)
                return
            if step.action == "reject":
                reject(session, handoff.id, rep, step.reason or "too_busy")
                return
            handoff_id = handoff.id
            # The deadline passes: what RQ's scheduler does at the handoff's due time.
            handoff.due_at = utcnow()
        queue = Queue("default", connection=self.rt.redis)
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            job = Job.fetch(job_id, connection=self.rt.redis)
            if job.kwargs.get("handoff_id") == handoff_id:
                registry.remove(job)
                queue.enqueue_job(job)
                return
        raise DemoError(f"no SLA check scheduled for {person.name}'s handoff")

    # -- USSD and calls ------------------------------------------------------------------------

    def _ussd_beats(
        self, person: story.Person, step: story.Ussd, at: datetime
    ) -> list[tuple[datetime, Callable[[], None]]]:
        session_id = f"ATUid_{self.rng.getrandbits(128):032x}"
        beats: list[tuple[datetime, Callable[[], None]]] = []
        when = at
        for count in range(len(step.inputs) + 1):
            text = "*".join(step.inputs[:count])
            hop = UssdHop(
                provider="africastalking",
                session_id=session_id,
                service_code=step.code,
                phone=person.phone,
                network_code=NETWORKS[person.country],
                text=text,
            )
            beats.append((when, lambda h=hop: self._hop(person, h)))
            when += timedelta(seconds=self.rng.uniform(5, 14) + len(text) / 4)
        end = UssdSessionEnd(
            provider="africastalking",
            session_id=session_id,
            phone=person.phone,
            status=step.end,
            duration_ms=int((when - at).total_seconds() * 1000),
            hops=len(step.inputs) + 1,
            last_input=step.inputs[-1] if step.inputs else None,
            cost={"GH": "GHS 0.06", "KE": "KES 1.00", "NG": "NGN 8.00"}[person.country],
        )
        beats.append((when, lambda: self._ussd_end(end)))
        return beats

    def _hop(self, person: story.Person, hop: UssdHop) -> None:
        answer_hop(runtime=self.rt, menu=self.rt.menu, hop=hop)
        if person.key not in self.contacts:
            with self.rt.session() as session:
                self._contact_id(session, person)

    def _ussd_end(self, end: UssdSessionEnd) -> None:
        record_session_end(runtime=self.rt, end=end)

    def _call_beats(
        self, person: story.Person, step: story.Call, at: datetime
    ) -> list[tuple[datetime, Callable[[], None]]]:
        sid = f"CA{self.rng.getrandbits(128):032x}"
        account = self.rt.settings.twilio_account_sid or "AC" + "d3m0" * 8
        recording = f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/RE" + (
            f"{self.rng.getrandbits(128):032x}"
        )

        def event(status: str, **fields: Any) -> CallEvent:
            return CallEvent(
                provider="twilio",
                call_sid=sid,
                caller=person.phone,
                called=VOICE_NUMBER,
                status=status,
                **fields,
            )

        def seen() -> None:
            with self.rt.session() as session:
                self._contact_id(session, person)

        def ring() -> None:
            voice.answer_call(runtime=self.rt, event=event("ringing"))
            seen()

        def gather(inputs: list[str], **heard: Any) -> Callable[[], None]:
            return lambda: voice.answer_gather(
                runtime=self.rt, event=event("in-progress", **heard), inputs=inputs
            )

        def status(value: str, seconds: int, **extra: Any) -> Callable[[], None]:
            def run() -> None:
                voice.record_call_status(
                    runtime=self.rt, event=event(value, duration_s=seconds, **extra)
                )
                seen()

            return run

        second = timedelta(seconds=1)
        end = at + step.seconds * second
        if step.kind == "hung_up":
            return [(at, status("canceled", 0))]
        beats = [(at, ring)]
        if step.kind == "menu":
            for index, key in enumerate(step.keys):
                beats.append(
                    (at + (9 + 8 * index) * second, gather(list(step.keys[:index]), digits=key))
                )
            return [*beats, (end, status("completed", step.seconds))]
        heard: dict[str, Any] = (
            {"speech": "agent", "confidence": 0.91} if step.speech else {"digits": "0"}
        )
        beats.append((at + 9 * second, gather([], **heard)))
        if step.kind == "answered":
            talk = max(step.seconds - 25, 10)
            beats.append(
                (
                    end - second,
                    self._dial(event("in-progress", dial_status="completed", dial_duration_s=talk)),
                )
            )
            beats.append((end, status("completed", step.seconds, recording_url=recording)))
            return beats
        beats.append(
            (
                at + 31 * second,
                self._dial(event("in-progress", dial_status="no-answer", dial_duration_s=0)),
            )
        )
        if step.kind == "voicemail":
            left = max(step.seconds - 38, 8)
            message = event("in-progress", recording_url=recording, recording_duration_s=left)
            transcribed = event(
                "completed",
                recording_url=recording,
                transcription=step.transcript,
                transcription_status="completed",
            )
            beats.append(
                (end - second, lambda: voice.record_voicemail(runtime=self.rt, event=message))
            )
            beats.append((end, status("completed", step.seconds)))
            beats.append(
                (
                    end + 40 * second,
                    lambda: voice.record_transcription(runtime=self.rt, event=transcribed),
                )
            )
            return beats
        return [*beats, (end, status("completed", step.seconds))]

    def _dial(self, event: CallEvent) -> Callable[[], None]:
        return lambda: voice.answer_dial_outcome(runtime=self.rt, event=event)

    # -- dating ----------------------------------------------------------------------------------

    def retime(self) -> None:
        """Move every timestamp from the real moment its step was played to the step's story
        time, then recompute what derives from durations. See the module's docstring."""
        end = utcnow()
        marks = [*self.marks, (end, self.now)]
        reals = [real for real, _ in marks]

        def move(value: datetime | None) -> datetime | None:
            if value is None or value < reals[0] or value > end:
                return value
            index = min(bisect.bisect_right(reals, value) - 1, len(marks) - 2)
            (real, told), (next_real, next_told) = marks[index], marks[index + 1]
            window = (next_real - real).total_seconds()
            gap = (next_told - told).total_seconds()
            # A step that took longer to play than the story leaves it is squeezed into its gap.
            scale = 1.0 if window <= 0 or gap >= window else 0.9 * gap / window
            return told + (value - real) * scale

        with self.rt.session() as session:
            for table in Base.metadata.sorted_tables:
                self._move_table(session, table, move)
        with self.rt.session() as session:
            self._handoff_clocks(session)
            self._ussd_clocks(session, move)
            self._scores(session, end)

    @staticmethod
    def _move_table(session: Session, table: Any, move: Callable[[Any], Any]) -> None:
        columns = [
            column
            for column in table.columns
            if isinstance(column.type, UTCDateTime) and (table.name, column.name) not in NOT_MOVED
        ]
        keys = list(table.primary_key.columns)
        if not columns or len(keys) != 1:
            return
        key = keys[0]
        changed = []
        for row in session.execute(select(key, *columns)):
            values = {f"b_{c.name}": move(row[i + 1]) for i, c in enumerate(columns)}
            if any(values[f"b_{c.name}"] != row[i + 1] for i, c in enumerate(columns)):
                changed.append({"b_key": row[0], **values})
        if changed:
            statement = (
                update(table)
                .where(key == bindparam("b_key"))
                .values({c.name: bindparam(f"b_{c.name}") for c in columns})
            )
            session.execute(statement.execution_options(synchronize_session=False), changed)

    @staticmethod
    def _handoff_clocks(session: Session) -> None:
        """Deadlines and speed-to-lead from the moved times, and the timeline's notes with them."""
        handoffs = {h.id: h for h in session.scalars(select(Handoff))}
        for handoff in handoffs.values():
            handoff.due_at = handoff.created_at + DEFAULT_SLA
            if handoff.first_touch_at is not None:
                seconds = (handoff.first_touch_at - handoff.created_at).total_seconds()
                handoff.speed_to_lead_s = max(0, int(seconds))
        notes = session.scalars(
            select(Interaction).where(
                Interaction.channel == "system", Interaction.provider.is_(None)
            )
        )
        for note in notes:
            meta = note.meta or {}
            handoff = (
                handoffs.get(meta.get("handoff_id")) if meta.get("event") == "handoff" else None
            )
            if handoff is None:
                continue
            if meta.get("due_at"):
                note.meta = {**meta, "due_at": handoff.due_at.isoformat()}
            if note.body.startswith("First touch after") and handoff.speed_to_lead_s is not None:
                note.body = f"First touch after {handoff.speed_to_lead_s} s"

    @staticmethod
    def _ussd_clocks(session: Session, move: Callable[[Any], Any]) -> None:
        sessions = session.scalars(select(Interaction).where(Interaction.channel == "ussd"))
        for interaction in sessions:
            meta = dict(interaction.meta or {})
            times = {}
            for name in ("started_at", "last_hop_at"):
                if meta.get(name):
                    times[name] = move(datetime.fromisoformat(meta[name]))
                    meta[name] = times[name].isoformat()
            if meta.get("ended") != "gateway" and len(times) == 2:
                spent = times["last_hop_at"] - times["started_at"]
                meta["duration_ms"] = int(spent.total_seconds() * 1000)
            interaction.meta = meta

    @staticmethod
    def _scores(session: Session, now: datetime) -> None:
        """Each lead score as of now, from its moved events (the explanation reads the same)."""
        rules = load_rules()
        points: dict[int, float] = {}
        for contact_id, worth, occurred_at in session.execute(
            select(ScoreEvent.contact_id, ScoreEvent.points, ScoreEvent.occurred_at)
        ):
            now_worth = decayed(worth, occurred_at, now, rules.half_life)
            points[contact_id] = points.get(contact_id, 0.0) + now_worth
        for contact in session.scalars(select(Contact).where(Contact.id.in_(points))):
            contact.score_points = points[contact.id]
            contact.score_at = now
            contact.score = round(contact.score_points + (contact.fit_points or 0.0))


def _kind(step: story.Step) -> str:
    if isinstance(step, story.Reply):
        return "reply"
    if isinstance(step, story.HandoffStep):
        return "handoff"
    return type(step).__name__.lower()
